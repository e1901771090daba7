package faults

// The bad-input suite. Most cases live next to the code they exercise;
// this file covers the rest. The full list, with where each case is tested:
//
//	wal_level not logical                      cdc TestOpenWALLevelNotLogical
//	missing publication                        cdc TestOpenMissingPublication
//	publication created after the slot         cdc TestOpenPublicationCreatedAfterSlot
//	missing slot / slot dropped while running  cdc TestOpenMissingSlot, TestSlotDroppedWhileStreamingIsNotRecreated
//	slot in use                                cdc TestOpenSlotInUseAndStandbyTakeover; faults TestF10StandbyTakeover
//	slot invalidated                           cdc TestOpenInvalidatedSlot; faults TestF9SlotInvalidated
//	slot of another plugin or database         cdc TestOpenSlotOfAnotherPluginOrDatabase
//	insufficient privileges, bad password      cdc TestOpenAuthAndPrivilegeErrors, TestOpenBadPasswordIsNotRetried
//	invalid Config                             cdc TestConfigValidation, FuzzConfig; webhook and kafka TestConfig*
//	tables without primary key / identity      faults TestBadInputNoPrimaryKey
//	user-defined types, domains, enums,
//	  composites, arrays of them               cdc TestEveryTypeJSON; faults TestBadInputNestedUserTypes
//	numeric with 1000 digits, NaN, Infinity    cdc TestEveryTypeJSON
//	invalid UTF-8 (bytea; text in SQL_ASCII)   cdc TestEveryTypeJSON; faults TestBadInputInvalidUTF8
//	webhook 3xx: never followed, never counted
//	  as delivered, nothing acknowledged       webhook TestRedirectsNeverFollowed, TestEndToEndRedirectsNeverAcknowledged
//	webhook 400/401/404/409/413 (retried by
//	  default; StopOn makes them permanent)    webhook TestDefaultRetriesEveryStatus, TestStopOn
//	webhook 429 (with/without Retry-After),
//	  500/502/503                              webhook TestRetriedStatuses
//	webhook receiver down longer than the
//	  signature tolerance                      webhook TestRetriesSignedAfresh, TestInteropStandardWebhooks
//	webhook secrets the official libraries
//	  would decode differently                 webhook TestSecrets
//	webhook credentials in URLs, echoed
//	  Authorization, CR/LF in headers          webhook TestNoCredentialsInErrors, TestOwnHeadersWin, TestConfigMasksSecrets
//	webhook batch led by a 10 MiB message      webhook TestBatchBodyAllocation
//	webhook hanging, closed connection,
//	  garbage answer, TLS errors               webhook TestHangingServer*, TestConnectionClosed, TestGarbageSuccessBodies, TestTLS
//	Kafka unknown topic, message too large     kafka TestUnknownTopic, TestMessageTooLargeForSink/Broker
//	Kafka broker unreachable                   kafka TestBrokerDownThenBack; faults TestF5KafkaOutage
//	Kafka partition leader moves               faults TestBadInputKafkaLeaderMoves
//	garbage on the replication protocol        internal/pgoutput FuzzParse, TestParseRejects
//	jsonb/json nested past 10,000 levels
//	  (15,000), stream and backfill            cdc TestDeepJSONStreamsAndBackfills; pgvalue TestDecodeDeepJSON;
//	                                           message TestRawJSONAnyDepth
//	a value the mapping cannot decode          cdc TestUndecodableValuePolicy (fail naming table, column, LSN;
//	                                             or UndecodableText + DeadLetter); backfill TestUndecodableValue
//	40 MB annotation from a LOGIN-only role,
//	  and a 40 MB message of another prefix    cdc TestHugeAnnotationFromLoginRole (heap peak < 100 MB)
//	REVOKE of pg_logical_emit_message          cdc TestRevokeEmitMessageAsDocumented
//	8 rows of 64 MiB, consumer stalled         cdc TestBufferBytesBoundsStalledConsumer (buffered <= budget + 1 message)
//	Config printed or logged with a password   cdc TestConfigPrintsNoPassword
//	database DateStyle/IntervalStyle/TimeZone
//	  set to other output formats              cdc TestDatabaseOutputSettingsDoNotChangeValues
//	backfill keyed by bit(n), char(n),
//	  numeric(p,s), collated text, composite   backfill TestKeyTypes, TestBitKeyManyPages
//	backfill page query failing in Postgres    backfill TestErrors (Postgres' own error)
//	quoted table names (dots, quotes, case)    cdc TestBackfillQuotedNamesUnderWrites; message TestParseTable
//	idempotency table names past 63 bytes      idempotency TestPostgresStoreLongNamesIndexed
//	pull API: huge records, many instances,
//	  foreign topics/groups, bad parameters    pull TestLimits, TestBadParameters, TestConsumeHeadersValidated
//	TLS: wrong CA, wrong host, certificate
//	  replaced mid-stream (Postgres, Kafka)    cdc TestTLSVerifyFull; kafka TestTLS, TestSASLOverTLS
//	SCRAM with < 4096 iterations or m=         kafka TestScramServerFirstMessage, TestSASLRefusedIsPermanent
//	secrets printed with %v or slog            kafka, pull, webhook TestConfigMasksSecrets

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/walrelay/walrelay/cdc"
	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/internal/testtime"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink/kafka"
)

