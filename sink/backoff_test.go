package sink_test

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"strings"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
	"github.com/walrelay/walrelay/sink/webhook"
)

// TestDefaultBackoffAsDocumented checks each default retry policy against
// the numbers its doc comment states, so the two cannot drift apart.
func TestDefaultBackoffAsDocumented(t *testing.T) {
	for _, c := range []struct {
		file string
		fn   func() backoff.BackOff
		// what the doc says
		initial, max string
	}{
		{"backoff.go", sink.DefaultBackoff, "100 ms", "10 s"},
		{"webhook/config.go", webhook.DefaultBackoff, "250 ms", "3 minutes"},
	} {
		t.Run(c.file, func(t *testing.T) {
			b, ok := c.fn().(*backoff.ExponentialBackOff)
			if !ok {
				t.Fatalf("DefaultBackoff() is a %T, want *backoff.ExponentialBackOff", c.fn())
			}
			doc := funcDoc(t, c.file, "DefaultBackoff")
			checks := []struct {
				code, says string
			}{
				{duration(b.InitialInterval), "waits " + c.initial + " after the first failure"},
				{duration(b.MaxInterval), "up to " + c.max + " between attempts"},
				{fmt.Sprint(b.Multiplier), "half as long again"},
				{fmt.Sprintf("±%g%%", b.RandomizationFactor*100), "randomised by ±50%"},
				{fmt.Sprint(b.MaxElapsedTime), "never gives up"},
			}
			want := []string{duration(mustParse(c.initial)), duration(mustParse(c.max)), "1.5", "±50%", "0s"}
			for i, ch := range checks {
				if !strings.Contains(doc, ch.says) {
					t.Errorf("the doc comment does not say %q:\n%s", ch.says, doc)
				}
				if ch.code != want[i] {
					t.Errorf("the code has %s where the doc says %q", ch.code, ch.says)
				}
			}
		})
	}
}

// TestRetryDefaultsToDefaultBackoff: Retry without a Backoff waits as
// DefaultBackoff does, from 100 ms (±50%), not backoff's own 500 ms.
func TestRetryDefaultsToDefaultBackoff(t *testing.T) {
	var waits []time.Duration
	calls := 0
	s := sink.Retry(sink.Func(func(context.Context, ...message.Message) error {
		if calls++; calls < 3 {
			return errors.New("down")
		}
		return nil
	}), sink.RetryOptions{OnRetry: func(_ int, wait time.Duration, _ error) { waits = append(waits, wait) }})
	if err := s.Write(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(waits) != 2 || waits[0] < 50*time.Millisecond || waits[0] > 150*time.Millisecond {
		t.Errorf("waits %v, want two, the first 100 ms ±50%%", waits)
	}
}

func mustParse(s string) time.Duration {
	s = strings.NewReplacer(" minutes", "m", " ms", "ms", " s", "s").Replace(s)
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return d
}

func duration(d time.Duration) string { return d.String() }

// funcDoc returns the doc comment of the function name in file.
func funcDoc(t *testing.T, file, name string) string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == name && fd.Recv == nil {
			return strings.Join(strings.Fields(fd.Doc.Text()), " ")
		}
	}
	t.Fatalf("%s: no func %s", file, name)
	return ""
}
