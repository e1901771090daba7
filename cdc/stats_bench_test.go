package cdc

import "testing"

// BenchmarkStatsPerMessage is what Stats adds to each message on the hot
// path: the reader's count of a data message (bytes, WAL end, a sampled
// clock read) and the consumer's count of a message taken.
func BenchmarkStatsPerMessage(b *testing.B) {
	var st streamStats
	for i := range b.N {
		st.received(120, uint64(i))
		st.took(120)
	}
}
