package authz

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/authgate/authgate/policies"
	"github.com/authgate/authgate/proxy/config"
)

// CompileError reports why a policy's Rego did not compile, with a location
// per problem. It is what the controller shows in an AuthPolicy's status.
type CompileError struct {
	// Policy is the policy's name.
	Policy string
	// Details lists each problem, in the order OPA reported them.
	Details []CompileDetail
}

// CompileDetail is one compile problem.
type CompileDetail struct {
	// Module is the module's name ("authz.rego"); library modules start
	// with policies.LibraryPrefix. Empty when OPA gave no location.
	Module string
	// Row and Col are 1-based; 0 when unknown.
	Row, Col int
	// Code is OPA's error class, e.g. "rego_parse_error",
	// "rego_type_error", "rego_unsafe_var_error".
	Code string
	// Message describes the problem.
	Message string
}

// Error renders one detail per line: "module.rego:3:5: rego_parse_error: ...".
func (e *CompileError) Error() string {
	var b strings.Builder
	for i, d := range e.Details {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(d.String())
	}
	if len(e.Details) == 0 {
		b.WriteString("rego compile error")
	}
	return b.String()
}

// String renders "module.rego:3:5: code: message", leaving out unknown parts.
func (d CompileDetail) String() string {
	var b strings.Builder
	if d.Module != "" {
		b.WriteString(d.Module)
		if d.Row > 0 {
			b.WriteString(":" + strconv.Itoa(d.Row))
			if d.Col > 0 {
				b.WriteString(":" + strconv.Itoa(d.Col))
			}
		}
		b.WriteString(": ")
	}
	if d.Code != "" {
		b.WriteString(d.Code + ": ")
	}
	b.WriteString(d.Message)
	return b.String()
}

// reservedPackage is the library's namespace; policies cannot declare it.
var reservedPackage = ast.MustParseRef("data.authgate.lib")

// unsafeBuiltins are refused at compile time: everything OPA marks
// non-deterministic (network, clock, randomness, remote schemas), plus
// trace. print() calls are erased instead (EnablePrintStatements(false)).
func unsafeBuiltins() map[string]struct{} {
	out := map[string]struct{}{
		ast.HTTPSend.Name:        {},
		ast.NetLookupIPAddr.Name: {},
		ast.OPARuntime.Name:      {},
		ast.Trace.Name:           {},
		ast.NowNanos.Name:        {},
	}
	for _, b := range ast.Builtins {
		if b.Nondeterministic {
			out[b.Name] = struct{}{}
		}
	}
	return out
}

// Compile parses and prepares a policy's Rego once: the policy's modules plus
// the embedded library (package data.authgate.lib...), Rego v1 syntax,
// strict built-in errors, and no network or non-deterministic built-ins.
// Problems in the modules or query are returned as a *CompileError.
func Compile(ctx context.Context, policyName string, r *config.Rego) (*Engine, error) {
	if r == nil {
		return nil, errors.New("no rego configured")
	}
	query := r.Query
	if query == "" {
		query = config.DefaultRegoQuery
	}
	timeout := r.Timeout.Duration
	if timeout <= 0 {
		return nil, fmt.Errorf("rego timeout must be positive, got %s", timeout)
	}
	parsed, cerr := parseModules(policyName, r.Modules)
	if cerr != nil {
		return nil, cerr
	}
	var compiler *ast.Compiler
	opts := []func(*rego.Rego){
		rego.CompilerHook(func(c *ast.Compiler) { compiler = c }),
		rego.Query(query),
		rego.SetRegoVersion(ast.RegoV1),
		rego.StrictBuiltinErrors(true),
		rego.UnsafeBuiltins(unsafeBuiltins()),
		rego.EnablePrintStatements(false),
	}
	for _, m := range parsed {
		opts = append(opts, rego.ParsedModule(m))
	}
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		var astErrs ast.Errors
		if errors.As(err, &astErrs) {
			return nil, compileError(policyName, astErrs)
		}
		return nil, fmt.Errorf("prepare rego: %w", err)
	}
	e := &Engine{policy: policyName, query: query, timeout: timeout, pq: pq}
	body, err := ast.ParseBodyWithOpts(query, ast.ParserOptions{RegoVersion: ast.RegoV1})
	switch {
	case err != nil:
		e.uncacheable = "the query could not be analysed: " + err.Error()
	case compiler == nil:
		e.uncacheable = "the compiled modules could not be analysed"
	default:
		e.cacheable, e.uncacheable = decisionCacheable(compiler, body)
	}
	return e, nil
}

