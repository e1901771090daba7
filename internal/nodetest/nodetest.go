// Package nodetest runs the official Node.js client packages that walrelay's
// interop tests use as counterparts (standardwebhooks, @upstash/kafka).
//
// The packages are pinned in js/package.json and js/package-lock.json and
// installed into js/node_modules by .ci/deps (or by hand: npm ci --prefix
// internal/nodetest/js). Scripts are CommonJS and find the packages through
// NODE_PATH, wherever they live. Without node or the installed packages the
// tests are skipped loudly, unless WALRELAY_REQUIRE_INTEROP=1 (set by CI),
// which makes that a failure.
package nodetest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// modulesDir is js/node_modules beside this file.
func modulesDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "js", "node_modules")
}

// Command returns a command running `node script args...` with the pinned
// packages on NODE_PATH. It skips the test (or fails it, under
// WALRELAY_REQUIRE_INTEROP=1) when node or the packages are missing.
func Command(ctx context.Context, t testing.TB, script string, args ...string) *exec.Cmd {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		unavailable(t, "node is not installed")
	}
	mods := modulesDir()
	if _, err := os.Stat(filepath.Join(mods, ".package-lock.json")); err != nil {
		unavailable(t, "the interop packages are not installed (run: npm ci --prefix internal/nodetest/js)")
	}
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+mods)
	return cmd
}

func unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("WALRELAY_REQUIRE_INTEROP") == "1" {
		t.Fatalf("nodetest: %s (WALRELAY_REQUIRE_INTEROP=1)", why)
	}
	t.Skipf("nodetest: SKIPPED: %s", why)
}
