package pgtest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRemoveStaleDirs(t *testing.T) {
	tmp := t.TempDir()
	// A process that has exited: its pid no longer exists (pids are not
	// reused this soon on Linux, which allocates them increasingly).
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * staleAge)
	mk := func(name, pid string, mtime time.Time) string {
		dir := filepath.Join(tmp, name)
		if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
			t.Fatal(err)
		}
		if pid != "" {
			if err := os.WriteFile(filepath.Join(dir, "data", "postmaster.pid"), []byte(pid+"\n/data\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chtimes(dir, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	// logged gives dir a postgres.log written now; dir keeps mtime.
	logged := func(dir string, mtime time.Time) string {
		if err := os.WriteFile(filepath.Join(dir, "postgres.log"), []byte("LOG:  ready\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(dir, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	deadPid := strconv.Itoa(dead.ProcessState.Pid())
	livePid := strconv.Itoa(os.Getpid())
	cases := []struct {
		dir    string
		remove bool
	}{
		{mk("walrelay-pgtest-old-dead", deadPid, old), true},
		{mk("walrelay-pgtest-old-nopid", "", old), true},
		{mk("walrelay-pgtest-old-live", livePid, old), false},
		{mk("walrelay-pgtest-new-dead", deadPid, time.Now()), false},
		{mk("walrelay-pgtest-new-nopid", "", time.Now()), false},
		{mk("other-old-dead", deadPid, old), false},
		{logged(mk("walrelay-pgtest-old-dead-logging", deadPid, old), old), false},
	}
	removeStaleDirs(tmp, time.Now())
	for _, c := range cases {
		_, err := os.Stat(c.dir)
		if gone := os.IsNotExist(err); gone != c.remove {
			t.Errorf("%s: removed = %v, want %v", filepath.Base(c.dir), gone, c.remove)
		}
	}
}

// TestStartInterruptedQuiet interrupts Start while initdb runs: the error
// says so, without initdb's output (which the old code appended).
func TestStartInterruptedQuiet(t *testing.T) {
	bin, err := FindBin()
	if err != nil {
		t.Skip("SKIPPED LOUDLY: ", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(300*time.Millisecond, cancel)
	c, err := Start(ctx, Options{Bin: bin})
	if err == nil {
		c.Stop()
		t.Skip("the cluster started before the interruption")
	}
	if !errors.Is(err, context.Canceled) && !strings.Contains(err.Error(), "did not accept connections") {
		t.Errorf("Start = %v; want context.Canceled", err)
	}
	if strings.Contains(err.Error(), "The files belonging") || strings.Contains(err.Error(), "initdb: error") || strings.Count(err.Error(), "\n") > 2 {
		t.Errorf("Start's error carries initdb's output:\n%v", err)
	}
}
