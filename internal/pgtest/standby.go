package pgtest

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// StandbyOptions configure a physical standby made by [StartStandby].
type StandbyOptions struct {
	// Slot is the physical replication slot the standby streams from; it
	// is created on the primary. Required.
	Slot string
	// Settings are extra postgresql.conf lines for the standby only (for
	// example sync_replication_slots = on, hot_standby_feedback = on).
	Settings []string
}

// StartStandby makes a streaming physical standby of primary (a hot
// standby, read-only) and starts it on a free port. The primary is shut down
// cleanly for a moment while its files are copied, so call it before the
// primary is in use. The standby connects with
// primary_conninfo = "host=127.0.0.1 port=<primary> user=postgres dbname=postgres"
// (a dbname, which slot synchronisation needs) through opts.Slot.
func StartStandby(ctx context.Context, primary *Cluster, opts StandbyOptions) (*Cluster, error) {
	if opts.Slot == "" {
		return nil, fmt.Errorf("pgtest: standby: StandbyOptions.Slot is empty")
	}
	if err := ExecURL(ctx, primary.URL, "select pg_create_physical_replication_slot("+quoteLiteral(opts.Slot)+", true)"); err != nil {
		return nil, fmt.Errorf("pgtest: standby: %w", err)
	}
	s, err := newCluster(primary.bin)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			s.Stop()
		}
	}()
	if err := primary.shutdown(Fast); err != nil {
		return nil, err
	}
	copyErr := copyData(filepath.Join(primary.dir, "data"), filepath.Join(s.dir, "data"), s.cred)
	if err := primary.start(ctx); err != nil {
		return nil, fmt.Errorf("pgtest: restart primary after copying it: %w", err)
	}
	if copyErr != nil {
		return nil, fmt.Errorf("pgtest: standby: copy data: %w", copyErr)
	}
	data := filepath.Join(s.dir, "data")
	conf := []string{
		"",
		"# walrelay pgtest standby",
		"unix_socket_directories = '" + s.dir + "'",
		fmt.Sprintf("primary_conninfo = 'host=127.0.0.1 port=%d user=postgres dbname=postgres application_name=walrelay_standby'", primary.Port),
		"primary_slot_name = " + quoteLiteral(opts.Slot),
		"hot_standby = on",
	}
	conf = append(conf, opts.Settings...)
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	_, err = f.WriteString(strings.Join(conf, "\n") + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if err := writeOwned(filepath.Join(data, "standby.signal"), nil, s.cred); err != nil {
		return nil, err
	}
	if err := s.startOn(ctx, 0); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// NewStandby is [StartStandby] for a test: it fails the test when the
// standby cannot start, and stops the standby at cleanup.
func NewStandby(t testing.TB, primary *Cluster, opts StandbyOptions) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := StartStandby(ctx, primary, opts)
	if err != nil {
		t.Fatalf("pgtest: standby: %v\nprimary log:\n%s", err, primary.Log())
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

// copyData copies a stopped cluster's data directory, leaving out its pid
// file and its replication slots (a standby gets its slots from the
// primary's slot synchronisation, never from a copy).
func copyData(from, to string, cred *syscall.Credential) error {
	return filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir() && filepath.Dir(rel) == "pg_replslot":
			return fs.SkipDir
		case d.IsDir():
			if err := os.Mkdir(dst, info.Mode().Perm()); err != nil {
				return err
			}
			return chown(dst, cred)
		case rel == "postmaster.pid" || rel == "postmaster.opts":
			return nil
		case !info.Mode().IsRegular():
			return fmt.Errorf("%s: not a regular file", path)
		}
		src, err := os.Open(path)
		if err != nil {
			return err
		}
		defer src.Close()
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, info.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, src); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
		return chown(dst, cred)
	})
}

func writeOwned(path string, b []byte, cred *syscall.Credential) error {
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return chown(path, cred)
}

func chown(path string, cred *syscall.Credential) error {
	if cred == nil {
		return nil
	}
	if err := os.Chown(path, int(cred.Uid), int(cred.Gid)); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}

// Kill sends SIGKILL to the postmaster, as a machine failure would, and
// waits for it to exit. Its other processes notice and exit by themselves.
func (c *Cluster) Kill() {
	c.mu.Lock()
	done := c.done
	c.mu.Unlock()
	if done == nil {
		return
	}
	c.signal(syscall.SIGKILL)
	<-done
}

// Promote promotes a standby to a primary and waits until it is one.
func (c *Cluster) Promote(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, c.URL)
	if err != nil {
		return fmt.Errorf("pgtest: promote: %w", err)
	}
	defer conn.Close(context.Background())
	var ok bool
	if err := conn.QueryRow(ctx, "select pg_promote(true, 60)").Scan(&ok); err != nil {
		return fmt.Errorf("pgtest: promote: %w", err)
	}
	if !ok {
		return fmt.Errorf("pgtest: promote: not promoted within 60s")
	}
	return nil
}

// Bin returns the directory of the cluster's server binaries.
func (c *Cluster) Bin() string { return c.bin }
