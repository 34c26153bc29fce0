package config

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// yaml.v3 reports problems as strings written for Go programmers; these
// patterns pick them apart so users read YAML terms, never Go type names.
var (
	lineRe      = regexp.MustCompile(`(?s)^line (\d+): (.*)$`)
	columnRe    = regexp.MustCompile(`(?s)^column (\d+): (.*)$`)
	unknownRe   = regexp.MustCompile(`(?s)^field (.*) not found in type \S+$`)
	setTwiceRe  = regexp.MustCompile(`(?s)^field (.*) already set in type \S+$`)
	dupKeyRe    = regexp.MustCompile(`(?s)^mapping key (".*") already defined at line (\d+)$`)
	unmarshalRe = regexp.MustCompile("(?s)^cannot unmarshal (\\S+)(?: `(.*)`)? into (\\S+)$")
	// yaml.v3 glues the value to a !!map or !!seq tag on a scalar: "!!map0 0".
	oddTagRe = regexp.MustCompile(`(?s)^cannot unmarshal .* into (\S+)$`)

	tagMismatchRe = regexp.MustCompile("(?s)^cannot decode (\\S+) `(.*)` as a (\\S+)$")
	selfAnchorRe  = regexp.MustCompile(`(?s)^anchor '(.*)' value contains itself$`)
)

const (
	mergeProblem  = "map merge requires map or sequence of maps as the value"
	binaryProblem = "!!binary value contains invalid base64 data"
)

// syntaxError reports YAML that does not parse, at the line where it stops.
func syntaxError(file string, data []byte, err error) error {
	line, msg := splitLine(strings.TrimPrefix(err.Error(), "yaml: "))
	lines := splitLines(data)
	line = locateSyntax(lines, msg, line)
	text := ""
	if line > 0 && line <= len(lines) {
		text = string(lines[line-1])
	}
	return Errors{{File: file, Line: line, Msg: "invalid YAML: " + explainSyntax(msg, text), cause: err}}
}

func splitLine(msg string) (int, string) {
	m := lineRe.FindStringSubmatch(msg)
	if m == nil {
		return 0, msg
	}
	line, _ := strconv.Atoi(m[1])
	return line, m[2]
}

// lineBreak matches what YAML counts as the end of a line.
var lineBreak = regexp.MustCompile("\r\n|[\r\n\u0085\u2028\u2029]")

// splitLines cuts data after each line break, as YAML numbers lines.
func splitLines(data []byte) [][]byte {
	var lines [][]byte
	start := 0
	for _, brk := range lineBreak.FindAllIndex(data, -1) {
		lines = append(lines, data[start:brk[1]])
		start = brk[1]
	}
	return append(lines, data[start:])
}

// locateSyntax finds the first line at which the text stops parsing with the
// same problem. yaml.v3 often names the line where the enclosing block
// starts instead, or none at all.
func locateSyntax(lines [][]byte, msg string, reported int) int {
	fails := func(k int) bool {
		_, _, err := parseDocs(bytes.Join(lines[:k], nil))
		if err == nil {
			return false
		}
		_, m := splitLine(strings.TrimPrefix(err.Error(), "yaml: "))
		return m == msg
	}
	k := 1 + sort.Search(len(lines), func(i int) bool { return fails(i + 1) })
	if k > len(lines) {
		return reported
	}
	return k
}

var syntaxHints = map[string]string{
	"found unexpected end of stream":                 "a quoted string is not closed",
	"did not find expected key":                      "did not find expected key; check the indentation",
	"did not find expected '-' indicator":            "did not find expected '-' indicator; check the indentation",
	"could not find expected ':'":                    "could not find expected ':'; check the indentation",
	"mapping values are not allowed in this context": "mapping values are not allowed in this context; check the indentation, and quote values that contain \": \"",
}

func explainSyntax(msg, line string) string {
	indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
	if strings.Contains(indent, "\t") {
		return "a tab indents this line; YAML allows only spaces for indentation"
	}
	if hint, ok := syntaxHints[msg]; ok {
		return hint
	}
	return msg
}

// decodeError turns yaml.v3's type errors into located, field-named errors.
func decodeError(file string, root *yaml.Node, err error) error {
	idx := indexNodes(root)
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		e := idx.fatal(strings.TrimPrefix(err.Error(), "yaml: "))
		e.File, e.cause = file, err
		return Errors{e}
	}
	out := make(Errors, 0, len(te.Errors))
	for _, raw := range te.Errors {
		e := idx.translate(raw)
		e.File = file
		out = append(out, e)
	}
	return out
}

