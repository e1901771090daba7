// Package sinktest is the conformance suite every [sink.Sink] runs, for the
// sinks of this module and for third-party ones.
//
// # Running the suite
//
// Describe the sink with a [Harness] and call [Run] from a test:
//
//	func TestConformance(t *testing.T) {
//		sinktest.Run(t, sinktest.Harness{
//			New: func(t *testing.T) (sink.Sink, func(context.Context) ([]message.Message, error)) {
//				srv := startDestination(t)          // a fresh destination per call
//				return newSink(srv.Addr), srv.Received // what it durably holds, in order
//			},
//		})
//	}
//
// Set [Harness.NewFaulty] as well when the destination can be made to fail
// on demand (a server answering 503, a broker refusing writes): the
// all-or-nothing and cancellation cases need it and are skipped without it.
// Set [Harness.OrderPerRow] for sinks that only keep the order of each row,
// such as a sink spreading messages over partitions by primary key.
//
// # What is checked
//
//   - Order: messages arrive in the order written, within and across Writes.
//   - Empty: a Write without messages succeeds and delivers nothing.
//   - Duplicates: writing the same batch twice succeeds, and every copy keeps
//     its idempotency key and content.
//   - All-or-nothing: a Write to a failing destination returns an error, and
//     retrying it once the destination is back delivers the whole batch, in
//     order, after whatever the failed attempt left behind.
//   - Close: a second Close does not panic and returns nil or a stable error;
//     a Write after Close returns an error and delivers nothing.
//   - Cancellation: a Write with a cancelled context returns an error
//     wrapping [context.Canceled]. So does a Write to a failing destination
//     that is still trying (retrying inside Write) 100 ms later and is then
//     cancelled; one that reports the failure at once must return an error.
//
// Messages are compared with [Same]: action, table, idempotency key, and the
// record and changes as JSON. [Messages] builds the test messages; [Memory]
// is an in-memory sink for tests of code that writes to sinks.
package sinktest

import "github.com/walrelay/walrelay/sink"

var _ sink.Sink = (*Memory)(nil)
