package cdc

import (
	"context"
	"testing"
	"time"

	"github.com/walrelay/walrelay/message"
)

// handoffStream is a Stream with only what the hand-off between the reader
// (emit) and Next uses: no connection. The test's goroutines play the
// reader.
func handoffStream(size int) *Stream {
	ctx, cancel := context.WithCancel(context.Background())
	return &Stream{
		cfg:     Config{BufferSize: size, BufferBytes: 1 << 20, StatusInterval: time.Hour},
		out:     make(chan queued, size),
		space:   make(chan struct{}, 1),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		ctx:     ctx,
		cancel:  cancel,
	}
}

func row(id int) message.Message {
	return message.Message{Action: message.ActionInsert, Record: map[string]any{"id": int64(id)}}
}

// TestFullBufferRefillsFromLowMark: a reader waiting for room in a full
// buffer is woken once Next has drained it to its low mark, three quarters
// of its size and of its bytes, and not for each message taken before; a
// message larger than the whole budget waits for an empty buffer. Every
// message arrives once, in order.
func TestFullBufferRefillsFromLowMark(t *testing.T) {
	for _, tc := range []struct {
		name        string
		size        int   // Config.BufferSize
		bytes       int64 // Config.BufferBytes
		fill        int   // messages put in first
		fillSize    int64 // the size of each
		waiting     int64 // the size of the message the reader then waits with
		resumeAfter int   // messages Next takes before the reader goes on
	}{
		{"full by count", 8, 1 << 20, 8, 10, 10, 2},          // 6 left: three quarters of 8
		{"full by bytes", 1024, 100, 10, 10, 10, 3},          // 70 bytes left: under 75
		{"larger than the budget", 1024, 100, 5, 10, 200, 5}, // alone, into an empty buffer
		// Its bytes fit but not its count, and it alone is over the bytes
		// mark: the reader goes on once the buffer is empty.
		{"over the bytes mark alone", 4, 100, 4, 5, 80, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := handoffStream(tc.size)
			s.cfg.BufferBytes = tc.bytes
			defer s.cancel()
			for i := 1; i <= tc.fill; i++ {
				if err := s.emit(row(i), tc.fillSize); err != nil {
					t.Fatal(err)
				}
			}
			emitted := make(chan error, 1)
			go func() { emitted <- s.emit(row(tc.fill+1), tc.waiting) }()
			waitFor(t, "the reader to wait for room", func() bool { return s.Buffered().Blocked })
			id := 0
			take := func() {
				t.Helper()
				m, err := s.Next(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if id++; m.Record["id"] != int64(id) {
					t.Fatalf("Next returned %v, want id %d", m.Record, id)
				}
			}
			for range tc.resumeAfter - 1 {
				take()
			}
			select {
			case err := <-emitted:
				t.Fatalf("the reader went on after %d messages taken, before its low mark (err %v)", id, err)
			case <-time.After(50 * time.Millisecond):
			}
			take()
			select {
			case err := <-emitted:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("the reader did not go on after %d messages taken", id)
			}
			for id < tc.fill+1 {
				take()
			}
			if b := s.Buffered(); b.Messages != 0 || b.Bytes != 0 || b.Blocked {
				t.Fatalf("after every message was taken: %+v", b)
			}
		})
	}
}
