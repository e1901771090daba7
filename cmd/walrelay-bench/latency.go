package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walrelay/walrelay/cdc"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
	"github.com/walrelay/walrelay/sink/kafka"
)

// warmup is the number of first commits left out of the latency figures:
// the first change of a table makes the stream look its types up.
const warmup = 50

// Latency is the delay from commit (the commit timestamp Postgres puts in
// the transaction, same host clock) to a point in walrelay.
type Latency struct {
	Path           string
	Commits        int     // measured, after the warm-up
	CommitsPerSec  float64 // achieved
	P50, P99, P999 float64 // milliseconds
	Max            float64
}

func (b *bench) latency(ctx context.Context) ([]Latency, error) {
	var out []Latency
	for _, path := range []string{"commit → Stream.Next", "commit → null sink write done (cdc.Run)", "commit → Kafka sink write done (cdc.Run)"} {
		b.opts.logf("latency: %s", path)
		l, err := b.latencyOf(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, l)
	}
	return out, nil
}

func (b *bench) latencyOf(ctx context.Context, path string) (Latency, error) {
	commits := int(b.sz.LatencyFor.Seconds() * float64(b.sz.CommitRate))
	w := &workload{table: b.name("lat")}
	w.pub, w.slot = w.table+"_pub", w.table+"_slot"
	if err := b.exec(ctx, tableDDL(w.table),
		"create publication "+w.pub+" for table "+w.table,
		"select pg_create_logical_replication_slot('"+w.slot+"', 'pgoutput')",
	); err != nil {
		return Latency{}, err
	}
	defer b.drop(ctx, w)
	s, err := cdc.Open(ctx, cdc.Config{ConnString: b.url, Slot: w.slot, Publication: w.pub, HeartbeatInterval: -1})
	if err != nil {
		return Latency{}, err
	}
	defer s.Close()

	lat := &latencies{want: commits, done: make(chan struct{}), d: make([]time.Duration, 0, commits)}
	g, gctx := newGroup(ctx)
	cctx, stop := context.WithCancel(gctx)
	defer stop()
	var rate float64
	g.Go(func() error {
		var err error
		rate, err = b.commitSteadily(gctx, w.table, commits)
		return err
	})
	switch path {
	case "commit → Stream.Next":
		g.Go(func() error { return lat.next(cctx, s) })
	case "commit → Kafka sink write done (cdc.Run)":
		const topic = "walrelay-bench"
		kc, stopBroker, err := newBroker(topic, false)
		if err != nil {
			return Latency{}, err
		}
		defer stopBroker()
		ks, err := kafka.New(kafka.Config{Brokers: kc.ListenAddrs(), Topic: topic})
		if err != nil {
			return Latency{}, err
		}
		defer ks.Close(context.Background())
		lat.run(cctx, g, stop, s, ks)
	default:
		lat.run(cctx, g, stop, s, &nullSink{})
	}
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return Latency{}, err
	}
	if len(lat.d) < commits {
		return Latency{}, fmt.Errorf("received %d of %d commits", len(lat.d), commits)
	}
	l := lat.summary()
	l.Path, l.CommitsPerSec = path, rate
	return l, nil
}

// latencies records the time from commit to delivery of the first want
// messages, and closes done at the last.
type latencies struct {
	mu   sync.Mutex
	d    []time.Duration
	want int
	done chan struct{}
}

func (l *latencies) record(m message.Message) {
	d := time.Since(m.Metadata.CommitTimestamp)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.d = append(l.d, d)
	if len(l.d) == l.want {
		close(l.done)
	}
}

// next times Stream.Next until the last message.
func (l *latencies) next(ctx context.Context, s *cdc.Stream) error {
	for {
		m, err := s.Next(ctx)
		if err != nil {
			return err
		}
		s.Ack(m)
		l.record(m)
		select {
		case <-l.done:
			return nil
		default:
		}
	}
}

// run times cdc.Run's completed writes to sk, and stops it (with stop)
// after the last message.
func (l *latencies) run(ctx context.Context, g *group, stop context.CancelFunc, s *cdc.Stream, sk sink.Sink) {
	rec := sink.Func(func(ctx context.Context, msgs ...message.Message) error {
		if err := sk.Write(ctx, msgs...); err != nil {
			return err
		}
		for _, m := range msgs {
			l.record(m)
		}
		return nil
	})
	g.Go(func() error {
		err := cdc.Run(ctx, s, rec, cdc.RunOptions{})
		select {
		case <-l.done:
			return nil
		default:
			return err
		}
	})
	g.Go(func() error {
		select {
		case <-l.done:
			stop()
		case <-ctx.Done():
		}
		return nil
	})
}

// summary gives the quantiles after the warmup commits.
func (l *latencies) summary() Latency {
	d := slices.Clone(l.d[warmup:])
	slices.Sort(d)
	q := func(p float64) float64 {
		i := int(p * float64(len(d)))
		if i >= len(d) {
			i = len(d) - 1
		}
		return float64(d[i].Microseconds()) / 1000
	}
	return Latency{Commits: len(d), P50: q(0.50), P99: q(0.99), P999: q(0.999), Max: q(1)}
}

// commitSteadily commits n single-row transactions at the configured rate
// from two connections, and returns the rate achieved.
func (b *bench) commitSteadily(ctx context.Context, table string, n int) (float64, error) {
	const writers = 2
	interval := time.Second * writers / time.Duration(b.sz.CommitRate)
	insert := rowsSQL(table, 100, "$1::int8", "$1::int8")
	g, ctx := newGroup(ctx)
	start := time.Now()
	for wi := range writers {
		g.Go(func() error {
			conn, err := pgx.Connect(ctx, b.url)
			if err != nil {
				return err
			}
			defer conn.Close(context.Background())
			next := start
			for id := wi + 1; id <= n; id += writers {
				if d := time.Until(next); d > 0 {
					select {
					case <-time.After(d):
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				next = next.Add(interval)
				if _, err := conn.Exec(ctx, insert, id); err != nil {
					return err
				}
			}
			return nil
		})
	}
	err := g.Wait()
	return float64(n) / time.Since(start).Seconds(), err
}

// group runs goroutines and keeps the first error, cancelling the others.
type group struct {
	wg     sync.WaitGroup
	cancel context.CancelFunc
	once   sync.Once
	err    error
}

func newGroup(ctx context.Context) (*group, context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	return &group{cancel: cancel}, ctx
}

func (g *group) Go(f func() error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := f(); err != nil {
			g.once.Do(func() {
				g.err = err
				g.cancel()
			})
		}
	}()
}

func (g *group) Wait() error {
	g.wg.Wait()
	g.cancel()
	return g.err
}
