package kafka_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
	"github.com/walrelay/walrelay/sink/kafka"
	"github.com/walrelay/walrelay/sink/sinktest"
)

var conformanceTopics = []string{"sequin.public.users", "sequin.public.orders"}

func TestConformance(t *testing.T) {
	newFaulty := func(t *testing.T) (sink.Sink, sinktest.ReceivedFunc, func(bool)) {
		c := newCluster(t, kfake.SeedTopics(3, conformanceTopics...))
		var failing atomic.Bool
		c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			if !failing.Load() {
				return nil, nil, false
			}
			return refuseProduce(req.(*kmsg.ProduceRequest)), nil, true
		})
		s, err := kafka.New(kafka.Config{Brokers: c.ListenAddrs(), MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		return s, func(ctx context.Context) ([]message.Message, error) {
			return readAll(ctx, c.ListenAddrs(), conformanceTopics)
		}, failing.Store
	}
	sinktest.Run(t, sinktest.Harness{
		New: func(t *testing.T) (sink.Sink, sinktest.ReceivedFunc) {
			s, recv, _ := newFaulty(t)
			return s, recv
		},
		NewFaulty:    newFaulty,
		OrderPerRow:  true,
		WriteTimeout: 20 * time.Second,
	})
}

// refuseProduce answers a produce request with NOT_ENOUGH_REPLICAS for
// every partition, as a cluster that lost its in-sync replicas does.
func refuseProduce(req *kmsg.ProduceRequest) *kmsg.ProduceResponse {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = kerr.NotEnoughReplicas.Code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// readAll decodes every record of topics, up to their current end offsets,
// each partition in offset order.
func readAll(ctx context.Context, brokers, topics []string) ([]message.Message, error) {
	client := &kafkago.Client{Addr: kafkago.TCP(brokers...)}
	req := &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{}}
	for _, topic := range topics {
		for p := range 3 {
			req.Topics[topic] = append(req.Topics[topic], kafkago.LastOffsetOf(p))
		}
	}
	offsets, err := client.ListOffsets(ctx, req)
	if err != nil {
		return nil, err
	}
	total := int64(0)
	for _, parts := range offsets.Topics {
		for _, p := range parts {
			if p.Error != nil {
				return nil, p.Error
			}
			total += p.LastOffset
		}
	}
	if total == 0 {
		return nil, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var msgs []message.Message
	for int64(len(msgs)) < total {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read %d of %d records: %w", len(msgs), total, err)
		}
		for _, r := range fs.Records() {
			var m message.Message
			if err := m.UnmarshalJSON(r.Value); err != nil {
				return nil, fmt.Errorf("record %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
			}
			msgs = append(msgs, m)
		}
	}
	return msgs, nil
}
