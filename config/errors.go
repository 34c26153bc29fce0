package config

import (
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is one problem in a config file, located by line and field.
type Error struct {
	File  string
	Line  int
	Field string // dotted path such as endpoints[2].tls_config.ca_file
	Msg   string

	cause error // for errors.Is, when the problem came from the system
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

// Unwrap returns the system error behind the problem, if there is one.
func (e *Error) Unwrap() error { return e.cause }

// Errors is every problem found in one file, in file order.
type Errors []*Error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap lets errors.Is and errors.As see each problem.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
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
	at    path
	msg   string
	cause error
}

type problems []problem

func (ps *problems) add(at path, format string, args ...any) {
	*ps = append(*ps, problem{at: at, msg: fmt.Sprintf(format, args...)})
}

// addErr records err as the message and keeps it as the cause.
func (ps *problems) addErr(at path, err error) {
	*ps = append(*ps, problem{at: at, msg: err.Error(), cause: err})
}

// resolve locates each problem in the YAML tree.
func (ps problems) resolve(file string, root *yaml.Node) Errors {
	out := make(Errors, 0, len(ps))
	for _, p := range ps {
		out = append(out, &Error{File: file, Line: lineOf(root, p.at), Field: p.at.String(), Msg: p.msg, cause: p.cause})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}

// lineOf follows p as far as the document goes and returns that node's line,
// so a missing key is reported at the block that lacks it.
func lineOf(root *yaml.Node, p path) int {
	n, _ := follow(root, p)
	return n.Line
}

// isSet reports whether the document gives p a value, so that an explicit
// zero can be told from an absent key.
func isSet(root *yaml.Node, p path) bool {
	n, ok := follow(root, p)
	return ok && n.ShortTag() != "!!null"
}

// follow walks p from the document's top node as far as it exists. It
// returns the last node reached and whether that is the end of p.
func follow(root *yaml.Node, p path) (*yaml.Node, bool) {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, el := range p {
		next := child(n, el)
		if next == nil {
			return n, false
		}
		n = next
	}
	return n, true
}

func child(n *yaml.Node, el any) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch v := el.(type) {
	case string:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == v {
				return keyed(n.Content[i], n.Content[i+1])
			}
		}
	case int:
		if n.Kind == yaml.SequenceNode && v < len(n.Content) {
			return n.Content[v]
		}
	}
	return nil
}

// keyed returns the value, placed on its key's line when it is a block:
// a list or mapping value starts on the line after its key.
func keyed(key, value *yaml.Node) *yaml.Node {
	if value.Kind == yaml.ScalarNode {
		return value
	}
	v := *value
	v.Line = key.Line
	return &v
}
