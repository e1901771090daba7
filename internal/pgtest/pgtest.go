// Package pgtest starts throwaway PostgreSQL clusters with logical
// replication enabled, for tests; package throwaway offers them to demos.
//
// A test binary shares one cluster, started from TestMain with [Main]; each
// test takes a fresh database from it with [NewDatabase]. Setting
// WALRELAY_TEST_DATABASE_URL uses that server instead of starting one (it must
// have wal_level=logical and allow CREATE DATABASE). When no PostgreSQL
// binaries are found, tests are skipped loudly — unless
// WALRELAY_REQUIRE_POSTGRES=1, which turns that into a failure (CI sets it).
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/walrelay/walrelay/internal/testtime"
)

// ErrNoPostgres means no PostgreSQL server binaries were found.
var ErrNoPostgres = errors.New("pgtest: no PostgreSQL server binaries found (install postgresql or set PGBIN)")

// Options tune a cluster. The zero value is a good default.
type Options struct {
	// Settings are extra postgresql.conf lines ("name = value").
	Settings []string
	// Port to listen on; 0 picks a free one.
	Port int
	// TLSCertFile and TLSKeyFile, when set, turn TLS on (ssl = on) with
	// this PEM certificate (chain) and key; they are copied into the
	// cluster's directory. Cluster.URL still connects without TLS; clients
	// choose with sslmode. See [Cluster.ReloadTLS] to replace them.
	TLSCertFile, TLSKeyFile string
	// Bin is the directory of the server binaries; "" = [FindBin].
	Bin string
}

// PasswordRole is the one role a cluster authenticates by password over
// TCP; tests create it (with a password) to check authentication failures.
const PasswordRole = "walrelay_password_user"

// Cluster is a running throwaway PostgreSQL server on 127.0.0.1.
type Cluster struct {
	// URL connects to the "postgres" database as the superuser "postgres".
	URL  string
	Port int

	dir  string
	bin  string
	cred *syscall.Credential

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// SocketURL is URL through the server's Unix-domain socket instead of TCP.
func (c *Cluster) SocketURL() string {
	return fmt.Sprintf("postgres://postgres@/postgres?host=%s&port=%d&sslmode=disable", url.QueryEscape(c.dir), c.Port)
}

// FindBin returns the directory holding initdb and postgres: $PGBIN, the
// PATH, or the newest /usr/lib/postgresql/<version>/bin.
func FindBin() (string, error) {
	if d := os.Getenv("PGBIN"); d != "" {
		return d, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("postgres"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			if versionOf(d) < 14 { // the oldest supported version
				continue
			}
			return d, nil
		}
	}
	return "", ErrNoPostgres
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// Start initialises a cluster in a new temporary directory and starts it.
// As root, the server files belong to, and the server runs as, the user
// "postgres" (Postgres refuses to run as root).
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if (opts.TLSCertFile == "") != (opts.TLSKeyFile == "") {
		return nil, errTLSFiles
	}
	bin := opts.Bin
	if bin == "" {
		var err error
		if bin, err = FindBin(); err != nil {
			return nil, err
		}
	}
	c, err := newCluster(bin)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			c.Stop()
		}
	}()
	dir := c.dir
	data := filepath.Join(dir, "data")
	out, err := c.command(ctx, "initdb", "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions").CombinedOutput()
	if ctx.Err() != nil {
		// Interrupted: initdb's output says only that it was killed.
		return nil, fmt.Errorf("pgtest: initdb: %w", context.Cause(ctx))
	}
	if err != nil {
		return nil, fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	conf := []string{
		"listen_addresses = '127.0.0.1'",
		"unix_socket_directories = '" + dir + "'",
		"wal_level = logical",
		"max_replication_slots = 64",
		"max_wal_senders = 64",
		"max_connections = 200",
		"fsync = off",
		"full_page_writes = off",
		"wal_sender_timeout = '30s'",
	}
	conf = append(conf, opts.Settings...)
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	_, err = f.WriteString("\n# walrelay pgtest\n" + strings.Join(conf, "\n") + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	// Every role is trusted, except PasswordRole, which must give its
	// password (for tests of authentication failures).
	hba := "local all all trust\nlocal replication all trust\n" +
		"host all " + PasswordRole + " 127.0.0.1/32 scram-sha-256\n" +
		"host replication " + PasswordRole + " 127.0.0.1/32 scram-sha-256\n" +
		"host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n"
	if err := os.WriteFile(filepath.Join(data, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if c.cred != nil {
		os.Chown(filepath.Join(data, "pg_hba.conf"), int(c.cred.Uid), int(c.cred.Gid))
	}
	if opts.TLSCertFile != "" || opts.TLSKeyFile != "" {
		if err := c.installTLS(opts.TLSCertFile, opts.TLSKeyFile); err != nil {
			return nil, err
		}
	}
	if err := c.startOn(ctx, opts.Port); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// startOn starts the server on port, or on a free port when 0 (trying
// again when another process took the port first).
func (c *Cluster) startOn(ctx context.Context, port int) error {
	for tries := 0; ; tries++ {
		c.Port = port
		if c.Port == 0 {
			var err error
			if c.Port, err = freePort(); err != nil {
				return err
			}
		}
		c.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.Port)
		err := c.start(ctx)
		if err == nil || port != 0 || tries >= 5 {
			return err
		}
	}
}

// newCluster makes the directory of a cluster not yet started, owned by the
// user "postgres" when running as root (Postgres refuses to run as root).
func newCluster(bin string) (*Cluster, error) {
	removeStaleDirs(os.TempDir(), time.Now())
	dir, err := os.MkdirTemp("", "walrelay-pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	c := &Cluster{dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pgtest: running as root needs a \"postgres\" user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pgtest: %w", err)
		}
	}
	return c, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, name), args...)
	cmd.Dir = c.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	return cmd
}

