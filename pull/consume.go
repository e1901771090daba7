package pull

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/walrelay/walrelay/internal/logkey"
)

// DefaultAutoCommitInterval is how often an auto-commit instance commits
// without Kafka-Auto-Commit-Interval (Upstash's and Kafka's default).
const DefaultAutoCommitInterval = 5 * time.Second

// maxSessionTimeout bounds Kafka-Session-Timeout-Ms.
const maxSessionTimeout = time.Hour

// linger is how long a consume call keeps collecting after its first
// record, to fill the response with what the consumer has buffered.
const linger = 10 * time.Millisecond

// Offset reset policies (Kafka-Auto-Offset-Reset).
const (
	resetEarliest = "earliest"
	resetLatest   = "latest"
	resetNone     = "none"
)

type instanceKey struct{ group, name string }

// consumeOptions are the Kafka-* headers of the call that created an
// instance.
type consumeOptions struct {
	autoCommit         bool
	autoCommitInterval time.Duration
	reset              string
	sessionTimeout     time.Duration
}

// instance is one consumer-group member, driven by the calls of one client.
type instance struct {
	key      instanceKey
	clientID string // unique: finds the instance's member in DescribeGroups
	opts     consumeOptions
	sem      chan struct{} // held by the call (or background commit) in progress

	// Guarded by Handler.mu.
	inUse    int
	lastUsed time.Time

	// readerMu guards replacing and closing reader, which Close may do
	// while a call holds sem; calls read reader under sem alone.
	readerMu sync.Mutex
	// Guarded by sem.
	topics     []string
	reader     *kafkago.Reader
	pending    []kafkago.Message        // fetched but not yet returned
	delivered  map[topicPartition]int64 // per partition, the offset after the last record returned
	committed  map[topicPartition]int64 // per partition, what this instance last committed
	lastCommit time.Time
}

func (inst *instance) close() error {
	inst.readerMu.Lock()
	defer inst.readerMu.Unlock()
	if err := inst.reader.Close(); err != nil {
		return fmt.Errorf("pull: close consumer %s/%s: %w", inst.key.group, inst.key.name, err)
	}
	return nil
}

// dirty reports whether the instance delivered records it has not
// committed.
func (inst *instance) dirty() bool {
	for tp, off := range inst.delivered {
		if c, ok := inst.committed[tp]; !ok || c != off {
			return true
		}
	}
	return false
}

// consume serves the consumer-group endpoints.
func (h *Handler) consume(w http.ResponseWriter, r *http.Request) {
	key := instanceKey{group: r.PathValue("group"), name: r.PathValue("instance")}
	p, err := readParams(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	topics, err := h.consumeTopics(r, p)
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
	opts, err := h.consumeOptions(r.Header)
	if err != nil {
		writeErr(w, err)
		return
	}

	inst, err := h.acquire(r.Context(), key, topics, opts)
	if err != nil {
		writeErr(w, err)
		return
	}
	defer h.release(inst)

	if len(topics) > 0 && !slices.Equal(topics, inst.topics) {
		if err := h.resubscribe(r.Context(), inst, topics); err != nil {
			writeErr(w, err)
			return
		}
	}
	if inst.opts.autoCommit && time.Since(inst.lastCommit) >= inst.opts.autoCommitInterval {
		h.autoCommit(r.Context(), inst)
	}

	msgs, err := h.collect(r.Context(), inst, &budget{maxRecords: limit, bytes: h.cfg.MaxResponseBytes}, timeout)
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
		recs = append(recs, Record{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Timestamp: msTime(m.Time),
			Key: string(m.Key), Value: string(m.Value), Headers: toHeaders(m.Headers)})
	}
	if err := writeJSON(w, http.StatusOK, recs); err != nil {
		inst.pending = append(msgs, inst.pending...)
		return
	}
	for _, m := range msgs {
		inst.delivered[topicPartition{m.Topic, m.Partition}] = m.Offset + 1
	}
}

