package pull

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
)

// maxFetchPartitions caps the partitions one fetch names.
const maxFetchPartitions = 100

// multiPollInterval is how often a fetch naming several partitions polls
// them while all are empty and its timeout has not passed.
const multiPollInterval = 50 * time.Millisecond

// budget tracks what a response may still take: records and bytes. The
// first record is always taken, however large.
type budget struct {
	records, maxRecords int
	bytes               int
}

func (b *budget) full() bool { return b.records >= b.maxRecords || b.records > 0 && b.bytes <= 0 }

// take reports whether r fits, and counts it if so.
func (b *budget) take(r *Record) bool {
	n := r.size()
	if b.records >= b.maxRecords || b.records > 0 && n > b.bytes {
		return false
	}
	b.records++
	b.bytes -= n
	return true
}

// fetch serves GET/POST /fetch: records of one or several partitions from
// given offsets. The caller pages by asking for the offset after the last
// one.
func (h *Handler) fetch(w http.ResponseWriter, r *http.Request) {
	p, err := readParams(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	reqs, err := h.fetchRequests(p)
	if err != nil {
		writeErr(w, err)
		return
	}
	limit, err := h.limit(p)
	if err != nil {
		writeErr(w, err)
		return
	}
	timeout, err := h.timeout(p)
	if err != nil {
		writeErr(w, err)
		return
	}
	recs, err := h.fetchAll(r.Context(), reqs, &budget{maxRecords: limit, bytes: h.cfg.MaxResponseBytes}, timeout)
	if err != nil {
		if r.Context().Err() != nil {
			return // the client is gone
		}
		writeErr(w, err)
		return
	}
	_ = writeJSON(w, http.StatusOK, recs)
}

// fetchRequests reads topic/partition/offset and topicPartitionOffsets.
func (h *Handler) fetchRequests(p params) ([]topicPartitionOffset, error) {
	var reqs []topicPartitionOffset
	if topic, err := p.string("topic"); err != nil {
		return nil, err
	} else if topic != "" {
		tpo, err := h.fetchPosition(p)
		if err != nil {
			return nil, err
		}
		reqs = append(reqs, tpo)
	}
	if raw, ok := p["topicPartitionOffsets"]; ok && string(raw) != "null" {
		var list []params
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, badf("topicPartitionOffsets must be an array of {topic, partition, offset} objects")
		}
		for _, e := range list {
			if e == nil {
				return nil, badf("topicPartitionOffsets must be an array of {topic, partition, offset} objects")
			}
			tpo, err := h.fetchPosition(e)
			if err != nil {
				return nil, fmt.Errorf("topicPartitionOffsets: %w", err)
			}
			reqs = append(reqs, tpo)
		}
	}
	switch {
	case len(reqs) == 0:
		return nil, badf("topic is required (or topicPartitionOffsets)")
	case len(reqs) > maxFetchPartitions:
		return nil, badf("a fetch names at most %d partitions, not %d", maxFetchPartitions, len(reqs))
	}
	return reqs, nil
}

func (h *Handler) fetchPosition(p params) (topicPartitionOffset, error) {
	tpo, err := h.partitionOffset(p, false)
	if err != nil {
		return tpo, err
	}
	tpo.Offset, err = p.int("offset", 0)
	return tpo, err
}

// fetchAll reads the partitions in order into one response. One partition
// is long-polled for up to timeout; several are polled until one has
// records or timeout passes.
func (h *Handler) fetchAll(ctx context.Context, reqs []topicPartitionOffset, b *budget, timeout time.Duration) ([]Record, error) {
	if len(reqs) == 1 {
		return h.fetchPartition(ctx, reqs[0], b, timeout)
	}
	deadline := time.Now().Add(timeout)
	for {
		var out []Record
		for _, req := range reqs {
			if b.full() {
				break
			}
			recs, err := h.fetchPartition(ctx, req, b, 0)
			if err != nil {
				return nil, err
			}
			out = append(out, recs...)
		}
		wait := time.Until(deadline)
		if len(out) > 0 || wait <= 0 {
			if out == nil {
				out = []Record{}
			}
			return out, nil
		}
		t := time.NewTimer(min(wait, multiPollInterval))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// fetchPartition reads records of one partition from req.Offset into b,
// stopping at the partition's high watermark. The first Kafka fetch waits
// up to wait for a record.
func (h *Handler) fetchPartition(ctx context.Context, req topicPartitionOffset, b *budget, wait time.Duration) ([]Record, error) {
	recs := []Record{}
	next := req.Offset
	topic, partition := req.Topic, req.Partition
	for !b.full() {
		res, err := h.client.Fetch(ctx, &kafkago.FetchRequest{
			Topic: topic, Partition: partition, Offset: next,
			MinBytes: 1, MaxBytes: int64(h.cfg.MaxFetchBytes), MaxWait: wait,
			IsolationLevel: kafkago.ReadCommitted,
		})
		if err == nil {
			err = res.Error
		}
		switch {
		case errors.Is(err, kafkago.OffsetOutOfRange):
			return nil, statusf(http.StatusRequestedRangeNotSatisfiable, "offset %d is out of range for %s/%d", next, topic, partition)
		case errors.Is(err, kafkago.UnknownTopicOrPartition), errors.Is(err, protocol.ErrNoTopic),
			errors.Is(err, protocol.ErrNoPartition):
			return nil, statusf(http.StatusNotFound, "topic %q has no partition %d", topic, partition)
		case err != nil:
			return nil, fmt.Errorf("fetch %s/%d@%d: %w", topic, partition, next, err)
		}
		wait = 0
		before := len(recs)
		for !b.full() {
			rec, err := res.Records.ReadRecord()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("fetch %s/%d@%d: read: %w", topic, partition, next, err)
			}
			if rec.Offset < next {
				continue // a batch can start before the requested offset
			}
			out, err := toRecord(topic, partition, rec.Offset, rec.Time, rec.Key, rec.Value, rec.Headers)
			if err != nil {
				return nil, err
			}
			if !b.take(&out) {
				break
			}
			recs = append(recs, out)
			next = rec.Offset + 1
		}
		if len(recs) == before || next >= res.HighWatermark {
			break
		}
	}
	return recs, nil
}

func toRecord(topic string, partition int, offset int64, ts time.Time, key, value io.Reader, headers []kafkago.Header) (Record, error) {
	out := Record{Topic: topic, Partition: partition, Offset: offset, Timestamp: msTime(ts), Headers: toHeaders(headers)}
	if key != nil {
		k, err := io.ReadAll(key)
		if err != nil {
			return out, fmt.Errorf("read key of %s/%d@%d: %w", topic, partition, offset, err)
		}
		out.Key = string(k)
	}
	if value != nil {
		v, err := io.ReadAll(value)
		if err != nil {
			return out, fmt.Errorf("read value of %s/%d@%d: %w", topic, partition, offset, err)
		}
		out.Value = string(v)
	}
	return out, nil
}
