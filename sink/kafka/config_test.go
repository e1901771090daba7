package kafka_test

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink/kafka"
)

// TestConfigMasksSecrets prints a Config and its SASL every way a program
// might (fmt verbs, slog's text and JSON handlers) and checks that the
// password never shows, while the rest of the description does.
func TestConfigMasksSecrets(t *testing.T) {
	const password = "hunter2-Pa55word"
	creds := &kafka.SASL{Mechanism: kafka.SASLScramSHA512, Username: "walrelay", Password: password}
	cfg := kafka.Config{
		Brokers:      []string{"b1:9093", "b2:9093"},
		Topic:        "orders",
		TLS:          &tls.Config{ServerName: "b1"},
		SASL:         creds,
		Compression:  kafka.CompressionZstd,
		WriteTimeout: 3 * time.Second,
		TopicFunc:    nil,
		Encoder:      func(message.Message) ([]byte, error) { return nil, nil },
	}
	printed := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		printed["cfg "+verb] = fmt.Sprintf(verb, cfg)
		printed["&cfg "+verb] = fmt.Sprintf(verb, &cfg)
		printed["sasl "+verb] = fmt.Sprintf(verb, *creds)
		printed["&sasl "+verb] = fmt.Sprintf(verb, creds)
	}
	for name, h := range map[string]func(*bytes.Buffer) slog.Handler{
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	} {
		var b bytes.Buffer
		slog.New(h(&b)).Info("start", "config", cfg, "sasl", *creds, "sasl_ptr", creds)
		printed["slog "+name] = b.String()
	}
	for name, out := range printed {
		if strings.Contains(out, password) {
			t.Errorf("%s shows the password: %s", name, out)
		}
		if !strings.Contains(out, "walrelay") || !strings.Contains(out, "xxxxx") {
			t.Errorf("%s lacks the username or the masked password: %s", name, out)
		}
		if strings.HasPrefix(name, "cfg") || strings.HasPrefix(name, "&cfg") || strings.HasPrefix(name, "slog") {
			if !strings.Contains(out, "b2:9093") || !strings.Contains(out, "orders") {
				t.Errorf("%s lacks the brokers or the topic: %s", name, out)
			}
		}
	}
	t.Logf("%%v: %v", cfg)

	// The JSON handler's output is a structured record: the password field
	// is there, masked.
	var b bytes.Buffer
	slog.New(slog.NewJSONHandler(&b, nil)).Info("start", "config", cfg)
	var rec struct {
		Config struct {
			Brokers []string
			TLS     bool
			SASL    struct{ Mechanism, Username, Password string }
		}
	}
	if err := json.Unmarshal(b.Bytes(), &rec); err != nil {
		t.Fatalf("%v: %s", err, b.String())
	}
	if got := rec.Config; len(got.Brokers) != 2 || !got.TLS || got.SASL.Username != "walrelay" ||
		got.SASL.Mechanism != kafka.SASLScramSHA512 || got.SASL.Password != "xxxxx" {
		t.Errorf("JSON config = %+v (%s)", got, b.String())
	}

	// No password: nothing to mask, and the description says so.
	noPass := kafka.SASL{Mechanism: kafka.SASLPlain, Username: "u"}
	if s := fmt.Sprint(noPass); strings.Contains(s, "xxxxx") {
		t.Errorf("empty password shown as masked: %s", s)
	}
	if s := fmt.Sprint(kafka.Config{Brokers: []string{"b:1"}}); !strings.Contains(s, "TLS:false") || strings.Contains(s, "SASL") {
		t.Errorf("plain config = %s", s)
	}
}
