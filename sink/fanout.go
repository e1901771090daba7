package sink

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/walrelay/walrelay/message"
)

// Fanout returns a sink that writes every batch to all of sinks, at the same
// time, and succeeds only when all of them succeed. On failure it returns a
// [*FanoutError] holding each failing sink's error; it is permanent (see
// [IsPermanent]) when any of them is. A retried batch goes to every sink
// again, including those that had accepted it, which the duplicate rule of
// [Sink] allows. Close closes all the sinks and joins their errors.
//
// The sinks share the messages of a batch, so none of them may modify them.
// Fanout with no sinks accepts and drops everything.
func Fanout(sinks ...Sink) Sink {
	return &fanout{sinks: slices.Clone(sinks)}
}

type fanout struct {
	sinks []Sink
}

// FanoutError reports the sinks of a [Fanout] that failed a Write.
type FanoutError struct {
	// Errs holds, in the order the sinks were given to Fanout, the error of
	// each sink that failed, annotated with its position.
	Errs []error
	// Sinks is how many sinks the batch was written to.
	Sinks int
}

func (e *FanoutError) Error() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "sink: fanout: %d of %d sinks failed: ", len(e.Errs), e.Sinks)
	for i, err := range e.Errs {
		if i > 0 {
			sb.WriteString("; ")
		}
		sb.WriteString(err.Error())
	}
	return sb.String()
}

// Unwrap returns the sinks' errors, so that [errors.Is], [errors.As] and
// [IsPermanent] see each of them.
func (e *FanoutError) Unwrap() []error { return e.Errs }

func (f *fanout) Write(ctx context.Context, msgs ...message.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sink: fanout: %w", err)
	}
	errs := make([]error, len(f.sinks))
	if len(f.sinks) == 1 {
		errs[0] = f.sinks[0].Write(ctx, msgs...)
	} else {
		var wg sync.WaitGroup
		for i, s := range f.sinks {
			wg.Go(func() { errs[i] = s.Write(ctx, msgs...) })
		}
		wg.Wait()
	}
	var failed []error
	for i, err := range errs {
		if err != nil {
			failed = append(failed, fmt.Errorf("sink %d: %w", i, err))
		}
	}
	if failed == nil {
		return nil
	}
	return &FanoutError{Errs: failed, Sinks: len(f.sinks)}
}

func (f *fanout) Close(ctx context.Context) error {
	errs := make([]error, len(f.sinks))
	for i, s := range f.sinks {
		if err := s.Close(ctx); err != nil {
			errs[i] = fmt.Errorf("sink: fanout: close sink %d: %w", i, err)
		}
	}
	return errors.Join(errs...)
}
