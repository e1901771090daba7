package pull

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/walrelay/walrelay/sink/kafka"
)

// Defaults of [Config]'s zero values.
const (
	DefaultLimit    = 100
	DefaultMaxLimit = 1000
	// DefaultWait is how long a fetch or consume call without "timeout"
	// waits for records (Upstash's default, 1000 ms).
	DefaultWait              = time.Second
	DefaultMaxTimeout        = 30 * time.Second
	DefaultIdleTimeout       = 5 * time.Minute
	DefaultMaxFetchBytes     = 1 << 20
	DefaultMaxResponseBytes  = 4 << 20
	DefaultPrefetch          = 16
	DefaultMaxInstances      = 64
	DefaultSessionTimeout    = 30 * time.Second
	DefaultHeartbeatInterval = 3 * time.Second
	DefaultRealm             = "walrelay"
	// DefaultGroupPrefix is put before every consumer-group name a client
	// gives, so the API's groups never share Kafka group ids with other
	// applications' consumers.
	DefaultGroupPrefix = "walrelay.pull."
)

// DefaultTopicPattern is the topic allow-list used when [Config.Topics]
// is empty: the per-table topics package sink/kafka writes by default.
const DefaultTopicPattern = kafka.DefaultPrefix + ".*"

// Config configures a [Handler]. Brokers and either Username and Password
// or InsecureNoAuth are required; every other zero value is a default.
//
// A Config prints (%v, %+v, slog) with its passwords masked.
type Config struct {
	// Brokers are the Kafka bootstrap brokers, "host:port".
	Brokers []string
	// TLS and SASL secure the connection to the brokers, as in
	// [kafka.Config].
	TLS  *tls.Config
	SASL *kafka.SASL

	// Username and Password are the HTTP basic-auth credentials every
	// request must carry. Both are required unless InsecureNoAuth is set.
	Username string
	Password string
	// InsecureNoAuth serves without authentication. Only for tests and
	// trusted networks.
	InsecureNoAuth bool
	// Realm is the basic-auth realm; "" means [DefaultRealm].
	Realm string

	// Topics is the allow-list of topics the API serves: an entry is a
	// topic name, or a prefix followed by "*" ("sequin.*"; "*" alone
	// allows every topic). Other topics are answered 403 and left out of
	// /topics. Empty means [DefaultTopicPattern] alone.
	Topics []string
	// GroupPrefix is put before the consumer-group name of every consume,
	// commit and committed call: a client's group "g" is Kafka group
	// GroupPrefix+"g". "" means [DefaultGroupPrefix].
	GroupPrefix string

	// MaxLimit caps the records of one response; a larger limit is
	// lowered to it. 0 means [DefaultMaxLimit].
	MaxLimit int
	// MaxResponseBytes bounds the key, value and header bytes of the
	// records of one response; a response always holds at least one
	// record, however large. 0 means [DefaultMaxResponseBytes].
	MaxResponseBytes int
	// MaxTimeout caps the wait of a fetch or consume call; a larger
	// timeout is lowered to it. 0 means [DefaultMaxTimeout].
	MaxTimeout time.Duration
	// MaxFetchBytes bounds the bytes one Kafka fetch returns (Kafka still
	// returns a larger record whole); 0 means [DefaultMaxFetchBytes].
	MaxFetchBytes int
	// Prefetch is how many records a consumer instance reads ahead of its
	// client's calls; 0 means [DefaultPrefetch].
	Prefetch int
	// MaxInstances caps the consumer instances alive at once; a consume
	// call that would create one more is answered 429. 0 means
	// [DefaultMaxInstances].
	MaxInstances int

	// IdleTimeout is how long a consumer instance may go without a call
	// before it is closed and leaves its group (committing what it
	// delivered, when auto-commit is on); 0 means [DefaultIdleTimeout].
	IdleTimeout time.Duration
	// SessionTimeout and HeartbeatInterval tune consumer-group membership;
	// 0 means [DefaultSessionTimeout] and [DefaultHeartbeatInterval]. A
	// consume call may set its instance's session timeout with the
	// Kafka-Session-Timeout-Ms header.
	SessionTimeout    time.Duration
	HeartbeatInterval time.Duration

	// Logger receives debug records (instances created and reaped, failed
	// background commits); nil means silent.
	Logger *slog.Logger
}

const masked = "[redacted]"

