package kafka

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"

	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
)

// Defaults of [Config]'s zero values.
const (
	DefaultPrefix          = "sequin"
	DefaultBatchSize       = 1000
	DefaultMaxAttempts     = 3
	DefaultMaxMessageBytes = 1 << 20
	DefaultWriteTimeout    = 10 * time.Second
	DefaultDialTimeout     = 5 * time.Second
)

// Config configures a [Sink]. Only Brokers is required; the zero value of
// every other field is a safe default.
type Config struct {
	// Brokers are the bootstrap brokers, "host:port".
	Brokers []string

	// Topic, when set, receives every message. Otherwise TopicFunc, when
	// set, names the topic of each message; otherwise each table has its own
	// topic "<Prefix>.<schema>.<table>".
	Topic     string
	TopicFunc func(message.Message) string
	// Prefix of per-table topics; "" means [DefaultPrefix] ("sequin").
	Prefix string

	// Encoder turns a message into the record value; nil means [sink.JSON].
	Encoder sink.Encoder

	// Connection security: TLS when non-nil; SASL authentication when non-nil.
	TLS  *tls.Config
	SASL *SASL

	// Compression of record batches; "" means [CompressionNone].
	Compression Compression

	// AllowAutoTopicCreation lets the broker create missing topics (when
	// the broker allows it too). Off by default: a missing topic is a
	// permanent error naming it.
	AllowAutoTopicCreation bool

	// BatchSize caps the records of one produce request per partition;
	// 0 means [DefaultBatchSize]. A Write larger than that is split into
	// several requests, in order.
	BatchSize int
	// MaxMessageBytes is the largest record (key, value and headers) and
	// the largest produce request; 0 means [DefaultMaxMessageBytes]. Keep it
	// at or below the topic's max.message.bytes.
	MaxMessageBytes int
	// MaxAttempts bounds the tries of one produce request (and of the
	// metadata request that learns a topic's partitions) inside one Write
	// before Write returns an error; 0 means [DefaultMaxAttempts]. Only
	// failures a retry may fix are retried — a network error, a timeout, a
	// leader moving — after 10ms, doubling up to 1s. The caller's retry loop
	// (cdc.Run) retries beyond that.
	MaxAttempts int
	// WriteTimeout bounds one produce (or metadata) request, each try
	// apart; 0 means [DefaultWriteTimeout].
	WriteTimeout time.Duration
	// DialTimeout bounds connecting to a broker; 0 means [DefaultDialTimeout].
	DialTimeout time.Duration

	// Logger receives debug records about failed produce attempts; nil
	// means silent.
	Logger *slog.Logger
}

// Compression names a record-batch compression codec.
type Compression string

// The supported codecs.
const (
	CompressionNone   Compression = "none"
	CompressionGzip   Compression = "gzip"
	CompressionSnappy Compression = "snappy"
	CompressionLz4    Compression = "lz4"
	CompressionZstd   Compression = "zstd"
)

// codec returns kafka-go's codec for c.
func (c Compression) codec() (compress.Compression, error) {
	switch c {
	case "", CompressionNone:
		return 0, nil
	case CompressionGzip:
		return compress.Gzip, nil
	case CompressionSnappy:
		return compress.Snappy, nil
	case CompressionLz4:
		return compress.Lz4, nil
	case CompressionZstd:
		return compress.Zstd, nil
	}
	return 0, fmt.Errorf("unknown compression %q (want none, gzip, snappy, lz4 or zstd)", string(c))
}

// SASL mechanisms.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// SASL holds SASL credentials for the brokers.
type SASL struct {
	// Mechanism is [SASLPlain], [SASLScramSHA256] or [SASLScramSHA512]
	// (case-insensitive; "plain", "scram-sha-256", "scram-sha-512").
	Mechanism string
	Username  string
	Password  string
}

// masked is what String, GoString and LogValue show for a password that is
// set (the value net/url's URL.Redacted shows too).
const masked = "xxxxx"

func mask(secret string) string {
	if secret == "" {
		return ""
	}
	return masked
}

// String describes s with its password masked, so that printing a Config
// or its SASL with %v or %+v never shows the password.
func (s SASL) String() string {
	return "{Mechanism:" + s.Mechanism + " Username:" + s.Username + " Password:" + mask(s.Password) + "}"
}

// GoString is String for %#v.
func (s SASL) GoString() string {
	return fmt.Sprintf("kafka.SASL{Mechanism:%q, Username:%q, Password:%q}", s.Mechanism, s.Username, mask(s.Password))
}

// LogValue logs s with its password masked.
func (s SASL) LogValue() slog.Value {
	return slog.GroupValue(slog.String("mechanism", s.Mechanism), slog.String("username", s.Username),
		slog.String("password", mask(s.Password)))
}

