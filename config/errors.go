package config

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is one problem in a config file, located by line and field.
type Error struct {
	File  string
	Line  int
	Field string // dotted path such as endpoints[2].tls_config.ca_file
	Msg   string
}

func (e *Error) Error() string {
	parts := make([]string, 0, 3)
	switch {
	case e.File != "" && e.Line > 0:
		parts = append(parts, fmt.Sprintf("%s:%d", e.File, e.Line))
	case e.File != "":
		parts = append(parts, e.File)
	}
	if e.Field != "" {
		parts = append(parts, e.Field)
	}
	return strings.Join(append(parts, e.Msg), ": ")
}

// Errors is every problem found in one file, in file order.
type Errors []*Error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// path addresses a node: string elements are mapping keys, ints are sequence indices.
type path []any

func (p path) String() string {
	var b strings.Builder
	for _, el := range p {
		switch v := el.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", v)
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			fmt.Fprint(&b, v)
		}
	}
	return b.String()
}

// problem is a validation error before it is located in the file.
type problem struct {
	at  path
	msg string
}

type problems []problem

func (ps *problems) add(at path, format string, args ...any) {
	*ps = append(*ps, problem{at: at, msg: fmt.Sprintf(format, args...)})
}

// resolve locates each problem in the YAML tree.
func (ps problems) resolve(file string, root *yaml.Node) Errors {
	out := make(Errors, 0, len(ps))
	for _, p := range ps {
		out = append(out, &Error{File: file, Line: lineOf(root, p.at), Field: p.at.String(), Msg: p.msg})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}

// lineOf follows p as far as the document goes and returns that node's line,
// so a missing key is reported at the block that lacks it.
func lineOf(root *yaml.Node, p path) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, el := range p {
		next := child(n, el)
		if next == nil {
			break
		}
		n, line = next, next.Line
	}
	return line
}

func child(n *yaml.Node, el any) *yaml.Node {
	switch v := el.(type) {
	case string:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == v {
				// The key's line: the value of a block may start lines later.
				if n.Content[i+1].Kind == yaml.ScalarNode {
					return n.Content[i+1]
				}
				keyed := *n.Content[i+1]
				keyed.Line = n.Content[i].Line
				return &keyed
			}
		}
	case int:
		if n.Kind == yaml.SequenceNode && v < len(n.Content) {
			return n.Content[v]
		}
	}
	return nil
}

func syntaxError(file string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := lineRe.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = strings.TrimPrefix(msg[len(m[0]):], " ")
	}
	return Errors{{File: file, Line: line, Msg: "invalid YAML: " + msg}}
}

var (
	lineRe     = regexp.MustCompile(`^line (\d+):`)
	unknownRe  = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	valueRe    = regexp.MustCompile("`([^`]*)`")
	goTypeRe   = regexp.MustCompile(`into (\S+)$`)
	friendlyGo = map[string]string{"int": "a whole number", "bool": "true or false", "string": "a string", "[]string": "a list of strings"}
)

// decodeError turns yaml.v3's type errors into located, field-named errors.
func decodeError(file string, root *yaml.Node, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return syntaxError(file, err)
	}
	idx := indexKeys(root)
	out := make(Errors, 0, len(te.Errors))
	for _, raw := range te.Errors {
		m := lineRe.FindStringSubmatch(raw)
		if m == nil {
			out = append(out, &Error{File: file, Msg: raw})
			continue
		}
		line, _ := strconv.Atoi(m[1])
		msg := strings.TrimSpace(raw[len(m[0]):])
		field := idx.at(line, msg)
		if u := unknownRe.FindStringSubmatch(msg); u != nil {
			msg = "unknown field; check its spelling and indentation"
		} else if g := goTypeRe.FindStringSubmatch(msg); g != nil && valueRe.MatchString(msg) {
			want := friendlyGo[g[1]]
			if want == "" {
				want = "a " + strings.TrimPrefix(g[1], "config.")
			}
			msg = fmt.Sprintf("%s is not %s", valueRe.FindString(msg), want)
			msg = strings.ReplaceAll(msg, "`", `"`)
		}
		out = append(out, &Error{File: file, Line: line, Field: field, Msg: msg})
	}
	return out
}

type keyAt struct {
	p     path
	key   string
	value string
}

type keyIndex map[int][]keyAt

func indexKeys(root *yaml.Node) keyIndex {
	idx := keyIndex{}
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
				idx[k.Line] = append(idx[k.Line], keyAt{p: kp, key: k.Value, value: v.Value})
				walk(v, kp)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				ip := append(append(path{}, p...), i)
				if c.Kind == yaml.ScalarNode {
					idx[c.Line] = append(idx[c.Line], keyAt{p: ip, value: c.Value})
				}
				walk(c, ip)
			}
		}
	}
	walk(root, nil)
	return idx
}

// at picks the field an error on this line is about.
func (idx keyIndex) at(line int, msg string) string {
	cands := idx[line]
	if len(cands) == 0 {
		return ""
	}
	if u := unknownRe.FindStringSubmatch(msg); u != nil {
		for _, c := range cands {
			if c.key == u[1] {
				return c.p.String()
			}
		}
	}
	if v := valueRe.FindStringSubmatch(msg); v != nil {
		for _, c := range cands {
			if c.value == v[1] {
				return c.p.String()
			}
		}
	}
	for _, c := range cands {
		if strings.Contains(msg, fmt.Sprintf("%q", c.value)) {
			return c.p.String()
		}
	}
	return cands[0].p.String()
}
