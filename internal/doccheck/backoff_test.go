package doccheck

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"strings"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/walrelay/walrelay/sink"
	"github.com/walrelay/walrelay/sink/webhook"
)

// documentedDefault is a default retry policy and what the doc comment of
// the function making it, in file, says of it.
type documentedDefault struct {
	file         string
	policy       func() backoff.BackOff
	initial, max string
}

var documentedDefaults = []documentedDefault{
	{"../../sink/backoff.go", sink.DefaultBackoff, "100 ms", "10 s"},
	{"../../sink/webhook/config.go", webhook.DefaultBackoff, "250 ms", "3 minutes"},
}

// TestDefaultBackoffAsDocumented checks each default retry policy against
// the numbers its doc comment states, so the two cannot drift apart.
func TestDefaultBackoffAsDocumented(t *testing.T) {
	for _, c := range documentedDefaults {
		t.Run(c.file, func(t *testing.T) {
			b, ok := c.policy().(*backoff.ExponentialBackOff)
			if !ok {
				t.Fatalf("DefaultBackoff() is a %T, want *backoff.ExponentialBackOff", c.policy())
			}
			doc := funcDoc(t, c.file, "DefaultBackoff")
			checks := []struct {
				code, says string
			}{
				{b.InitialInterval.String(), "waits " + c.initial + " after the first failure"},
				{b.MaxInterval.String(), "up to " + c.max + " between attempts"},
				{fmt.Sprint(b.Multiplier), "half as long again"},
				{fmt.Sprintf("±%g%%", b.RandomizationFactor*100), "randomised by ±50%"},
				{fmt.Sprint(b.MaxElapsedTime), "never gives up"},
			}
			want := []string{mustParse(c.initial).String(), mustParse(c.max).String(), "1.5", "±50%", "0s"}
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

func mustParse(s string) time.Duration {
	s = strings.NewReplacer(" minutes", "m", " ms", "ms", " s", "s").Replace(s)
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return d
}

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
