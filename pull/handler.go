package pull

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"

	"github.com/walrelay/walrelay/internal/logkey"
	"github.com/walrelay/walrelay/sink/kafka"
)

// Handler serves the pull API. It is an [http.Handler]; Close stops its
// consumer instances and background work.
type Handler struct {
	cfg       Config
	mux       *http.ServeMux
	client    *kafkago.Client
	transport *kafkago.Transport
	dialer    *kafkago.Dialer
	log       *slog.Logger
	userHash  [32]byte
	passHash  [32]byte

	mu        sync.Mutex
	instances map[instanceKey]*instance
	nextID    uint64
	closed    bool
	stop      chan struct{}
	reaperWG  sync.WaitGroup
}

// NewHandler validates cfg and returns the pull API's handler. Mount it on
// an [http.Server] and Close it on shutdown.
func NewHandler(cfg Config) (*Handler, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("pull: config: %w", err)
	}
	transport, err := kafka.Transport(cfg.TLS, cfg.SASL, 0)
	if err != nil {
		return nil, fmt.Errorf("pull: config: %w", err)
	}
	var mech sasl.Mechanism
	if cfg.SASL != nil {
		mech = transport.SASL
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{
		cfg:       cfg,
		mux:       http.NewServeMux(),
		client:    &kafkago.Client{Addr: kafkago.TCP(cfg.Brokers...), Transport: transport},
		transport: transport,
		dialer: &kafkago.Dialer{Timeout: kafka.DefaultDialTimeout, DualStack: true, TLS: cfg.TLS,
			SASLMechanism: mech, ClientID: "walrelay-pull"},
		log:       log,
		userHash:  sha256.Sum256([]byte(cfg.Username)),
		passHash:  sha256.Sum256([]byte(cfg.Password)),
		instances: make(map[instanceKey]*instance),
		stop:      make(chan struct{}),
	}
	both := func(path string, f http.HandlerFunc) {
		h.mux.HandleFunc("GET "+path, f)
		h.mux.HandleFunc("POST "+path, f)
	}
	both("/fetch", h.fetch)
	both("/consume/{group}/{instance}/{topic}", h.consume)
	both("/consume/{group}/{instance}", h.consume)
	h.mux.HandleFunc("DELETE /consume/{group}/{instance}", h.deleteConsumer)
	both("/delete-consumer/{group}/{instance}", h.deleteConsumer)
	both("/commit/{group}/{instance}", h.commit)
	both("/committed/{group}/{instance}", h.committed)
	h.mux.HandleFunc("GET /topics", h.topics)
	h.mux.HandleFunc("GET /consumers", h.consumers)
	both("/offsets/{at}", h.offsets)
	for _, p := range []string{"/produce", "/produce/", "/webhook"} {
		h.mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusForbidden, "producing is not part of walrelay's pull API: its topics are written by walrelay")
		})
	}
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		for _, p := range []string{"/fetch", "/consume/", "/delete-consumer/", "/commit/", "/committed/", "/topics", "/consumers", "/offsets/"} {
			if r.URL.Path == p || strings.HasSuffix(p, "/") && strings.HasPrefix(r.URL.Path, p) {
				writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path))
				return
			}
		}
		writeError(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path))
	})
	h.reaperWG.Add(1)
	go h.reap()
	return h, nil
}

// ServeHTTP authenticates the request and serves it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.cfg.InsecureNoAuth && !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm=`+strconv.Quote(h.cfg.Realm)+`, charset="UTF-8"`)
		writeError(w, http.StatusUnauthorized, "authentication required")
		return
	}
	h.mux.ServeHTTP(w, r)
}

// authorized compares the credentials in constant time (over fixed-size
// digests, so the length of the secret does not leak either).
func (h *Handler) authorized(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	u := sha256.Sum256([]byte(user))
	p := sha256.Sum256([]byte(pass))
	userOK := subtle.ConstantTimeCompare(u[:], h.userHash[:])
	passOK := subtle.ConstantTimeCompare(p[:], h.passHash[:])
	return userOK&passOK == 1
}

// closeCommitTimeout bounds the commits Close makes for auto-commit
// instances.
const closeCommitTimeout = 5 * time.Second

