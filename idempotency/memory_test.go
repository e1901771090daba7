package idempotency_test

import (
	"fmt"
	"testing"

	"github.com/walrelay/walrelay/idempotency"
	"github.com/walrelay/walrelay/idempotency/storetest"
	"github.com/walrelay/walrelay/message"
)

func TestMemoryStoreConformance(t *testing.T) {
	for _, capacity := range []int{storetest.MinCapacity, 64, 4096} {
		t.Run(fmt.Sprint(capacity), func(t *testing.T) {
			storetest.Run(t, storetest.Config{
				New: func(t *testing.T) idempotency.Store {
					s, err := idempotency.NewMemoryStore(capacity)
					if err != nil {
						t.Fatal(err)
					}
					return s
				},
				Capacity: capacity,
			})
		})
	}
}

func TestNewMemoryStoreRejectsCapacity(t *testing.T) {
	for _, c := range []int{0, -1} {
		if _, err := idempotency.NewMemoryStore(c); err == nil {
			t.Errorf("NewMemoryStore(%d): no error", c)
		}
	}
}

func TestMemoryStoreKeepsRecentlyUsed(t *testing.T) {
	ctx := t.Context()
	s, err := idempotency.NewMemoryStore(2)
	if err != nil {
		t.Fatal(err)
	}
	s.Claim(ctx, "a")
	s.Claim(ctx, "b")
	// A duplicate claim of a makes b the least recently used key.
	if first, _ := s.Claim(ctx, "a"); first {
		t.Fatal("duplicate claim of a: first = true")
	}
	s.Claim(ctx, "c")
	got, err := s.Seen(ctx, "a", "b", "c")
	if err != nil {
		t.Fatal(err)
	}
	if !got[0] || got[1] || !got[2] || s.Len() != 2 {
		t.Fatalf("Seen(a b c) = %v, Len = %d; want [true false true], 2", got, s.Len())
	}
	s.Forget("a")
	if first, _ := s.Claim(ctx, "a"); !first {
		t.Fatal("Claim after Forget: first = false")
	}
}

func BenchmarkMemoryStoreClaim(b *testing.B) {
	s, err := idempotency.NewMemoryStore(1 << 16)
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := s.Claim(ctx, message.ChangeKey(message.LSN(i), 0)); err != nil {
			b.Fatal(err)
		}
	}
}
