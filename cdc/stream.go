package cdc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/walrelay/walrelay/backfill"
	"github.com/walrelay/walrelay/internal/pgoutput"
	"github.com/walrelay/walrelay/internal/pgvalue"
	"github.com/walrelay/walrelay/message"
)

// Stream is a logical replication stream of one slot: the changes of the
// publication's tables, in commit order, as [message.Message] values.
//
// One goroutine owns the replication connection: it decodes into a bounded
// buffer read by [Stream.Next], reports the acknowledged position on a timer
// even while the caller is slow, answers keepalives, and reconnects after the
// connection drops. Next is for one goroutine; Ack may be called from any.
type Stream struct {
	cfg      Config
	id       uint64
	pool     *pgxpool.Pool
	mapper   *pgvalue.Mapper
	dbName   string
	consumer message.Consumer
	database message.Database

	out       chan queued
	buffered  atomic.Int64    // size of the messages in out, counted against Config.BufferBytes
	space     chan struct{}   // signalled (capacity 1) when Next took a message
	blocked   atomic.Bool     // the reader holds a message the buffer has no room for
	ctx       context.Context // cancelled by Close; the stream's own, never a caller's
	cancel    context.CancelFunc
	closing   chan struct{}
	closeOnce sync.Once
	done      chan struct{} // closed when the reader has stopped
	wg        sync.WaitGroup
	err       error // why the reader stopped; set before done is closed

	// mu guards the acknowledgement state, shared by the reader and Ack.
	mu       sync.Mutex
	emitted  uint64      // sequence number of the last message handed to out
	acked    uint64      // highest acknowledged sequence number
	pending  []pendingTx // committed transactions not yet fully acknowledged
	flushed  message.LSN // position reported to Postgres; never decreases
	inTx     bool
	received message.LSN // end of the last transaction received in full
	fo       failoverState

	ackWake chan struct{} // under mu: closed (and cleared) when an Ack raises acked; acks makes it

	chunks  chunks // backfill chunks waiting for their watermark
	decoded xidLog // the transactions decoded most recently, for Backfill

	progress *backfill.ProgressStore // Config.BackfillTable, for Backfill

	// Reader-only state.
	tempSlot   bool // Config.TemporarySlot's slot is for the next connectOnce to create
	conn       *pgconn.PgConn
	parser     pgoutput.Parser // row messages valid until the next parse, their values until the next receive
	arena      pgvalue.Arena   // the values of the rows decoded, and their keys
	keyBuf     []byte          // scratch for changeKey
	rels       map[uint32]*relation
	tx         txState
	lastStatus time.Time
	inLSN      message.LSN // WAL position of the pgoutput message being handled
	inSize     int64       // its size

	st streamStats // for Stats
}

// replicationFrontend reads the replication connection through a large
// buffer: during a backlog WAL arrives as fast as the server decodes it, and
// the protocol reader's own 8 KB reads cost one system call per few rows.
// The reads are paced while data flows fast (see pacedReader).
func replicationFrontend(r io.Reader, w io.Writer) *pgproto3.Frontend {
	return pgproto3.NewFrontend(bufio.NewReaderSize(newPacedReader(r), 256<<10), w)
}

// pendingTx is a committed transaction whose last message has sequence
// number lastSeq; once that is acknowledged the slot may advance to end.
type pendingTx struct {
	lastSeq    uint64
	end        message.LSN
	commitTime time.Time // for Stats.Lag
}

// Next returns the next message, waiting for one until ctx is done. It
// returns [ErrClosed] after Close, and the stream's error (a *SlotError,
// *DecodeError, …) if it stopped.
func (s *Stream) Next(ctx context.Context) (message.Message, error) {
	select {
	case <-s.closing:
		return message.Message{}, ErrClosed
	default:
	}
	select {
	case q, ok := <-s.out:
		if !ok {
			return message.Message{}, s.stopErr()
		}
		return s.took(q), nil
	case <-ctx.Done():
		return message.Message{}, ctx.Err()
	case <-s.closing:
		return message.Message{}, ErrClosed
	}
}