// consumeTopics reads the topics of a consume call: the path's, or
// "topic"/"topics" from the query or JSON body. None means "the
// instance's".
func (h *Handler) consumeTopics(r *http.Request, p params) ([]string, error) {
	var topics []string
	if t := r.PathValue("topic"); t != "" {
		topics = []string{t}
	} else if raw, ok := p["topics"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &topics); err != nil {
			return nil, badf("topics must be an array of strings")
		}
		if len(topics) == 0 {
			return nil, badf("topics must not be empty")
		}
	} else if t, err := p.string("topic"); err != nil {
		return nil, err
	} else if t != "" {
		topics = []string{t}
	}
	for _, t := range topics {
		if err := h.checkTopic(t); err != nil {
			return nil, err
		}
	}
	slices.Sort(topics)
	return slices.Compact(topics), nil
}

// consumeOptions reads the Kafka-* request headers.
func (h *Handler) consumeOptions(hd http.Header) (consumeOptions, error) {
	o := consumeOptions{autoCommit: true, autoCommitInterval: DefaultAutoCommitInterval, reset: resetLatest,
		sessionTimeout: h.cfg.SessionTimeout}
	if v := hd.Get("Kafka-Enable-Auto-Commit"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return o, badf("Kafka-Enable-Auto-Commit must be true or false, not %q", v)
		}
		o.autoCommit = b
	}
	if v := hd.Get("Kafka-Auto-Commit-Interval"); v != "" {
		d, err := millis("Kafka-Auto-Commit-Interval", json.RawMessage(strconv.Quote(v)))
		if err != nil {
			return o, err
		}
		o.autoCommitInterval = d
	}
	if v := hd.Get("Kafka-Auto-Offset-Reset"); v != "" {
		switch v = strings.ToLower(v); v {
		case resetEarliest, resetLatest, resetNone:
			o.reset = v
		default:
			return o, badf("Kafka-Auto-Offset-Reset must be earliest, latest or none, not %q", v)
		}
	}
	if v := hd.Get("Kafka-Session-Timeout-Ms"); v != "" {
		d, err := millis("Kafka-Session-Timeout-Ms", json.RawMessage(strconv.Quote(v)))
		if err != nil {
			return o, err
		}
		if d <= 0 || d > maxSessionTimeout {
			return o, badf("Kafka-Session-Timeout-Ms must be between 1 and %d", maxSessionTimeout.Milliseconds())
		}
		o.sessionTimeout = d
	}
	return o, nil
}

var errClosed = statusf(http.StatusServiceUnavailable, "the pull handler is closed")

// acquire returns the instance for key, creating it (and joining its
// group) when needed, and holds it for one call. A new instance's options
// are opts; an existing one keeps those it was created with.
func (h *Handler) acquire(ctx context.Context, key instanceKey, topics []string, opts consumeOptions) (*instance, error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, errClosed
	}
	inst := h.instances[key]
	if inst == nil {
		h.mu.Unlock()
		if len(topics) == 0 {
			return nil, badf("consumer %s/%s does not exist: name its topics to create it", key.group, key.name)
		}
		if err := h.admit(ctx, key, topics, opts); err != nil {
			return nil, err
		}
		h.mu.Lock()
		switch inst = h.instances[key]; {
		case h.closed:
			h.mu.Unlock()
			return nil, errClosed
		case inst != nil: // created by a concurrent call
		case len(h.instances) >= h.cfg.MaxInstances:
			h.mu.Unlock()
			return nil, tooManyInstances(h.cfg.MaxInstances)
		default:
			h.nextID++
			inst = &instance{key: key, clientID: fmt.Sprintf("walrelay-pull-%d", h.nextID), opts: opts,
				topics: topics, sem: make(chan struct{}, 1),
				delivered: map[topicPartition]int64{}, committed: map[topicPartition]int64{}, lastCommit: time.Now()}
			inst.reader = h.newReader(inst)
			h.instances[key] = inst
			h.log.Debug("pull: consumer created", slog.String(logkey.Group, key.group), slog.String(logkey.Instance, key.name),
				slog.Any(logkey.Topics, topics), slog.Bool(logkey.AutoCommit, opts.autoCommit), slog.String(logkey.Reset, opts.reset))
		}
	}
	return h.use(ctx, inst)
}

