package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// The walrelay binary the tests run, built once per test binary.
var binary struct {
	once sync.Once
	dir  string
	path string
	err  error
	out  []byte
}

// buildBinary builds the walrelay command once (go build, into a temporary
// directory that removeBinary deletes) and returns its path.
func buildBinary(t testing.TB) string {
	t.Helper()
	binary.once.Do(func() {
		binary.dir, binary.err = os.MkdirTemp("", "walrelay-cmd-test-")
		if binary.err != nil {
			return
		}
		binary.path = filepath.Join(binary.dir, "walrelay")
		cmd := exec.Command("go", "build", "-o", binary.path, ".")
		binary.out, binary.err = cmd.CombinedOutput()
	})
	if binary.err != nil {
		t.Fatalf("go build: %v\n%s", binary.err, binary.out)
	}
	return binary.path
}

// removeBinary deletes what buildBinary built; TestMain calls it after the
// tests.
func removeBinary() {
	if binary.dir != "" {
		os.RemoveAll(binary.dir)
	}
}
