package pull

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// DefaultConsumeTimeout is the wait of a consume call without "timeout".
const DefaultConsumeTimeout = time.Second

// linger is how long a consume call keeps collecting after its first
// record, to fill the response with what the consumer has buffered.
const linger = 10 * time.Millisecond

type instanceKey struct{ group, name string }

// instance is one consumer-group member, driven by the calls of one client.
type instance struct {
	key    instanceKey
	topics []string
	reader *kafkago.Reader
	sem    chan struct{} // held by the call in progress

	// Guarded by Handler.mu.
	inUse    int
	lastUsed time.Time

	// Guarded by sem.
	pending   []kafkago.Message // fetched but not yet returned
	delivered []kafkago.Message // returned by the last call, not yet committed
}

func (inst *instance) close() error {
	if err := inst.reader.Close(); err != nil {
		return fmt.Errorf("pull: close consumer %s/%s: %w", inst.key.group, inst.key.name, err)
	}
	return nil
}

// consume serves the consumer-group endpoints.
func (h *Handler) consume(w http.ResponseWriter, r *http.Request) {
	key := instanceKey{group: r.PathValue("group"), name: r.PathValue("instance")}
	p, err := readParams(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	topics, err := consumeTopics(r, p)
	if err != nil {
		writeErr(w, err)
		return
	}
	limit, err := h.limit(p)
	if err != nil {
		writeErr(w, err)
		return
	}
	timeoutMS, err := p.int("timeout", DefaultConsumeTimeout.Milliseconds())
	if err != nil {
		writeErr(w, err)
		return
	}
	timeout := min(time.Duration(timeoutMS)*time.Millisecond, h.cfg.MaxTimeout)

	inst, err := h.acquire(r.Context(), key, topics)
	if err != nil {
		writeErr(w, err)
		return
	}
	defer h.release(inst)

	h.commitDelivered(r.Context(), inst)
	msgs, err := h.collect(r.Context(), inst, limit, timeout)
	if r.Context().Err() != nil {
		// The client is gone: keep what was fetched for its next call.
		inst.pending = append(msgs, inst.pending...)
		return
	}
	if err != nil {
		inst.pending = append(msgs, inst.pending...)
		writeErr(w, fmt.Errorf("consume %s/%s: %w", key.group, key.name, err))
		return
	}
	recs := make([]Record, 0, len(msgs))
	for _, m := range msgs {
		rec := Record{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Timestamp: m.Time.UTC(),
			Value: string(m.Value), Headers: headerMap(m.Headers)}
		if m.Key != nil {
			k := string(m.Key)
			rec.Key = &k
		}
		recs = append(recs, rec)
	}
	if err := writeJSON(w, http.StatusOK, recs); err != nil {
		inst.pending = append(msgs, inst.pending...)
		return
	}
	inst.delivered = msgs
}

// consumeTopics reads the topics of a consume call: the path's, or
// "topic"/"topics" from the query or JSON body. None means "the
// instance's".
func consumeTopics(r *http.Request, p params) ([]string, error) {
	if t := r.PathValue("topic"); t != "" {
		return []string{t}, nil
	}
	var topics []string
	if raw, ok := p["topics"]; ok {
		if err := json.Unmarshal(raw, &topics); err != nil {
			return nil, badf("topics must be an array of strings")
		}
	} else if t, err := p.string("topic"); err != nil {
		return nil, err
	} else if t != "" {
		topics = []string{t}
	}
	if slices.Contains(topics, "") {
		return nil, badf("topics must not be empty strings")
	}
	slices.Sort(topics)
	return slices.Compact(topics), nil
}

// acquire returns the instance for key, creating it (and joining its
// group) when needed, and holds it for one call.
func (h *Handler) acquire(ctx context.Context, key instanceKey, topics []string) (*instance, error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, &badRequest{status: http.StatusServiceUnavailable, msg: "the pull handler is closed"}
	}
	inst := h.instances[key]
	switch {
	case inst == nil && len(topics) == 0:
		h.mu.Unlock()
		return nil, badf("consumer %s/%s does not exist: name its topics to create it", key.group, key.name)
	case inst == nil:
		reader, err := h.newReader(key.group, topics)
		if err != nil {
			h.mu.Unlock()
			return nil, err
		}
		inst = &instance{key: key, topics: topics, reader: reader, sem: make(chan struct{}, 1)}
		h.instances[key] = inst
		h.log.Debug("pull: consumer created", slog.String("group", key.group), slog.String("instance", key.name),
			slog.Any("topics", topics))
	case len(topics) > 0 && !slices.Equal(topics, inst.topics):
		h.mu.Unlock()
		return nil, &badRequest{status: http.StatusConflict, msg: fmt.Sprintf(
			"consumer %s/%s reads %v, not %v: use another instance name, or DELETE this one first",
			key.group, key.name, inst.topics, topics)}
	}
	inst.inUse++
	inst.lastUsed = time.Now()
	h.mu.Unlock()

	select {
	case inst.sem <- struct{}{}:
		return inst, nil
	case <-ctx.Done():
		h.unuse(inst)
		return nil, ctx.Err()
	}
}

