package pull

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"

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
	closed    bool
	stop      chan struct{}
	reaperWG  sync.WaitGroup
}

// NewHandler validates cfg and returns the pull API's handler. Its dynamic
// type is *[Handler]: keep it to Close the handler, or use [New].
func NewHandler(cfg Config) (http.Handler, error) {
	h, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return h, nil
}

// New is [NewHandler] returning the concrete *Handler.
func New(cfg Config) (*Handler, error) {
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
	h.mux.HandleFunc("GET /fetch", h.fetch)
	h.mux.HandleFunc("POST /fetch", h.fetch)
	h.mux.HandleFunc("GET /consume/{group}/{instance}/{topic}", h.consume)
	h.mux.HandleFunc("GET /consume/{group}/{instance}", h.consume)
	h.mux.HandleFunc("POST /consume/{group}/{instance}", h.consume)
	h.mux.HandleFunc("DELETE /consume/{group}/{instance}", h.deleteInstance)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fetch" || strings.HasPrefix(r.URL.Path, "/consume/") {
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path))
			return
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

// Close closes every consumer instance (they leave their groups; records
// returned by their last call are not committed) and stops the idle
// reaper. Requests after Close get 503. Close is idempotent.
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
	var errs []error
	for _, inst := range insts {
		errs = append(errs, inst.close())
	}
	h.transport.CloseIdleConnections()
	return errors.Join(errs...)
}

// Record is one Kafka record as the API returns it.
type Record struct {
	Topic     string            `json:"topic"`
	Partition int               `json:"partition"`
	Offset    int64             `json:"offset"`
	Timestamp time.Time         `json:"timestamp"`
	Key       *string           `json:"key"` // null when the record has no key
	Value     string            `json:"value"`
	Headers   map[string]string `json:"headers"`
}

func headerMap(hs []kafkago.Header) map[string]string {
	m := make(map[string]string, len(hs))
	for _, h := range hs {
		m[h.Key] = string(h.Value)
	}
	return m
}

// errorBody is every error response.
type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding the response failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, werr := w.Write(append(b, '\n'))
	return errors.Join(err, werr)
}

// badRequest is a client error: an HTTP status and a message.
type badRequest struct {
	status int
	msg    string
}

func (e *badRequest) Error() string { return e.msg }

func badf(format string, args ...any) error {
	return &badRequest{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// writeErr answers with err's status: a badRequest's, 504 for a deadline,
// 404 for unknown topics, 502 for other Kafka failures.
func writeErr(w http.ResponseWriter, err error) {
	var br *badRequest
	switch {
	case errors.As(err, &br):
		writeError(w, br.status, br.msg)
	case errors.Is(err, kafkago.UnknownTopicOrPartition):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusGatewayTimeout, err.Error())
	default:
		writeError(w, http.StatusBadGateway, err.Error())
	}
}

// params reads request fields from the query or, for POST, a JSON body.
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
	if r.Method == http.MethodPost || r.ContentLength > 0 {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			return nil, badf("reading the body: %v", err)
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
	}
	return p, nil
}

func (p params) string(name string) (string, error) {
	raw, ok := p[name]
	if !ok {
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
	if !ok {
		return def, nil
	}
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
