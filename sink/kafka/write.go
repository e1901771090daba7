package kafka

import (
	"sync/atomic"

	kafkago "github.com/segmentio/kafka-go"
)

// write is the memory of one Write: its records and their headers, the
// bytes of their keys, header values and (with the default encoder) values,
// their grouping by partition and the records of its produce requests. A
// Write that was answered for every record at the first try, or that sent
// nothing, gives it back to the Sink for the next Write; so a steady stream
// of Writes allocates almost nothing. A Write with a failed try (even one a
// retry made good) leaves it to the collector: a request abandoned at its
// timeout may still be sending from it.
type write struct {
	recs    []kafkago.Message
	hdrs    []kafkago.Header // three per record
	arena   []byte
	of      []int // each record's batch
	order   []int // record indexes grouped by batch
	records []kafkago.Record
	readers []bytesReader // key and value of each of records

	abandoned atomic.Bool // a produce try failed: its request may still read this memory
}

// maxPooledArena is the largest arena a write keeps for the next one; a
// larger one was for an unusually large Write and is left to the collector.
const maxPooledArena = 32 << 20

// newWrite returns a write for n records: from the pool when one is there.
func (s *Sink) newWrite(n int) *write {
	w, _ := s.writes.Get().(*write)
	if w == nil {
		w = new(write)
	}
	w.recs = resize(w.recs, n)
	w.hdrs = resize(w.hdrs, 3*n)
	w.of = resize(w.of, n)
	w.order = resize(w.order, n)
	w.records = resize(w.records, n)
	w.readers = resize(w.readers, 2*n)
	w.arena = w.arena[:0]
	return w
}

// onRelease, when set (by tests), is called with each write given back.
var onRelease func(*write)

// release gives w back for the next Write. The references it holds (topic
// names, a custom Encoder's values) are dropped so the pool keeps nothing
// alive but its own memory.
func (s *Sink) release(w *write) {
	if onRelease != nil {
		onRelease(w)
	}
	clear(w.recs)
	clear(w.records)
	clear(w.readers)
	if cap(w.arena) > maxPooledArena {
		w.arena = nil
	}
	s.writes.Put(w)
}

// resize returns s with length n, reusing its memory when it is large
// enough.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}