// Close closes every consumer instance — those with auto-commit on commit
// what they delivered first — and stops the idle reaper. Requests after
// Close get 503. Close is idempotent.
func (h *Handler) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	close(h.stop)
	insts := h.instances
	h.instances = map[instanceKey]*instance{}
	h.mu.Unlock()

	h.reaperWG.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), closeCommitTimeout)
	defer cancel()
	var errs []error
	for _, inst := range insts {
		select {
		case inst.sem <- struct{}{}: // not in a call: its delivered records are stable
			if inst.opts.autoCommit {
				if err := h.commitDelivered(ctx, inst); err != nil {
					h.log.Debug("pull: commit at close failed; the records will be redelivered",
						slog.String(logkey.Group, inst.key.group), slog.String(logkey.Instance, inst.key.name), slog.Any(logkey.Err, err))
				}
			}
		default:
		}
		errs = append(errs, inst.close())
	}
	h.transport.CloseIdleConnections()
	return errors.Join(errs...)
}

// Record is one Kafka record as the API returns it, in the shape of
// Upstash's Kafka REST API.
type Record struct {
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
	Offset    int64  `json:"offset"`
	// Timestamp is the record's time in milliseconds since the Unix epoch.
	Timestamp int64 `json:"timestamp"`
	// Key is "" for a record without a key.
	Key   string `json:"key"`
	Value string `json:"value"`
	// Headers keeps the record's headers in order, repeated keys included;
	// [] when there are none.
	Headers []Header `json:"headers"`
}

// Header is one record header.
type Header struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// size is what a record counts against MaxResponseBytes.
func (r *Record) size() int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

func toHeaders(hs []kafkago.Header) []Header {
	out := make([]Header, len(hs))
	for i, h := range hs {
		out[i] = Header{Key: h.Key, Value: string(h.Value)}
	}
	return out
}

func msTime(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// errorBody is every error response, as Upstash's API shapes them.
type errorBody struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

// success is the body of a commit or a consumer deletion.
type success struct {
	Result string `json:"result"`
	Status int    `json:"status"`
}

var successBody = success{Result: "Success", Status: http.StatusOK}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg, Status: status})
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding the response failed","status":500}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, werr := w.Write(append(b, '\n'))
	return errors.Join(err, werr)
}

// apiError is a client-visible error: an HTTP status and a message.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func statusf(status int, format string, args ...any) error {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

func badf(format string, args ...any) error {
	return statusf(http.StatusBadRequest, format, args...)
}

// writeErr answers with err's status: an apiError's, 404 for unknown
// topics, 504 for a deadline, 502 for other Kafka failures.
func writeErr(w http.ResponseWriter, err error) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		writeError(w, ae.status, ae.msg)
	case errors.Is(err, kafkago.UnknownTopicOrPartition):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusGatewayTimeout, err.Error())
	default:
		writeError(w, http.StatusBadGateway, err.Error())
	}
}

// maxBody bounds a request body.
const maxBody = 1 << 20

func readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, badf("reading the body: %v", err)
	}
	if len(body) > maxBody {
		return nil, statusf(http.StatusRequestEntityTooLarge, "the body is over %d bytes", maxBody)
	}
	return bytes.TrimSpace(body), nil
}

// params reads request fields from the query and a JSON object body.
type params map[string]json.RawMessage

func readParams(r *http.Request) (params, error) {
	p := params{}
	for k, vs := range r.URL.Query() {
		b, _ := json.Marshal(vs[len(vs)-1])
		p[k] = b
		if k == "topic" && len(vs) > 1 {
			b, _ := json.Marshal(vs)
			p["topics"] = b
		}
	}
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	if len(body) > 0 {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(body, &fields); err != nil {
			return nil, badf("the body is not a JSON object: %v", err)
		}
		for k, v := range fields {
			p[k] = v
		}
	}
	return p, nil
}

func (p params) string(name string) (string, error) {
	raw, ok := p[name]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", badf("%s must be a string", name)
	}
	return s, nil
}

// int reads a non-negative integer given as a JSON number or a string.
func (p params) int(name string, def int64) (int64, error) {
	raw, ok := p[name]
	if !ok || string(raw) == "null" {
		return def, nil
	}
	return parseCount(name, raw)
}

func parseCount(name string, raw json.RawMessage) (int64, error) {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		s = string(raw)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, badf("%s must be a non-negative integer, not %s", name, raw)
	}
	return n, nil
}