func (h *Handler) release(inst *instance) {
	<-inst.sem
	h.unuse(inst)
}

func (h *Handler) unuse(inst *instance) {
	h.mu.Lock()
	inst.inUse--
	inst.lastUsed = time.Now()
	h.mu.Unlock()
}

func (h *Handler) newReader(group string, topics []string) (*kafkago.Reader, error) {
	cfg := kafkago.ReaderConfig{
		Brokers:           h.cfg.Brokers,
		GroupID:           group,
		GroupTopics:       topics,
		Dialer:            h.dialer,
		StartOffset:       kafkago.FirstOffset,
		CommitInterval:    0, // synchronous commits
		HeartbeatInterval: h.cfg.HeartbeatInterval,
		SessionTimeout:    h.cfg.SessionTimeout,
		RebalanceTimeout:  h.cfg.SessionTimeout,
		JoinGroupBackoff:  h.cfg.HeartbeatInterval,
		MinBytes:          1,
		MaxBytes:          h.cfg.MaxFetchBytes,
		MaxWait:           250 * time.Millisecond,
		QueueCapacity:     h.cfg.MaxLimit,
		IsolationLevel:    kafkago.ReadCommitted,
	}
	if err := cfg.Validate(); err != nil {
		return nil, badf("consumer for group %q: %v", group, err)
	}
	return kafkago.NewReader(cfg), nil
}

// commitDelivered commits what the instance's previous call returned: a
// new call acknowledges the previous response. A failed commit (after a
// rebalance, say) is dropped: those records are redelivered, never lost,
// and the next commit of the partition covers them.
func (h *Handler) commitDelivered(ctx context.Context, inst *instance) {
	if len(inst.delivered) == 0 {
		return
	}
	if err := inst.reader.CommitMessages(ctx, inst.delivered...); err != nil {
		h.log.Debug("pull: commit failed; the records will be redelivered",
			slog.String("group", inst.key.group), slog.String("instance", inst.key.name), slog.Any("error", err))
	}
	inst.delivered = nil
}

// collect returns up to limit records: buffered ones first, then fetched
// ones, waiting up to timeout for the first and briefly for more.
func (h *Handler) collect(ctx context.Context, inst *instance, limit int, timeout time.Duration) ([]kafkago.Message, error) {
	n := min(limit, len(inst.pending))
	out := slices.Clone(inst.pending[:n])
	inst.pending = inst.pending[n:]
	deadline := time.Now().Add(timeout)
	for len(out) < limit {
		wait := time.Until(deadline)
		if len(out) > 0 {
			wait = min(wait, linger)
		}
		if wait <= 0 {
			break
		}
		fctx, cancel := context.WithTimeout(ctx, wait)
		m, err := inst.reader.FetchMessage(fctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
			if errors.Is(err, context.DeadlineExceeded) {
				break
			}
			return out, err
		}
		out = append(out, m)
	}
	return out, nil
}

// deleteInstance serves DELETE /consume/{group}/{instance}: it commits what
// the last call returned, and the instance leaves its group.
func (h *Handler) deleteInstance(w http.ResponseWriter, r *http.Request) {
	key := instanceKey{group: r.PathValue("group"), name: r.PathValue("instance")}
	h.mu.Lock()
	inst := h.instances[key]
	h.mu.Unlock()
	if inst == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("consumer %s/%s does not exist", key.group, key.name))
		return
	}
	inst, err := h.acquire(r.Context(), key, nil)
	if err != nil {
		writeErr(w, err)
		return
	}
	h.commitDelivered(r.Context(), inst)
	h.mu.Lock()
	if h.instances[key] == inst {
		delete(h.instances, key)
	}
	h.mu.Unlock()
	err = inst.close()
	h.release(inst)
	if err != nil {
		writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// reap closes instances idle for longer than IdleTimeout. Their last
// response is not committed; the group redelivers it.
func (h *Handler) reap() {
	defer h.reaperWG.Done()
	tick := time.NewTicker(max(h.cfg.IdleTimeout/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-h.stop:
			return
		case now := <-tick.C:
			var idle []*instance
			h.mu.Lock()
			for k, inst := range h.instances {
				if inst.inUse == 0 && now.Sub(inst.lastUsed) > h.cfg.IdleTimeout {
					idle = append(idle, inst)
					delete(h.instances, k)
				}
			}
			h.mu.Unlock()
			for _, inst := range idle {
				err := inst.close()
				h.log.Debug("pull: idle consumer closed", slog.String("group", inst.key.group),
					slog.String("instance", inst.key.name), slog.Any("error", err))
			}
		}
	}
}
