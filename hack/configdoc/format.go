package main

import (
	"go/format"
	"go/token"
	"io"
)

func formatNode(w io.Writer, fset *token.FileSet, node any) error {
	return format.Node(w, fset, node)
}
