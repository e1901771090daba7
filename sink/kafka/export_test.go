package kafka

import "time"

// SetPartitionsTTL sets how long partition counts are cached, until the
// returned function restores it.
func SetPartitionsTTL(d time.Duration) (restore func()) {
	old := partitionsTTL
	partitionsTTL = d
	return func() { partitionsTTL = old }
}
