package main

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// envOf is a getenv over vars.
func envOf(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

const minimalConfig = `stream:
  slot: s
  publication: p
sinks:
  - stdout: {}
`

func TestConfigExampleIsValid(t *testing.T) {
	c, err := parseConfig("walrelay.example.yaml", []byte(exampleConfig), envOf(map[string]string{
		"WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "PULL_PASSWORD": "pw",
	}))
	if err != nil {
		t.Fatalf("the example config: %v", err)
	}
	if c.Stream.Slot == "" || len(c.Sinks) != 3 || len(c.Backfills) != 1 || c.Pull == nil {
		t.Fatalf("the example config parsed as %+v", c)
	}
	if got := c.Sinks[0].Webhook.URL; got != "http://localhost:8000/walrelay" {
		t.Errorf("webhook url with its default = %q", got)
	}
	if time.Duration(c.Delivery.Drain) != 20*time.Second {
		t.Errorf("drain = %v", time.Duration(c.Delivery.Drain))
	}
	p, err := build(c, "", newLogger(&bytes.Buffer{}, c.Log), io.Discard)
	if err != nil {
		t.Fatalf("build the example: %v", err)
	}
	if got := strings.Join(p.sinkNames(), ","); got != "orders-webhook (webhook),everything-to-kafka (kafka),deletes (stdout)" {
		t.Errorf("sinks = %s", got)
	}
	p.close(t.Context())
}

func TestConfigErrorsNameTheLine(t *testing.T) {
	cases := []struct {
		name, yaml string
		env        map[string]string
		want       []string
	}{
		{"unknown key", "stream:\n  slot: s\n  publicaton: p\nsinks:\n  - stdout: {}\n", nil,
			[]string{`x.yaml:3: unknown key "publicaton" in stream (did you mean "publication"?)`}},
		{"unknown top-level key", minimalConfig + "metrics:\n  listen: :9090\n", nil,
			[]string{`x.yaml:6: unknown key "metrics" (known: database, stream, backfills, sinks, delivery, http, pull, log)`}},
		{"unknown key in a list item", minimalConfig + "  - webhook: {url: 'http://h/x', secrett: a}\n", nil,
			[]string{`x.yaml:6: unknown key "secrett" in sinks[1].webhook (did you mean "secret"?)`}},
		{"unset variable", "stream:\n  slot: s\n  publication: p\nsinks:\n  - webhook:\n      url: http://h/x\n      secret: ${HOOK_SECRET}\n", nil,
			[]string{`x.yaml:7: environment variable HOOK_SECRET is not set`}},
		{"unterminated reference", minimalConfig + "database: ${DB\n", nil, []string{`x.yaml:6:`, `without its closing }`}},
		{"bad variable name", minimalConfig + "database: ${1DB}\n", nil, []string{`x.yaml:6: ${1DB} is not a variable reference`}},
		{"bad duration", minimalConfig + "delivery:\n  drain: 5 minutes\n", nil,
			[]string{`x.yaml:7: delivery.drain: "5 minutes" is not a duration`}},
		{"negative duration", minimalConfig + "delivery:\n  batch_timeout: -1s\n", nil, []string{`x.yaml:7: delivery.batch_timeout: duration -1s is negative`}},
		{"wrong type", minimalConfig + "delivery:\n  batch_size: many\n", nil, []string{`x.yaml:7: delivery.batch_size: cannot unmarshal`}},
		{"required", "stream:\n  slot: s\nsinks:\n  - stdout: {}\n", nil, []string{`x.yaml:1: stream.publication: is required`}},
		{"no sinks", "stream:\n  slot: s\n  publication: p\n", nil, []string{`x.yaml: sinks: at least one sink`}},
		{"two kinds", "stream: {slot: s, publication: p}\nsinks:\n  - stdout: {}\n    kafka: {brokers: ['k:9092']}\n", nil,
			[]string{`x.yaml:3: sinks[0]: needs exactly one of webhook, kafka or stdout`}},
		{"no kind", "stream: {slot: s, publication: p}\nsinks:\n  - name: x\n", nil, []string{`x.yaml:3: sinks[0]: needs exactly one`}},
		{"bad action", minimalConfig + "    actions: [insert, upsert]\n", nil, []string{`x.yaml:6: sinks[0].actions[1]: "upsert" is not insert`}},
		{"bad table", minimalConfig + "    tables: ['a.b.c']\n", nil, []string{`x.yaml:6: sinks[0].tables[0]:`}},
		{"bad webhook url", minimalConfig + "  - webhook: {url: 'ftp://user:hunter2@h/x'}\n", nil,
			[]string{`x.yaml:6: sinks[1].webhook.url: is not an http:// or https:// URL`}},
		{"bad slot name", "stream: {slot: My-Slot, publication: p}\nsinks: [{stdout: {}}]\n", nil, []string{`x.yaml:1: stream: `, `Slot "My-Slot" may contain only`}},
		{"library rejects the webhook", minimalConfig + "  - webhook:\n      url: http://h/x\n      secret: not-base64!\n", nil,
			[]string{`x.yaml:6: sinks[1].webhook: `, "invalid secret"}},
		{"duplicate backfill id", minimalConfig + "backfills:\n  - {table: a, id: x}\n  - {table: b, id: x}\n", nil,
			[]string{`x.yaml:8: backfills[1].id: "x" is the id of another backfill`}},
		{"bad listen", minimalConfig + "http: {listen: 9090}\n", nil, []string{`x.yaml:6: http.listen: "9090" is not host:port`}},
		{"empty file", "", nil, []string{`x.yaml: the file is empty`}},
		{"not yaml", "stream: [\n", nil, []string{`x.yaml:`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig("x.yaml", []byte(tc.yaml), envOf(tc.env))
			if err == nil {
				_, err = build(c, "", newLogger(&bytes.Buffer{}, logConfig{}), io.Discard)
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows a secret: %v", err)
			}
		})
	}
}

func TestConfigEnvExpansion(t *testing.T) {
	env := envOf(map[string]string{
		"SLOT": "from_env", "BATCH": "42", "SECRET": "a#b: 'c' ${NOT}", "NULLISH": "null", "PORT": "9091",
	})
	const yaml = `stream:
  slot: ${SLOT}
  publication: pub_${SLOT}
  consumer_name: ${NULLISH}
sinks:
  - webhook:
      url: http://h/x
      headers: {X-Token: "${SECRET}", X-Price: "$$5 and $5 and $${SLOT}", X-Default: "${UNSET:-fallback}", X-Empty: "[${UNSET:-}]"}
delivery:
  batch_size: ${BATCH}
  drain: ${DRAIN:-3s}
http:
  listen: 127.0.0.1:${PORT}
`
	// With a level of "null", which is no level: that is the one error.
	_, err := parseConfig("x.yaml", []byte(yaml+"log:\n  level: ${NULLISH}\n"), env)
	if err == nil {
		t.Fatal("log.level null accepted")
	}
	if !strings.Contains(err.Error(), `x.yaml:15: log.level: "null" is not debug`) || strings.Count(err.Error(), "\n") != 0 {
		t.Fatalf("parse: %v", err)
	}
	// Without it, to look at the values.
	c, err := parseConfig("x.yaml", []byte(yaml), env)
	if err != nil {
		t.Fatal(err)
	}
	h := c.Sinks[0].Webhook.Headers
	checks := map[string][2]string{
		"slot":          {c.Stream.Slot, "from_env"},
		"publication":   {c.Stream.Publication, "pub_from_env"},
		"consumer_name": {c.Stream.ConsumerName, "null"},   // an expansion never makes a value null
		"secret":        {h["X-Token"], "a#b: 'c' ${NOT}"}, // expanded once, never parsed as YAML
		"escapes":       {h["X-Price"], "$5 and $5 and ${SLOT}"},
		"default":       {h["X-Default"], "fallback"},
		"empty default": {h["X-Empty"], "[]"},
		"listen":        {c.HTTP.Listen, "127.0.0.1:9091"},
	}
	for what, v := range checks {
		if v[0] != v[1] {
			t.Errorf("%s = %q, want %q", what, v[0], v[1])
		}
	}
	if c.Delivery.BatchSize != 42 {
		t.Errorf("batch_size from ${BATCH} = %d, want 42", c.Delivery.BatchSize)
	}
	if time.Duration(c.Delivery.Drain) != 3*time.Second {
		t.Errorf("drain = %v", time.Duration(c.Delivery.Drain))
	}
}

func TestConfigAnchorsAndMerge(t *testing.T) {
	c, err := parseConfig("x.yaml", []byte(`stream: {slot: s, publication: p}
x-hook: &hook
  url: http://h/x
  timeout: 5s
sinks:
  - webhook:
      <<: *hook
      max_batch_size: 10
`), envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if w := c.Sinks[0].Webhook; w.URL != "http://h/x" || time.Duration(w.Timeout) != 5*time.Second || w.MaxBatchSize != 10 {
		t.Errorf("merged webhook = %+v", w)
	}
	_, err = parseConfig("x.yaml", []byte(`stream: {slot: s, publication: p}
sinks:
  - &hook
    name: a
    webhook: {url: http://h/a, timeout: 5s}
  - <<: *hook
    name: b
    webhook: {url: http://h/b, timeot: 5s}
y-hook: 1
`), envOf(nil))
	for _, want := range []string{`x.yaml:8: unknown key "timeot" in sinks[1].webhook`, `x.yaml:9: unknown key "y-hook"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v, want %s", err, want)
		}
	}
}

// TestRunCommandUsage runs the command in-process: usage errors, -h and
// -check-config.
func TestRunCommandUsage(t *testing.T) {
	good := writeConfig(t, "good.yaml", minimalConfig)
	typo := writeConfig(t, "typo.yaml", strings.Replace(minimalConfig, "slot:", "solt:", 1))
	cases := []struct {
		args       []string
		env        map[string]string
		code       int
		out, inErr string
	}{
		{[]string{"run", "-h"}, nil, exitOK, "", "walrelay run: " + runSummary},
		{[]string{"run"}, nil, exitUsage, "", "-config is required"},
		{[]string{"run", "-config", filepath.Join(t.TempDir(), "none.yaml")}, nil, exitUsage, "", "no such file"},
		{[]string{"run", "-config", typo}, nil, exitUsage, "", `typo.yaml:2: unknown key "solt" in stream (did you mean "slot"?)`},
		{[]string{"run", "-example"}, nil, exitOK, exampleConfig, ""},
		{[]string{"run", "-config", good, "-check-config"}, nil, exitOK, "good.yaml: valid: slot s, publication p, 0 backfill(s), sinks: stdout (stdout)", ""},
		{[]string{"run", "-config", good}, nil, exitUsage, "", "no database"},
		{[]string{"run", "-config", good, "-database", "postgres://u:hunter2@[bad/db"}, nil, exitUsage, "", "ConnString is not a valid postgres URL"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := walrelay(context.Background(), &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: envOf(tc.env)}, tc.args)
			if code != tc.code {
				t.Errorf("exit status %d, want %d; stderr:\n%s", code, tc.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.out) {
				t.Errorf("stdout\n%s\ndoes not contain %q", stdout.String(), tc.out)
			}
			if !strings.Contains(stderr.String(), tc.inErr) {
				t.Errorf("stderr\n%s\ndoes not contain %q", stderr.String(), tc.inErr)
			}
			if strings.Contains(stdout.String()+stderr.String(), "hunter2") {
				t.Error("a password was printed")
			}
		})
	}
	// -h shows the whole example config.
	var stderr bytes.Buffer
	walrelay(context.Background(), &env{stdout: &stderr, stderr: &stderr, getenv: envOf(nil)}, []string{"run", "-h"})
	if !strings.Contains(stderr.String(), indent(exampleConfig, "  ")) {
		t.Errorf("run -h does not show the example config:\n%s", stderr.String())
	}
}

// TestSinkBackoff: a sink's first retry waits 100ms (±50%, randomised),
// later waits grow to 30s at most (±50%), and it never gives up.
func TestSinkBackoff(t *testing.T) {
	b := sinkBackoff()
	if d := b.NextBackOff(); d < 50*time.Millisecond || d > 150*time.Millisecond {
		t.Errorf("first wait %v, want 100ms ±50%%", d)
	}
	var d time.Duration
	for range 100 {
		if d = b.NextBackOff(); d == backoff.Stop || d > 45*time.Second {
			t.Fatalf("wait %v, want at most 30s +50%%, never Stop", d)
		}
	}
	if d < 15*time.Second {
		t.Errorf("wait after 100 failures %v, want 30s -50%% at least", d)
	}
}
