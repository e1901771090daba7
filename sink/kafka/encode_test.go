package kafka_test

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
	"github.com/walrelay/walrelay/sink/kafka"
)

// TestDefaultEncoderRecords writes rows of different sizes in one Write
// with the default encoder, whose values, keys and headers share one buffer,
// and reads each back intact.
func TestDefaultEncoderRecords(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(2, "sequin.public.t"))
	s, err := kafka.New(kafka.Config{Brokers: c.ListenAddrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(t.Context())
	var msgs []message.Message
	for i := range int64(200) {
		m := change("t", i)
		m.Record["name"] = strings.Repeat("x", int(i*37%3000)) // the shared buffer grows mid-Write
		msgs = append(msgs, m)
	}
	keyless := change("t", 200)
	keyless.Metadata.SetPrimaryKey()
	msgs = append(msgs, keyless)
	if err := s.Write(t.Context(), msgs...); err != nil {
		t.Fatal(err)
	}
	recs := consume(t, c.ListenAddrs(), len(msgs), "sequin.public.t")
	seen := 0
	for _, r := range recs {
		var want message.Message
		if r.Key == nil {
			want = keyless
		} else {
			id, err := strconv.Atoi(string(r.Key))
			if err != nil || id < 0 || id >= 200 {
				t.Fatalf("key %q is not an id", r.Key)
			}
			want = msgs[id]
		}
		seen++
		js, err := want.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Value) != string(js) {
			t.Errorf("record %q: value %.80q…, want %.80q…", r.Key, r.Value, js)
		}
		if got := header(r, "idempotency-key"); got != want.Metadata.IdempotencyKey {
			t.Errorf("record %q: idempotency-key %q, want %q", r.Key, got, want.Metadata.IdempotencyKey)
		}
		if got := header(r, "action"); got != "insert" {
			t.Errorf("record %q: action %q", r.Key, got)
		}
		if got := header(r, "table"); got != "public.t" {
			t.Errorf("record %q: table %q", r.Key, got)
		}
	}
	if seen != len(msgs) {
		t.Errorf("read %d records, want %d", seen, len(msgs))
	}
}

// TestWritesReuseMemory runs Writes from several goroutines at once, each
// after the last, with rows of varied sizes and, between them, Writes that
// fail before sending: a Write's memory is reused by a later one only once
// the brokers answered it, so every record is read back as written.
func TestWritesReuseMemory(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(4, "sequin.public.t"))
	s, err := kafka.New(kafka.Config{Brokers: c.ListenAddrs(), MaxMessageBytes: 8000})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(t.Context())
	const writers, writes, perWrite = 4, 25, 20
	msgs := make([]message.Message, writers*writes*perWrite)
	for i := range msgs {
		m := change("t", int64(i))
		m.Record["name"] = strings.Repeat(strconv.Itoa(i%10), i*131%5000)
		msgs[i] = m
	}
	tooLarge := change("t", -1)
	tooLarge.Record["name"] = strings.Repeat("x", 9000)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for k := range writes {
				start := (w*writes + k) * perWrite
				batch := msgs[start : start+perWrite]
				if err := s.Write(t.Context(), batch...); err != nil {
					t.Errorf("Write: %v", err)
					return
				}
				if k%5 == 0 {
					if err := s.Write(t.Context(), append(slices.Clone(batch[:3]), tooLarge)...); !sink.IsPermanent(err) {
						t.Errorf("Write of a record over MaxMessageBytes: %v, want a permanent error", err)
					}
				}
			}
		})
	}
	wg.Wait()
	recs := consume(t, c.ListenAddrs(), len(msgs), "sequin.public.t")
	if len(recs) != len(msgs) {
		t.Fatalf("read %d records, want %d", len(recs), len(msgs))
	}
	seen := make([]bool, len(msgs))
	for _, r := range recs {
		id, err := strconv.Atoi(string(r.Key))
		if err != nil || id < 0 || id >= len(msgs) || seen[id] {
			t.Fatalf("key %q is not a new id", r.Key)
		}
		seen[id] = true
		js, err := msgs[id].MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Value) != string(js) {
			t.Errorf("record %q: value %.60q…, want %.60q…", r.Key, r.Value, js)
		}
		if got := header(r, "idempotency-key"); got != msgs[id].Metadata.IdempotencyKey {
			t.Errorf("record %q: idempotency-key %q, want %q", r.Key, got, msgs[id].Metadata.IdempotencyKey)
		}
	}
}
