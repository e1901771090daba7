package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/walrelay/walrelay/idempotency"
)

// Config describes the store under test.
type Config struct {
	// New returns an empty store for one subtest. Required.
	New func(t *testing.T) idempotency.Store

	// Capacity is the most keys the store remembers, for a store bounded by
	// count; the suite checks that it keeps the Capacity most recent keys
	// and forgets older ones. Zero means the store remembers every key
	// until Expire. The suite needs a capacity of at least
	// [MinCapacity].
	Capacity int

	// Expire, if set, makes the store forget every key claimed so far (for
	// a store pruned by age, a prune with age zero). The suite checks that
	// forgotten keys can be claimed again.
	Expire func(ctx context.Context, s idempotency.Store) error

	// Parallelism is how many goroutines race on one key; zero means 16.
	Parallelism int
}

// MinCapacity is the smallest Capacity the suite can test: some tests hold
// this many keys at once.
const MinCapacity = 16

// Run runs the suite as subtests of t.
func Run(t *testing.T, cfg Config) {
	t.Helper()
	if cfg.New == nil {
		t.Fatal("storetest: Config.New is required")
	}
	if cfg.Capacity != 0 && cfg.Capacity < MinCapacity {
		t.Fatalf("storetest: Capacity %d is below MinCapacity %d", cfg.Capacity, MinCapacity)
	}
	if cfg.Parallelism <= 0 {
		cfg.Parallelism = 16
	}
	tests := []struct {
		name string
		fn   func(*testing.T, Config)
	}{
		{"FirstThenDuplicate", testFirstThenDuplicate},
		{"SeenDoesNotClaim", testSeenDoesNotClaim},
		{"KeysIndependent", testKeysIndependent},
		{"ClaimAll", testClaimAll},
		{"EmptyKey", testEmptyKey},
		{"CanceledContext", testCanceledContext},
		{"ConcurrentClaimsOneKey", testConcurrentClaimsOneKey},
		{"ConcurrentBatches", testConcurrentBatches},
		{"Retention", testRetention},
		{"Expire", testExpire},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, cfg) })
	}
}

func claim(t *testing.T, s idempotency.Store, key string) bool {
	t.Helper()
	first, err := s.Claim(t.Context(), key)
	if err != nil {
		t.Fatalf("Claim(%q): %v", key, err)
	}
	return first
}

func claimAll(t *testing.T, s idempotency.Store, keys ...string) []bool {
	t.Helper()
	first, err := s.ClaimAll(t.Context(), keys...)
	if err != nil {
		t.Fatalf("ClaimAll(%q): %v", keys, err)
	}
	if len(first) != len(keys) {
		t.Fatalf("ClaimAll(%d keys) returned %d results", len(keys), len(first))
	}
	return first
}

func seen(t *testing.T, s idempotency.Store, keys ...string) []bool {
	t.Helper()
	got, err := s.Seen(t.Context(), keys...)
	if err != nil {
		t.Fatalf("Seen(%q): %v", keys, err)
	}
	if len(got) != len(keys) {
		t.Fatalf("Seen(%d keys) returned %d results", len(keys), len(got))
	}
	return got
}

