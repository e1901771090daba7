// Command walrelay-bench measures walrelay against Postgres's own logical
// replication client on the same WAL, in one run, on a throwaway Postgres it
// starts itself:
//
//   - throughput (rows/s, MB/s of WAL) of walrelay decoding, encoding every
//     message to the seed JSON and acknowledging into a null sink, next to
//     pg_recvlogical writing pgoutput to /dev/null, for 100-byte and 2 KB rows
//     in many small transactions and in a few large ones;
//   - for the same WAL, Stream.Next with json.Marshal(m) and with
//     m.AppendJSON into a reused buffer, as ratios to cdc.Run;
//   - for every consumer, the CPU of the server's walsender serving it
//     (user and system time per row), the consumer's own CPU per row and
//     its voluntary context switches per 1,000 rows;
//   - the same through cdc.Run into the Kafka sink (in-process kfake, storing
//     the records in segment files as Kafka does, and again with the broker
//     discarding them so its log takes none of the CPU) and the webhook sink
//     (a local receiver), as ratios to the null sink;
//   - latency from commit to Stream.Next and to a completed sink write at a
//     steady commit rate with synchronous_commit on;
//   - peak RSS of a process streaming one 1M-row transaction and one 10k-row
//     transaction (each measured in a child process of its own);
//   - backfill rows/s next to COPY … TO STDOUT of the same rows, with the
//     process's collector settings and, for the read only, with GOGC=400
//     and with the collector off under a memory limit.
//
// Usage:
//
//	go run ./cmd/walrelay-bench            # the full run (several minutes)
//	go run ./cmd/walrelay-bench -quick     # every figure, small sizes (< 60 s)
//	go run ./cmd/walrelay-bench -json      # the report as JSON
//	go run ./cmd/walrelay-bench -socket unix  # every client on the server's Unix socket
//
// Clients reach the server by TCP on 127.0.0.1 unless -socket unix is
// given. On loopback the machine's TCP congestion control decides whether
// the walsender's small writes coalesce, and with that most of the
// throughput ratios; the report names it (see BENCHMARKS.md).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
)

func main() {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain(os.Stdout))
	}
	var opts options
	flag.BoolVar(&opts.Quick, "quick", false, "small sizes and one round: every figure in under a minute")
	flag.IntVar(&opts.Rounds, "rounds", 0, "rounds of each throughput measurement, median reported (0 = 3, or 1 with -quick)")
	flag.StringVar(&opts.Only, "only", "", "comma-separated sections to run: throughput, latency, rss, backfill (empty = all)")
	flag.StringVar(&opts.Sinks, "sinks", "", "comma-separated throughput consumers besides pg_recvlogical: null, next-marshal, next-append, kafka, kafka-discard, webhook (empty = all)")
	flag.StringVar(&opts.Scenario, "scenario", "", "run only the throughput scenarios whose name contains this (e.g. \"2 KB\")")
	flag.StringVar(&opts.CPUProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.StringVar(&opts.Socket, "socket", "tcp", "how every client reaches the server: tcp (127.0.0.1) or unix (its Unix-domain socket)")
	asJSON := flag.Bool("json", false, "print the report as JSON")
	verbose := flag.Bool("v", false, "print progress to stderr")
	flag.Parse()
	if *verbose {
		opts.Progress = os.Stderr
	}
	opts.Command = "walrelay-bench " + strings.Join(os.Args[1:], " ")

	if opts.CPUProfile != "" {
		f, err := os.Create(opts.CPUProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "walrelay-bench:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "walrelay-bench:", err)
			os.Exit(1)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "walrelay-bench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
		return
	}
	rep.print(os.Stdout)
}

// options say what to measure and how long to take.
type options struct {
	Quick    bool
	Rounds   int
	Command  string
	Progress io.Writer // nil = silent

	Only       string // sections to run, comma-separated; empty = all
	Sinks      string // throughput consumers, comma-separated; empty = all
	Scenario   string // throughput scenarios whose name contains this; empty = all
	CPUProfile string // CPU profile file; empty = none
	Socket     string // "tcp" (empty) or "unix": how every consumer connects
}

// want reports whether list (comma-separated, empty = everything) names item.
func want(list, item string) bool {
	if list == "" {
		return true
	}
	for _, s := range strings.Split(list, ",") {
		if strings.TrimSpace(s) == item {
			return true
		}
	}
	return false
}

func (o options) logf(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", args...)
	}
}
