package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"

	"github.com/walrelay/walrelay/internal/logkey"
	"github.com/walrelay/walrelay/internal/tlserr"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
)

// Header names set on every record.
const (
	HeaderIdempotencyKey = "idempotency-key" // Metadata.IdempotencyKey
	HeaderAction         = "action"          // "insert", "update", "delete", "read", …
	HeaderTable          = "table"           // "<schema>.<table>"
)

// Sink produces messages to Kafka. It is safe for concurrent use; per-row
// order holds for the messages of one Write and across sequential Writes.
type Sink struct {
	cfg       Config
	appendEnc bool // cfg.Encoder was nil: encode with message.AppendJSON into the Write's arena
	client    *kafkago.Client
	transport *kafkago.Transport
	codec     kafkago.Compression
	// The Java client's default partitioner for keyed records; with
	// Consistent, records without a key all go to one partition of their
	// topic instead of a random one, so they keep their order too.
	balancer kafkago.Murmur2Balancer

	mu         sync.RWMutex
	partitions map[string]topicParts

	writes sync.Pool // of *write: the memory of Writes that succeeded

	closed    atomic.Bool
	closeOnce sync.Once

	stats sink.Counters
}

var _ sink.Sink = (*Sink)(nil)

// New validates cfg and returns a Sink. It does not contact the brokers;
// the first Write does.
func New(cfg Config) (*Sink, error) {
	appendEnc := cfg.Encoder == nil
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("kafka: config: %w", err)
	}
	transport, err := Transport(cfg.TLS, cfg.SASL, cfg.DialTimeout)
	if err != nil {
		return nil, fmt.Errorf("kafka: config: %w", err)
	}
	codec, _ := cfg.Compression.codec() // validated above
	return &Sink{
		cfg:        cfg,
		appendEnc:  appendEnc,
		client:     &kafkago.Client{Addr: kafkago.TCP(cfg.Brokers...), Transport: transport},
		transport:  transport,
		codec:      codec,
		balancer:   kafkago.Murmur2Balancer{Consistent: true},
		partitions: make(map[string]topicParts),
	}, nil
}

// Topic returns the topic m is routed to.
func (s *Sink) Topic(m message.Message) string {
	switch {
	case s.cfg.Topic != "":
		return s.cfg.Topic
	case s.cfg.TopicFunc != nil:
		return s.cfg.TopicFunc(m)
	}
	return s.cfg.Prefix + "." + m.Metadata.TableSchema + "." + m.Metadata.TableName
}

// Write produces msgs and returns nil only when the brokers acknowledged
// every one of them (acks=all). Any failure fails the whole call; the caller
// retries the whole batch, which may duplicate records already written.
// Errors that a retry cannot fix — a record over MaxMessageBytes or the
// broker's limit, a missing topic, an encoding failure, a broker
// certificate that fails verification, SASL refused — are marked with
// [sink.Permanent].
//
// The records of one partition go out in order, in produce requests of at
// most Config.BatchSize records and Config.MaxMessageBytes bytes, each sent
// after the previous one was acknowledged; different partitions are written
// concurrently.
func (s *Sink) Write(ctx context.Context, msgs ...message.Message) error {
	if s.closed.Load() {
		return sink.ErrClosed
	}
	if len(msgs) == 0 {
		return nil
	}
	err := s.write(ctx, msgs)
	if err == nil {
		s.stats.Wrote()
		s.stats.Delivered(len(msgs))
	}
	return err
}

