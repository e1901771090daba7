// Package storetest is the conformance suite for [idempotency.Store]
// implementations. Every store in walrelay runs it, and a third-party store
// can run it too. It checks that a first claim is first and a repeat is not,
// that Seen claims nothing, that keys are independent, that ClaimAll reports
// each key of a batch (a repeated key only once), that concurrent claims of
// one key — and concurrent overlapping batches — yield exactly one first per
// key, that empty keys and canceled contexts are errors that claim nothing,
// and that the store keeps its retention: the most recent
// [Config.Capacity] keys and no more, or every key until [Config.Expire].
//
// Run it from a test:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, storetest.Config{
//			New: func(t *testing.T) idempotency.Store { return newMyStore(t) },
//		})
//	}
package storetest
