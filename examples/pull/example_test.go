package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/walrelay/walrelay/internal/testtime"
)

func TestRun(t *testing.T) {
	t.Setenv("PULL_PASSWORD", "demo-password")
	ctx, cancel := context.WithTimeout(t.Context(), testtime.Bound(60*time.Second))
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, nil, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	t.Log(out.String())
	got := out.String()
	if n := strings.Count(got, "$ curl -u reader:demo-password"); n != 4 {
		t.Errorf("printed %d curl commands, want 4", n)
	}
	for _, want := range []string{`"offset":0`, `"offset":3`, `"offset":4`, `"key":"5"`, `"idempotency-key":`, `\"status\":\"placed\"`} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %s", want)
		}
	}
}