// write is Write for a non-empty batch. A failure of a produce request is
// counted where it happens; one before any is sent, here.
func (s *Sink) write(ctx context.Context, msgs []message.Message) error {
	w := s.newWrite(len(msgs))
	recs := w.recs
	arena := w.arena
	for i, m := range msgs {
		var err error
		if recs[i], arena, err = s.record(m, w.hdrs[3*i:3*i+3:3*i+3], arena); err != nil {
			s.release(w) // nothing was sent
			s.stats.Failed(err)
			return err
		}
		if i == 0 { // room for the rest, judged by the first
			arena = slices.Grow(arena, len(arena)*(len(msgs)-1)+len(arena)/2)
		}
	}
	w.arena = arena
	topics := topicsOf(recs)
	parts, err := s.partitionsOf(ctx, topics)
	if err != nil {
		s.release(w) // nothing was sent
		s.stats.Failed(err)
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("kafka: write: %w", ctxErr)
		}
		if errors.Is(err, io.ErrClosedPipe) {
			return sink.ErrClosed
		}
		if refused(err) {
			return sink.Permanent(err)
		}
		return err
	}
	batches := s.group(w, topics, parts)
	failures := s.send(ctx, w, batches)
	if len(failures) == 0 && !w.abandoned.Load() {
		// Every produce request was answered at its first try, so was
		// sent in full: nothing reads w any more.
		s.release(w)
	}
	// Otherwise a request abandoned at its timeout or by ctx may still be on
	// its way to the broker, reading w: w is left to the collector.
	return s.classify(ctx, failures, recs)
}

// batch is the records of one Write for one partition: w.recs[w.order[i]]
// for i in [start, end), in Write order.
type batch struct {
	topic      string
	partition  int
	start, end int
}

// group assigns each record of w its partition and groups the records by
// topic and partition, keeping their order: it returns the groups, which
// slice w.order.
func (s *Sink) group(w *write, topics []string, parts [][]int) []batch {
	type topicPartition struct {
		topic     string
		partition int
	}
	recs := w.recs
	index := make(map[topicPartition]int, 4*len(topics))
	var batches []batch
	of := w.of // each record's batch
	for i := range recs {
		r := &recs[i]
		p := parts[slices.Index(topics, r.Topic)]
		r.Partition = p[s.balancer.Balance(*r, p...)]
		tp := topicPartition{r.Topic, r.Partition}
		b, ok := index[tp]
		if !ok {
			b = len(batches)
			index[tp] = b
			batches = append(batches, batch{topic: r.Topic, partition: r.Partition})
		}
		of[i] = b
		batches[b].end++ // the count, for now
	}
	next := 0
	for i := range batches {
		n := batches[i].end
		batches[i].start, batches[i].end = next, next
		next += n
	}
	for i, b := range of {
		w.order[batches[b].end] = i
		batches[b].end++
	}
	return batches
}

// failure is the error of one partition's batch.
type failure struct {
	topic string
	err   error
}

// send produces the batches of w, each partition's in order and the
// partitions concurrently, and returns their failures. After the first
// failure the other batches are abandoned.
func (s *Sink) send(ctx context.Context, w *write, batches []batch) []failure {
	now := time.Now()
	if len(batches) == 1 {
		if err := s.sendBatch(ctx, w, batches[0], now); err != nil {
			return []failure{{batches[0].topic, err}}
		}
		return nil
	}
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(batches))
	var wg sync.WaitGroup
	for i, b := range batches {
		wg.Go(func() {
			if errs[i] = s.sendBatch(bctx, w, b, now); errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	var failures []failure
	for i, err := range errs {
		if err == nil {
			continue
		}
		if ctx.Err() == nil && errors.Is(err, context.Canceled) {
			continue // abandoned after another batch failed
		}
		failures = append(failures, failure{batches[i].topic, err})
	}
	return failures
}

// sendBatch produces b in requests of at most BatchSize records and
// MaxMessageBytes bytes, each after the previous one succeeded.
func (s *Sink) sendBatch(ctx context.Context, w *write, b batch, now time.Time) error {
	for pos := b.start; pos < b.end; {
		n, size := 0, 0
		for pos+n < b.end && n < s.cfg.BatchSize {
			rs := recordSize(w.recs[w.order[pos+n]])
			if n > 0 && size+rs > s.cfg.MaxMessageBytes {
				break
			}
			size += rs
			n++
		}
		if err := s.produce(ctx, w, b, pos, pos+n, now); err != nil {
			return err
		}
		pos += n
	}
	return nil
}

// produce sends the records w.recs[w.order[i]] for i in [from, to) to b's
// partition in one produce request, retrying failures a retry may fix up to
// MaxAttempts tries.
func (s *Sink) produce(ctx context.Context, w *write, b batch, from, to int, now time.Time) error {
	// The first try builds its request in w's slots for these records;
	// later tries in fresh memory, since a request abandoned at its timeout
	// may still be reading the previous one.
	records, readers := w.records[from:to], w.readers[2*from:2*to]
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			records, readers = make([]kafkago.Record, to-from), make([]bytesReader, 2*(to-from))
		}
		for i, j := range w.order[from:to] {
			r := &w.recs[j]
			records[i] = kafkago.Record{Time: now, Key: readers[2*i].of(r.Key), Value: readers[2*i+1].of(r.Value), Headers: r.Headers}
		}
		rctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
		res, err := s.client.Produce(rctx, &kafkago.ProduceRequest{
			Topic:        b.topic,
			Partition:    b.partition,
			RequiredAcks: kafkago.RequireAll,
			Records:      kafkago.NewRecordReader(records...),
			Compression:  s.codec,
		})
		cancel()
		if err != nil {
			w.abandoned.Store(true) // unanswered: the request may still be sending
		}
		if err = produceError(res, err); err == nil {
			return nil
		}
		s.stats.Failed(err)
		if ctx.Err() != nil || !s.retriable(err) || attempt >= s.cfg.MaxAttempts {
			return err
		}
		if refreshesMetadata(err) {
			s.forgetLayout(b.topic)
		}
		if s.cfg.Logger != nil {
			s.cfg.Logger.Warn("kafka: produce failed, retrying", slog.String(logkey.Topic, b.topic),
				slog.Int(logkey.Partition, b.partition), slog.Int(logkey.Attempt, attempt), slog.Any(logkey.Err, err))
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return err
		}
		s.stats.Retried()
	}
}

