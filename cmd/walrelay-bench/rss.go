package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/walrelay/walrelay/cdc"
)

// The child process streams one slot into the null sink and reports its
// peak RSS; its configuration comes in the environment.
const (
	childEnv  = "WALRELAY_BENCH_CHILD" // "rss"
	childURL  = "WALRELAY_BENCH_URL"
	childSlot = "WALRELAY_BENCH_SLOT"
	childPub  = "WALRELAY_BENCH_PUB"
	childWant = "WALRELAY_BENCH_WANT"
)

// RSS is the peak resident set size (VmHWM) of a process streaming one
// transaction through cdc.Run into the null sink.
type RSS struct {
	BigRows, SmallRows int
	BigMB, SmallMB     float64
	Ratio              float64 // BigMB / SmallMB
}

func (b *bench) rss(ctx context.Context) (RSS, error) {
	res := RSS{BigRows: b.sz.RSSBig, SmallRows: b.sz.RSSSmall}
	var err error
	if res.SmallMB, err = b.rssOf(ctx, res.SmallRows); err != nil {
		return res, err
	}
	if res.BigMB, err = b.rssOf(ctx, res.BigRows); err != nil {
		return res, err
	}
	res.Ratio = res.BigMB / res.SmallMB
	return res, nil
}

// rssOf commits one transaction of rows 100-byte rows and measures a child
// process streaming it.
func (b *bench) rssOf(ctx context.Context, rows int) (float64, error) {
	b.opts.logf("peak RSS: one transaction of %d rows", rows)
	w, err := b.generate(ctx, rows, 100, rows)
	if err != nil {
		return 0, err
	}
	defer b.drop(ctx, w)
	exe, err := selfExe()
	if err != nil {
		return 0, err
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), childEnv+"=rss", childURL+"="+b.url, childSlot+"="+w.slot,
		childPub+"="+w.pub, childWant+"="+strconv.Itoa(w.rows+1))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("child: %w: %s", err, stderr.Bytes())
	}
	kb, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "vmhwm_kb=")
	n, err := strconv.Atoi(kb)
	if !ok || err != nil {
		return 0, fmt.Errorf("child answered %q", out)
	}
	return float64(n) / 1024, nil
}

// childMain is the child process: stream until the wanted number of
// messages arrived, then print the peak RSS.
func childMain(stdout io.Writer) int {
	if err := child(context.Background(), stdout); err != nil {
		fmt.Fprintln(os.Stderr, "walrelay-bench child:", err)
		return 1
	}
	return 0
}

func child(ctx context.Context, stdout io.Writer) error {
	want, err := strconv.Atoi(os.Getenv(childWant))
	if err != nil {
		return fmt.Errorf("%s: %w", childWant, err)
	}
	s, err := cdc.Open(ctx, cdc.Config{ConnString: os.Getenv(childURL), Slot: os.Getenv(childSlot),
		Publication: os.Getenv(childPub), HeartbeatInterval: -1})
	if err != nil {
		return err
	}
	defer s.Close()
	cs := &countingSink{next: &nullSink{}, want: int64(want), done: make(chan struct{})}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- cdc.Run(rctx, s, cs, cdc.RunOptions{}) }()
	select {
	case <-cs.done:
	case err := <-runErr:
		return fmt.Errorf("run stopped after %d messages: %w", cs.n.Load(), err)
	}
	cancel()
	<-runErr
	kb, err := vmHWM()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "vmhwm_kb=%d\n", kb)
	return err
}

// vmHWM reads this process's peak resident set size from /proc/self/status.
func vmHWM() (int, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			return strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status")
}
