package main

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
)

// jsonLines is a sink appending one JSON message per line to a file.
type jsonLines struct {
	mu sync.Mutex
	f  *os.File // nil once closed
}

var _ sink.Sink = (*jsonLines)(nil)

func openJSONLines(path string) (*jsonLines, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("jsonlines: %w", err)
	}
	return &jsonLines{f: f}, nil
}

// Write appends msgs and syncs the file: nil means they are on disk. If it
// fails midway, the retried batch appends again; readers skip lines whose
// idempotency key they have seen.
func (s *jsonLines) Write(ctx context.Context, msgs ...message.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("jsonlines: %w", err)
	}
	var buf []byte
	for _, m := range msgs {
		var err error
		if buf, err = m.AppendJSON(buf); err != nil {
			return sink.Permanent(fmt.Errorf("jsonlines: %w", err)) // retrying cannot fix it
		}
		buf = append(buf, '\n')
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return sink.ErrClosed
	}
	if _, err := s.f.Write(buf); err != nil {
		return fmt.Errorf("jsonlines: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("jsonlines: sync: %w", err)
	}
	return nil
}

// Close closes the file; closing twice is fine.
func (s *jsonLines) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}