// bytesReader is a record key or value; a produce request's readers share
// one allocation.
type bytesReader struct{ bytes.Reader }

func (*bytesReader) Close() error { return nil }

// of returns r reading b, or nil (a null key) when b is nil.
func (r *bytesReader) of(b []byte) kafkago.Bytes {
	if b == nil {
		return nil
	}
	r.Reset(b)
	return r
}

// produceError is the error of a produce request: the call's, the
// partition's or the records'.
func produceError(res *kafkago.ProduceResponse, err error) error {
	switch {
	case err != nil:
		return err
	case res == nil:
		return nil
	case res.Error != nil:
		return res.Error
	case len(res.RecordErrors) > 0:
		errs := make([]error, 0, len(res.RecordErrors))
		for _, i := range slices.Sorted(maps.Keys(res.RecordErrors)) {
			errs = append(errs, fmt.Errorf("record %d: %w", i, res.RecordErrors[i]))
		}
		return errors.Join(errs...)
	}
	return nil
}

// retriable reports whether another try may fix err: a network failure, a
// request timeout, a leader moving, a kafka error the protocol marks as
// temporary.
func (s *Sink) retriable(err error) bool {
	if sink.IsPermanent(err) || errors.Is(err, io.ErrClosedPipe) || refused(err) {
		return false
	}
	var kerr kafkago.Error
	if errors.As(err, &kerr) {
		if kerr == kafkago.UnknownTopicOrPartition && !s.cfg.AllowAutoTopicCreation {
			return false // a deleted topic; reported as unknown
		}
		return kerr.Temporary()
	}
	var nerr net.Error
	return errors.As(err, &nerr) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		refreshesMetadata(err)
}

// refused reports whether the brokers, or this client, refused the
// connection in a way only new settings can fix: a broker certificate
// that fails verification, SASL credentials or a mechanism the broker
// rejects, or a SCRAM exchange this client refuses.
func refused(err error) bool {
	return tlserr.VerifyFailed(err) ||
		errors.Is(err, kafkago.SASLAuthenticationFailed) || errors.Is(err, kafkago.UnsupportedSASLMechanism) ||
		errors.Is(err, kafkago.IllegalSASLState) ||
		errors.Is(err, errScramIterations) || errors.Is(err, errScramExtension)
}

