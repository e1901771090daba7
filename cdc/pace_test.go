package cdc

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// chunkReader returns its data in the chunk sizes given, one per Read, and
// advances a fake clock by gap before each.
type chunkReader struct {
	data   []byte
	chunks []int
	clock  *time.Time
	gap    func(i int) time.Duration
	i      int
}

func (c *chunkReader) Read(b []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	*c.clock = c.clock.Add(c.gap(c.i))
	n := min(c.chunks[c.i%len(c.chunks)], len(c.data), len(b))
	c.i++
	copy(b, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

func newTestPaced(r io.Reader, clock *time.Time, slept *[]time.Duration) *pacedReader {
	p := newPacedReader(r)
	p.now = func() time.Time { return *clock }
	p.sleep = func(d time.Duration) {
		*slept = append(*slept, d)
		*clock = clock.Add(d)
	}
	return p
}

// TestPacedReaderQuietNeverWaits: a stream below the pacing rate (single
// commits a millisecond apart, a few hundred bytes each) is read without a
// single wait, so a commit is handed on as soon as it arrives.
func TestPacedReaderQuietNeverWaits(t *testing.T) {
	clock := time.Unix(1000, 0)
	var slept []time.Duration
	data := bytes.Repeat([]byte("q"), 300*5000)
	r := &chunkReader{data: data, chunks: []int{300}, clock: &clock, gap: func(int) time.Duration { return time.Millisecond }}
	got, err := io.ReadAll(newTestPaced(r, &clock, &slept))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, want %d", len(got), len(data))
	}
	if len(slept) != 0 {
		t.Fatalf("a quiet stream waited %d times before reads (first %v)", len(slept), slept[0])
	}
}

// TestPacedReaderFlowingWaitsThenStops: while small reads come fast (a
// reader waking per message) the reads are paced, with waits within
// [paceMin, paceMax]; the first read after the stream went quiet again is
// not delayed, nor any after it.
func TestPacedReaderFlowingWaitsThenStops(t *testing.T) {
	clock := time.Unix(1000, 0)
	var slept []time.Duration
	const fastReads, quietReads = 20000, 50
	data := make([]byte, 200*(fastReads+quietReads))
	for i := range data {
		data[i] = byte(rand.Uint32())
	}
	r := &chunkReader{data: data, chunks: []int{200}, clock: &clock, gap: func(i int) time.Duration {
		if i < fastReads {
			return 2 * time.Microsecond // 100 MB/s in 200-byte reads
		}
		return 5 * time.Millisecond
	}}
	p := newTestPaced(r, &clock, &slept)
	got, err := io.ReadAll(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("pacing changed the bytes read")
	}
	if len(slept) == 0 {
		t.Fatal("a fast stream of small reads was never paced")
	}
	for _, d := range slept {
		if d < paceMin || d > paceMax {
			t.Fatalf("waited %v, outside [%v, %v]", d, paceMin, paceMax)
		}
	}
	// The waits stop once a window of the quiet part has been judged: at
	// most one quiet read (the one ending the last fast window) is delayed.
	n := len(slept)
	slept = slept[:0]
	r.data, r.i = data[:200*quietReads], fastReads
	if _, err := io.ReadAll(p); err != nil {
		t.Fatal(err)
	}
	if len(slept) != 0 {
		t.Fatalf("after %d paced reads, %d of %d quiet reads waited", n, len(slept), quietReads)
	}
}

// TestPacedReaderLargeReadsNeverWait: while the reads are large (data is
// queued: the reader is behind the server) no read waits, however fast the
// stream.
func TestPacedReaderLargeReadsNeverWait(t *testing.T) {
	clock := time.Unix(1000, 0)
	var slept []time.Duration
	data := make([]byte, paceLarge*400)
	r := &chunkReader{data: data, chunks: []int{paceLarge}, clock: &clock, gap: func(int) time.Duration { return 100 * time.Microsecond }}
	// Read as the stream does: through a 256 KB buffer.
	got, err := io.ReadAll(bufio.NewReaderSize(newTestPaced(r, &clock, &slept), 256<<10))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(data) {
		t.Fatalf("read %d bytes, want %d", len(got), len(data))
	}
	if len(slept) != 0 {
		t.Fatalf("%d of %d large reads waited", len(slept), r.i)
	}
}

// TestPacedReaderErrorStopsWaiting: a read that fails (a deadline, or Close
// interrupting the read) clears the wait, so the next read is immediate.
func TestPacedReaderErrorStopsWaiting(t *testing.T) {
	clock := time.Unix(1000, 0)
	var slept []time.Duration
	p := newTestPaced(errReader{}, &clock, &slept)
	p.delay, p.wait = paceMax, true
	if _, err := p.Read(make([]byte, 10)); err == nil {
		t.Fatal("no error")
	}
	if p.delay != 0 || p.wait {
		t.Fatalf("wait %v (%v) after a failed read", p.delay, p.wait)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

// TestPacedStreamKeepsOrderThenDeliversSingleCommit streams a backlog of
// small transactions (fast enough to be read paced), checks that every row
// arrives once and in commit order, then commits single rows one at a time
// after the backlog and waits for each before the next: a quiet stream is
// still delivered, commit by commit.
func TestPacedStreamKeepsOrderThenDeliversSingleCommit(t *testing.T) {
	const rows, perTx = 30_000, 10
	e := newEnv(t, "create table paced (id int8 primary key, note text)")
	s := e.open(e.config())
	e.exec(`do $$ begin
		for lo in 1..` + strconv.Itoa(rows) + ` by ` + strconv.Itoa(perTx) + ` loop
			insert into paced select i, md5(i::text) from generate_series(lo, lo + ` + strconv.Itoa(perTx-1) + `) i;
			commit;
		end loop; end $$`)
	msgs := next(t, s, rows)
	for i, m := range msgs {
		if m.Record["id"] != int64(i+1) {
			t.Fatalf("message %d: id %v, want %d", i, m.Record["id"], i+1)
		}
	}
	s.Ack(msgs[len(msgs)-1])
	for id := rows + 1; id <= rows+5; id++ {
		e.exec("insert into paced values (" + strconv.Itoa(id) + ", 'single')")
		m := next(t, s, 1)[0]
		if m.Record["id"] != int64(id) {
			t.Fatalf("single commit: id %v, want %d", m.Record["id"], id)
		}
		s.Ack(m)
	}
}
