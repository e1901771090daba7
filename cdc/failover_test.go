package cdc

import (
	"errors"
	"fmt"
	"testing"

	"github.com/walrelay/walrelay/message"
)

func TestForkPoint(t *testing.T) {
	history := []byte("1\t0/3000158\tno recovery target specified\n\n2\t0/5000000\tno recovery target specified\n")
	cases := []struct {
		tli  int32
		want message.LSN
		ok   bool
	}{
		{1, 0x3000158, true},
		{2, 0x5000000, true},
		{3, 0, false}, // the current timeline has no end
	}
	for _, c := range cases {
		got, ok := forkPoint(history, c.tli)
		if got != c.want || ok != c.ok {
			t.Errorf("forkPoint(%d) = %v, %v; want %v, %v", c.tli, got, ok, c.want, c.ok)
		}
	}
	if _, ok := forkPoint([]byte("1\tnot-an-lsn\tx\n"), 1); ok {
		t.Error("a malformed LSN was accepted")
	}
}

// After a promotion, positions that came only from keepalives past the
// fork point are brought back to it (new transactions on the new timeline
// reuse those LSNs: starting past them would skip them); a transaction
// received past the fork is an error.
func TestRebaseOnPromotion(t *testing.T) {
	const fork = message.LSN(0x5000000)
	cases := []struct {
		name                         string
		committed, received, flushed message.LSN
		wantReceived, wantFlushed    message.LSN
		wantErr                      bool
	}{
		{"keepalive past the fork", fork - 100, fork + 500, fork + 400, fork, fork, false},
		{"all before the fork", fork - 100, fork - 100, fork - 200, fork - 100, fork - 200, false},
		{"at the fork", fork, fork, fork, fork, fork, false},
		{"transaction past the fork", fork + 10, fork + 10, fork - 50, fork + 10, fork - 50, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &Stream{received: c.received, flushed: c.flushed}
			s.fo.committed = c.committed
			err := s.rebase(1, 2, fork)
			if c.wantErr != errors.Is(err, ErrHistoryDiverged) {
				t.Fatalf("rebase = %v, want ErrHistoryDiverged: %v", err, c.wantErr)
			}
			if s.received != c.wantReceived || s.flushed != c.wantFlushed {
				t.Fatalf("received, flushed = %v, %v; want %v, %v", s.received, s.flushed, c.wantReceived, c.wantFlushed)
			}
		})
	}
}

// A diverged history or an unsupported version stops the stream: retrying
// cannot help. A slot still synchronising on a standby is waited out.
func TestFailoverErrorsPermanence(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{&SlotError{Slot: "s", Err: ErrSlotNotSynced}, true},
		{fmt.Errorf("%w: x", ErrHistoryDiverged), true},
		{fmt.Errorf("%w: x", ErrServerVersion), true},
		{&SlotError{Slot: "s", Err: ErrSlotSyncing}, false},
	}
	for _, c := range cases {
		if got := !IsRetryable(c.err); got != c.want {
			t.Errorf("!IsRetryable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
