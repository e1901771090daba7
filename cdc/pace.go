package cdc

import (
	"io"
	"time"
)

// Read pacing. While a backlog streams, Postgres's walsender writes one
// message at a time to the socket; a reader that keeps up with it waits on
// the socket after every message, and each write then has to wake it: most
// of the walsender's CPU goes to those wake-ups (system time), not to
// decoding. pacedReader waits a little before each read while data is
// flowing fast and the last read found little (the reader has caught up), so
// the walsender writes several messages into the socket buffer per wake-up
// and the reader takes them in one read. When the stream is quiet it never
// waits: a commit is read as soon as it arrives; nor after a large read,
// when data is queued anyway.
//
// The waits are time.Sleep's, and the runtime wakes late from short ones:
// on Linux its poller waits in whole milliseconds, so a sleep of 50 µs in
// an otherwise idle process lasts about 1.1 ms. In walrelay-bench's runs
// the waits asked for 135–182 µs on average and lasted 272–683 µs on
// average (BENCHMARKS.md). A late wake only lets more data queue; it
// happens only while the stream is paced, that is while data flows fast.
const (
	// paceWindow is how often the read rate is judged.
	paceWindow = time.Millisecond
	// paceRate is the rate (bytes per second) above which reads are paced:
	// 8 MB/s, tens of thousands of small rows per second. A stream of single
	// commits at a few thousand per second stays below it and is never
	// delayed.
	paceRate = 8 << 20
	// paceMin and paceMax bound the wait before a read while paced.
	paceMin = 10 * time.Microsecond
	paceMax = 200 * time.Microsecond
	// paceSmall is a read too small to be worth its wake-up: the wait
	// doubles; paceLarge a read large enough that the wait halves.
	paceSmall = 16 << 10
	paceLarge = 128 << 10
)

// pacedReader paces the reads of r (see paceRate). It is used by one
// goroutine.
type pacedReader struct {
	r     io.Reader
	now   func() time.Time    // time.Now; replaced in tests
	sleep func(time.Duration) // time.Sleep; replaced in tests

	winStart time.Time // start of the current rate window
	winBytes int64     // bytes read in it
	delay    time.Duration
	wait     bool // wait delay before the next read: the last one found little
}

func newPacedReader(r io.Reader) *pacedReader {
	return &pacedReader{r: r, now: time.Now, sleep: time.Sleep}
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if p.wait {
		p.sleep(p.delay)
	}
	n, err := p.r.Read(b)
	now := p.now()
	p.winBytes += int64(n)
	if el := now.Sub(p.winStart); el >= paceWindow {
		// Judge the window that just ended: fast enough to pace?
		fast := float64(p.winBytes) >= paceRate*el.Seconds()
		p.winStart, p.winBytes = now, 0
		switch {
		case !fast:
			p.delay = 0
		case p.delay == 0:
			p.delay = paceMin
		}
	}
	p.wait = false
	if err != nil {
		p.delay = 0 // a timeout or an interrupted read: never wait before the next
		return n, err
	}
	// Wait only when this read found little: the reader has caught up with
	// the server and would otherwise be woken for the next message. After a
	// large read the reader is behind, data is queued, and waiting would
	// only give up the CPU.
	if p.delay > 0 {
		switch {
		case n < paceSmall:
			p.delay = min(2*p.delay, paceMax)
			p.wait = true
		case n >= paceLarge:
			p.delay = max(p.delay/2, paceMin)
		}
	}
	return n, err
}