// TakeBuffered appends to dst, in order, at most n of the messages that
// are already decoded and waiting, without waiting for more, and returns
// the extended slice. It is Next for a batch: a loop that batches its
// writes calls Next to wait for a first message, then TakeBuffered for the
// rest (see "Batching" in the package docs). Acknowledge the batch with
// Ack of its last message.
//
// The error is [ErrClosed] after Close, or the stream's error once it
// stopped and every buffered message was taken; the messages appended
// before the stop are returned with it and belong to the batch.
func (s *Stream) TakeBuffered(dst []message.Message, n int) ([]message.Message, error) {
	if s.closed() {
		return dst, ErrClosed
	}
	for range n {
		select {
		case q, ok := <-s.out:
			if !ok {
				return dst, s.stopErr()
			}
			dst = append(dst, s.took(q))
		default:
			return dst, nil
		}
	}
	return dst, nil
}

func (s *Stream) stopErr() error {
	<-s.done
	if s.err == nil {
		return ErrClosed
	}
	return s.err
}

// Ack records that m, and every message Next returned before it, is
// durable. The slot's confirmed position advances to the end of each
// transaction whose messages are all acknowledged, on the next status
// update. Acks of messages from another stream, or older than an earlier
// Ack, are ignored.
func (s *Stream) Ack(m message.Message) {
	pos := m.Metadata.Position
	if pos.Stream() != s.id {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if pos.Seq() <= s.acked {
		return
	}
	s.acked = pos.Seq()
	if s.ackWake != nil {
		close(s.ackWake)
		s.ackWake = nil
	}
	n := 0
	for n < len(s.pending) && s.pending[n].lastSeq <= s.acked {
		if s.pending[n].end > s.flushed {
			s.flushed = s.pending[n].end
		}
		n++
	}
	s.pending = s.pending[n:]
	s.st.lastAck = time.Now()
}

// acks returns the highest acknowledged sequence number and a channel
// closed when an Ack raises it, for what waits on acknowledgements (a
// waiter also watches s.done: a stopped stream acknowledges nothing more).
func (s *Stream) acks() (uint64, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ackWake == nil {
		s.ackWake = make(chan struct{})
	}
	return s.acked, s.ackWake
}

// Acked returns the position the stream reports to Postgres as flushed:
// the end of the last fully acknowledged transaction (or the server's WAL
// end, when nothing was in flight).
func (s *Stream) Acked() message.LSN {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flushed
}

// Close stops the stream. It sends a final status update with what was
// acknowledged, so acknowledged messages are not delivered again after a
// restart, and closes the connections. It is safe to call more than once.
//
// Close returns the error that stopped the stream if it stopped on its own
// before Close: a permanent failure (a [*DecodeError], a [*TruncateError],
// a [*SlotError], [ErrPublicationNotFound], an authentication failure, …;
// the error Next returned) or a reconnect whose backoff policy gave up. It
// returns nil when the stream was running, so `if err := s.Close(); err !=
// nil` reports why a stream ended and a deferred Close loses nothing.
func (s *Stream) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.cancel()
	})
	<-s.done
	s.wg.Wait()
	s.pool.Close()
	if s.err != nil && !errors.Is(s.err, ErrClosed) {
		return s.err
	}
	return nil
}