func tooManyInstances(n int) error {
	return statusf(http.StatusTooManyRequests,
		"the pull API already runs %d consumer instances (Config.MaxInstances): delete one or retry later", n)
}

// admit checks what creating an instance needs: room under MaxInstances,
// existing topics and, for reset "none", committed offsets.
func (h *Handler) admit(ctx context.Context, key instanceKey, topics []string, opts consumeOptions) error {
	h.mu.Lock()
	full := len(h.instances) >= h.cfg.MaxInstances
	h.mu.Unlock()
	if full {
		return tooManyInstances(h.cfg.MaxInstances)
	}
	parts, err := h.partitions(ctx, topics)
	if err != nil {
		return err
	}
	if opts.reset != resetNone {
		return nil
	}
	res, err := h.committedOffsets(ctx, key.group, parts)
	if err != nil {
		return err
	}
	for topic, ps := range parts {
		for _, p := range ps {
			if committedOffset(res, topic, p) < 0 {
				return statusf(http.StatusConflict, "group %q has no committed offset for %s/%d and Kafka-Auto-Offset-Reset is none",
					key.group, topic, p)
			}
		}
	}
	return nil
}

func committedOffset(res *kafkago.OffsetFetchResponse, topic string, partition int) int64 {
	for _, p := range res.Topics[topic] {
		if p.Partition == partition && p.Error == nil {
			return p.CommittedOffset
		}
	}
	return -1
}

// partitions returns the partition numbers of topics; an unknown topic is
// 404.
func (h *Handler) partitions(ctx context.Context, topics []string) (map[string][]int, error) {
	md, err := h.client.Metadata(ctx, &kafkago.MetadataRequest{})
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	out := make(map[string][]int, len(topics))
	for _, t := range md.Topics {
		if t.Error == nil && slices.Contains(topics, t.Name) {
			for _, p := range t.Partitions {
				out[t.Name] = append(out[t.Name], p.ID)
			}
		}
	}
	for _, t := range topics {
		if _, ok := out[t]; !ok {
			return nil, statusf(http.StatusNotFound, "topic %q does not exist", t)
		}
	}
	return out, nil
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

func (h *Handler) newReader(inst *instance) *kafkago.Reader {
	dialer := *h.dialer
	dialer.ClientID = inst.clientID
	start := kafkago.LastOffset
	if inst.opts.reset != resetLatest {
		start = kafkago.FirstOffset
	}
	session := inst.opts.sessionTimeout
	return kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:           h.cfg.Brokers,
		GroupID:           h.groupID(inst.key.group),
		GroupTopics:       inst.topics,
		Dialer:            &dialer,
		StartOffset:       start,
		CommitInterval:    0, // synchronous commits, made by this package
		HeartbeatInterval: min(h.cfg.HeartbeatInterval, session/3),
		SessionTimeout:    session,
		RebalanceTimeout:  session,
		JoinGroupBackoff:  min(h.cfg.HeartbeatInterval, session/3),
		MinBytes:          1,
		MaxBytes:          h.cfg.MaxFetchBytes,
		MaxWait:           250 * time.Millisecond,
		QueueCapacity:     h.cfg.Prefetch,
		IsolationLevel:    kafkago.ReadCommitted,
	})
}

// resubscribe moves an instance to another topic list, as a Kafka
// consumer's subscribe does: with auto-commit on it first commits what it
// delivered, then it rejoins its group for the new topics.
func (h *Handler) resubscribe(ctx context.Context, inst *instance, topics []string) error {
	if _, err := h.partitions(ctx, topics); err != nil {
		return err
	}
	if inst.opts.autoCommit {
		h.autoCommit(ctx, inst)
	}
	inst.readerMu.Lock()
	defer inst.readerMu.Unlock()
	if err := inst.reader.Close(); err != nil {
		h.log.Debug("pull: closing the consumer for its new topics", slog.Any(logkey.Err, err))
	}
	inst.topics = topics
	inst.pending = nil
	clear(inst.delivered)
	clear(inst.committed)
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if closed { // Close has closed, or will close, the old reader only
		return errClosed
	}
	inst.reader = h.newReader(inst)
	return nil
}