// fatal rewrites the problems that stop yaml.v3 outright. It gives them no
// line, so the node they are about is looked up.
func (idx nodeIndex) fatal(msg string) *Error {
	if m := tagMismatchRe.FindStringSubmatch(msg); m != nil {
		return idx.find(func(e *entry) bool { return e.node.ShortTag() == m[3] && e.node.Value == m[2] }).
			locate(0, fmt.Sprintf("invalid YAML: %s does not fit its tag %q", quote(m[2]), m[3]))
	}
	if m := selfAnchorRe.FindStringSubmatch(msg); m != nil {
		return idx.find(func(e *entry) bool { return e.node.Anchor == m[1] }).
			locate(0, fmt.Sprintf("invalid YAML: anchor %q contains itself", m[1]))
	}
	if msg == mergeProblem {
		return idx.find(func(e *entry) bool { return e.key == "<<" }).
			locate(0, `invalid YAML: the merge key "<<" needs a mapping or a list of mappings`)
	}
	if msg == binaryProblem {
		return idx.find(func(e *entry) bool { return e.node.ShortTag() == "!!binary" }).
			locate(0, `invalid YAML: a value tagged "!!binary" is not valid base64`)
	}
	return &Error{Msg: "invalid YAML: " + msg}
}

func (idx nodeIndex) find(match func(*entry) bool) *entry {
	for i := range idx {
		if match(&idx[i]) {
			return &idx[i]
		}
	}
	return nil
}

// entry is one value in the document with the path and line that name it.
type entry struct {
	at      path
	key     string // "" for a list item
	keyLine int
	node    *yaml.Node
}

// nodeIndex lists every value in document order, parents before children.
type nodeIndex []entry

func indexNodes(root *yaml.Node) nodeIndex {
	var idx nodeIndex
	var walk func(n *yaml.Node, p path)
	walk = func(n *yaml.Node, p path) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, p)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				kp := append(append(path{}, p...), k.Value)
				idx = append(idx, entry{at: kp, key: k.Value, keyLine: k.Line, node: v})
				walk(v, kp)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				ip := append(append(path{}, p...), i)
				idx = append(idx, entry{at: ip, keyLine: c.Line, node: c})
				walk(c, ip)
			}
		}
	}
	walk(root, nil)
	return idx
}

// translate rewrites one of yaml.v3's messages and finds the field it is about.
func (idx nodeIndex) translate(raw string) *Error {
	line, msg := splitLine(raw)
	if line == 0 {
		return &Error{Msg: msg}
	}
	if m := unknownRe.FindStringSubmatch(msg); m != nil {
		return idx.byKey(line, m[1]).locate(line, "unknown field; check its spelling and indentation")
	}
	if m := setTwiceRe.FindStringSubmatch(msg); m != nil {
		return idx.byKey(line, m[1]).locate(line, "is set more than once")
	}
	if m := dupKeyRe.FindStringSubmatch(msg); m != nil {
		key, _ := strconv.Unquote(m[1])
		return idx.byKey(line, key).locate(line, "duplicate key; it is already set at line "+m[2])
	}
	if m := unmarshalRe.FindStringSubmatch(msg); m != nil {
		return idx.wrongType(line, m[1], m[2], m[3])
	}
	if m := oddTagRe.FindStringSubmatch(msg); m != nil {
		return idx.wrongType(line, "", "", m[1])
	}
	if m := columnRe.FindStringSubmatch(msg); m != nil {
		col, _ := strconv.Atoi(m[1])
		return idx.byColumn(line, col).locate(line, m[2])
	}
	return &Error{Line: line, Msg: msg}
}

func (idx nodeIndex) byKey(line int, key string) *entry {
	var onLine *entry
	for i := range idx {
		if e := &idx[i]; e.keyLine == line && e.key != "" {
			if e.key == key {
				return e
			}
			if onLine == nil {
				onLine = e
			}
		}
	}
	return onLine
}

func (idx nodeIndex) byColumn(line, col int) *entry {
	for i := range idx {
		if n := idx[i].node; n.Line == line && n.Column == col {
			return &idx[i]
		}
	}
	return nil
}

// byValue finds the node yaml.v3 describes by its line, tag, (possibly
// shortened) value and the Go type it went into.
func (idx nodeIndex) byValue(line int, tag, value, goType string) *entry {
	var fallback *entry
	for i := range idx {
		n := idx[i].node
		if n.Line != line || tag != "" && (n.ShortTag() != tag || !sameValue(n.Value, value)) {
			continue
		}
		if goTypeAt(idx[i].at) == goType {
			return &idx[i]
		}
		if fallback == nil {
			fallback = &idx[i]
		}
	}
	return fallback
}

