package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	kafkago "github.com/segmentio/kafka-go"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"

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
	w         *kafkago.Writer
	transport *kafkago.Transport

	closed    atomic.Bool
	closeOnce sync.Once
	closeDone chan struct{}
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
	w := &kafkago.Writer{
		Addr:      kafkago.TCP(cfg.Brokers...),
		Transport: transport,
		// The Java client's default partitioner for keyed records; with
		// Consistent, records without a key all go to one partition
		// instead of a random one, so they keep their order too.
		Balancer:               kafkago.Murmur2Balancer{Consistent: true},
		RequiredAcks:           kafkago.RequireAll,
		Async:                  false,
		BatchSize:              cfg.BatchSize,
		BatchBytes:             int64(cfg.MaxMessageBytes),
		BatchTimeout:           cfg.BatchTimeout,
		MaxAttempts:            cfg.MaxAttempts,
		WriteTimeout:           cfg.WriteTimeout,
		ReadTimeout:            cfg.WriteTimeout,
		Compression:            codec,
		AllowAutoTopicCreation: cfg.AllowAutoTopicCreation,
	}
	if cfg.Logger != nil {
		log := cfg.Logger
		w.ErrorLogger = kafkago.LoggerFunc(func(format string, args ...any) {
			log.Debug("kafka writer", slog.String("detail", fmt.Sprintf(format, args...)))
		})
	}
	return &Sink{cfg: cfg, appendEnc: appendEnc, w: w, transport: transport, closeDone: make(chan struct{})}, nil
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
// broker's limit, a missing topic, an encoding failure — are marked with
// [sink.Permanent].
func (s *Sink) Write(ctx context.Context, msgs ...message.Message) error {
	if s.closed.Load() {
		return sink.ErrClosed
	}
	if len(msgs) == 0 {
		return nil
	}
	recs := make([]kafkago.Message, len(msgs))
	hdrs := make([]kafkago.Header, 3*len(msgs))
	// The keys, header values and (with the default encoder) values of this
	// Write share one buffer. It is never reused: kafka-go may still be
	// sending the records of a Write whose ctx ended.
	var arena []byte
	for i, m := range msgs {
		var err error
		if recs[i], arena, err = s.record(m, hdrs[3*i:3*i+3:3*i+3], arena); err != nil {
			return err
		}
		if i == 0 { // room for the rest, judged by the first
			arena = slices.Grow(arena, len(arena)*(len(msgs)-1)+len(arena)/2)
		}
	}
	return s.classify(ctx, s.w.WriteMessages(ctx, recs...), recs)
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
	if len(m.Metadata.PrimaryKey) > 0 {
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

// classify turns kafka-go's result into the sink's error.
func (s *Sink) classify(ctx context.Context, err error, recs []kafkago.Message) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("kafka: write: %w", ctxErr)
	}
	if errors.Is(err, io.ErrClosedPipe) {
		return sink.ErrClosed
	}
	var large kafkago.MessageTooLargeError
	if errors.As(err, &large) {
		size := recordSize(large.Message)
		return sink.Permanent(tooLarge(large.Message.Topic, size, s.cfg.MaxMessageBytes))
	}

	var werrs kafkago.WriteErrors
	if !errors.As(err, &werrs) {
		// Failures before any produce request: metadata (unknown topic)
		// or the brokers being unreachable.
		if errors.Is(err, kafkago.UnknownTopicOrPartition) && !s.cfg.AllowAutoTopicCreation {
			return sink.Permanent(s.unknownTopics(ctx, err, topicsOf(recs)))
		}
		return fmt.Errorf("kafka: write to %s: %w", strings.Join(topicsOf(recs), ", "), err)
	}

	// All-or-nothing: one failed record fails the call. Report each
	// distinct failure once, with the topics it hit.
	type failure struct {
		err    error
		topics []string
	}
	var failures []failure
	permanent := false
	for i, e := range werrs {
		if e == nil {
			continue
		}
		topic := recs[i].Topic
		if errors.Is(e, kafkago.MessageSizeTooLarge) || errors.Is(e, kafkago.RecordListTooLarge) ||
			errors.Is(e, kafkago.InvalidTopic) ||
			(errors.Is(e, kafkago.UnknownTopicOrPartition) && !s.cfg.AllowAutoTopicCreation) {
			permanent = true
		}
		j := slices.IndexFunc(failures, func(f failure) bool { return f.err.Error() == e.Error() })
		if j < 0 {
			failures = append(failures, failure{err: e})
			j = len(failures) - 1
		}
		if !slices.Contains(failures[j].topics, topic) {
			failures[j].topics = append(failures[j].topics, topic)
		}
	}
	errs := make([]error, len(failures))
	for i, f := range failures {
		if errors.Is(f.err, kafkago.MessageSizeTooLarge) || errors.Is(f.err, kafkago.RecordListTooLarge) {
			largest := 0
			for _, r := range recs {
				if slices.Contains(f.topics, r.Topic) {
					largest = max(largest, recordSize(r))
				}
			}
			errs[i] = fmt.Errorf("kafka: the broker rejected a batch for topic %s as too large (largest record %d bytes; keep Config.MaxMessageBytes, now %d, at or below the topic's max.message.bytes): %w",
				strings.Join(f.topics, ", "), largest, s.cfg.MaxMessageBytes, f.err)
			continue
		}
		errs[i] = fmt.Errorf("kafka: write to %s: %w", strings.Join(f.topics, ", "), f.err)
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

// unknownTopics names the missing topics among topics, asking the cluster
// without letting it create them.
func (s *Sink) unknownTopics(ctx context.Context, cause error, topics []string) error {
	missing := topics
	res, err := s.transport.RoundTrip(ctx, s.w.Addr, &metadataAPI.Request{TopicNames: topics, AllowAutoTopicCreation: false})
	if err == nil {
		if md, ok := res.(*metadataAPI.Response); ok {
			missing = nil
			for _, t := range md.Topics {
				if t.ErrorCode == int16(kafkago.UnknownTopicOrPartition) {
					missing = append(missing, t.Name)
				}
			}
			if len(missing) == 0 {
				missing = topics
			}
		}
	}
	quoted := make([]string, len(missing))
	for i, t := range missing {
		quoted[i] = strconv.Quote(t)
	}
	return fmt.Errorf("kafka: unknown topic %s (create it, or set Config.AllowAutoTopicCreation): %w", strings.Join(quoted, ", "), cause)
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

// Close flushes and stops the producer. It is idempotent; Write after
// Close returns [sink.ErrClosed]. If ctx ends first, Close returns its error and
// the flush finishes in the background.
func (s *Sink) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		go func() {
			defer close(s.closeDone)
			_ = s.w.Close() // kafka-go's Writer.Close always returns nil
			s.transport.CloseIdleConnections()
		}()
	})
	select {
	case <-s.closeDone:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kafka: close: %w", ctx.Err())
	}
}

// Key returns the record key of m: its primary-key values, in
// Metadata.PrimaryKey order, in text form, joined with ":" — so every change
// of one row lands on one partition. The text form is
// [message.AppendKeyText]'s, as in idempotency keys. A message without
// primary-key columns has a nil key.
func Key(m message.Message) []byte {
	if len(m.Metadata.PrimaryKey) == 0 {
		return nil
	}
	return m.AppendKey(make([]byte, 0, 32))
}