// autoCommitTimeout bounds an automatic commit (during a rebalance
// kafka-go holds commits until the group has formed again).
const autoCommitTimeout = 5 * time.Second

// autoCommit commits what the instance delivered; a failure is logged:
// the records are redelivered, never lost.
func (h *Handler) autoCommit(ctx context.Context, inst *instance) {
	ctx, cancel := context.WithTimeout(ctx, autoCommitTimeout)
	defer cancel()
	if err := h.commitDelivered(ctx, inst); err != nil {
		h.log.Debug("pull: auto-commit failed; the records will be redelivered",
			slog.String(logkey.Group, inst.key.group), slog.String(logkey.Instance, inst.key.name), slog.Any(logkey.Err, err))
	}
}

// commitDelivered commits, for each partition the instance still owns,
// the offset after the last record it returned.
func (h *Handler) commitDelivered(ctx context.Context, inst *instance) error {
	if !inst.dirty() {
		inst.lastCommit = time.Now()
		return nil
	}
	owned := h.owned(ctx, inst)
	var offsets []topicPartitionOffset
	for tp, off := range inst.delivered {
		if owned != nil && !owned[tp] {
			// Another member reads it now, from the group's committed
			// offset: committing this instance's older position could move
			// that offset backwards.
			delete(inst.delivered, tp)
			continue
		}
		if c, ok := inst.committed[tp]; !ok || c != off {
			offsets = append(offsets, topicPartitionOffset{Topic: tp.Topic, Partition: tp.Partition, Offset: off})
		}
	}
	if err := h.commitOffsets(ctx, inst, offsets); err != nil {
		return err
	}
	inst.lastCommit = time.Now()
	return nil
}

// commitOffsets commits offsets (each the next offset to read, as Kafka
// stores them) as a member of the instance's group.
func (h *Handler) commitOffsets(ctx context.Context, inst *instance, offsets []topicPartitionOffset) error {
	if len(offsets) == 0 {
		return nil
	}
	msgs := make([]kafkago.Message, len(offsets))
	for i, o := range offsets {
		// kafka-go commits the offset after the message's.
		msgs[i] = kafkago.Message{Topic: o.Topic, Partition: o.Partition, Offset: o.Offset - 1}
	}
	if err := inst.reader.CommitMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("commit for %s/%s: %w", inst.key.group, inst.key.name, err)
	}
	for _, o := range offsets {
		inst.committed[topicPartition{o.Topic, o.Partition}] = o.Offset
	}
	return nil
}

// owned returns the partitions the group assigns to the instance now, or
// nil when that cannot be told (the group is rebalancing, say).
func (h *Handler) owned(ctx context.Context, inst *instance) map[topicPartition]bool {
	members, state, err := h.describeGroup(ctx, inst.key.group)
	if err != nil || state != "Stable" {
		return nil
	}
	m, ok := members[inst.clientID]
	if !ok {
		return nil
	}
	owned := map[topicPartition]bool{}
	for _, t := range m.MemberAssignments.Topics {
		for _, p := range t.Partitions {
			owned[topicPartition{t.Topic, p}] = true
		}
	}
	return owned
}

// describeGroup returns the members of a group by client id, and the
// group's state.
func (h *Handler) describeGroup(ctx context.Context, group string) (map[string]kafkago.DescribeGroupsResponseMember, string, error) {
	res, err := h.client.DescribeGroups(ctx, &kafkago.DescribeGroupsRequest{GroupIDs: []string{h.groupID(group)}})
	if err != nil {
		return nil, "", err
	}
	out := map[string]kafkago.DescribeGroupsResponseMember{}
	state := ""
	for _, g := range res.Groups {
		if g.Error != nil {
			return nil, "", g.Error
		}
		state = g.GroupState
		for _, m := range g.Members {
			out[m.ClientID] = m
		}
	}
	return out, state, nil
}

