package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/walrelay/walrelay/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

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