func (s *Stream) closed() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// run is the reader goroutine: stream, and reconnect after transient errors.
func (s *Stream) run() {
	defer close(s.done)
	defer close(s.out)
	defer s.st.setConnected(false)
	s.watchSlot()
	var b backoff.BackOff
	for {
		err := s.stream()
		s.chunks.abortAll() // their watermarks may never come
		if s.conn != nil {
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			s.conn.Close(cctx)
			cancel()
			s.conn = nil
		}
		if s.closed() {
			return
		}
		if !IsRetryable(err) {
			s.err = err
			return
		}
		s.st.setConnected(false)
		s.cfg.Logger.Warn("replication connection lost; reconnecting", "slot", s.cfg.Slot, "err", err)
		if b == nil {
			b = s.cfg.Backoff()
		}
		for s.conn == nil {
			d := b.NextBackOff()
			if d == backoff.Stop {
				s.err = fmt.Errorf("cdc: reconnect gave up: %w", err)
				return
			}
			select {
			case <-s.closing:
				return
			case <-time.After(d):
			}
			ctx, cancel := s.closingContext(30 * time.Second)
			conn, cerr := s.connectOnce(ctx)
			cancel()
			if cerr == nil {
				s.conn = conn
				s.st.reconnects.Add(1)
				s.st.setConnected(true)
				b.Reset()
				s.cfg.Logger.Info("replication reconnected", "slot", s.cfg.Slot)
				break
			}
			if s.closed() {
				return
			}
			if !IsRetryable(cerr) {
				s.err = cerr
				return
			}
			err = cerr
			s.cfg.Logger.Warn("reconnect failed", "slot", s.cfg.Slot, "err", cerr)
		}
	}
}

// closingContext is a context cancelled when the stream closes or after d.
func (s *Stream) closingContext(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, d)
}

// stream reads from the current connection until it fails or the stream
// closes. The decoding state of a partly received transaction is dropped:
// Postgres sends that transaction again from its start.
func (s *Stream) stream() error {
	s.rels = make(map[uint32]*relation)
	s.tx = txState{}
	s.mu.Lock()
	s.inTx = false
	s.mu.Unlock()

	// Reads wait on the connection's read deadline, not on a context: a
	// context per message costs a timer and a cancellation watch for every
	// row. Close interrupts a waiting read by moving the deadline to the past;
	// the reader checks closed() after each deadline it sets, so an interrupt
	// that lands before a new deadline is never lost.
	nc := s.conn.Conn()
	interrupted := make(chan struct{})
	stopInterrupt := context.AfterFunc(s.ctx, func() {
		nc.SetReadDeadline(time.Unix(1, 0))
		close(interrupted)
	})
	defer stopInterrupt()
	var deadline time.Time
	s.lastStatus = time.Time{}
	for {
		if s.closed() {
			if !stopInterrupt() {
				<-interrupted // the deadline is the reader's own again
			}
			s.finishTx()
			s.finish()
			return ErrClosed
		}
		if time.Since(s.lastStatus) >= s.cfg.StatusInterval {
			if err := s.sendStatus(); err != nil {
				return err
			}
		}
		if d := s.lastStatus.Add(s.cfg.StatusInterval); !d.Equal(deadline) {
			deadline = d
			if err := nc.SetReadDeadline(d); err != nil {
				return fmt.Errorf("cdc: set read deadline: %w", err)
			}
			if s.closed() {
				continue
			}
		}
		raw, err := s.conn.ReceiveMessage(context.Background())
		if err != nil {
			if pgconn.Timeout(err) || s.closed() {
				continue
			}
			return fmt.Errorf("cdc: receive: %w", err)
		}
		if err := s.receive(raw); err != nil {
			if s.closed() {
				continue // Close interrupted a full buffer: report what was acknowledged
			}
			return err
		}
	}
}

// receive processes one message from the server.
func (s *Stream) receive(raw pgproto3.BackendMessage) error {
	switch msg := raw.(type) {
	case *pgproto3.CopyData:
		if len(msg.Data) == 0 {
			return nil
		}
		switch msg.Data[0] {
		case pglogrepl.PrimaryKeepaliveMessageByteID:
			pkm, err := pglogrepl.ParsePrimaryKeepaliveMessage(msg.Data[1:])
			if err != nil {
				return &DecodeError{Err: err}
			}
			s.st.keepalive(uint64(pkm.ServerWALEnd))
			s.idleAdvance(message.LSN(pkm.ServerWALEnd))
			if pkm.ReplyRequested {
				return s.sendStatus()
			}
		case pglogrepl.XLogDataByteID:
			xld, err := pglogrepl.ParseXLogData(msg.Data[1:])
			if err != nil {
				return &DecodeError{Err: err}
			}
			s.inSize = int64(len(xld.WALData))
			s.st.received(len(xld.WALData), uint64(xld.ServerWALEnd))
			return s.handle(message.LSN(xld.WALStart), xld.WALData)
		}
	case *pgproto3.NoticeResponse:
		return s.notice(msg)
	case *pgproto3.ErrorResponse:
		return s.diagnose(context.Background(), fmt.Errorf("cdc: replication: %w", pgconn.ErrorResponseToPgError(msg)))
	case *pgproto3.CopyDone:
		return errStreamEnded
	}
	return nil
}

