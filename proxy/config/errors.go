package config

import (
	"fmt"
	"strconv"
	"strings"
)

// FieldError is one invalid field, with its exact path such as
// "policies[0].routes[2].paths[1]".
type FieldError struct {
	Path    Path
	Message string
}

func (e FieldError) Error() string { return e.Path.String() + ": " + e.Message }

// ErrorList is every validation error found.
type ErrorList []FieldError

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return fmt.Sprintf("%d invalid field(s): %s", len(l), strings.Join(msgs, "; "))
}

// Path is where a field is in a ProxyConfig: the JSON field names and list
// indexes from the root. Its steps are typed, so a caller that knows where
// the parts of a config came from (the controller maps them back to an
// AuthPolicy) reads them instead of parsing the rendered string.
type Path []Step

// Step is one field name or one list index of a Path.
type Step struct {
	// Field is the JSON field name; "" makes the step a list index.
	Field string
	// Index is the list index of an index step.
	Index int
}

// String renders the path as in "policies[0].routes[2].paths[1]".
func (p Path) String() string { return p.Under("") }

// Under renders the path below root: Under("spec") of routes[2] is
// "spec.routes[2]"; an empty path renders as root.
func (p Path) Under(root string) string {
	var b strings.Builder
	b.WriteString(root)
	for _, s := range p {
		if s.Field == "" {
			b.WriteString("[" + strconv.Itoa(s.Index) + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.Field)
	}
	return b.String()
}

// CutField returns the rest of the path when its first step is the field
// name.
func (p Path) CutField(name string) (Path, bool) {
	if len(p) == 0 || p[0].Field != name || name == "" {
		return nil, false
	}
	return p[1:], true
}

// CutIndex returns the index of the path's first step and the rest of the
// path when that step is a list index.
func (p Path) CutIndex() (int, Path, bool) {
	if len(p) == 0 || p[0].Field != "" {
		return 0, nil, false
	}
	return p[0].Index, p[1:], true
}

// CutElem returns the index and the rest of the path when it starts with
// the list field name and an index, as policies[2].name does.
func (p Path) CutElem(name string) (int, Path, bool) {
	rest, ok := p.CutField(name)
	if !ok {
		return 0, nil, false
	}
	return rest.CutIndex()
}

// child returns the path extended by field names, never sharing p's
// backing array.
func (p Path) child(names ...string) Path {
	out := make(Path, len(p), len(p)+len(names))
	copy(out, p)
	for _, n := range names {
		out = append(out, Step{Field: n})
	}
	return out
}

// index returns the path extended by a list index.
func (p Path) index(i int) Path {
	out := make(Path, len(p), len(p)+1)
	copy(out, p)
	return append(out, Step{Index: i})
}

// join returns p extended by the steps of q.
func (p Path) join(q Path) Path {
	out := make(Path, 0, len(p)+len(q))
	return append(append(out, p...), q...)
}

func (l *ErrorList) add(p Path, format string, args ...any) {
	*l = append(*l, FieldError{Path: p, Message: fmt.Sprintf(format, args...)})
}
