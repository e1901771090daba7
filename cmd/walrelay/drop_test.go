package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/internal/testtime"
)

// TestDrop: drop lists what it will drop; without a terminal and without
// -yes it refuses (exit 2) and drops nothing; with -yes it drops the slot,
// publication and progress table; an active slot is refused.
func TestDrop(t *testing.T) {
	d := newDB(t, "create table orders (id int primary key)",
		"create table walrelay_backfills (id text primary key)", "create table idem (k text)")
	ctx, cancel := context.WithTimeout(t.Context(), testtime.Bound(60*time.Second))
	defer cancel()
	s := d.openOrders(ctx)
	args := []string{"drop", "-slot", "orders_cdc", "-publication", "orders_pub", "-idempotency-table", "idem"}

	r := run(t, d.url, append(args, "-yes")...)
	if r.code != exitFailure || !strings.Contains(r.stderr, "in use") || !strings.Contains(r.stderr, "stop") {
		t.Fatalf("drop of an active slot: %v", r)
	}
	s.Close()

	r = run(t, d.url, args...)
	if r.code != exitUsage || !strings.Contains(r.stderr, "-yes") || !strings.Contains(r.stderr, "not a terminal") ||
		!strings.Contains(r.stdout, "slot orders_cdc\n") || !strings.Contains(r.stdout, "publication orders_pub\n") ||
		!strings.Contains(r.stdout, "table walrelay_backfills\n") || !strings.Contains(r.stdout, "table idem\n") {
		t.Fatalf("drop without -yes and without a terminal: %v", r)
	}
	d.slotReleased("orders_cdc")
	if !d.pubExists("orders_pub") || d.count("select count(*) from pg_class where relname in ('walrelay_backfills', 'idem')") != 2 {
		t.Fatal("a refused drop dropped something")
	}

	r = run(t, d.url, append(args, "-yes")...)
	if r.code != exitOK || !strings.Contains(r.stdout, "dropped slot orders_cdc\n") || !strings.Contains(r.stdout, "dropped publication orders_pub\n") {
		t.Fatalf("drop -yes: %v", r)
	}
	if d.slotExists("orders_cdc") || d.pubExists("orders_pub") || d.count("select count(*) from pg_class where relname in ('walrelay_backfills', 'idem')") != 0 {
		t.Fatal("drop -yes left something")
	}
	if r = run(t, d.url, append(args, "-yes")...); r.code != exitOK || !strings.Contains(r.stdout, "nothing to drop") {
		t.Fatalf("drop of nothing: %v", r)
	}
}

// TestDropConfirm: on a terminal drop asks, and drops only after "yes";
// -keep-* keep what they name. Run in-process: a test has no terminal to
// give the binary.
func TestDropConfirm(t *testing.T) {
	d := newDB(t, "create table orders (id int primary key)", "create publication walrelay for table orders",
		"select pg_create_logical_replication_slot('walrelay', 'pgoutput')")
	drop := func(answer string, args ...string) (string, int) {
		var out, errOut strings.Builder
		e := &env{stdin: strings.NewReader(answer), stdout: &out, stderr: &errOut, terminal: true,
			getenv: func(k string) string {
				if k == "DATABASE_URL" {
					return d.url
				}
				return ""
			}}
		code := walrelay(t.Context(), e, append([]string{"drop"}, args...))
		return out.String() + errOut.String(), code
	}
	out, code := drop("no\n")
	if code != exitFailure || !strings.Contains(out, "Type yes") || !strings.Contains(out, "nothing dropped") || !d.slotExists("walrelay") {
		t.Fatalf("drop answered no: exit %d\n%s", code, out)
	}
	// Interrupted at the prompt (Ctrl-C cancels the command's context):
	// it stops without an answer.
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	defer pw.Close()
	var buf pgtest.Buffer
	e := &env{stdin: pr, stdout: &buf, stderr: &buf, terminal: true, getenv: func(string) string { return d.url }}
	exited := make(chan int, 1)
	go func() { exited <- walrelay(ctx, e, []string{"drop"}) }()
	waitFor(t, "the prompt", func() bool { return strings.Contains(buf.String(), "Type yes") })
	cancel()
	select {
	case code = <-exited:
	case <-time.After(testtime.Bound(30 * time.Second)):
		t.Fatal("drop did not stop when interrupted at the prompt")
	}
	if code != exitFailure || !strings.Contains(buf.String(), "interrupted: nothing dropped") || !d.slotExists("walrelay") {
		t.Fatalf("drop interrupted at the prompt: exit %d\n%s", code, buf.String())
	}
	out, code = drop("yes\n", "-keep-publication")
	if code != exitOK || !strings.Contains(out, "dropped slot walrelay") || strings.Contains(out, "publication") ||
		d.slotExists("walrelay") || !d.pubExists("walrelay") {
		t.Fatalf("drop answered yes, -keep-publication: exit %d\n%s", code, out)
	}
}
