package cdc

import (
	"context"
	"errors"

	"github.com/walrelay/walrelay/message"
)

// ErrClosed is returned by Next after Close.
var ErrClosed = errors.New("cdc: stream closed")

// Config configures a Stream.
type Config struct {
	ConnString  string
	Slot        string
	Publication string
}

// Stream is a logical replication stream.
type Stream struct{}

// Open opens a stream.
func Open(ctx context.Context, cfg Config) (*Stream, error) { return nil, errors.New("todo") }

// Next returns the next message.
func (s *Stream) Next(ctx context.Context) (message.Message, error) {
	return message.Message{}, errors.New("todo")
}

// Ack acknowledges m and every message returned before it.
func (s *Stream) Ack(m message.Message) {}

// Close closes the stream.
func (s *Stream) Close() error { return nil }