func messageSize(m *kafkago.Message) int {
	n := len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// collect returns the records of one response: buffered ones first, then
// fetched ones, waiting up to timeout for the first and briefly for more,
// within b.
func (h *Handler) collect(ctx context.Context, inst *instance, b *budget, timeout time.Duration) ([]kafkago.Message, error) {
	var out []kafkago.Message
	fits := func(m *kafkago.Message) bool {
		n := messageSize(m)
		if len(out) >= b.maxRecords || len(out) > 0 && n > b.bytes {
			return false
		}
		b.bytes -= n
		return true
	}
	for len(inst.pending) > 0 && fits(&inst.pending[0]) {
		out = append(out, inst.pending[0])
		inst.pending = inst.pending[1:]
	}
	if len(inst.pending) > 0 {
		return out, nil
	}
	inst.pending = nil
	deadline := time.Now().Add(timeout)
	for len(out) < b.maxRecords {
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
		if !fits(&m) {
			inst.pending = append(inst.pending, m)
			break
		}
		out = append(out, m)
	}
	return out, nil
}

// hold returns the existing instance for key, held for one call, or 404.
func (h *Handler) hold(ctx context.Context, key instanceKey) (*instance, error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, errClosed
	}
	inst := h.instances[key]
	if inst == nil {
		h.mu.Unlock()
		return nil, statusf(http.StatusNotFound, "consumer %s/%s does not exist", key.group, key.name)
	}
	return h.use(ctx, inst)
}

// deleteConsumer serves /delete-consumer/{group}/{instance} (and DELETE
// /consume/{group}/{instance}): with auto-commit on, it commits what the
// instance delivered; the instance leaves its group.
func (h *Handler) deleteConsumer(w http.ResponseWriter, r *http.Request) {
	key := instanceKey{group: r.PathValue("group"), name: r.PathValue("instance")}
	inst, err := h.hold(r.Context(), key)
	if err != nil {
		writeErr(w, err)
		return
	}
	if inst.opts.autoCommit {
		h.autoCommit(r.Context(), inst)
	}
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
	writeJSON(w, http.StatusOK, successBody)
}

// DefaultCommitTimeout is the wait of a commit or committed call without
// "timeout" (Upstash's default, 10 s).
const DefaultCommitTimeout = 10 * time.Second

// commitTimeout reads the "timeout" query parameter of commit calls.
func (h *Handler) commitTimeout(r *http.Request) (time.Duration, error) {
	v := r.URL.Query().Get("timeout")
	if v == "" {
		return min(DefaultCommitTimeout, h.cfg.MaxTimeout), nil
	}
	d, err := millis("timeout", json.RawMessage(strconv.Quote(v)))
	return min(d, h.cfg.MaxTimeout), err
}