// finishTx runs at Close: when every message of the transaction being
// received has been acknowledged, it reads on (briefly) to that
// transaction's commit, so the final status update covers it and a restart
// does not deliver it again.
func (s *Stream) finishTx() {
	if err := s.conn.Conn().SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return
	}
	for {
		s.mu.Lock()
		need := s.inTx && s.acked == s.emitted
		s.mu.Unlock()
		if !need {
			return
		}
		raw, err := s.conn.ReceiveMessage(context.Background())
		if err != nil || s.receive(raw) != nil {
			return
		}
	}
}

// finish reports the acknowledged position one last time and ends the
// replication stream in an orderly way, so that the server has applied the
// position before the connection closes.
func (s *Stream) finish() {
	if err := s.sendStatus(); err != nil {
		return
	}
	// pglogrepl ignores the context here: bound the wait with the deadline,
	// so an unresponsive server cannot hang Close.
	if err := s.conn.Conn().SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return
	}
	pglogrepl.SendStandbyCopyDone(context.Background(), s.conn)
}

// idleAdvance acknowledges the server's WAL end when nothing is in flight,
// so that an idle or filtered database does not pin WAL.
func (s *Stream) idleAdvance(walEnd message.LSN) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.inTx && s.acked == s.emitted && len(s.pending) == 0 && walEnd > s.flushed {
		s.flushed = walEnd
		if walEnd > s.received {
			s.received = walEnd
		}
	}
}

// sendStatus reports the acknowledged position, setting write, flush and
// apply explicitly (pglogrepl would fill a zero flush from write).
func (s *Stream) sendStatus() error {
	s.mu.Lock()
	pos := pglogrepl.LSN(s.flushed)
	idle := !s.inTx && s.acked == s.emitted && len(s.pending) == 0
	s.mu.Unlock()
	s.lastStatus = time.Now()
	err := pglogrepl.SendStandbyStatusUpdate(context.Background(), s.conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: pos,
		WALFlushPosition: pos,
		WALApplyPosition: pos,
		ClientTime:       s.lastStatus,
		// When idle, ask for a keepalive: its WAL end is then acknowledged.
		ReplyRequested: idle,
	})
	if err != nil {
		return fmt.Errorf("cdc: send status update: %w", err)
	}
	return nil
}

// queued is a message in the buffer with the size it is counted at.
type queued struct {
	m    message.Message
	size int64
}

// took accounts for q leaving the buffer and returns its message. When
// the reader waits for room, it is woken once the buffer has drained to a
// low mark (three quarters of Config.BufferSize and of Config.BufferBytes,
// or less), not for every message taken: it then refills the buffer in one
// run instead of one message per wake-up. It is also woken when the buffer
// is empty, whatever the bytes: the message it holds may have its bytes
// counted already (reserved, waiting only for a free place) and be over the
// bytes mark by itself; an empty buffer always has room for it.
func (s *Stream) took(q queued) message.Message {
	b := s.buffered.Add(-q.size)
	s.st.took(q.size)
	n := len(s.out)
	if s.blocked.Load() && (n == 0 || n <= cap(s.out)/4*3 && b <= s.cfg.BufferBytes/4*3) {
		select {
		case s.space <- struct{}{}:
		default:
		}
	}
	return q.m
}