// partition reads a partition number, which Kafka keeps in an int32.
func (p params) partition(name string) (int, error) {
	n, err := p.int(name, 0)
	if err != nil {
		return 0, err
	}
	if n > math.MaxInt32 {
		return 0, badf("%s %d is beyond the largest partition number", name, n)
	}
	return int(n), nil
}

// maxMillis is the largest millisecond count a time.Duration holds.
const maxMillis = math.MaxInt64 / int64(time.Millisecond)

// millis reads a duration in milliseconds.
func millis(name string, raw json.RawMessage) (time.Duration, error) {
	n, err := parseCount(name, raw)
	if err != nil {
		return 0, err
	}
	if n > maxMillis {
		return 0, badf("%s %d ms is too large", name, n)
	}
	return time.Duration(n) * time.Millisecond, nil
}

// timeout reads "timeout" in milliseconds, lowered to MaxTimeout.
func (h *Handler) timeout(p params) (time.Duration, error) {
	raw, ok := p["timeout"]
	if !ok || string(raw) == "null" {
		return min(DefaultWait, h.cfg.MaxTimeout), nil
	}
	d, err := millis("timeout", raw)
	if err != nil {
		return 0, err
	}
	return min(d, h.cfg.MaxTimeout), nil
}

// limit reads "limit": 1 to MaxLimit, default DefaultLimit capped too.
func (h *Handler) limit(p params) (int, error) {
	n, err := p.int("limit", DefaultLimit)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, badf("limit must be at least 1")
	}
	return int(min(n, int64(h.cfg.MaxLimit))), nil
}

// checkTopic answers 403 for a topic outside the allow-list.
func (h *Handler) checkTopic(topic string) error {
	if topic == "" {
		return badf("topic must not be empty")
	}
	if !h.cfg.topicAllowed(topic) {
		return statusf(http.StatusForbidden, "topic %q is not served by this API (see Config.Topics)", topic)
	}
	return nil
}

// groupID is the Kafka group id of a client's group name.
func (h *Handler) groupID(group string) string { return h.cfg.GroupPrefix + group }

// topicPartition names a partition.
type topicPartition struct {
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
}

// topicPartitionOffset is a position in a partition.
type topicPartitionOffset struct {
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
	Offset    int64  `json:"offset"`
}

// readPartitions parses a body holding one object or an array of them,
// each with topic and partition (and offset when withOffset), checking
// every field.
// requestPartitions reads the {topic, partition} (or array of them) that
// the request's body must name.
func (h *Handler) requestPartitions(r *http.Request) ([]topicPartitionOffset, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	if len(body) == 0 {
		return nil, badf("the body must name {topic, partition} or an array of them")
	}
	return h.readPartitions(body, false)
}

func (h *Handler) readPartitions(body []byte, withOffset bool) ([]topicPartitionOffset, error) {
	var raws []json.RawMessage
	if len(body) > 0 && body[0] == '[' {
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, badf("the body is not a JSON array of objects: %v", err)
		}
	} else {
		raws = []json.RawMessage{body}
	}
	out := make([]topicPartitionOffset, 0, len(raws))
	for _, raw := range raws {
		var p params
		if err := json.Unmarshal(raw, &p); err != nil || p == nil {
			return nil, badf("%s is not a JSON object", raw)
		}
		tpo, err := h.partitionOffset(p, withOffset)
		if err != nil {
			return nil, err
		}
		out = append(out, tpo)
	}
	return out, nil
}

// partitionOffset reads topic, partition and (when withOffset) offset.
func (h *Handler) partitionOffset(p params, withOffset bool) (topicPartitionOffset, error) {
	var tpo topicPartitionOffset
	topic, err := p.string("topic")
	if err != nil {
		return tpo, err
	}
	if topic == "" {
		return tpo, badf("topic is required")
	}
	if err := h.checkTopic(topic); err != nil {
		return tpo, err
	}
	part, err := p.partition("partition")
	if err != nil {
		return tpo, err
	}
	tpo = topicPartitionOffset{Topic: topic, Partition: part}
	if withOffset {
		if _, ok := p["offset"]; !ok {
			return tpo, badf("offset is required")
		}
		if tpo.Offset, err = p.int("offset", 0); err != nil {
			return tpo, err
		}
	}
	return tpo, nil
}
