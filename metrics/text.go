package metrics

import (
	"slices"
	"strings"
)

// text is what the text format needs of a family, computed once when the
// family is defined: its HELP and TYPE lines, and its label names sorted as
// expfmt writes them with where each one's value is in Labels.
type text struct {
	header []byte
	sorted []string
	order  []int
}

func textOf(name, help string, typ Type, labels []string) text {
	var b strings.Builder
	b.WriteString("# HELP " + name + " ")
	escapeHelp(&b, help)
	b.WriteString("\n# TYPE " + name + " " + string(typ) + "\n")
	order := make([]int, len(labels))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(labels[a], labels[b]) })
	sorted := make([]string, len(labels))
	for i, j := range order {
		sorted[i] = labels[j]
	}
	return text{header: []byte(b.String()), sorted: sorted, order: order}
}

// escapeHelp escapes HELP text as the text format requires: backslash and
// newline.
func escapeHelp(b *strings.Builder, help string) {
	for _, r := range help {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteRune(r)
		}
	}
}

// Header is the family's HELP and TYPE lines. The caller must not change it.
func (f *Family) Header() []byte { return f.text.header }

// TextLabels are the label names in the order the text format writes them
// (sorted), and for each the index of its value in Labels order. The caller
// must not change them.
func (f *Family) TextLabels() (names []string, order []int) { return f.text.sorted, f.text.order }
