package logkey

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// keys are the constants of this package, by name and by value.
func keys(t *testing.T) (byName, byValue map[string]string) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "logkey.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	byName, byValue = map[string]string{}, map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, sp := range g.Specs {
			vs := sp.(*ast.ValueSpec)
			for i, n := range vs.Names {
				v, _ := strconv.Unquote(vs.Values[i].(*ast.BasicLit).Value)
				if other, dup := byValue[v]; dup {
					t.Errorf("%s and %s are both %q", n.Name, other, v)
				}
				byName[n.Name], byValue[v] = v, n.Name
			}
		}
	}
	return byName, byValue
}

var logMethods = map[string]int{ // method: index of the message argument
	"Debug": 0, "Info": 0, "Warn": 0, "Error": 0,
	"DebugContext": 1, "InfoContext": 1, "WarnContext": 1, "ErrorContext": 1,
	"Log": 2, "LogAttrs": 2,
}

// TestLibraryLogsUseTheKeys parses the library's packages (not tests,
// examples or commands) and checks that every key of every log call on a
// logger is one of this package's keys, written as a constant or as its
// value: one set of keys across packages.
func TestLibraryLogsUseTheKeys(t *testing.T) {
	byName, byValue := keys(t)
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	var calls int
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel == "examples" || rel == "cmd" || rel != "." && strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			msgAt, ok := logMethods[sel.Sel.Name]
			if !ok || !isLogger(sel.X) || len(call.Args) <= msgAt {
				return true
			}
			calls++
			args := call.Args[msgAt+1:]
			for i := 0; i < len(args); i++ {
				key := args[i]
				if c, ok := args[i].(*ast.CallExpr); ok { // slog.String(key, v), …
					if len(c.Args) == 0 {
						continue
					}
					key = c.Args[0]
				} else {
					i++ // key, value
				}
				name, ok := keyOf(key, byName)
				if !ok {
					t.Errorf("%s: log key %s is not written as a logkey constant or a string", fset.Position(key.Pos()), types(key))
					continue
				}
				if _, known := byValue[name]; !known {
					t.Errorf("%s: log key %q is not one of internal/logkey's keys", fset.Position(key.Pos()), name)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls < 20 {
		t.Fatalf("found only %d log calls: the scan is broken", calls)
	}
}

// isLogger reports whether x looks like a *slog.Logger: a name or field
// called log, logger or Logger.
func isLogger(x ast.Expr) bool {
	var name string
	switch x := x.(type) {
	case *ast.Ident:
		name = x.Name
	case *ast.SelectorExpr:
		name = x.Sel.Name
	}
	return slices.Contains([]string{"log", "logger", "Logger"}, name)
}

func keyOf(e ast.Expr, byName map[string]string) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(e.Value)
		return s, err == nil
	case *ast.SelectorExpr:
		if id, ok := e.X.(*ast.Ident); ok && id.Name == "logkey" {
			v, ok := byName[e.Sel.Name]
			return v, ok
		}
	}
	return "", false
}

func types(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return types(e.X) + "." + e.Sel.Name
	}
	return "expression"
}
