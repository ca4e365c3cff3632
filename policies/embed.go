// Package policies embeds authgate's Rego library and example policies.
//
// The library (packages under data.authgate.lib) is loaded next to every
// policy's own modules by proxy/authz, so a policy can write
//
//	import data.authgate.lib.scopes
//
// The examples are complete policies answering the default query
// data.authgate.authz.decision; each has Rego unit tests next to it.
package policies

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/authgate/authgate/proxy/config"
)

//go:embed lib
var libFS embed.FS

//go:embed examples
var examplesFS embed.FS

// LibraryPrefix is the file-name prefix of every library module, so errors
// that point into the library are recognisable.
const LibraryPrefix = "authgate-lib/"

// Library returns the library modules (tests excluded), sorted by name. Each
// call returns fresh slices, so callers may keep or modify them.
func Library() []config.RegoModule {
	mods, err := collect(libFS, "lib", false)
	if err != nil {
		// The files are compiled into the binary; a failure here is a
		// build defect, not a runtime condition.
		panic(fmt.Sprintf("policies: read embedded library: %v", err))
	}
	for i := range mods {
		mods[i].Name = LibraryPrefix + strings.TrimPrefix(mods[i].Name, "lib/authgate/lib/")
	}
	return mods
}

// LibraryTests returns the library's _test.rego modules, sorted by name.
func LibraryTests() []config.RegoModule {
	mods, err := collect(libFS, "lib", true)
	if err != nil {
		panic(fmt.Sprintf("policies: read embedded library tests: %v", err))
	}
	return mods
}

// Examples returns the example policies and their tests, rooted at the
// examples directory (e.g. "department_abac.rego").
func Examples() fs.FS {
	sub, err := fs.Sub(examplesFS, "examples")
	if err != nil {
		panic(fmt.Sprintf("policies: examples: %v", err))
	}
	return sub
}

// collect reads every .rego file under dir; tests selects the _test.rego
// files instead of the others.
func collect(fsys fs.FS, dir string, tests bool) ([]config.RegoModule, error) {
	var out []config.RegoModule
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || path.Ext(p) != ".rego" || strings.HasSuffix(p, "_test.rego") != tests {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		out = append(out, config.RegoModule{Name: p, Source: string(b)})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}