// refreshesMetadata reports whether err says the partition layout changed.
func refreshesMetadata(err error) bool {
	return errors.Is(err, kafkago.NotLeaderForPartition) || errors.Is(err, kafkago.LeaderNotAvailable) ||
		errors.Is(err, kafkago.UnknownTopicOrPartition) || errors.Is(err, kafkago.FencedLeaderEpoch) ||
		errors.Is(err, kafkago.UnknownLeaderEpoch) ||
		errors.Is(err, protocol.ErrNoTopic) || errors.Is(err, protocol.ErrNoPartition) || errors.Is(err, protocol.ErrNoLeader)
}

// backoff is the wait before try attempt+1: 10ms, doubling, at most 1s.
func backoff(attempt int) time.Duration {
	return min(10*time.Millisecond<<min(attempt-1, 10), time.Second)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// topicParts is a topic's partitions, 0..n-1, as learned at a time.
type topicParts struct {
	parts []int
	at    time.Time
}

// partitionsTTL is how long a topic's partition count is used before it is
// asked again (of kafka-go's transport, whose own cache follows the
// brokers within seconds), so partitions added to a topic are used.
var partitionsTTL = time.Minute

// partitionsOf returns the partitions of each of topics, asking the brokers
// about the topics not cached, with retries.
func (s *Sink) partitionsOf(ctx context.Context, topics []string) ([][]int, error) {
	parts := make([][]int, len(topics))
	for attempt := 1; ; attempt++ {
		var unknown []string
		stale := true // every topic asked about has a count to fall back on
		now := time.Now()
		s.mu.RLock()
		for i, t := range topics {
			tp, ok := s.partitions[t]
			if !ok || now.Sub(tp.at) >= partitionsTTL {
				unknown = append(unknown, t)
				stale = stale && ok
			}
			parts[i] = tp.parts
		}
		s.mu.RUnlock()
		if len(unknown) == 0 {
			return parts, nil
		}
		err := s.learn(ctx, unknown)
		if err != nil && stale && ctx.Err() == nil {
			return parts, nil // asked again at the next Write
		}
		if err != nil && (ctx.Err() != nil || !s.retriable(err) || attempt >= s.cfg.MaxAttempts) {
			return nil, err
		}
		if err != nil {
			if err := sleep(ctx, backoff(attempt)); err != nil {
				return nil, err
			}
		}
	}
}

// learn asks the brokers for the partitions of topics — with
// AllowAutoTopicCreation, creating missing ones — and caches them. kafka-go's
// transport answers from its own metadata cache, which it refreshes every
// few seconds (or when forgetLayout drops it), unless it must ask the
// brokers to create a topic.
func (s *Sink) learn(ctx context.Context, topics []string) error {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	defer cancel()
	res, err := s.transport.RoundTrip(rctx, s.client.Addr,
		&metadataAPI.Request{TopicNames: topics, AllowAutoTopicCreation: s.cfg.AllowAutoTopicCreation})
	if err != nil {
		return fmt.Errorf("kafka: metadata for %s: %w", strings.Join(topics, ", "), err)
	}
	md, ok := res.(*metadataAPI.Response)
	if !ok {
		return fmt.Errorf("kafka: metadata for %s: unexpected response %T", strings.Join(topics, ", "), res)
	}
	var missing []string
	var errs []error
	for _, name := range topics {
		i := slices.IndexFunc(md.Topics, func(t metadataAPI.ResponseTopic) bool { return t.Name == name })
		code := int16(kafkago.UnknownTopicOrPartition)
		if i >= 0 {
			code = md.Topics[i].ErrorCode
		}
		switch {
		case code == int16(kafkago.UnknownTopicOrPartition) && !s.cfg.AllowAutoTopicCreation:
			missing = append(missing, name)
		case code == int16(kafkago.InvalidTopic):
			errs = append(errs, sink.Permanent(fmt.Errorf("kafka: topic %q: %w", name, kafkago.InvalidTopic)))
		case code != 0:
			errs = append(errs, fmt.Errorf("kafka: metadata for topic %q: %w", name, kafkago.Error(code)))
		case len(md.Topics[i].Partitions) == 0:
			errs = append(errs, fmt.Errorf("kafka: metadata for topic %q: no partitions: %w", name, kafkago.LeaderNotAvailable))
		default:
			s.remember(name, len(md.Topics[i].Partitions))
		}
	}
	if len(missing) > 0 {
		errs = append(errs, sink.Permanent(unknownTopics(missing)))
	}
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	err = errors.Join(errs...)
	for _, e := range errs {
		if sink.IsPermanent(e) {
			return sink.Permanent(err)
		}
	}
	return err
}

// remember caches the partition count n of topic.
func (s *Sink) remember(topic string, n int) {
	parts := make([]int, n)
	for i := range parts {
		parts[i] = i
	}
	s.mu.Lock()
	s.partitions[topic] = topicParts{parts, time.Now()}
	s.mu.Unlock()
}

// forget drops the cached partitions of topic, so the next Write asks again.
func (s *Sink) forget(topic string) {
	s.mu.Lock()
	delete(s.partitions, topic)
	s.mu.Unlock()
}

// forgetLayout drops what the sink and kafka-go's transport know of the
// cluster's layout after a produce to topic failed because a partition or
// its leader moved. The transport routes produce requests by a metadata
// cache it refreshes only every few seconds; closing its connections drops
// that cache, so the next request asks the brokers where the leaders are.
func (s *Sink) forgetLayout(topic string) {
	s.forget(topic)
	s.transport.CloseIdleConnections()
}

// record builds the Kafka record of m with the headers hdrs (three), its
// bytes appended to arena, and returns it with the arena.
func (s *Sink) record(m message.Message, hdrs []kafkago.Header, arena []byte) (kafkago.Message, []byte, error) {
	topic := s.Topic(m)
	if topic == "" {
		return kafkago.Message{}, arena, sink.Permanent(fmt.Errorf("kafka: no topic for a message of %s.%s", m.Metadata.TableSchema, m.Metadata.TableName))
	}
	var value []byte
	if s.appendEnc {
		start := len(arena)
		b, err := m.AppendJSON(arena)
		if err != nil {
			return kafkago.Message{}, arena, sink.Permanent(fmt.Errorf("kafka: encode message %s: %w", m.Metadata.IdempotencyKey, err))
		}
		arena, value = b, b[start:len(b):len(b)]
	} else {
		v, err := s.cfg.Encoder(m)
		if err != nil {
			return kafkago.Message{}, arena, sink.Permanent(fmt.Errorf("kafka: encode message %s: %w", m.Metadata.IdempotencyKey, err))
		}
		value = v
	}
	var key []byte
	if m.Metadata.HasPrimaryKey() {
		start := len(arena)
		arena = m.AppendKey(arena)
		key = arena[start:len(arena):len(arena)]
		if key == nil {
			key = []byte{} // an empty key value, not a null key
		}
	}
	var idem, action, table []byte
	arena, idem = appendField(arena, m.Metadata.IdempotencyKey)
	arena, action = appendField(arena, string(m.Action))
	start := len(arena)
	arena = append(append(append(arena, m.Metadata.TableSchema...), '.'), m.Metadata.TableName...)
	table = arena[start:len(arena):len(arena)]
	hdrs[0] = kafkago.Header{Key: HeaderIdempotencyKey, Value: idem}
	hdrs[1] = kafkago.Header{Key: HeaderAction, Value: action}
	hdrs[2] = kafkago.Header{Key: HeaderTable, Value: table}
	r := kafkago.Message{Topic: topic, Key: key, Value: value, Headers: hdrs}
	if size := recordSize(r); size > s.cfg.MaxMessageBytes {
		return kafkago.Message{}, arena, sink.Permanent(tooLarge(topic, size, s.cfg.MaxMessageBytes))
	}
	return r, arena, nil
}

// appendField appends v to arena and returns the arena and v's bytes in it.
func appendField(arena []byte, v string) ([]byte, []byte) {
	start := len(arena)
	arena = append(arena, v...)
	return arena, arena[start:len(arena):len(arena)]
}

// recordSize approximates the bytes a record takes in a batch.
func recordSize(r kafkago.Message) int {
	n := len(r.Key) + len(r.Value) + 32 // length prefixes, timestamp, offsets
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value) + 4
	}
	return n
}

