package cdc

import (
	"errors"
	"testing"
)

// TestCloseReturnsPermanentFailure: a stream that stopped on a permanent
// error reports it from Close, every time; a running stream's Close
// returns nil.
func TestCloseReturnsPermanentFailure(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key)")
	cfg := e.config()
	cfg.Truncate = TruncateFail
	s := e.open(cfg)
	e.exec("insert into t values (1)", "truncate t")
	next(t, s, 1)
	if _, err := s.Next(t.Context()); err == nil {
		t.Fatal("Next after the TRUNCATE returned a message")
	}
	for i := range 2 {
		var te *TruncateError
		if err := s.Close(); !errors.As(err, &te) {
			t.Fatalf("Close #%d = %v, want the *TruncateError that stopped the stream", i+1, err)
		}
	}

	cfg.Slot += "_running"
	r := e.open(cfg)
	if err := r.Close(); err != nil {
		t.Errorf("Close of a running stream = %v, want nil", err)
	}
}
