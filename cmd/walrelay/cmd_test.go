package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/walrelay/walrelay/cdc"
	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/internal/testtime"
)

// cmdBinary is the walrelay binary the tests run, built once (go build,
// into a temporary directory that removeCmdBinary deletes).
var cmdBinary struct {
	once sync.Once
	dir  string
	path string
	err  error
	out  []byte
}

// walrelayBin builds the binary once and returns its path.
func walrelayBin(t testing.TB) string {
	t.Helper()
	cmdBinary.once.Do(func() {
		cmdBinary.dir, cmdBinary.err = os.MkdirTemp("", "walrelay-cmd-test-")
		if cmdBinary.err != nil {
			return
		}
		cmdBinary.path = filepath.Join(cmdBinary.dir, "walrelay")
		cmdBinary.out, cmdBinary.err = exec.Command("go", "build", "-o", cmdBinary.path, ".").CombinedOutput()
	})
	if cmdBinary.err != nil {
		t.Fatalf("go build: %v\n%s", cmdBinary.err, cmdBinary.out)
	}
	return cmdBinary.path
}

// removeCmdBinary deletes what walrelayBin built; TestMain calls it after
// the tests.
func removeCmdBinary() {
	if cmdBinary.dir != "" {
		os.RemoveAll(cmdBinary.dir)
	}
}

// result is what a run of the binary printed and its exit status.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// walrelayCmd is the binary with args, DATABASE_URL set to url (unset
// when url is ""), and stdin /dev/null.
func walrelayCmd(ctx context.Context, t testing.TB, url string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, walrelayBin(t), args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DATABASE_URL=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if url != "" {
		cmd.Env = append(cmd.Env, "DATABASE_URL="+url)
	}
	return cmd
}

// run runs the binary to its end.
func run(t *testing.T, url string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testtime.Bound(60*time.Second))
	defer cancel()
	cmd := walrelayCmd(ctx, t, url, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("walrelay %q: %v", args, err)
	}
	return r
}

// running is a walrelay process in the background whose stdout is read
// line by line.
type running struct {
	t      *testing.T
	cmd    *exec.Cmd
	lines  chan string
	stderr *bytes.Buffer
	done   chan struct{}
}

func start(t *testing.T, url string, args ...string) *running {
	t.Helper()
	cmd := walrelayCmd(context.Background(), t, url, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	r := &running{t: t, cmd: cmd, lines: make(chan string, 1000), stderr: new(bytes.Buffer), done: make(chan struct{})}
	cmd.Stderr = r.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(r.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			r.lines <- sc.Text()
		}
		io.Copy(io.Discard, stdout)
	}()
	t.Cleanup(func() {
		if r.cmd.ProcessState == nil {
			r.cmd.Process.Kill()
			r.cmd.Wait()
		}
	})
	return r
}

// line returns the next line of stdout.
func (r *running) line() string {
	r.t.Helper()
	select {
	case l, ok := <-r.lines:
		if !ok {
			r.t.Fatalf("walrelay ended before printing a line; stderr:\n%s", r.stderr)
		}
		return l
	case <-time.After(testtime.Bound(60 * time.Second)):
		r.t.Fatalf("no line from walrelay; stderr:\n%s", r.stderr)
	}
	return ""
}

// wait waits for the process to end and returns its exit status.
func (r *running) wait() int {
	r.t.Helper()
	for range r.lines { // stdout to its end
	}
	waited := make(chan error, 1)
	go func() { waited <- r.cmd.Wait() }()
	select {
	case err := <-waited:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			r.t.Fatal(err)
		}
		return 0
	case <-time.After(testtime.Bound(60 * time.Second)):
		r.t.Fatalf("walrelay did not end; stderr:\n%s", r.stderr)
	}
	return -1
}

func (r *running) signal(sig os.Signal) {
	r.t.Helper()
	if err := r.cmd.Process.Signal(sig); err != nil {
		r.t.Fatal(err)
	}
}

// proc is one walrelay process.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr pgtest.Buffer
	done           chan struct{}
	code           int
}

func startWalrelay(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(walrelayBin(t), args...), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		err := p.cmd.Wait()
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			p.code = ee.ExitCode() // -1 when killed by a signal
		default:
			p.code = -2
		}
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("walrelay %s stderr:\n%s", strings.Join(args, " "), p.stderr.String())
		}
	})
	return p
}

// wait waits for the process to exit and returns its exit status.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(testtime.Bound(60 * time.Second)):
		t.Fatalf("walrelay did not exit; stderr:\n%s", p.stderr.String())
		return 0
	}
}

// term stops the process with SIGTERM and fails the test unless it exits
// 0.
func (p *proc) term(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit status after SIGTERM = %d, want 0; stderr:\n%s", code, p.stderr.String())
	}
}

// logged waits until the process logged a line matching re and returns
// the first submatch.
func (p *proc) logged(t *testing.T, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	var got string
	waitFor(t, "walrelay to log "+re, func() bool {
		select {
		case <-p.done:
			t.Fatalf("walrelay exited with %d; stderr:\n%s", p.code, p.stderr.String())
		default:
		}
		m := rx.FindStringSubmatch(p.stderr.String())
		if m == nil {
			return false
		}
		got = m[len(m)-1]
		return true
	})
	return got
}

