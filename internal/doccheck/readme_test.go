// Package doccheck checks the code people copy: the program README.md shows
// under "Usage" compiles against the module as it is, the examples use
// only public packages, and the default retry policies are what their docs
// say.
package doccheck

import (
	"encoding/json"
	"go/format"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// usageSnippet returns the first ```go block after the "## Usage" heading.
func usageSnippet(readme string) (string, bool) {
	_, after, ok := strings.Cut(readme, "\n## Usage\n")
	if !ok {
		return "", false
	}
	_, after, ok = strings.Cut(after, "\n```go\n")
	if !ok {
		return "", false
	}
	code, _, ok := strings.Cut(after, "\n```\n")
	return code + "\n", ok
}

// TestUsageSnippetCompiles builds README's usage program as a package of
// this module: an overlay places it in a directory that does not exist, so
// the source tree is left as it is.
func TestUsageSnippetCompiles(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	code, ok := usageSnippet(string(readme))
	if !ok {
		t.Fatal("README.md has no ```go block under ## Usage")
	}
	if !strings.HasPrefix(code, "package main\n") {
		t.Fatalf("README's usage snippet is not a whole program (package main):\n%s", code)
	}
	if formatted, err := format.Source([]byte(code)); err != nil || string(formatted) != code {
		t.Errorf("README's usage snippet is not gofmt-formatted (%v)", err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	overlay, err := json.Marshal(map[string]map[string]string{
		"Replace": {filepath.Join(root, "internal", "doccheck", "usage", "main.go"): src},
	})
	if err != nil {
		t.Fatal(err)
	}
	ov := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(ov, overlay, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), "go", "build", "-overlay", ov, "-o", os.DevNull, "./internal/doccheck/usage")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("README's usage snippet does not compile: %v\n%s\n%s", err, out, code)
	}
}
