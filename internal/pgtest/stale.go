package pgtest

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// staleAge is how old a cluster directory must be before
// removeStaleDirs may remove it.
const staleAge = time.Hour

// removeStaleDirs removes the directories of clusters that outlived their
// process — a test binary killed before it could call Stop leaves its
// walrelay-pgtest-* directory behind. Test binaries run concurrently, so a
// directory is removed only when it is older than staleAge and no server
// runs from it: its postmaster.pid is missing or names a process that no
// longer exists. Errors are ignored: this is tidying, not a precondition.
func removeStaleDirs(tmp string, now time.Time) {
	dirs, _ := filepath.Glob(filepath.Join(tmp, "walrelay-pgtest-*"))
	for _, dir := range dirs {
		fi, err := os.Lstat(dir)
		if err != nil || !fi.IsDir() || now.Sub(fi.ModTime()) < staleAge {
			continue
		}
		// A server writes its log: one that wrote lately is not stale
		// even without a pid file (it may be restarting).
		if li, err := os.Stat(filepath.Join(dir, "postgres.log")); err == nil && now.Sub(li.ModTime()) < staleAge {
			continue
		}
		if serverRunning(filepath.Join(dir, "data", "postmaster.pid")) {
			continue
		}
		os.RemoveAll(dir)
	}
}

// serverRunning reports whether the postmaster.pid file at path names a
// live process (or cannot be read for another reason than not existing,
// which counts as running, to be safe).
func serverRunning(path string) bool {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	if err != nil {
		return true
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return true
	}
	// Signal 0 checks that the process exists; EPERM means it does, under
	// another user.
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
