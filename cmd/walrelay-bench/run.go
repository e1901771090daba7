package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walrelay/walrelay/internal/pgtest"
)

// sizes are the workload sizes of one run.
type sizes struct {
	SmallRows, LargeRows int // rows of the 100-byte and of the 2 KB scenarios
	SmallTx              int // rows per transaction, "many small transactions"
	LargeTxs             int // transactions, "few large ones"
	LatencyFor           time.Duration
	CommitRate           int // commits per second
	RSSBig, RSSSmall     int // rows of the big and the small transaction
	BackfillRows         int
}

var (
	fullSizes = sizes{
		SmallRows: 200_000, LargeRows: 50_000, SmallTx: 10, LargeTxs: 4,
		LatencyFor: 10 * time.Second, CommitRate: 1000,
		RSSBig: 1_000_000, RSSSmall: 10_000, BackfillRows: 200_000,
	}
	quickSizes = sizes{
		SmallRows: 20_000, LargeRows: 4_000, SmallTx: 10, LargeTxs: 2,
		LatencyFor: 2 * time.Second, CommitRate: 1000,
		RSSBig: 100_000, RSSSmall: 1_000, BackfillRows: 20_000,
	}
)

// Report is every figure of one run.
type Report struct {
	Command string
	Machine string
	// Socket is how every client reached the server: "tcp" (127.0.0.1) or
	// "unix" (its Unix-domain socket).
	Socket string
	// TCP is the congestion control new TCP connections get, the loopback
	// connections of the bench included. On loopback it decides whether the
	// walsender's writes coalesce, and so the throughput ratios
	// (BENCHMARKS.md, "The congestion control decides").
	TCP        string
	Postgres   string
	Rounds     int
	Throughput []Throughput
	Latency    []Latency
	RSS        RSS
	Backfill   Backfill
}

// bench holds what the measurements share.
type bench struct {
	opts        options
	sz          sizes
	url         string
	recvlogical string // the pg_recvlogical binary
	conn        *pgx.Conn
	postmaster  int // the server's postmaster pid, for the walsender's CPU
	count       int // for unique names
}

func run(ctx context.Context, opts options) (*Report, error) {
	if opts.Rounds == 0 {
		opts.Rounds = 3
		if opts.Quick {
			opts.Rounds = 1
		}
	}
	switch opts.Socket {
	case "":
		opts.Socket = "tcp"
	case "tcp", "unix":
	default:
		return nil, fmt.Errorf("-socket %q: want tcp or unix", opts.Socket)
	}
	sz := fullSizes
	if opts.Quick {
		sz = quickSizes
	}
	recv, err := findRecvlogical()
	if err != nil {
		return nil, err
	}
	opts.logf("starting postgres; client %s", recv)
	cluster, err := pgtest.Start(ctx, pgtest.Options{Settings: []string{
		"synchronous_commit = on",
		"max_wal_size = '8GB'",
		"checkpoint_timeout = '1h'",
		"shared_buffers = '256MB'",
		// The walsender's CPU is read from the postmaster's reaped-children
		// times (see costMeter): no other child may come and go.
		"autovacuum = off",
	}})
	if err != nil {
		return nil, err
	}
	defer cluster.Stop()
	u := cluster.URL
	if opts.Socket == "unix" {
		u = cluster.SocketURL()
	}
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	// The server says how this connection reached it: no client address
	// over a Unix socket.
	var tcp bool
	if err := conn.QueryRow(ctx, "select inet_client_addr() is not null").Scan(&tcp); err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if tcp != (opts.Socket == "tcp") {
		return nil, fmt.Errorf("-socket %s: the server saw a connection by TCP: %v", opts.Socket, tcp)
	}
	b := &bench{opts: opts, sz: sz, url: u, recvlogical: recv, conn: conn}
	if b.postmaster, err = b.postmasterPID(ctx); err != nil {
		return nil, fmt.Errorf("find the postmaster: %w", err)
	}

	rep := &Report{Command: opts.Command, Machine: machine(), Socket: opts.Socket, TCP: congestionControl(), Rounds: opts.Rounds}
	if err := conn.QueryRow(ctx, "select version()").Scan(&rep.Postgres); err != nil {
		return nil, fmt.Errorf("server version: %w", err)
	}
	for _, sc := range b.scenarios() {
		if !want(opts.Only, "throughput") {
			break
		}
		if opts.Scenario != "" && !strings.Contains(sc.Name, opts.Scenario) {
			continue
		}
		t, err := b.throughput(ctx, sc)
		if err != nil {
			return nil, fmt.Errorf("throughput %s: %w", sc.Name, err)
		}
		rep.Throughput = append(rep.Throughput, t)
	}
	if want(opts.Only, "latency") {
		if rep.Latency, err = b.latency(ctx); err != nil {
			return nil, fmt.Errorf("latency: %w", err)
		}
	}
	if want(opts.Only, "rss") {
		if rep.RSS, err = b.rss(ctx); err != nil {
			return nil, fmt.Errorf("peak RSS: %w", err)
		}
	}
	if !want(opts.Only, "backfill") {
		return rep, nil
	}
	if rep.Backfill, err = b.backfill(ctx); err != nil {
		return nil, fmt.Errorf("backfill: %w", err)
	}
	return rep, nil
}

// name returns a fresh identifier for a table, slot or publication.
func (b *bench) name(prefix string) string {
	b.count++
	return fmt.Sprintf("bench_%s_%d", prefix, b.count)
}

func (b *bench) exec(ctx context.Context, sql ...string) error {
	for _, s := range sql {
		if _, err := b.conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%.60s…: %w", s, err)
		}
	}
	return nil
}

// machine describes the CPU, cores and memory this runs on.
func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			mem = fmt.Sprintf(", %.1f GB RAM", float64(kb)/(1<<20))
		}
	}
	kernel := ""
	if out, err := exec.Command("uname", "-r").Output(); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(out))
	}
	return fmt.Sprintf("%s, %d cores%s%s, %s %s/%s", cpu, runtime.NumCPU(), mem, kernel, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// congestionControl reports net.ipv4.tcp_congestion_control, or "unknown"
// where it cannot be read.
func congestionControl() string {
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_congestion_control")
	if cc := string(bytes.TrimSpace(b)); err == nil && cc != "" {
		return cc
	}
	return "unknown"
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// selfExe is the binary to re-execute for child measurements.
func selfExe() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find own executable: %w", err)
	}
	return filepath.Clean(p), nil
}

// findRecvlogical looks for pg_recvlogical beside the server binaries pgtest
// uses (following a symlinked postgres to its real directory), then on PATH.
func findRecvlogical() (string, error) {
	bin, err := pgtest.FindBin()
	if err != nil {
		return "", err
	}
	dirs := []string{bin}
	if real, err := filepath.EvalSymlinks(filepath.Join(bin, "postgres")); err == nil {
		dirs = append(dirs, filepath.Dir(real))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "pg_recvlogical")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("pg_recvlogical")
	if err != nil {
		return "", fmt.Errorf("pg_recvlogical not found beside %s nor on PATH", bin)
	}
	return p, nil
}