// writeConfig writes a config file of that name and returns its path.
func writeConfig(t *testing.T, name, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// db is a fresh database for one test, and a connection to it.
type db struct {
	t    *testing.T
	url  string
	conn *pgx.Conn
}

func newDB(t *testing.T, setup ...string) *db {
	t.Helper()
	url := pgtest.NewDatabase(t)
	pgtest.Exec(t, url, setup...)
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return &db{t: t, url: url, conn: conn}
}

func (d *db) exec(sql ...string) {
	d.t.Helper()
	pgtest.Exec(d.t, d.url, sql...)
}

// count runs a count query.
func (d *db) count(sql string, args ...any) int {
	d.t.Helper()
	var n int
	if err := d.conn.QueryRow(d.t.Context(), sql, args...).Scan(&n); err != nil {
		d.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// waitFor polls cond until it holds, failing after a generous bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testtime.WaitFor(t, 2*time.Minute, what, cond)
}

// TestUsage: every command explains itself with an example and its exit
// statuses; without a database URL each says how to give one and exits 2;
// an unknown command or flag exits 2.
func TestUsage(t *testing.T) {
	for _, c := range []string{"check", "status", "tail", "drop"} {
		r := run(t, "", c, "-h")
		if r.code != exitOK || !strings.Contains(r.stderr, "Example:\n  ") || !strings.Contains(r.stderr, "Exit status") || !strings.Contains(r.stderr, "walrelay "+c) {
			t.Errorf("%s -h: %v", c, r)
		}
		r = run(t, "", c)
		if r.code != exitUsage || !strings.Contains(r.stderr, "DATABASE_URL") || !strings.Contains(r.stderr, "-database") {
			t.Errorf("%s without a database: %v", c, r)
		}
		if r = run(t, "", c, "-nosuchflag"); r.code != exitUsage {
			t.Errorf("%s -nosuchflag: %v", c, r)
		}
	}
	if r := run(t, "", "frobnicate"); r.code != exitUsage || !strings.Contains(r.stderr, "unknown command") {
		t.Errorf("unknown command: %v", r)
	}
}

// TestConnectionRefused: a server that is not there is exit 1 with what
// to check, and no stack trace.
func TestConnectionRefused(t *testing.T) {
	// A port nothing listens on.
	url := "postgres://walrelay@127.0.0.1:1/nowhere?connect_timeout=5"
	for _, c := range []string{"check", "status", "tail", "drop"} {
		r := run(t, url, c)
		if r.code != exitFailure || !strings.Contains(r.stderr, "check the database URL") || strings.Contains(r.stderr, "goroutine") {
			t.Errorf("%s: %v", c, r)
		}
	}
}

// slotExists reports whether the slot is there.
func (d *db) slotExists(name string) bool {
	return d.count("select count(*) from pg_replication_slots where slot_name = $1", name) == 1
}

func (d *db) pubExists(name string) bool {
	return d.count("select count(*) from pg_publication where pubname = $1", name) == 1
}

// slotReleased waits until no process streams from the slot (a closed
// stream's or a stopped walrelay's walsender has gone).
func (d *db) slotReleased(name string) {
	d.t.Helper()
	waitFor(d.t, "slot "+name+" to be released", func() bool {
		return d.count("select count(*) from pg_replication_slots where slot_name = $1 and not active", name) == 1
	})
}

// openOrders opens, with the library, a stream of the table orders from
// the slot orders_cdc and the publication orders_pub, creating both.
func (d *db) openOrders(ctx context.Context) *cdc.Stream {
	d.t.Helper()
	s, err := cdc.Open(ctx, cdc.Config{ConnString: d.url, Slot: "orders_cdc", Publication: "orders_pub",
		CreateSlot: true, CreatePublication: true, PublicationTables: []string{"orders"}})
	if err != nil {
		d.t.Fatal(err)
	}
	return s
}

// TestBadPassword: a refused password is exit 1 with what to check, and
// the password is not printed.
func TestBadPassword(t *testing.T) {
	wrong := pgtest.WrongPassword(t, pgtest.NewDatabase(t), "wrong-secret")
	for _, c := range []string{"check", "status", "tail", "drop"} {
		r := run(t, wrong, c)
		if r.code != exitFailure || !strings.Contains(r.stderr, "check the user and password") || strings.Contains(r.stderr+r.stdout, "wrong-secret") {
			t.Errorf("%s with a wrong password: %v", c, r)
		}
	}
}

// readmeYAML returns the first yaml block of README's section heading.
func readmeYAML(t *testing.T, heading string) string {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n"+heading+"\n")
	_, block, ok2 := strings.Cut(section, "```yaml\n")
	block, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatalf("README has no yaml block under %q", heading)
	}
	return block
}

// term sends SIGTERM and checks that the process exits 0.
func (r *running) term() {
	r.t.Helper()
	r.signal(syscall.SIGTERM)
	if code := r.wait(); code != exitOK {
		r.t.Fatalf("exit %d after SIGTERM, want 0; stderr:\n%s", code, r.stderr)
	}
}