// Build validates s and returns the kafka-go SASL mechanism it describes,
// for programs (such as package pull) that build their own kafka-go clients
// with the same credentials.
func (s SASL) Build() (sasl.Mechanism, error) {
	if s.Username == "" || s.Password == "" {
		return nil, errors.New("sasl: username and password are required")
	}
	switch strings.ToUpper(s.Mechanism) {
	case SASLPlain:
		return plain.Mechanism{Username: s.Username, Password: s.Password}, nil
	case SASLScramSHA256:
		return &scramMechanism{name: SASLScramSHA256, hash: sha256.New, username: s.Username, password: s.Password}, nil
	case SASLScramSHA512:
		return &scramMechanism{name: SASLScramSHA512, hash: sha512.New, username: s.Username, password: s.Password}, nil
	}
	return nil, fmt.Errorf("sasl: unknown mechanism %q (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", s.Mechanism)
}

// Transport returns a kafka-go transport for brokers secured by tlsConfig
// and creds (either may be nil). Package pull uses it to share this
// package's connection settings.
func Transport(tlsConfig *tls.Config, creds *SASL, dialTimeout time.Duration) (*kafkago.Transport, error) {
	t := &kafkago.Transport{
		ClientID:    "walrelay",
		TLS:         tlsConfig,
		DialTimeout: dialTimeout,
	}
	if t.DialTimeout <= 0 {
		t.DialTimeout = DefaultDialTimeout
	}
	if creds != nil {
		m, err := creds.Build()
		if err != nil {
			return nil, err
		}
		t.SASL = m
	}
	return t, nil
}

// ValidateBrokers checks a broker list: non-empty, each "host:port".
func ValidateBrokers(brokers []string) error {
	if len(brokers) == 0 {
		return errors.New("no brokers")
	}
	for _, b := range brokers {
		i := strings.LastIndexByte(b, ':')
		if i <= 0 || i == len(b)-1 {
			return fmt.Errorf("broker %q is not host:port", b)
		}
	}
	return nil
}

// String describes c for logs and errors: brokers, topics, security and
// limits, with the SASL password masked and the TLS settings (which may
// hold a private key) reduced to whether TLS is on.
func (c Config) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "{Brokers:%v", c.Brokers)
	if c.Topic != "" {
		fmt.Fprintf(&b, " Topic:%s", c.Topic)
	}
	if c.TopicFunc != nil {
		b.WriteString(" TopicFunc:set")
	}
	if c.Prefix != "" {
		fmt.Fprintf(&b, " Prefix:%s", c.Prefix)
	}
	fmt.Fprintf(&b, " TLS:%t", c.TLS != nil)
	if c.SASL != nil {
		b.WriteString(" SASL:" + c.SASL.String())
	}
	if c.Compression != "" {
		fmt.Fprintf(&b, " Compression:%s", c.Compression)
	}
	if c.AllowAutoTopicCreation {
		b.WriteString(" AllowAutoTopicCreation:true")
	}
	for _, f := range []struct {
		name string
		v    any
		set  bool
	}{
		{"BatchSize", c.BatchSize, c.BatchSize != 0},
		{"MaxMessageBytes", c.MaxMessageBytes, c.MaxMessageBytes != 0},
		{"MaxAttempts", c.MaxAttempts, c.MaxAttempts != 0},
		{"WriteTimeout", c.WriteTimeout, c.WriteTimeout != 0},
		{"DialTimeout", c.DialTimeout, c.DialTimeout != 0},
	} {
		if f.set {
			fmt.Fprintf(&b, " %s:%v", f.name, f.v)
		}
	}
	b.WriteByte('}')
	return b.String()
}

// GoString is String for %#v.
func (c Config) GoString() string { return "kafka.Config" + c.String() }

// LogValue logs c as String describes it, with the SASL password masked.
func (c Config) LogValue() slog.Value {
	attrs := []slog.Attr{slog.Any("brokers", c.Brokers)}
	if c.Topic != "" {
		attrs = append(attrs, slog.String("topic", c.Topic))
	}
	if c.Prefix != "" {
		attrs = append(attrs, slog.String("prefix", c.Prefix))
	}
	attrs = append(attrs, slog.Bool("tls", c.TLS != nil))
	if c.SASL != nil {
		attrs = append(attrs, slog.Attr{Key: "sasl", Value: c.SASL.LogValue()})
	}
	if c.Compression != "" {
		attrs = append(attrs, slog.String("compression", string(c.Compression)))
	}
	return slog.GroupValue(attrs...)
}

// withDefaults validates c and fills in defaults.
func (c Config) withDefaults() (Config, error) {
	if err := ValidateBrokers(c.Brokers); err != nil {
		return c, err
	}
	if c.Topic != "" && c.TopicFunc != nil {
		return c, errors.New("Topic and TopicFunc are exclusive")
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.Encoder == nil {
		c.Encoder = sink.JSON
	}
	if _, err := c.Compression.codec(); err != nil {
		return c, err
	}
	for name, v := range map[string]int64{
		"BatchSize":       int64(c.BatchSize),
		"MaxMessageBytes": int64(c.MaxMessageBytes), "MaxAttempts": int64(c.MaxAttempts),
		"WriteTimeout": int64(c.WriteTimeout), "DialTimeout": int64(c.DialTimeout),
	} {
		if v < 0 {
			return c, fmt.Errorf("%s is negative", name)
		}
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	return c, nil
}