// commit serves /commit/{group}/{instance}. Without a body it commits what
// the instance delivered; with one or several {topic, partition, offset}
// it commits those offsets as given (the next offset to read).
func (h *Handler) commit(w http.ResponseWriter, r *http.Request) {
	key := instanceKey{group: r.PathValue("group"), name: r.PathValue("instance")}
	timeout, err := h.commitTimeout(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	body, err := readBody(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	var offsets []topicPartitionOffset
	if len(body) > 0 && string(body) != "null" {
		if offsets, err = h.readPartitions(body, true); err != nil {
			writeErr(w, err)
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	inst, err := h.hold(ctx, key)
	var ae *apiError
	switch {
	case errors.As(err, &ae) && ae.status == http.StatusNotFound && len(offsets) > 0:
		// No instance: commit outside the group's generation, which Kafka
		// allows while the group has no members.
		err = h.commitWithoutMember(ctx, key.group, offsets)
	case err != nil:
	case len(offsets) == 0:
		err = h.commitDelivered(ctx, inst)
		h.release(inst)
	default:
		err = h.commitOffsets(ctx, inst, offsets)
		h.release(inst)
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, successBody)
}

func (h *Handler) commitWithoutMember(ctx context.Context, group string, offsets []topicPartitionOffset) error {
	req := &kafkago.OffsetCommitRequest{GroupID: h.groupID(group), GenerationID: -1, Topics: map[string][]kafkago.OffsetCommit{}}
	for _, o := range offsets {
		req.Topics[o.Topic] = append(req.Topics[o.Topic], kafkago.OffsetCommit{Partition: o.Partition, Offset: o.Offset})
	}
	res, err := h.client.OffsetCommit(ctx, req)
	if err != nil {
		return fmt.Errorf("commit for group %q: %w", group, err)
	}
	for topic, ps := range res.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return statusf(http.StatusConflict, "commit of %s/%d for group %q: %v (the group has live members: commit through one of its instances)",
					topic, p.Partition, group, p.Error)
			}
		}
	}
	return nil
}

// committed serves /committed/{group}/{instance}: the group's committed
// offsets of one or several {topic, partition}; -1 where there is none.
func (h *Handler) committed(w http.ResponseWriter, r *http.Request) {
	group := r.PathValue("group")
	timeout, err := h.commitTimeout(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	tps, err := h.requestPartitions(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	topics := map[string][]int{}
	for _, tp := range tps {
		topics[tp.Topic] = append(topics[tp.Topic], tp.Partition)
	}
	res, err := h.committedOffsets(ctx, group, topics)
	if err != nil {
		writeErr(w, err)
		return
	}
	out := make([]topicPartitionOffset, len(tps))
	for i, tp := range tps {
		out[i] = tp
		out[i].Offset = -1
		for _, p := range res.Topics[tp.Topic] {
			if p.Partition == tp.Partition {
				if p.Error != nil {
					writeErr(w, fmt.Errorf("committed offset of %s/%d: %w", tp.Topic, tp.Partition, p.Error))
					return
				}
				out[i].Offset = p.CommittedOffset
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// reap closes instances idle for longer than IdleTimeout — those with
// auto-commit on commit what they delivered first — and makes the
// background commits of idle auto-commit instances.
func (h *Handler) reap() {
	defer h.reaperWG.Done()
	tick := time.NewTicker(max(min(h.cfg.IdleTimeout/4, time.Second), 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-h.stop:
			return
		case now := <-tick.C:
			var idle, live []*instance
			h.mu.Lock()
			for k, inst := range h.instances {
				switch {
				case inst.inUse == 0 && now.Sub(inst.lastUsed) > h.cfg.IdleTimeout:
					idle = append(idle, inst)
					delete(h.instances, k)
				case inst.inUse == 0 && inst.opts.autoCommit:
					live = append(live, inst)
				}
			}
			h.mu.Unlock()
			for _, inst := range idle {
				// Out of the map with no call in progress: the reaper owns it.
				if inst.opts.autoCommit {
					h.autoCommit(context.Background(), inst)
				}
				err := inst.close()
				h.log.Debug("pull: idle consumer closed", slog.String(logkey.Group, inst.key.group),
					slog.String(logkey.Instance, inst.key.name), slog.Any(logkey.Err, err))
			}
			for _, inst := range live {
				select {
				case inst.sem <- struct{}{}:
				default:
					continue // a call is using it
				}
				if inst.dirty() && time.Since(inst.lastCommit) >= inst.opts.autoCommitInterval {
					h.autoCommit(context.Background(), inst)
				}
				<-inst.sem
			}
		}
	}
}

// use marks inst in use, unlocks h.mu (which the caller holds) and waits
// for inst's turn: one call at a time per instance.
func (h *Handler) use(ctx context.Context, inst *instance) (*instance, error) {
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

// committedOffsets asks Kafka for group's committed offsets of the
// partitions of topics; a group Kafka does not know has none.
func (h *Handler) committedOffsets(ctx context.Context, group string, topics map[string][]int) (*kafkago.OffsetFetchResponse, error) {
	res, err := h.client.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{GroupID: h.groupID(group), Topics: topics})
	if err == nil {
		err = res.Error
	}
	if errors.Is(err, kafkago.GroupIdNotFound) {
		return &kafkago.OffsetFetchResponse{}, nil // no group: no offsets
	}
	if err != nil {
		return nil, fmt.Errorf("committed offsets of group %q: %w", group, err)
	}
	return res, nil
}
