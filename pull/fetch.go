package pull

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
)

// fetchWait is how long one Kafka fetch waits for records at the end of a
// partition before answering with none.
const fetchWait = 10 * time.Millisecond

// fetch serves GET/POST /fetch: up to limit records of one partition from
// an offset. The caller pages by asking for the offset after the last one.
func (h *Handler) fetch(w http.ResponseWriter, r *http.Request) {
	p, err := readParams(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	topic, err := p.string("topic")
	if err == nil && topic == "" {
		err = badf("topic is required")
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	partition, err := p.int("partition", 0)
	if err != nil {
		writeErr(w, err)
		return
	}
	offset, err := p.int("offset", 0)
	if err != nil {
		writeErr(w, err)
		return
	}
	limit, err := h.limit(p)
	if err != nil {
		writeErr(w, err)
		return
	}
	recs, err := h.fetchRecords(r.Context(), topic, int(partition), offset, limit)
	if err != nil {
		if r.Context().Err() != nil {
			return // the client is gone
		}
		writeErr(w, err)
		return
	}
	_ = writeJSON(w, http.StatusOK, recs)
}

// fetchRecords reads up to limit records of topic/partition from offset,
// stopping at the partition's high watermark.
func (h *Handler) fetchRecords(ctx context.Context, topic string, partition int, offset int64, limit int) ([]Record, error) {
	recs := make([]Record, 0, min(limit, 64))
	next := offset
	for len(recs) < limit {
		res, err := h.client.Fetch(ctx, &kafkago.FetchRequest{
			Topic: topic, Partition: partition, Offset: next,
			MinBytes: 1, MaxBytes: int64(h.cfg.MaxFetchBytes), MaxWait: fetchWait,
			IsolationLevel: kafkago.ReadCommitted,
		})
		if err == nil {
			err = res.Error
		}
		switch {
		case errors.Is(err, kafkago.OffsetOutOfRange):
			return nil, &badRequest{status: http.StatusRequestedRangeNotSatisfiable,
				msg: fmt.Sprintf("offset %d is out of range for %s/%d", next, topic, partition)}
		case errors.Is(err, kafkago.UnknownTopicOrPartition), errors.Is(err, protocol.ErrNoTopic),
			errors.Is(err, protocol.ErrNoPartition):
			return nil, &badRequest{status: http.StatusNotFound,
				msg: fmt.Sprintf("topic %q has no partition %d", topic, partition)}
		case err != nil:
			return nil, fmt.Errorf("fetch %s/%d@%d: %w", topic, partition, next, err)
		}
		before := len(recs)
		for len(recs) < limit {
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
	out := Record{Topic: topic, Partition: partition, Offset: offset, Timestamp: ts.UTC(), Headers: headerMap(headers)}
	if key != nil {
		k, err := io.ReadAll(key)
		if err != nil {
			return out, fmt.Errorf("read key of %s/%d@%d: %w", topic, partition, offset, err)
		}
		s := string(k)
		out.Key = &s
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
