package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/walrelay/walrelay/cdc"
	"github.com/walrelay/walrelay/sink/kafka"
	"github.com/walrelay/walrelay/throwaway"
)

const (
	table = "public.walrelay_example_users"
	topic = "sequin.public.walrelay_example_users"
	name  = "walrelay_example_kafka" // slot and publication
)

func demo(ctx context.Context, dbURL string, brokers []string, out io.Writer) error {
	if dbURL == "" {
		url, stopPostgres, err := throwaway.FromEnv(ctx, out)
		if err != nil {
			return fmt.Errorf("start postgres: %w", err)
		}
		defer stopPostgres()
		dbURL = url
	}
	if len(brokers) == 0 {
		kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
		if err != nil {
			return fmt.Errorf("start kfake: %w", err)
		}
		defer kc.Close()
		brokers = kc.ListenAddrs()
		fmt.Fprintf(out, "started an in-process Kafka at %v\n", brokers)
	}

	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (id bigint PRIMARY KEY, name text NOT NULL)`); err != nil {
		return fmt.Errorf("create table: %w", err)
	}

	stream, err := cdc.Open(ctx, cdc.Config{
		ConnString: dbURL, Slot: name, Publication: name,
		CreateSlot: true, CreatePublication: true, PublicationTables: []string{table},
	})
	if err != nil {
		return err
	}
	defer func() {
		// Leave no slot keeping WAL in the database (run after stream.Close).
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := throwaway.DropStream(cctx, dbURL, name, name); err != nil {
			fmt.Fprintln(out, "cleanup:", err)
		}
	}()
	defer stream.Close()
	sk, err := kafka.New(kafka.Config{Brokers: brokers, AllowAutoTopicCreation: true})
	if err != nil {
		return err
	}
	defer sk.Close(context.Background())

	// Where the topic ends now, so only this run's records are printed.
	start, err := endOffsets(ctx, brokers)
	if err != nil {
		return err
	}

	runCtx, stopRun := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- cdc.Run(runCtx, stream, sk, cdc.RunOptions{}) }()

	for _, sql := range []string{
		`INSERT INTO ` + table + ` VALUES (1, 'ada'), (2, 'grace'), (3, 'edsger') ON CONFLICT (id) DO UPDATE SET name = excluded.name`,
		`UPDATE ` + table + ` SET name = 'Ada Lovelace' WHERE id = 1`,
		`DELETE FROM ` + table + ` WHERE id = 3`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			stopRun()
			return fmt.Errorf("workload: %w", err)
		}
	}

	recs, err := readBack(ctx, brokers, start, 5, runErr)
	stopRun()
	if err := <-runErr; err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("run: %w", err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "a consumer of %s reads:\n", topic)
	for _, r := range recs {
		fmt.Fprintf(out, "partition %d offset %d key %q action=%s idempotency-key=%s\n  %s\n",
			r.Partition, r.Offset, r.Key, r.Headers["action"], r.Headers["idempotency-key"], r.Value)
	}
	return nil
}

type record struct {
	Partition int
	Offset    int64
	Key       string
	Headers   map[string]string
	Value     string
}

// endOffsets returns each partition's end offset (empty when the topic does
// not exist yet).
func endOffsets(ctx context.Context, brokers []string) (map[int]int64, error) {
	client := &kafkago.Client{Addr: kafkago.TCP(brokers...)}
	md, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	ends := map[int]int64{}
	for _, t := range md.Topics {
		if t.Error != nil {
			continue
		}
		req := &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{}}
		for _, p := range t.Partitions {
			req.Topics[topic] = append(req.Topics[topic], kafkago.LastOffsetOf(p.ID))
		}
		res, err := client.ListOffsets(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("list offsets: %w", err)
		}
		for _, p := range res.Topics[topic] {
			ends[p.Partition] = p.LastOffset
		}
	}
	return ends, nil
}

// readBack fetches every partition from start until n records arrived.
func readBack(ctx context.Context, brokers []string, start map[int]int64, n int, runErr <-chan error) ([]record, error) {
	client := &kafkago.Client{Addr: kafkago.TCP(brokers...)}
	next := map[int]int64{}
	var recs []record
	for len(recs) < n {
		select {
		case err := <-runErr:
			return nil, fmt.Errorf("run stopped: %w", err)
		default:
		}
		md, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
		if err != nil {
			return nil, err
		}
		for _, t := range md.Topics {
			for _, p := range t.Partitions {
				off, ok := next[p.ID]
				if !ok {
					off = start[p.ID]
				}
				res, err := client.Fetch(ctx, &kafkago.FetchRequest{Topic: topic, Partition: p.ID, Offset: off,
					MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 100 * time.Millisecond})
				if err != nil {
					return nil, fmt.Errorf("fetch: %w", err)
				}
				for {
					r, err := res.Records.ReadRecord()
					if err != nil {
						break // io.EOF: the end of this response
					}
					if r.Offset < off {
						continue
					}
					rec := record{Partition: p.ID, Offset: r.Offset, Headers: map[string]string{}}
					if r.Key != nil {
						b, _ := io.ReadAll(r.Key)
						rec.Key = string(b)
					}
					if r.Value != nil {
						b, _ := io.ReadAll(r.Value)
						rec.Value = string(b)
					}
					for _, h := range r.Headers {
						rec.Headers[h.Key] = string(h.Value)
					}
					recs = append(recs, rec)
					off = r.Offset + 1
				}
				next[p.ID] = off
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	sort.Slice(recs, func(i, j int) bool {
		if recs[i].Partition != recs[j].Partition {
			return recs[i].Partition < recs[j].Partition
		}
		return recs[i].Offset < recs[j].Offset
	})
	return recs, nil
}