func tooLarge(topic string, size, limit int) error {
	return fmt.Errorf("kafka: message for topic %q is %d bytes, over the %d-byte limit (Config.MaxMessageBytes)", topic, size, limit)
}

// classify turns the failures of a Write into the sink's error.
func (s *Sink) classify(ctx context.Context, failures []failure, recs []kafkago.Message) error {
	if len(failures) == 0 {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("kafka: write: %w", ctxErr)
	}
	// All-or-nothing: one failed batch fails the call. Report each
	// distinct failure once, with the topics it hit.
	type distinct struct {
		err    error
		topics []string
	}
	var ds []distinct
	permanent := false
	for _, f := range failures {
		e := f.err
		if errors.Is(e, io.ErrClosedPipe) {
			return sink.ErrClosed
		}
		if errors.Is(e, kafkago.MessageSizeTooLarge) || errors.Is(e, kafkago.RecordListTooLarge) ||
			errors.Is(e, kafkago.InvalidTopic) ||
			(errors.Is(e, kafkago.UnknownTopicOrPartition) && !s.cfg.AllowAutoTopicCreation) ||
			refused(e) {
			permanent = true
		}
		j := slices.IndexFunc(ds, func(d distinct) bool { return d.err.Error() == e.Error() })
		if j < 0 {
			ds = append(ds, distinct{err: e})
			j = len(ds) - 1
		}
		if !slices.Contains(ds[j].topics, f.topic) {
			ds[j].topics = append(ds[j].topics, f.topic)
		}
	}
	errs := make([]error, len(ds))
	for i, d := range ds {
		switch {
		case errors.Is(d.err, kafkago.MessageSizeTooLarge) || errors.Is(d.err, kafkago.RecordListTooLarge):
			largest := 0
			for _, r := range recs {
				if slices.Contains(d.topics, r.Topic) {
					largest = max(largest, recordSize(r))
				}
			}
			errs[i] = fmt.Errorf("kafka: the broker rejected a batch for topic %s as too large (largest record %d bytes; keep Config.MaxMessageBytes, now %d, at or below the topic's max.message.bytes): %w",
				strings.Join(d.topics, ", "), largest, s.cfg.MaxMessageBytes, d.err)
		case errors.Is(d.err, kafkago.UnknownTopicOrPartition) && !s.cfg.AllowAutoTopicCreation:
			s.forgetAll(d.topics)
			errs[i] = unknownTopics(d.topics)
		default:
			errs[i] = fmt.Errorf("kafka: write to %s: %w", strings.Join(d.topics, ", "), d.err)
		}
	}
	out := errors.Join(errs...)
	if len(errs) == 1 {
		out = errs[0]
	}
	if permanent {
		return sink.Permanent(out)
	}
	return out
}