// openStream opens a stream on url for the publication of tables (created
// here), with a new slot.
func openStream(t *testing.T, url string, tables ...string) *cdc.Stream {
	t.Helper()
	s, err := cdc.Open(t.Context(), cdc.Config{
		ConnString: url, Slot: pgtest.Name(t, "slot"), Publication: pgtest.Name(t, "pub"),
		CreateSlot: true, CreatePublication: true, PublicationTables: tables, HeartbeatInterval: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// nextN reads n messages, failing on a stream error or after a minute
// (scaled by testtime).
func nextN(t *testing.T, s *cdc.Stream, n int) []message.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testtime.Bound(time.Minute))
	defer cancel()
	out := make([]message.Message, 0, n)
	for len(out) < n {
		m, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("after %d of %d messages: %v", len(out), n, err)
		}
		s.Ack(m)
		out = append(out, m)
	}
	return out
}

func recordJSON(t *testing.T, m message.Message) map[string]json.RawMessage {
	t.Helper()
	b, err := m.MarshalJSON()
	if err != nil {
		t.Fatalf("MarshalJSON: %v", err)
	}
	if !json.Valid(b) {
		t.Fatalf("invalid JSON: %q", b)
	}
	var doc struct {
		Record map[string]json.RawMessage `json:"record"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Record
}

// Tables without a primary key: inserts stream; Postgres itself refuses
// updates and deletes of a published table without a replica identity
// (SQLSTATE 55000), so nothing reaches the stream that it cannot describe;
// with REPLICA IDENTITY FULL the whole old row identifies the row.
func TestBadInputNoPrimaryKey(t *testing.T) {
	url := pgtest.NewDatabase(t)
	pgtest.Exec(t, url,
		"create table nopk (a int, b text)",
		"create table fullnopk (a int, b text)",
		"alter table fullnopk replica identity full",
		"create table nothing (id int primary key, b text)",
		"alter table nothing replica identity nothing")
	cfg := cdc.Config{ConnString: url, Slot: pgtest.Name(t, "slot"), Publication: pgtest.Name(t, "pub"),
		CreateSlot: true, CreatePublication: true, HeartbeatInterval: -1,
		PublicationTables: []string{"public.nopk", "public.fullnopk", "public.nothing"}}
	// walrelay does not publish them itself: the application's updates
	// would fail.
	if s, err := cdc.Open(t.Context(), cfg); !errors.Is(err, cdc.ErrReplicaIdentity) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open creating the publication = %v, want ErrReplicaIdentity", err)
	}
	// Published by hand, they stream.
	pgtest.Exec(t, url, "create publication "+cfg.Publication+" for table nopk, fullnopk, nothing")
	cfg.CreatePublication = false
	s, err := cdc.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	pgtest.Exec(t, url,
		"insert into nopk values (1, 'a')",
		"insert into fullnopk values (1, 'a')",
		"insert into nothing values (1, 'a')",
		"update fullnopk set b = 'b'",
		"delete from fullnopk")
	ctx := t.Context()
	conn, err := connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, sql := range []string{"update nopk set b = 'x'", "delete from nopk", "update nothing set b = 'x'"} {
		_, err := conn.Exec(ctx, sql)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "55000" {
			t.Errorf("%s: got %v, want Postgres's object_not_in_prerequisite_state", sql, err)
		}
	}
	pgtest.Exec(t, url, "insert into nopk values (2, 'c')")
	msgs := nextN(t, s, 6)
	want := []struct {
		table  string
		action message.Action
		a      string
	}{{"nopk", "insert", "1"}, {"fullnopk", "insert", "1"}, {"nothing", "insert", ""}, {"fullnopk", "update", "1"}, {"fullnopk", "delete", "1"}, {"nopk", "insert", "2"}}
	for i, m := range msgs {
		rec := recordJSON(t, m)
		if m.Metadata.TableName != want[i].table || m.Action != want[i].action || m.Metadata.IdempotencyKey == "" {
			t.Errorf("message %d: %s %s key %q, want %s %s", i, m.Metadata.TableName, m.Action, m.Metadata.IdempotencyKey, want[i].table, want[i].action)
		}
		if want[i].a != "" && string(rec["a"]) != want[i].a {
			t.Errorf("message %d: record %v", i, rec)
		}
	}
	if got := string(recordJSON(t, msgs[4])["b"]); got != `"b"` {
		t.Errorf("delete of a FULL identity table without a key: old row b = %s, want \"b\"", got)
	}
}

// User-defined types nested in arrays, composites and domains: valid JSON,
// arrays as arrays, the rest as their Postgres text.
func TestBadInputNestedUserTypes(t *testing.T) {
	url := pgtest.NewDatabase(t)
	pgtest.Exec(t, url,
		"create type mood as enum ('sad', 'happy')",
		"create domain posint as int check (value > 0)",
		"create domain intlist as int[]",
		"create type pair as (a int, m mood, tags text[])",
		`create table u (id int primary key, pairs pair[], posints posint[], il intlist, moods mood[][],
			r int4range, nested pair, big numeric, huge numeric[])`)
	s := openStream(t, url, "public.u")
	big := strings.Repeat("7", 1000)
	pgtest.Exec(t, url, `insert into u values (1,
		array[row(1, 'sad', '{a,b}')::pair, row(2, 'happy', '{"c d"}')::pair, null],
		'{1,2}', '{3,4}', '{{sad,happy},{happy,sad}}', '[1,5)', row(3, 'sad', null)::pair,
		'`+big+`', array['NaN', 'Infinity', '-Infinity', '1e-300']::numeric[])`)
	rec := recordJSON(t, nextN(t, s, 1)[0])
	want := map[string]string{
		"posints": `[1,2]`,
		"il":      `[3,4]`,
		"moods":   `[["sad","happy"],["happy","sad"]]`,
		"r":       `"[1,5)"`,
		"big":     `"` + big + `"`, // numeric: a string of its exact text, as Sequin writes it
		"huge":    `["NaN","Infinity","-Infinity","` + "0." + strings.Repeat("0", 299) + `1"]`,
	}
	for col, w := range want {
		if string(rec[col]) != w {
			t.Errorf("%s = %s, want %s", col, rec[col], w)
		}
	}
	var pairs []any
	if err := json.Unmarshal(rec["pairs"], &pairs); err != nil || len(pairs) != 3 || pairs[2] != nil {
		t.Errorf("pairs = %s, want an array of three (the last null): %v", rec["pairs"], err)
	}
	t.Logf("pairs %s nested %s", rec["pairs"], rec["nested"])
}

// Text that is not UTF-8 (possible in a SQL_ASCII database) still makes
// valid JSON: never a panic or a broken document.
func TestBadInputInvalidUTF8(t *testing.T) {
	base := pgtest.URL(t)
	name := pgtest.Name(t, "db")
	pgtest.Exec(t, base, "create database "+name+" encoding 'SQL_ASCII' lc_collate 'C' lc_ctype 'C' template template0")
	t.Cleanup(func() { pgtest.DropDatabase(base, name) })
	url := pgtest.WithDatabase(base, name)
	pgtest.Exec(t, url, "create table t (id int primary key, s text, b bytea)")
	s := openStream(t, url, "public.t")
	pgtest.Exec(t, url, `insert into t values (1, E'ok\xff\xfe end', '\xfffe00')`, "insert into t values (2, 'after', null)")
	msgs := nextN(t, s, 2)
	// Like encoding/json, the encoder replaces each invalid byte with U+FFFD.
	rec := recordJSON(t, msgs[0])
	if string(rec["s"]) != "\"ok\uFFFD\uFFFD end\"" {
		t.Errorf("invalid UTF-8 text encoded as %s, want each bad byte replaced by U+FFFD", rec["s"])
	}
	if string(rec["b"]) != `"\\xfffe00"` {
		t.Errorf("bytea = %s, want Postgres hex text \"\\\\xfffe00\"", rec["b"])
	}
	if msgs[1].Record["s"] != "after" {
		t.Errorf("the next change: %v", msgs[1].Record)
	}
}

// Kafka: the partition's leader moves to another broker between writes;
// the sink follows it.
func TestBadInputKafkaLeaderMoves(t *testing.T) {
	topic := "sequin.public.t"
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := kafka.New(kafka.Config{Brokers: c.ListenAddrs(), MaxAttempts: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	ctx := t.Context()
	msg := func(id int64) message.Message {
		m := message.Message{Action: message.ActionInsert, Record: map[string]any{"id": id},
			Metadata: message.Metadata{TableSchema: "public", TableName: "t", IdempotencyKey: "k" + string(rune('0'+id))}}
		m.Metadata.SetPrimaryKey("id")
		return m
	}
	const writes = 4
	var moved []int32
	for i := range int64(writes) {
		if i > 0 {
			to := (c.LeaderFor(topic, 0) + 1) % 3
			if err := c.MoveTopicPartition(topic, 0, to); err != nil {
				t.Fatal(err)
			}
			moved = append(moved, to)
		}
		var werr error
		for range 5 { // a Write may fail once while the client learns the new leader
			if werr = s.Write(ctx, msg(i)); werr == nil {
				break
			}
		}
		if werr != nil {
			t.Fatalf("Write %d after the leader moved to %v: %v", i, moved, werr)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, testtime.Bound(20*time.Second))
	defer cancel()
	var got []string
	for len(got) < writes && rctx.Err() == nil {
		cl.PollFetches(rctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Key)) })
	}
	if strings.Join(got, ",") != "0,1,2,3" {
		t.Errorf("keys read back %v, want 0..3 in order (leader moves %v)", got, moved)
	}
}
