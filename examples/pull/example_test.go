package main

import (
	"bytes"
	"context"
	"os/exec"
	"regexp"
	"strings"
	"sync"
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
	if n := strings.Count(got, "$ curl -sS -u reader:demo-password"); n != 7 {
		t.Errorf("printed %d curl commands, want 7", n)
	}
	for _, want := range []string{
		`{"sequin.public.orders":1}`,
		`"offset":0`, `"offset":3`, `"offset":4`, `"key":"5"`, `{"key":"idempotency-key","value":`, `\"status\":\"placed\"`,
		`"timestamp":17`, // epoch milliseconds
		`{"result":"Success","status":200}`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %s", want)
		}
	}
	// The consume call returned records from offset 0 (how many depends
	// on how fast the group formed); the commit covered them.
	if !regexp.MustCompile(`\[\{"topic":"sequin.public.orders","partition":0,"offset":[1-5]\}\]`).MatchString(got) {
		t.Error("output lacks the committed offset")
	}
}

// syncBuffer is a bytes.Buffer safe for the demo to write while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The curl commands the demo prints work against the running server.
func TestPrintedCurlCommandsWork(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("SKIPPED: curl is not installed")
	}
	t.Setenv("PULL_PASSWORD", "demo-password")
	ctx, cancel := context.WithCancel(t.Context())
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-serve"}, &out) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), "serving until interrupted") {
		if time.Now().After(deadline) {
			t.Fatalf("the demo did not start serving:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmds := regexp.MustCompile(`(?m)^\$ (curl .*)$`).FindAllStringSubmatch(out.String(), -1)
	if len(cmds) != 7 {
		t.Fatalf("found %d curl commands in:\n%s", len(cmds), out.String())
	}
	for _, m := range cmds {
		cmd := strings.Replace(m[1], "curl ", `curl -w '\n%{http_code}' `, 1)
		b, err := exec.CommandContext(t.Context(), "sh", "-c", cmd).CombinedOutput()
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if err != nil || lines[len(lines)-1] != "200" {
			t.Errorf("%s: %v\n%s", m[1], err, b)
		}
	}
}