// String prints c with its passwords masked.
func (c Config) String() string {
	type plain Config // no String method: no recursion
	p := plain(c.masked())
	sasl := "<nil>"
	if c.SASL != nil {
		sasl = fmt.Sprintf("&%+v", *p.SASL)
	}
	p.SASL = nil
	s := fmt.Sprintf("%+v", p)
	if c.TLS != nil {
		s = strings.Replace(s, "TLS:<nil>", "TLS:(set)", 1)
	}
	return strings.Replace(s, "SASL:<nil>", "SASL:"+sasl, 1)
}

// GoString is String, so %#v masks the passwords too.
func (c Config) GoString() string { return "pull.Config" + c.String() }

// LogValue logs c with its passwords masked.
func (c Config) LogValue() slog.Value {
	m := c.masked()
	attrs := []slog.Attr{
		slog.Any("brokers", m.Brokers),
		slog.Bool("tls", m.TLS != nil),
		slog.String("username", m.Username),
		slog.String("password", m.Password),
		slog.Bool("insecure_no_auth", m.InsecureNoAuth),
		slog.Any("topics", m.Topics),
		slog.String("group_prefix", m.GroupPrefix),
	}
	if m.SASL != nil {
		attrs = append(attrs, slog.Group("sasl", slog.String("mechanism", m.SASL.Mechanism),
			slog.String("username", m.SASL.Username), slog.String("password", m.SASL.Password)))
	}
	return slog.GroupValue(attrs...)
}

func (c Config) masked() Config {
	if c.Password != "" {
		c.Password = masked
	}
	if c.SASL != nil {
		s := *c.SASL
		if s.Password != "" {
			s.Password = masked
		}
		c.SASL = &s
	}
	c.TLS = nil // its keys are not for printing either
	return c
}

func (c Config) withDefaults() (Config, error) {
	if err := kafka.ValidateBrokers(c.Brokers); err != nil {
		return c, err
	}
	if !c.InsecureNoAuth && (c.Username == "" || c.Password == "") {
		return c, errors.New("Username and Password are required (or set InsecureNoAuth)")
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"MaxLimit", int64(c.MaxLimit)}, {"MaxResponseBytes", int64(c.MaxResponseBytes)},
		{"MaxTimeout", int64(c.MaxTimeout)}, {"MaxFetchBytes", int64(c.MaxFetchBytes)},
		{"Prefetch", int64(c.Prefetch)}, {"MaxInstances", int64(c.MaxInstances)},
		{"IdleTimeout", int64(c.IdleTimeout)}, {"SessionTimeout", int64(c.SessionTimeout)},
		{"HeartbeatInterval", int64(c.HeartbeatInterval)},
	} {
		if f.v < 0 {
			return c, fmt.Errorf("%s is negative", f.name)
		}
	}
	if c.MaxFetchBytes > math.MaxInt32 {
		return c, errors.New("MaxFetchBytes is over 2 GiB")
	}
	for _, t := range c.Topics {
		if t == "" || strings.Contains(strings.TrimSuffix(t, "*"), "*") {
			return c, fmt.Errorf("Topics entry %q is neither a topic name nor a prefix followed by *", t)
		}
	}
	if len(c.Topics) == 0 {
		c.Topics = []string{DefaultTopicPattern}
	}
	if c.GroupPrefix == "" {
		c.GroupPrefix = DefaultGroupPrefix
	}
	if c.Realm == "" {
		c.Realm = DefaultRealm
	}
	if c.MaxLimit == 0 {
		c.MaxLimit = DefaultMaxLimit
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if c.MaxTimeout == 0 {
		c.MaxTimeout = DefaultMaxTimeout
	}
	if c.MaxFetchBytes == 0 {
		c.MaxFetchBytes = DefaultMaxFetchBytes
	}
	if c.Prefetch == 0 {
		c.Prefetch = DefaultPrefetch
	}
	if c.MaxInstances == 0 {
		c.MaxInstances = DefaultMaxInstances
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.HeartbeatInterval >= c.SessionTimeout {
		return c, errors.New("HeartbeatInterval must be shorter than SessionTimeout")
	}
	return c, nil
}

// topicAllowed reports whether the allow-list serves topic.
func (c Config) topicAllowed(topic string) bool {
	for _, t := range c.Topics {
		if p, ok := strings.CutSuffix(t, "*"); ok {
			if strings.HasPrefix(topic, p) {
				return true
			}
		} else if t == topic {
			return true
		}
	}
	return false
}
