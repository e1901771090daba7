package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/internal/testtime"
)

// childEnv makes the test binary run the replicator instead of the tests,
// so that the kill test can run it as a separate process.
const childEnv = "WALRELAY_EXACTLY_ONCE_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		err := run(ctx, os.Stdout)
		stop()
		if err != nil && ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "replicator:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	waitLimit = testtime.Bound(waitLimit)
	os.Exit(pgtest.Main(m))
}

// child is one run of the replicator process.
type child struct {
	cmd    *exec.Cmd
	out    pgtest.Buffer
	stderr pgtest.Buffer
	done   chan error // receives Wait's result, then is closed
}

func startChild(t *testing.T, env []string) *child {
	t.Helper()
	c := &child{done: make(chan error, 1)}
	c.cmd = exec.Command(os.Args[0], "-test.run=^$")
	c.cmd.Env = append(append(os.Environ(), childEnv+"=1"), env...)
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() { c.cmd.Process.Kill(); <-c.done })
	return c
}

// kill ends the child with SIGKILL, as a crash would.
func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill replicator: %v", err)
	}
	if err := <-c.done; err == nil {
		t.Fatalf("replicator exited by itself before the kill; stderr:\n%s", c.stderr.String())
	}
}

func (c *child) duplicates() int { return strings.Count(c.out.String(), "duplicate ") }

// TestExactlyOnceAcrossKills runs the replicator as a separate process,
// kills it with SIGKILL at random moments while a workload of inserts,
// updates, primary-key changes and deletes runs on the source, restarts it
// each time, and checks that the target ends equal to the source with each
// change applied exactly once: one claimed key per committed change, and
// as many row writes on the target as the changes call for.
func TestExactlyOnceAcrossKills(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a replicator process repeatedly")
	}
	const kills = 8
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	ctx := t.Context()

	sourceURL, targetURL := pgtest.NewDatabase(t), pgtest.NewDatabase(t)
	pgtest.Exec(t, sourceURL, itemsTable, sourceIdentity)
	pgtest.Exec(t, targetURL, itemsTable,
		// Every row the replicator writes leaves one line in items_log, in
		// the same transaction: the count shows each change applied once.
		"create table items_log (n bigserial primary key)",
		`create function log_item() returns trigger language plpgsql as
			$$ begin insert into items_log default values; return null; end $$`,
		"create trigger log_item after insert or update or delete on public.items for each row execute function log_item()")
	env := []string{
		"SOURCE_URL=" + sourceURL,
		"TARGET_URL=" + targetURL,
		"SLOT=" + pgtest.Name(t, "slot"),
		"PUBLICATION=" + pgtest.Name(t, "pub"),
	}

	c := startChild(t, env)
	failed := make(chan error) // never reports: a killed child is expected
	if err := waitForSlot(ctx, sourceURL, strings.TrimPrefix(env[2], "SLOT="), c.done); err != nil {
		t.Fatalf("slot: %v; stderr:\n%s", err, c.stderr.String())
	}

	w, err := newWorkload(ctx, sourceURL, rand.New(rand.NewPCG(seed, 2)))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	stop := make(chan struct{})
	workDone := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				workDone <- nil
				return
			default:
			}
			if err := w.Step(ctx); err != nil {
				workDone <- err
				return
			}
		}
	}()

	duplicates := 0
	for i := range kills {
		select {
		case <-time.After(time.Duration(100+rng.IntN(700)) * time.Millisecond):
		case err := <-c.done:
			t.Fatalf("replicator %d exited: %v; stderr:\n%s", i, err, c.stderr.String())
		}
		c.kill(t)
		duplicates += c.duplicates()
		c = startChild(t, env)
	}
	close(stop)
	if err := <-workDone; err != nil {
		t.Fatal(err)
	}

	rows, err := waitEqual(ctx, sourceURL, targetURL, "public.items", testtime.Bound(2*time.Minute), failed)
	if err != nil {
		t.Fatalf("target never matched source: %v; replicator stderr:\n%s", err, c.stderr.String())
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-c.done; err != nil {
		t.Fatalf("replicator after SIGTERM: %v; stderr:\n%s", err, c.stderr.String())
	}
	duplicates += c.duplicates()

	// Every committed change claimed exactly one key: none lost, none
	// applied twice.
	var claimed int64
	if err := queryRow(ctx, targetURL, "select count(*) from walrelay_idempotency", &claimed); err != nil {
		t.Fatal(err)
	}
	if claimed != w.Changes {
		t.Fatalf("%d keys claimed for %d committed changes", claimed, w.Changes)
	}
	// The replicator writes one row per change, two (a delete and an
	// insert) for a primary-key change.
	var applied int64
	if err := queryRow(ctx, targetURL, "select count(*) from items_log", &applied); err != nil {
		t.Fatal(err)
	}
	if want := w.Changes + w.Moves; applied != want {
		t.Fatalf("%d row writes on the target for %d changes (%d of them key changes), want %d", applied, w.Changes, w.Moves, want)
	}
	t.Logf("kills %d, transactions %d, changes %d, rows %d, duplicates skipped %d",
		kills, w.Transactions, w.Changes, rows, duplicates)
}

func queryRow(ctx context.Context, url, q string, dest ...any) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.QueryRow(ctx, q).Scan(dest...)
}

// TestDemo runs the self-contained demonstration end to end.
func TestDemo(t *testing.T) {
	if pgtest.Shared() == nil {
		pgtest.URL(t) // skips, or fails when Postgres is required
		t.Skip("external server: the demonstration starts its own")
	}
	t.Setenv("SOURCE_URL", "")
	t.Setenv("TARGET_URL", "")
	t.Setenv("DATABASE_URL", "")
	var out bytes.Buffer
	if err := run(t.Context(), &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "target equals source") {
		t.Fatalf("demonstration output lacks its result:\n%s", out.String())
	}
}
