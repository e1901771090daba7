package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/internal/testtime"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
	"github.com/walrelay/walrelay/sink/sinktest"
)

func TestMain(m *testing.M) {
	deliveryWait = testtime.Bound(deliveryWait)
	os.Exit(pgtest.Main(m))
}

func TestExample(t *testing.T) {
	t.Setenv("DATABASE_URL", pgtest.NewDatabase(t))
	t.Setenv("SLOT", pgtest.Name(t, "slot"))
	t.Setenv("OUT", filepath.Join(t.TempDir(), "out.jsonl"))
	ctx, cancel := context.WithTimeout(t.Context(), testtime.Bound(2*time.Minute))
	defer cancel()
	var out strings.Builder
	if err := runTo(ctx, &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out.String())
	}
	want := `insert public.custom_sink_example {"id":1,"note":"first"}
insert public.custom_sink_example {"id":2,"note":"second"}
update public.custom_sink_example {"id":1,"note":"first, edited"}
delete public.custom_sink_example {"id":2,"note":null}
`
	if !strings.HasSuffix(out.String(), want) {
		t.Fatalf("output:\n%s\nwant it to end with:\n%s", out.String(), want)
	}
}

// The example's sink passes the conformance suite.
func TestJSONLinesConformance(t *testing.T) {
	sinktest.Run(t, sinktest.Harness{
		New: func(t *testing.T) (sink.Sink, func(context.Context) ([]message.Message, error)) {
			path := filepath.Join(t.TempDir(), "out.jsonl")
			s, err := openJSONLines(path)
			if err != nil {
				t.Fatal(err)
			}
			return s, func(context.Context) ([]message.Message, error) {
				b, err := os.ReadFile(path)
				if err != nil {
					return nil, err
				}
				var msgs []message.Message
				for line := range strings.Lines(string(b)) {
					var m message.Message
					if err := m.UnmarshalJSON([]byte(line)); err != nil {
						return nil, err
					}
					msgs = append(msgs, m)
				}
				return msgs, nil
			}
		},
	})
}
