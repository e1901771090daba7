package pull

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol/listoffsets"
)

// topics serves GET /topics: every served topic and its partition count.
func (h *Handler) topics(w http.ResponseWriter, r *http.Request) {
	md, err := h.client.Metadata(r.Context(), &kafkago.MetadataRequest{})
	if err != nil {
		writeErr(w, fmt.Errorf("metadata: %w", err))
		return
	}
	out := map[string]int{}
	for _, t := range md.Topics {
		if t.Error == nil && !t.Internal && h.cfg.topicAllowed(t.Name) {
			out[t.Name] = len(t.Partitions)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

type topicAssignments struct {
	Topic      string `json:"topic"`
	Partitions []int  `json:"partitions"`
}

type instanceAssignments struct {
	Name   string             `json:"name"`
	Topics []topicAssignments `json:"topics"`
}

type groupAssignments struct {
	Name      string                `json:"name"`
	Instances []instanceAssignments `json:"instances"`
}

// consumers serves GET /consumers: the groups of this handler's live
// instances, and the partitions Kafka assigns each instance.
func (h *Handler) consumers(w http.ResponseWriter, r *http.Request) {
	type member struct{ name, clientID string }
	groups := map[string][]member{}
	h.mu.Lock()
	for k, inst := range h.instances {
		groups[k.group] = append(groups[k.group], member{k.name, inst.clientID})
	}
	h.mu.Unlock()

	out := []groupAssignments{}
	for group, members := range groups {
		described, _, err := h.describeGroup(r.Context(), group)
		if err != nil {
			writeErr(w, fmt.Errorf("describe group %q: %w", group, err))
			return
		}
		g := groupAssignments{Name: group, Instances: []instanceAssignments{}}
		for _, m := range members {
			ia := instanceAssignments{Name: m.name, Topics: []topicAssignments{}}
			for _, t := range described[m.clientID].MemberAssignments.Topics {
				ps := slices.Clone(t.Partitions)
				slices.Sort(ps)
				ia.Topics = append(ia.Topics, topicAssignments{Topic: t.Topic, Partitions: ps})
			}
			slices.SortFunc(ia.Topics, func(a, b topicAssignments) int { return strings.Compare(a.Topic, b.Topic) })
			g.Instances = append(g.Instances, ia)
		}
		slices.SortFunc(g.Instances, func(a, b instanceAssignments) int { return strings.Compare(a.Name, b.Name) })
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b groupAssignments) int { return strings.Compare(a.Name, b.Name) })
	writeJSON(w, http.StatusOK, out)
}

// offsets serves /offsets/{earliest|latest|<epoch ms>}: per partition, the
// first offset, the end offset, or the first offset whose record's
// timestamp is at or after the given time (-1 when there is none).
func (h *Handler) offsets(w http.ResponseWriter, r *http.Request) {
	var ts int64
	switch at := r.PathValue("at"); at {
	case "earliest":
		ts = kafkago.FirstOffset
	case "latest":
		ts = kafkago.LastOffset
	default:
		n, err := strconv.ParseInt(at, 10, 64)
		if err != nil || n < 0 {
			writeErr(w, badf("the offsets path ends in earliest, latest or a timestamp in epoch milliseconds, not %q", at))
			return
		}
		ts = n
	}
	tps, err := h.requestPartitions(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	req := &listoffsets.Request{ReplicaID: -1, IsolationLevel: int8(kafkago.ReadCommitted)}
	byTopic := map[string]int{}
	for _, tp := range tps {
		i, ok := byTopic[tp.Topic]
		if !ok {
			i = len(req.Topics)
			byTopic[tp.Topic] = i
			req.Topics = append(req.Topics, listoffsets.RequestTopic{Topic: tp.Topic})
		}
		req.Topics[i].Partitions = append(req.Topics[i].Partitions,
			listoffsets.RequestPartition{Partition: int32(tp.Partition), CurrentLeaderEpoch: -1, Timestamp: ts})
	}
	m, err := h.transport.RoundTrip(r.Context(), h.client.Addr, req)
	if err != nil {
		writeErr(w, fmt.Errorf("list offsets: %w", err))
		return
	}
	res, ok := m.(*listoffsets.Response)
	if !ok {
		writeErr(w, fmt.Errorf("list offsets: unexpected response %T", m))
		return
	}
	out := make([]topicPartitionOffset, len(tps))
	for i, tp := range tps {
		out[i] = tp
		found := false
		for _, t := range res.Topics {
			for _, p := range t.Partitions {
				if t.Topic != tp.Topic || int(p.Partition) != tp.Partition {
					continue
				}
				if p.ErrorCode != 0 {
					writeErr(w, fmt.Errorf("offsets of %s/%d: %w", tp.Topic, tp.Partition, kafkago.Error(p.ErrorCode)))
					return
				}
				out[i].Offset, found = p.Offset, true
			}
		}
		if !found {
			writeErr(w, statusf(http.StatusNotFound, "topic %q has no partition %d", tp.Topic, tp.Partition))
			return
		}
	}
	writeJSON(w, http.StatusOK, out)
}
