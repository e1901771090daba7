package cdc

import (
	"errors"
	"testing"
	"time"

	"github.com/walrelay/walrelay/backfill"
	"github.com/walrelay/walrelay/internal/testtime"
	"github.com/walrelay/walrelay/message"
)

// An Ack that raises the acknowledged position wakes what waits for it;
// one that does not raise it wakes nothing.
func TestAckWakesWaiters(t *testing.T) {
	e := newEnv(t, "create table items (id bigint primary key)")
	s := e.open(e.config())
	e.exec("insert into items values (1)", "insert into items values (2)")
	msgs := next(t, s, 2)

	acked, wake := s.acks()
	woke := make(chan uint64)
	go func() {
		<-wake
		a, _ := s.acks()
		woke <- a
	}()
	select {
	case <-wake:
		t.Fatal("woken before any Ack")
	default:
	}
	s.Ack(msgs[1])
	select {
	case a := <-woke:
		if a <= acked {
			t.Fatalf("woken with acknowledged %d, not past %d", a, acked)
		}
	case <-time.After(testtime.Bound(10 * time.Second)):
		t.Fatal("Ack did not wake the waiter")
	}

	_, wake = s.acks()
	s.Ack(msgs[0]) // older than the last Ack: ignored
	s.Ack(msgs[1]) // the same again
	select {
	case <-wake:
		t.Fatal("an Ack that acknowledged nothing new woke the waiter")
	default:
	}
}

// Backfill waits for its reads to be acknowledged before it marks itself
// done: the Ack of the last read releases it, and closing the stream
// releases a Backfill whose reads are never acknowledged.
func TestBackfillWaitsForAcks(t *testing.T) {
	e := newEnv(t,
		"create table items (id bigint primary key)",
		"insert into items select generate_series(1, 3)",
		"create table other (id bigint primary key)",
		"insert into other select generate_series(1, 3)")
	s := e.open(e.config())
	ctx := t.Context()
	reads := func() message.Message {
		t.Helper()
		var last message.Message
		for n := 0; n < 3; {
			m := next(t, s, 1)[0]
			if m.Action == message.ActionRead {
				last = m
				n++
			}
		}
		return last
	}
	within := func(errc <-chan error, what string) error {
		t.Helper()
		select {
		case err := <-errc:
			return err
		case <-time.After(testtime.Bound(30 * time.Second)):
			t.Fatalf("Backfill did not return after %s", what)
			return nil
		}
	}

	errc := make(chan error, 1)
	go func() { errc <- s.Backfill(ctx, backfill.Config{Table: "items", ID: "acked"}) }()
	last := reads()
	select {
	case err := <-errc:
		t.Fatalf("Backfill returned %v before its reads were acknowledged", err)
	default:
	}
	s.Ack(last)
	if err := within(errc, "the last read was acknowledged"); err != nil {
		t.Fatal(err)
	}
	if p, err := s.BackfillStatus(ctx, "acked"); err != nil || p == nil || !p.Done {
		t.Fatalf("BackfillStatus = %+v, %v; want it done", p, err)
	}

	go func() { errc <- s.Backfill(ctx, backfill.Config{Table: "other", ID: "never-acked"}) }()
	reads()
	s.Close()
	if err := within(errc, "the stream closed"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Backfill after Close = %v, want ErrClosed", err)
	}
}
