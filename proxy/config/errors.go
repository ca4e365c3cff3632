package config

import (
	"fmt"
	"strings"
)

// FieldError is one invalid field, with its exact path such as
// "policies[0].routes[2].paths[1]".
type FieldError struct {
	Path    string
	Message string
}

func (e FieldError) Error() string { return e.Path + ": " + e.Message }

// ErrorList is every validation error found.
type ErrorList []FieldError

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return fmt.Sprintf("%d invalid field(s): %s", len(l), strings.Join(msgs, "; "))
}

type path string

func (p path) child(name string) path {
	if p == "" {
		return path(name)
	}
	return path(string(p) + "." + name)
}

func (p path) index(i int) path { return path(fmt.Sprintf("%s[%d]", p, i)) }

func (l *ErrorList) add(p path, format string, args ...any) {
	*l = append(*l, FieldError{Path: string(p), Message: fmt.Sprintf(format, args...)})
}
