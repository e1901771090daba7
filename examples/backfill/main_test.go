package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/internal/testtime"
)

func TestMain(m *testing.M) {
	runTimeout, catchUpWait = testtime.Bound(runTimeout), testtime.Bound(catchUpWait)
	os.Exit(pgtest.Main(m))
}

func TestBackfillExample(t *testing.T) {
	t.Setenv("DATABASE_URL", pgtest.NewDatabase(t))
	var out bytes.Buffer
	if err := run(t.Context(), &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "replayed copy matches the table") {
		t.Fatalf("output:\n%s", out.String())
	}
}