// goTypeAt names the Go type the value at p decodes into, as yaml.v3 names
// it in messages; "" where p leaves the schema.
func goTypeAt(p path) string {
	t := reflect.TypeFor[Config]()
	for _, el := range p {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch v := el.(type) {
		case int:
			if t.Kind() != reflect.Slice {
				return ""
			}
			t = t.Elem()
		case string:
			f, ok := fieldByKey(t, v)
			if !ok {
				return ""
			}
			t = f.Type
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.String()
}

func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	if t.Kind() != reflect.Struct {
		return reflect.StructField{}, false
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// sameValue compares a value with yaml.v3's rendering, which cuts values
// longer than 10 bytes to 7 and "...".
func sameValue(full, shown string) bool {
	if short, ok := strings.CutSuffix(shown, "..."); ok && len(full) > 10 {
		return strings.HasPrefix(full, short)
	}
	return full == shown
}

func (e *entry) locate(line int, msg string) *Error {
	if e == nil {
		return &Error{Line: line, Msg: msg}
	}
	return &Error{Line: e.keyLine, Field: e.at.String(), Msg: msg}
}

// wrongType reports a value of the wrong kind; an empty tag means yaml.v3
// did not say what it found.
func (idx nodeIndex) wrongType(line int, tag, value, goType string) *Error {
	msg := "must be " + expected(goType)
	e := idx.byValue(line, tag, value, goType)
	if tag != "" {
		var n *yaml.Node
		if e != nil {
			n, value = e.node, e.node.Value
		}
		msg += ", not " + describe(n, tag, value)
	}
	if goType == "config.Config" {
		return &Error{Line: line, Msg: "the config " + msg}
	}
	return e.locate(line, msg)
}

// describe names what the user wrote: the kind of a block, or the value itself.
func describe(n *yaml.Node, tag, value string) string {
	kind := tag
	if n != nil {
		kind = n.ShortTag()
	}
	switch kind {
	case "!!map":
		return "a mapping"
	case "!!seq":
		return "a list"
	}
	return quote(value)
}

// expectations name what a Go type accepts, in the words of a YAML user.
var expectations = map[string]string{
	"config.Config":      "a mapping of keys such as interval and endpoints",
	"config.Endpoint":    "a mapping with a name and a url or an address",
	"config.FileGroup":   "a mapping with a name and paths",
	"[]config.Endpoint":  "a list of endpoints",
	"[]config.FileGroup": "a list of file groups",
	"[]string":           "a list of strings",
	"string":             "a string",
	"bool":               "true or false",
}

func expected(goType string) string {
	goType = strings.TrimLeft(goType, "*")
	if s, ok := expectations[goType]; ok {
		return s
	}
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map["), strings.HasPrefix(goType, "config."):
		return "a mapping"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "a whole number"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	}
	return "a different kind of value"
}

// quote shows a value the user wrote, cut short so a pasted blob stays readable.
func quote(s string) string {
	const max = 40
	if utf8.RuneCountInString(s) <= max {
		return strconv.Quote(s)
	}
	return strconv.Quote(string([]rune(s)[:max]) + "…")
}

// typeError is collected by yaml.v3 with the others, so one pass reports them
// all. The column finds the node again when the error is located.
func typeError(n *yaml.Node, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: column %d: %s", n.Line, n.Column, msg)}}
}

// kindOf names a node's kind for messages.
func kindOf(n *yaml.Node) string {
	return describe(n, n.ShortTag(), n.Value)
}

// duplicateKeys finds every key set twice in one mapping, in file order.
func duplicateKeys(file string, root *yaml.Node) Errors {
	var out Errors
	top, _ := follow(root, nil)
	for _, e := range append(nodeIndex{{node: top}}, indexNodes(root)...) {
		if e.node.Kind != yaml.MappingNode {
			continue
		}
		first := map[string]int{}
		for i := 0; i+1 < len(e.node.Content); i += 2 {
			k := e.node.Content[i]
			if line, ok := first[k.Value]; ok {
				at := append(append(path{}, e.at...), k.Value)
				out = append(out, &Error{File: file, Line: k.Line, Field: at.String(),
					Msg: fmt.Sprintf("duplicate key; it is already set at line %d", line)})
				continue
			}
			first[k.Value] = k.Line
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}