// parseModules parses the library and the policy's modules, collecting every
// parse error, duplicate name and use of the reserved library namespace.
func parseModules(policyName string, user []config.RegoModule) ([]*ast.Module, *CompileError) {
	lib := policies.Library()
	cerr := &CompileError{Policy: policyName}
	seen := make(map[string]bool, len(lib)+len(user))
	out := make([]*ast.Module, 0, len(lib)+len(user))
	opts := ast.ParserOptions{RegoVersion: ast.RegoV1}
	for i, m := range append(lib, user...) {
		isLib := i < len(lib)
		if seen[m.Name] {
			cerr.Details = append(cerr.Details, CompileDetail{Module: m.Name, Code: "authgate_module_error",
				Message: "module name used twice (library modules are named " + policies.LibraryPrefix + "...)"})
			continue
		}
		seen[m.Name] = true
		mod, err := ast.ParseModuleWithOpts(m.Name, m.Source, opts)
		if err != nil {
			var astErrs ast.Errors
			var astErr *ast.Error
			switch {
			case errors.As(err, &astErrs):
				cerr.Details = append(cerr.Details, details(astErrs)...)
			case errors.As(err, &astErr):
				cerr.Details = append(cerr.Details, details(ast.Errors{astErr})...)
			default:
				cerr.Details = append(cerr.Details, CompileDetail{Module: m.Name, Code: ast.ParseErr, Message: err.Error()})
			}
			continue
		}
		if mod == nil {
			cerr.Details = append(cerr.Details, CompileDetail{Module: m.Name, Code: ast.ParseErr, Message: "empty module"})
			continue
		}
		if !isLib {
			if d, bad := reservedUse(m.Name, mod); bad {
				cerr.Details = append(cerr.Details, d)
				continue
			}
		}
		out = append(out, mod)
	}
	if len(cerr.Details) > 0 {
		return nil, cerr
	}
	return out, nil
}

// reservedUse reports a module that declares the library's package or a rule
// inside it (Rego v1 rule heads such as lib.scopes.has in package authgate).
func reservedUse(name string, mod *ast.Module) (CompileDetail, bool) {
	d := CompileDetail{Module: name, Code: "authgate_reserved_package"}
	switch {
	case mod.Package.Path.HasPrefix(reservedPackage):
		d.Message = "package " + mod.Package.Path.String() + " is reserved for authgate's library"
		if loc := mod.Package.Location; loc != nil {
			d.Row, d.Col = loc.Row, loc.Col
		}
		return d, true
	case reservedPackage.HasPrefix(mod.Package.Path):
		for _, r := range mod.Rules {
			if r.Ref().GroundPrefix().HasPrefix(reservedPackage) {
				d.Message = "rule " + r.Ref().GroundPrefix().String() + " is inside data.authgate.lib, which is reserved for authgate's library"
				if r.Location != nil {
					d.Row, d.Col = r.Location.Row, r.Location.Col
				}
				return d, true
			}
		}
	}
	return d, false
}

func compileError(policyName string, errs ast.Errors) *CompileError {
	return &CompileError{Policy: policyName, Details: details(errs)}
}

func details(errs ast.Errors) []CompileDetail {
	out := make([]CompileDetail, 0, len(errs))
	for _, e := range errs {
		d := CompileDetail{Code: e.Code, Message: e.Message}
		if e.Location != nil {
			d.Module, d.Row, d.Col = e.Location.File, e.Location.Row, e.Location.Col
		}
		out = append(out, d)
	}
	return out
}
