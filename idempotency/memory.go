package idempotency

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
)

// MemoryStore is a [Store] held in memory, for one process. It remembers at
// most a fixed number of keys and forgets the least recently used one when
// it is full: a key is used when it is claimed, claimed again or found by
// Seen. Its keys do not survive a restart; use [PostgresStore] when they
// must.
type MemoryStore struct {
	capacity int

	mu    sync.Mutex
	keys  map[string]*list.Element // values of the list are the keys
	order list.List                // front: most recently used
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns a MemoryStore that remembers up to capacity keys.
// capacity must be positive.
func NewMemoryStore(capacity int) (*MemoryStore, error) {
	if capacity <= 0 {
		return nil, fmt.Errorf("idempotency: memory store capacity must be positive, got %d", capacity)
	}
	return &MemoryStore{capacity: capacity, keys: make(map[string]*list.Element)}, nil
}

// Capacity returns the most keys s remembers.
func (s *MemoryStore) Capacity() int { return s.capacity }

// Len returns how many keys s remembers now.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys)
}

// Claim implements [Store].
func (s *MemoryStore) Claim(ctx context.Context, key string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("idempotency: claim: %w", err)
	}
	if err := checkKeys(key); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.claimLocked(key), nil
}

// ClaimAll implements [Store].
func (s *MemoryStore) ClaimAll(ctx context.Context, keys ...string) ([]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("idempotency: claim: %w", err)
	}
	if err := checkKeys(keys...); err != nil {
		return nil, err
	}
	first := make([]bool, len(keys))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, k := range keys {
		first[i] = s.claimLocked(k)
	}
	return first, nil
}

// Seen implements [Store].
func (s *MemoryStore) Seen(ctx context.Context, keys ...string) ([]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("idempotency: seen: %w", err)
	}
	if err := checkKeys(keys...); err != nil {
		return nil, err
	}
	seen := make([]bool, len(keys))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, k := range keys {
		if e, ok := s.keys[k]; ok {
			s.order.MoveToFront(e)
			seen[i] = true
		}
	}
	return seen, nil
}

// Forget removes keys, so that they can be claimed again. It is for tests
// and for undoing a claim whose effect is known not to have happened.
func (s *MemoryStore) Forget(keys ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		if e, ok := s.keys[k]; ok {
			s.order.Remove(e)
			delete(s.keys, k)
		}
	}
}

func (s *MemoryStore) claimLocked(key string) bool {
	if e, ok := s.keys[key]; ok {
		s.order.MoveToFront(e)
		return false
	}
	if len(s.keys) >= s.capacity {
		oldest := s.order.Back()
		s.order.Remove(oldest)
		delete(s.keys, oldest.Value.(string))
	}
	s.keys[key] = s.order.PushFront(key)
	return true
}

// ErrEmptyKey is returned by every [Store] asked to claim or look up the
// empty key, which identifies no change.
var ErrEmptyKey = errors.New("idempotency: empty key")

// checkKeys returns [ErrEmptyKey] if any key is empty.
func checkKeys(keys ...string) error {
	for _, k := range keys {
		if k == "" {
			return ErrEmptyKey
		}
	}
	return nil
}
