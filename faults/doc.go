// Package faults is walrelay's reliability campaign: tests that drive a real
// consumer process and a real Postgres through the faults listed in the
// project's RELIABILITY document, and the bad-input suite. It has no API;
// everything lives in its tests.
//
// # What a fault test checks
//
// Every workload table has a trigger that writes each committed change —
// table, primary key, operation, a per-change stamp, an md5 of the large
// column and the row's column names — into an audit table in the same
// transaction. The audit table is not in the publication. After the fault,
// the test compares what the sink acknowledged (JSON lines appended and
// fsynced by a consumer process, or the messages a webhook receiver or Kafka
// got) with the audit, and reports four numbers:
//
//   - lost: committed changes never delivered (must be 0);
//   - duplicates: deliveries of a change already delivered;
//   - key mismatches: one change delivered with different idempotency keys,
//     or two changes sharing one (must be 0);
//   - order violations: a row's changes first delivered out of commit order,
//     or (where the sink preserves it) transactions out of commit order
//     (must be 0).
//
// A slot monitor samples the slot's confirmed_flush_lsn every few
// milliseconds throughout each test and fails it if the slot ever moves
// past a transaction not yet fully acknowledged by the sink, or moves
// backwards (except across an immediate restart, where Postgres itself
// restores the position saved at its last checkpoint). Values of the large
// column (TOAST) and the shape of every record (after DDL) are checked too.
//
// # Running
//
// The short campaign runs with the other tests:
//
//	go test -race ./faults
//
// The long campaign (more kills, a one-million-row transaction, more rows,
// minutes of idle and filtered soak) runs on demand:
//
//	WALRELAY_FAULTS=long go test ./faults -run . -v -timeout 60m
//
// With -v each fault logs its run count and four numbers, and the test
// binary prints a summary table at the end. The tests need PostgreSQL server
// binaries (see internal/pgtest); without them they are skipped, unless
// WALRELAY_REQUIRE_POSTGRES=1.
//
// Faults F1–F15 are TestF1KillConsumer … TestF15TruncateRollbackSavepointMessages.
// F16 (TestF16Failover, TestF16PromotedBeforeSlotSynced, in
// failover_test.go) runs on PostgreSQL 17 and 18 and F17
// (TestF17StandbyDecoding, standby_test.go) on 16, 17 and 18, each with the
// server binaries pgtest.BinFor finds (.ci/matrix installs and names them);
// a version whose binaries are absent is skipped with a message saying so.
// F4, the slot monitor, runs inside every other fault and has its own
// summary row. TestHarnessDetects and TestMonitorDetects show that the
// comparison and the monitor catch each kind of problem. The bad-input
// suite is in badinput_test.go, whose header lists every case of the
// RELIABILITY document with the test that covers it here or in cdc, sink/*,
// and internal/pgoutput.
//
// The consumer process is the test binary itself, re-executed with
// WALRELAY_FAULTS_CHILD=1: it runs cdc.Open and cdc.Run into a sink that
// appends JSON lines to a file and fsyncs before returning, so that
// "acknowledged" means "on disk" even when the process is killed with
// SIGKILL.
//
// # Waiting
//
// The tests wait for what they can observe — changes delivered, a line on
// the consumer's stderr, the slot's position — never for an amount of work
// in a fixed time, so a busy machine makes them slower, not red. A wait
// fails only when nothing moves for a generous bound, which
// WALRELAY_TEST_TIME_SCALE multiplies (see internal/testtime). A fault that
// must strike a backfill mid-way (F11 across restarts, F12) has the
// consumer hold its sink at a given number of reads (FAULTS_READ_LIMIT),
// instead of racing it.
package faults