func equal(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func keys(prefix string, n int) []string {
	ks := make([]string, n)
	for i := range ks {
		ks[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return ks
}

func testFirstThenDuplicate(t *testing.T, cfg Config) {
	s := cfg.New(t)
	if !claim(t, s, "k") {
		t.Fatal("first Claim of a new key: first = false, want true")
	}
	if claim(t, s, "k") {
		t.Fatal("second Claim of a key: first = true, want false")
	}
	if got := claimAll(t, s, "k"); got[0] {
		t.Fatal("ClaimAll of a claimed key: first = true, want false")
	}
	if got := seen(t, s, "k"); !got[0] {
		t.Fatal("Seen of a claimed key = false, want true")
	}
}

func testSeenDoesNotClaim(t *testing.T, cfg Config) {
	s := cfg.New(t)
	for range 2 {
		if got := seen(t, s, "k"); got[0] {
			t.Fatal("Seen of an unclaimed key = true")
		}
	}
	if !claim(t, s, "k") {
		t.Fatal("Claim after Seen: first = false; Seen must not claim")
	}
}

func testKeysIndependent(t *testing.T, cfg Config) {
	s := cfg.New(t)
	ks := []string{"a", "ab", "A", "a ", "NjE6Mw==", "NjE6Mw=", "ключ", "a'b\"c\\d"}
	for i, k := range ks {
		if !claim(t, s, k) {
			t.Fatalf("Claim(%q) after claiming %q: first = false, want true", k, ks[:i])
		}
		want := make([]bool, len(ks))
		for j := range want {
			want[j] = j <= i
		}
		if got := seen(t, s, ks...); !equal(got, want) {
			t.Fatalf("after claiming %q: Seen(%q) = %v, want %v", ks[:i+1], ks, got, want)
		}
	}
}

func testClaimAll(t *testing.T, cfg Config) {
	s := cfg.New(t)
	if got := claimAll(t, s); len(got) != 0 {
		t.Fatalf("ClaimAll() = %v, want empty", got)
	}
	if got := seen(t, s); len(got) != 0 {
		t.Fatalf("Seen() = %v, want empty", got)
	}
	claim(t, s, "a")
	got := claimAll(t, s, "c", "a", "b", "c", "d", "b")
	want := []bool{true, false, true, false, true, false}
	if !equal(got, want) {
		t.Fatalf("ClaimAll(c a b c d b) with a claimed = %v, want %v", got, want)
	}
	if got := seen(t, s, "a", "b", "c", "d", "e"); !equal(got, []bool{true, true, true, true, false}) {
		t.Fatalf("Seen(a b c d e) = %v, want [true true true true false]", got)
	}
	n := 1000
	if cfg.Capacity > 0 {
		n = min(n, cfg.Capacity)
	}
	many := keys("many", n)
	for i, f := range claimAll(t, s, many...) {
		if !f {
			t.Fatalf("ClaimAll of %d new keys: key %d not first", n, i)
		}
	}
	for i, f := range seen(t, s, many...) {
		if !f {
			t.Fatalf("after ClaimAll of %d keys: key %d not seen", n, i)
		}
	}
}

func testEmptyKey(t *testing.T, cfg Config) {
	s := cfg.New(t)
	ctx := t.Context()
	if _, err := s.Claim(ctx, ""); !errors.Is(err, idempotency.ErrEmptyKey) {
		t.Errorf(`Claim("") error = %v, want ErrEmptyKey`, err)
	}
	if _, err := s.ClaimAll(ctx, "x", ""); !errors.Is(err, idempotency.ErrEmptyKey) {
		t.Errorf(`ClaimAll("x", "") error = %v, want ErrEmptyKey`, err)
	}
	if _, err := s.Seen(ctx, ""); !errors.Is(err, idempotency.ErrEmptyKey) {
		t.Errorf(`Seen("") error = %v, want ErrEmptyKey`, err)
	}
	if !claim(t, s, "x") {
		t.Error(`ClaimAll("x", "") failed but claimed "x"`)
	}
}

func testCanceledContext(t *testing.T, cfg Config) {
	s := cfg.New(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Claim(ctx, "k"); err == nil {
		t.Error("Claim with a canceled context: no error")
	}
	if _, err := s.ClaimAll(ctx, "k", "l"); err == nil {
		t.Error("ClaimAll with a canceled context: no error")
	}
	if _, err := s.Seen(ctx, "k"); err == nil {
		t.Error("Seen with a canceled context: no error")
	}
	if got := claimAll(t, s, "k", "l"); !equal(got, []bool{true, true}) {
		t.Errorf("after failed claims: ClaimAll(k l) = %v, want [true true]", got)
	}
}

func testConcurrentClaimsOneKey(t *testing.T, cfg Config) {
	s := cfg.New(t)
	const rounds = 10
	for r := range rounds {
		key := fmt.Sprintf("race-%d", r)
		var (
			wg     sync.WaitGroup
			start  = make(chan struct{})
			mu     sync.Mutex
			firsts int
			errs   []error
		)
		for g := range cfg.Parallelism {
			wg.Go(func() {
				<-start
				var first bool
				var err error
				if g%2 == 0 {
					first, err = s.Claim(t.Context(), key)
				} else {
					var fs []bool
					fs, err = s.ClaimAll(t.Context(), "other-"+key, key)
					if err == nil {
						first = fs[1]
					}
				}
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
				}
				if first {
					firsts++
				}
			})
		}
		close(start)
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("round %d: concurrent claims failed: %v", r, errors.Join(errs...))
		}
		if firsts != 1 {
			t.Fatalf("round %d: %d goroutines claiming one key got first = true %d times, want exactly 1", r, cfg.Parallelism, firsts)
		}
	}
}

func testConcurrentBatches(t *testing.T, cfg Config) {
	s := cfg.New(t)
	n := 200
	if cfg.Capacity > 0 {
		n = min(n, cfg.Capacity)
	}
	all := keys("batch", n)
	var (
		wg     sync.WaitGroup
		start  = make(chan struct{})
		mu     sync.Mutex
		firsts = make(map[string]int)
		errs   []error
	)
	for g := range cfg.Parallelism {
		// Each goroutine claims an overlapping, differently ordered
		// subset, so stores that lock keys must avoid deadlocks.
		rng := rand.New(rand.NewPCG(uint64(g), 7))
		batch := make([]string, 0, n)
		for _, k := range all {
			if rng.IntN(3) > 0 {
				batch = append(batch, k)
			}
		}
		rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
		wg.Go(func() {
			<-start
			first, err := s.ClaimAll(t.Context(), batch...)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			for i, f := range first {
				if f {
					firsts[batch[i]]++
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("concurrent ClaimAll failed: %v", errors.Join(errs...))
	}
	claimedAny := seen(t, s, all...)
	for i, k := range all {
		want := 0
		if claimedAny[i] {
			want = 1
		}
		if firsts[k] != want {
			t.Fatalf("key %q: first %d times across concurrent batches (seen = %v), want %d", k, firsts[k], claimedAny[i], want)
		}
	}
}

func testRetention(t *testing.T, cfg Config) {
	s := cfg.New(t)
	if cfg.Capacity == 0 {
		// An unbounded store keeps every key until Expire.
		ks := keys("keep", 500)
		claimAll(t, s, ks...)
		for i, f := range seen(t, s, ks...) {
			if !f {
				t.Fatalf("store without a capacity forgot key %d of %d", i, len(ks))
			}
		}
		return
	}
	extra := max(cfg.Capacity/2, 3)
	ks := keys("ret", cfg.Capacity+extra)
	for _, k := range ks {
		if !claim(t, s, k) {
			t.Fatalf("Claim(%q) of a new key: first = false", k)
		}
	}
	got := seen(t, s, ks...)
	remembered := 0
	for _, f := range got {
		if f {
			remembered++
		}
	}
	if remembered > cfg.Capacity {
		t.Fatalf("store of capacity %d remembers %d keys", cfg.Capacity, remembered)
	}
	for i, k := range ks[extra:] {
		if !got[extra+i] {
			t.Fatalf("store of capacity %d forgot %q, one of its %d most recent keys", cfg.Capacity, k, cfg.Capacity)
		}
	}
	if !claim(t, s, ks[0]) {
		t.Fatalf("oldest key %q beyond capacity %d: Claim first = false, want true (forgotten)", ks[0], cfg.Capacity)
	}
}

func testExpire(t *testing.T, cfg Config) {
	if cfg.Expire == nil {
		t.Skip("store has no Expire hook")
	}
	s := cfg.New(t)
	ks := keys("exp", 10)
	claimAll(t, s, ks...)
	if err := cfg.Expire(t.Context(), s); err != nil {
		t.Fatalf("Expire: %v", err)
	}
	for i, f := range seen(t, s, ks...) {
		if f {
			t.Fatalf("key %q still seen after Expire", ks[i])
		}
	}
	for i, f := range claimAll(t, s, ks...) {
		if !f {
			t.Fatalf("key %q after Expire: first = false, want true", ks[i])
		}
	}
}
