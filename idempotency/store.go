package idempotency

import "context"

// Store remembers which idempotency keys have been claimed, so that an
// effect keyed by them happens once.
//
// Claiming is atomic: however many callers claim one key at the same time,
// exactly one of them is told it was first. A Store keeps a bounded set of
// keys (see each implementation's retention): a key that has been forgotten
// can be claimed again, so the retention must outlast the longest window in
// which a message can be redelivered.
//
// Implementations are safe for concurrent use. When ctx is already done they
// return an error and claim nothing; an empty key is [ErrEmptyKey].
type Store interface {
	// Claim claims key. first is true when no earlier claim of key is
	// remembered, false when key was already claimed.
	Claim(ctx context.Context, key string) (first bool, err error)

	// ClaimAll claims every key in keys. first[i] reports whether keys[i]
	// was claimed by this call; when a key occurs several times in keys,
	// only its first occurrence can be first. On error nothing is reported
	// as first (some keys may have been claimed, as after a crash).
	ClaimAll(ctx context.Context, keys ...string) (first []bool, err error)

	// Seen reports, for each key in keys, whether it is claimed. It claims
	// nothing.
	Seen(ctx context.Context, keys ...string) (seen []bool, err error)
}