// BufferStats describes the messages waiting for [Stream.Next].
type BufferStats struct {
	// Messages is the number of decoded messages waiting.
	Messages int
	// Bytes is their size as counted against Config.BufferBytes: the text
	// Postgres sent for them.
	Bytes int64
	// Blocked reports that the reader holds one more decoded message that
	// it waits to buffer (the buffer was full by count or by bytes; the
	// reader goes on once Next has drained it to three quarters, or
	// emptied it), and reads nothing from the server meanwhile.
	Blocked bool
}

// Buffered reports the messages waiting for Next, for metrics: at most
// Config.BufferSize of them, and at most Config.BufferBytes of them unless
// a single message is larger.
func (s *Stream) Buffered() BufferStats {
	return BufferStats{Messages: len(s.out), Bytes: s.buffered.Load(), Blocked: s.blocked.Load()}
}

// emit hands m to Next, numbering it for Ack; size is what it counts
// against Config.BufferBytes. While the buffer is full, by count or by
// bytes, it keeps the connection alive with status updates. A message
// larger than the whole budget waits for an empty buffer and goes alone.
func (s *Stream) emit(m message.Message, size int64) error {
	s.mu.Lock()
	s.emitted++
	m.Metadata.Position = message.NewPosition(s.id, s.emitted)
	s.mu.Unlock()
	q := queued{m: m, size: size}
	reserved := s.reserve(size)
	if reserved {
		select {
		case s.out <- q:
			return nil
		default:
		}
	}
	s.blocked.Store(true)
	defer s.blocked.Store(false)
	t := time.NewTimer(s.cfg.StatusInterval)
	defer t.Stop()
	for {
		// Try again now that blocked is set: a message Next takes from
		// here on is seen by took, which signals space once the buffer has
		// drained to its low mark or emptied.
		if !reserved {
			reserved = s.reserve(size)
		}
		if reserved {
			select {
			case s.out <- q:
				return nil
			default:
			}
		}
		select {
		case <-s.space:
		case <-s.closing:
			if reserved {
				s.buffered.Add(-size)
			}
			return ErrClosed
		case <-t.C:
			if err := s.sendStatus(); err != nil {
				if reserved {
					s.buffered.Add(-size)
				}
				return err
			}
			t.Reset(s.cfg.StatusInterval)
		}
	}
}

// reserve counts size against the byte budget if it fits, or if nothing is
// buffered (a message larger than the budget passes alone). Only the reader
// adds to s.buffered, so the check and the add do not race with another
// reserve; Next only subtracts.
func (s *Stream) reserve(size int64) bool {
	if b := s.buffered.Load(); b > 0 && b+size > s.cfg.BufferBytes {
		return false
	}
	s.buffered.Add(size)
	return true
}

// heartbeat writes a non-transactional logical message on an interval so
// that the slot advances even when the database is idle.
func (s *Stream) heartbeat() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
			ctx, cancel := s.closingContext(10 * time.Second)
			_, err := s.pool.Exec(ctx, "select pg_logical_emit_message(false, $1, $2)", prefixHeartbeat, time.Now().UTC().Format(time.RFC3339Nano))
			cancel()
			if err != nil && !s.closed() {
				s.cfg.Logger.Warn("heartbeat failed", "err", err)
			}
		}
	}
}

// recordSize approximates the text size of a decoded row, for the byte
// budget of messages that did not come from the WAL (backfill reads): the
// length of strings, bytes and JSON, and 8 bytes for other values.
func recordSize(rec map[string]any) int64 {
	var n int64
	for k, v := range rec {
		n += int64(len(k)) + valueSize(v)
	}
	return n
}

func valueSize(v any) int64 {
	switch v := v.(type) {
	case string:
		return int64(len(v))
	case []byte:
		return int64(len(v))
	case json.RawMessage:
		return int64(len(v))
	case json.Number:
		return int64(len(v))
	case []any:
		n := int64(2)
		for _, e := range v {
			n += 1 + valueSize(e)
		}
		return n
	case map[string]any:
		return recordSize(v)
	}
	return 8
}