// forgetAll drops the cached partitions of topics.
func (s *Sink) forgetAll(topics []string) {
	for _, t := range topics {
		s.forget(t)
	}
}

// unknownTopics is the error for the missing topics.
func unknownTopics(missing []string) error {
	quoted := make([]string, len(missing))
	for i, t := range missing {
		quoted[i] = strconv.Quote(t)
	}
	return fmt.Errorf("kafka: unknown topic %s (create it, or set Config.AllowAutoTopicCreation): %w", strings.Join(quoted, ", "), kafkago.UnknownTopicOrPartition)
}

// topicsOf lists the distinct topics of recs in first-seen order.
func topicsOf(recs []kafkago.Message) []string {
	var topics []string
	for _, r := range recs {
		if !slices.Contains(topics, r.Topic) {
			topics = append(topics, r.Topic)
		}
	}
	return topics
}

// Close stops the sink and closes its idle broker connections. It is
// idempotent and does not wait for Writes in flight; Write after Close
// returns [sink.ErrClosed].
func (s *Sink) Close(context.Context) error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.transport.CloseIdleConnections()
	})
	return nil
}

// Key returns the record key of m: its primary-key values, in
// Metadata.PrimaryKey order, in text form, joined with ":" — so every change
// of one row lands on one partition. The text form is
// [message.AppendKeyText]'s, as in idempotency keys. A message without
// primary-key columns has a nil key.
func Key(m message.Message) []byte {
	if !m.Metadata.HasPrimaryKey() {
		return nil
	}
	return m.AppendKey(make([]byte, 0, 32))
}
