package sink

import (
	"context"
	"errors"

	"github.com/walrelay/walrelay/message"
)

// Sink receives messages. Write is all-or-nothing: it returns nil only when
// every message is durable at the destination; on error the caller retries
// the whole batch, so a Sink must tolerate duplicates. Messages are given in
// stream order and a Sink must keep that order per row.
type Sink interface {
	Write(ctx context.Context, msgs ...message.Message) error
	Close(ctx context.Context) error
}

// ErrClosed is returned by the Write of a sink that has been closed.
var ErrClosed = errors.New("sink: closed")

// Func adapts a function to a [Sink] whose Close does nothing.
type Func func(ctx context.Context, msgs ...message.Message) error

// Write calls f.
func (f Func) Write(ctx context.Context, msgs ...message.Message) error { return f(ctx, msgs...) }

// Close does nothing.
func (f Func) Close(context.Context) error { return nil }

// Encoder turns a message into the bytes a byte-oriented sink sends.
type Encoder func(m message.Message) ([]byte, error)

// JSON encodes the seed shape, [message.Message.MarshalJSON]. It is the
// default encoder of every sink.
func JSON(m message.Message) ([]byte, error) { return m.MarshalJSON() }

// permanent marks an error that retrying cannot fix.
type permanent struct{ err error }

func (p *permanent) Error() string { return p.err.Error() }
func (p *permanent) Unwrap() error { return p.err }

// Permanent marks err as one that retrying will not fix (a rejected payload,
// a missing topic): delivery loops stop and return it instead of retrying.
// Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanent{err}
}

// IsPermanent reports whether err, or any error it wraps, was marked with
// [Permanent].
func IsPermanent(err error) bool {
	var p *permanent
	return errors.As(err, &p)
}