// start runs the postmaster as a child process (killed if this process dies)
// and waits until it accepts connections.
func (c *Cluster) start(ctx context.Context) error {
	logPath := filepath.Join(c.dir, "postgres.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(c.bin, "postgres"), "-D", filepath.Join(c.dir, "data"), "-p", strconv.Itoa(c.Port))
	cmd.Dir = c.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	// SIGQUIT is Postgres's immediate shutdown; it reaches the server if the
	// process that started it dies, so no cluster outlives its test binary.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Pdeathsig: syscall.SIGQUIT}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	c.mu.Lock()
	c.cmd, c.done = cmd, done
	c.mu.Unlock()

	deadline := time.Now().Add(testtime.Bound(60 * time.Second))
	for {
		select {
		case <-done:
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("pgtest: postgres exited at start:\n%s", log)
		default:
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(cctx, c.URL)
		cancel()
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			c.signal(syscall.SIGQUIT)
			<-done
			return fmt.Errorf("pgtest: postgres did not accept connections: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *Cluster) signal(sig syscall.Signal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd != nil && c.cmd.Process != nil {
		c.cmd.Process.Signal(sig)
	}
}

// ShutdownMode is how [Cluster.Restart] stops the server.
type ShutdownMode int

const (
	// Fast is pg_ctl's "-m fast": disconnect clients, checkpoint, exit.
	Fast ShutdownMode = iota
	// Immediate is pg_ctl's "-m immediate": exit at once; crash recovery on start.
	Immediate
)

// Restart stops the server in the given mode and starts it again on the same port.
func (c *Cluster) Restart(ctx context.Context, mode ShutdownMode) error {
	if err := c.shutdown(mode); err != nil {
		return err
	}
	return c.start(ctx)
}

func (c *Cluster) shutdown(mode ShutdownMode) error {
	c.mu.Lock()
	done := c.done
	c.mu.Unlock()
	if done == nil {
		return nil
	}
	sig := syscall.SIGINT
	if mode == Immediate {
		sig = syscall.SIGQUIT
	}
	c.signal(sig)
	select {
	case <-done:
		return nil
	case <-time.After(testtime.Bound(60 * time.Second)):
		c.signal(syscall.SIGKILL)
		<-done
		return fmt.Errorf("pgtest: postgres did not stop within %v; killed", testtime.Bound(60*time.Second))
	}
}

// Stop shuts the server down at once and deletes its files.
func (c *Cluster) Stop() error {
	err := c.shutdown(Immediate)
	if rerr := os.RemoveAll(c.dir); err == nil {
		err = rerr
	}
	return err
}

// Log returns the server's log so far, for failure messages.
func (c *Cluster) Log() string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "postgres.log"))
	return string(b)
}

// ExecURL runs statements, in order, on a new connection to url.
func ExecURL(ctx context.Context, url string, sql ...string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	for _, q := range sql {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
