package kafka

import "time"

// SetPartitionsTTL sets how long partition counts are cached, until the
// returned function restores it.
func SetPartitionsTTL(d time.Duration) (restore func()) {
	old := partitionsTTL
	partitionsTTL = d
	return func() { partitionsTTL = old }
}

// OnRelease calls f each time a Write gives its memory back for the next
// Write, until the returned function restores the previous hook.
func OnRelease(f func()) (restore func()) {
	old := onRelease
	onRelease = func(*write) { f() }
	return func() { onRelease = old }
}

// The SCRAM client's refusals.
var (
	ErrScramIterations = errScramIterations
	ErrScramExtension  = errScramExtension
)
