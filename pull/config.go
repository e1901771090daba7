package pull

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/walrelay/walrelay/sink/kafka"
)

// Defaults of [Config]'s zero values.
const (
	DefaultLimit             = 100
	DefaultMaxLimit          = 1000
	DefaultTimeout           = 0 // consume returns at once when nothing is ready
	DefaultMaxTimeout        = 30 * time.Second
	DefaultIdleTimeout       = 5 * time.Minute
	DefaultMaxFetchBytes     = 4 << 20
	DefaultSessionTimeout    = 30 * time.Second
	DefaultHeartbeatInterval = 3 * time.Second
	DefaultRealm             = "walrelay"
)

// Config configures a [Handler]. Brokers and either Username and Password
// or InsecureNoAuth are required; every other zero value is a default.
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

	// MaxLimit caps the records of one response; a larger limit is
	// lowered to it. 0 means [DefaultMaxLimit].
	MaxLimit int
	// MaxTimeout caps the wait of a consume call; a larger timeout is
	// lowered to it. 0 means [DefaultMaxTimeout].
	MaxTimeout time.Duration
	// MaxFetchBytes bounds the bytes one Kafka fetch returns; 0 means
	// [DefaultMaxFetchBytes].
	MaxFetchBytes int

	// IdleTimeout is how long a consumer instance may go without a call
	// before it is closed and leaves its group; 0 means
	// [DefaultIdleTimeout].
	IdleTimeout time.Duration
	// SessionTimeout and HeartbeatInterval tune consumer-group membership;
	// 0 means [DefaultSessionTimeout] and [DefaultHeartbeatInterval].
	SessionTimeout    time.Duration
	HeartbeatInterval time.Duration

	// Logger receives debug records (instances created and reaped); nil
	// means silent.
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if err := kafka.ValidateBrokers(c.Brokers); err != nil {
		return c, err
	}
	if !c.InsecureNoAuth && (c.Username == "" || c.Password == "") {
		return c, errors.New("Username and Password are required (or set InsecureNoAuth)")
	}
	for name, v := range map[string]int64{
		"MaxLimit": int64(c.MaxLimit), "MaxTimeout": int64(c.MaxTimeout), "MaxFetchBytes": int64(c.MaxFetchBytes),
		"IdleTimeout": int64(c.IdleTimeout), "SessionTimeout": int64(c.SessionTimeout),
		"HeartbeatInterval": int64(c.HeartbeatInterval),
	} {
		if v < 0 {
			return c, fmt.Errorf("%s is negative", name)
		}
	}
	if c.Realm == "" {
		c.Realm = DefaultRealm
	}
	if c.MaxLimit == 0 {
		c.MaxLimit = DefaultMaxLimit
	}
	if c.MaxTimeout == 0 {
		c.MaxTimeout = DefaultMaxTimeout
	}
	if c.MaxFetchBytes == 0 {
		c.MaxFetchBytes = DefaultMaxFetchBytes
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
