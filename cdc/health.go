package cdc

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// HealthOptions tune [NewHealth]. The zero value is a safe default.
type HealthOptions struct {
	// SinkFailure is how long the writes of Run (or of a loop reporting them
	// with Stream.RecordWrite) may fail in a row before the
	// stream is not ready. 0 = 1 minute.
	SinkFailure time.Duration
	// Disconnected is how long the replication connection may be down
	// (while the stream reconnects) before the stream is not ready.
	// 0 = not ready as soon as it is down.
	Disconnected time.Duration
}

// Health answers liveness and readiness probes for a stream, over HTTP:
//
//	h := cdc.NewHealth(stream, cdc.HealthOptions{})
//	mux.Handle("/livez", h.LiveHandler())
//	mux.Handle("/readyz", h.ReadyHandler())
//
// Each answers 200 when healthy and 503 otherwise, with a JSON body
// {"status": "ok"|"fail", "problems": [...]}.
type Health struct {
	s    *Stream
	opts HealthOptions
}

// NewHealth returns the health checks of s.
func NewHealth(s *Stream, opts HealthOptions) *Health {
	if opts.SinkFailure <= 0 {
		opts.SinkFailure = time.Minute
	}
	return &Health{s: s, opts: opts}
}

// Live reports problems that only a restart cures: the stream has stopped
// (closed, or failed with an error a reconnect cannot fix).
func (h *Health) Live() []string {
	st := h.s.Stats()
	if !st.Stopped {
		return nil
	}
	if st.Err != nil {
		return []string{"stream stopped: " + st.Err.Error()}
	}
	return []string{"stream closed"}
}

// Ready reports why the stream is not delivering: it stopped, its
// replication connection is down (longer than Disconnected), Postgres says
// its slot is lost (as of the last [Stream.SlotStatus]), or Run's writes to
// the sink have failed for longer than SinkFailure. None means ready.
func (h *Health) Ready() []string {
	return h.ready(time.Now(), h.s.Stats())
}

func (h *Health) ready(now time.Time, st Stats) []string {
	var problems []string
	switch {
	case st.Stopped && st.Err != nil:
		problems = append(problems, "stream stopped: "+st.Err.Error())
	case st.Stopped:
		problems = append(problems, "stream closed")
	case !st.Connected && now.Sub(st.DisconnectedAt) >= h.opts.Disconnected:
		problems = append(problems, fmt.Sprintf("replication connection down for %v; reconnecting", now.Sub(st.DisconnectedAt).Round(time.Millisecond)))
	}
	if sl := st.SlotStatus; sl != nil && sl.Lost() {
		if !sl.Exists {
			problems = append(problems, "replication slot "+sl.Slot+" is gone")
		} else {
			problems = append(problems, "replication slot "+sl.Slot+" is lost (wal_status lost)")
		}
	}
	if d := st.Delivery; !d.FailingSince.IsZero() && now.Sub(d.FailingSince) >= h.opts.SinkFailure {
		problems = append(problems, fmt.Sprintf("sink writes failing for %v: %v", now.Sub(d.FailingSince).Round(time.Millisecond), d.LastError))
	}
	return problems
}

// LiveHandler serves Live: 200 with no problems, 503 with some.
func (h *Health) LiveHandler() http.Handler { return probe(h.Live) }

// ReadyHandler serves Ready: 200 with no problems, 503 with some.
func (h *Health) ReadyHandler() http.Handler { return probe(h.Ready) }

// HealthReport is the JSON body of the health handlers.
type HealthReport struct {
	Status   string   `json:"status"` // "ok" or "fail"
	Problems []string `json:"problems,omitempty"`
}

func probe(check func() []string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		problems := check()
		rep := HealthReport{Status: "ok", Problems: problems}
		code := http.StatusOK
		if len(problems) > 0 {
			rep.Status, code = "fail", http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(rep)
	})
}
