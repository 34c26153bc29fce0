package probe

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestEveryReasonIsListed finds every Reason and MCPReason constant in the
// package's source and requires it to be declared in reason.go, listed in
// one of its documentation lists (which the README's table is generated
// from) and given a remedy, so a reason cannot be added where check and the
// README would print it without one.
func TestEveryReasonIsListed(t *testing.T) {
	listed := map[string]string{} // value -> remedy; a value may be in two kinds (TIMEOUT, HTTP_ERROR)
	for _, r := range slices.Concat(EndpointReasons, FileReasons, PostureReasons) {
		listed[string(r)+"/Reason"] = r.Remedy()
	}
	for _, r := range MCPReasons {
		listed[string(r)+"/MCPReason"] = r.Remedy()
	}
	found := 0
	for file, c := range reasonConstants(t) {
		found++
		switch {
		case file != "reason.go":
			t.Errorf("%s is declared in %s; declare it in reason.go with a remedy", c.name, file)
		case c.value == "":
			// ReasonNone and MCPReasonNone: no failure, no remedy.
		default:
			remedy, ok := listed[c.value+"/"+c.typ]
			if !ok {
				t.Errorf("%s (%s) is in none of the reason lists, so the README does not document it", c.name, c.value)
			} else if remedy == "" {
				t.Errorf("%s (%s) has no remedy", c.name, c.value)
			}
		}
	}
	if found < len(listed) {
		t.Fatalf("found %d reason constants, fewer than the %d listed: the source scan is broken", found, len(listed))
	}
	for _, list := range [][]Reason{EndpointReasons, FileReasons, PostureReasons} {
		if len(slices.Compact(slices.Clone(list))) != len(list) {
			t.Errorf("a reason list repeats a reason: %v", list)
		}
	}
}

type reasonConst struct{ name, typ, value string }

// reasonConstants yields the package's typed reason constants by file.
func reasonConstants(t *testing.T) func(yield func(string, reasonConst) bool) {
	paths, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	return func(yield func(string, reasonConst) bool) {
		for _, path := range paths {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, src, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, decl := range f.Decls {
				for _, c := range typedConsts(decl) {
					if !yield(path, c) {
						return
					}
				}
			}
		}
	}
}

func typedConsts(decl ast.Decl) []reasonConst {
	g, ok := decl.(*ast.GenDecl)
	if !ok || g.Tok != token.CONST {
		return nil
	}
	var out []reasonConst
	for _, spec := range g.Specs {
		vs := spec.(*ast.ValueSpec)
		for i, name := range vs.Names {
			if i >= len(vs.Values) {
				break
			}
			value := vs.Values[i]
			typ, _ := vs.Type.(*ast.Ident)
			if call, ok := value.(*ast.CallExpr); ok && typ == nil && len(call.Args) == 1 {
				typ, _ = call.Fun.(*ast.Ident) // const x = Reason("…")
				value = call.Args[0]
			}
			if typ == nil || (typ.Name != "Reason" && typ.Name != "MCPReason") {
				continue
			}
			lit, ok := value.(*ast.BasicLit)
			if !ok {
				out = append(out, reasonConst{name.Name, typ.Name, "?" + name.Name})
				continue
			}
			out = append(out, reasonConst{name.Name, typ.Name, strings.Trim(lit.Value, "\"`")})
		}
	}
	return out
}
