package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/walrelay/walrelay/backfill"
	"github.com/walrelay/walrelay/cdc"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/metrics/prom"
	"github.com/walrelay/walrelay/pull"
	"github.com/walrelay/walrelay/sink"
	"github.com/walrelay/walrelay/sink/kafka"
	"github.com/walrelay/walrelay/sink/webhook"
)

// exampleConfig is the complete example config that walrelay run -h prints
// and the tests run.
//
//go:embed walrelay.example.yaml
var exampleConfig string

const runSummary = "run a stream, its backfills and its sinks from a YAML config"

// defaultDrain bounds the delivery of the batch in flight at shutdown
// (delivery.drain): below the 30 s most orchestrators wait after SIGTERM.
const defaultDrain = 20 * time.Second

func runHelp() string {
	return `  walrelay run -example > walrelay.yaml                # start from the example below
  walrelay run -config walrelay.yaml -check-config   # validate only, no connection
  walrelay run -config walrelay.yaml

walrelay run streams the changes of one publication, and the rows of the
configured backfills, to every sink, until SIGTERM or SIGINT. A message is
acknowledged to Postgres only once every sink took it, so a crash or kill
loses nothing: after a restart the stream resumes from the last
acknowledged position and a backfill from its last saved chunk. Messages
delivered again carry the same idempotency key (metadata.idempotency_key,
the webhook's Idempotency-Key header, the Kafka record's idempotency-key
header). On SIGTERM or SIGINT it stops reading, delivers and acknowledges
what it took (for at most delivery.drain), closes the sinks and exits 0.

The config file (YAML). Unknown keys are errors naming the key and its line.
` + envHelp + `

The database is -database, else the file's database, else $DATABASE_URL.

With http.listen, it serves /metrics (Prometheus), /livez and /readyz
(200, or 503 with the problems as JSON). With pull, it serves the REST pull
API over the Kafka topics on its own address.

Exit status: 0 after SIGTERM/SIGINT (or -check-config on a valid file),
1 when the pipeline fails (the error says why), 2 for a usage or config
error.

A complete example (walrelay.example.yaml in the source):

` + indent(exampleConfig, "  ") + "\n"
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n")
}

func runCmd(ctx context.Context, e *env, args []string) int {
	fs := newFlags(e, "run", runSummary, runHelp())
	configPath := fs.String("config", "", "the YAML config `file` (required)")
	database := fs.String("database", "", "the database `URL` (default: the config's database, else $DATABASE_URL)")
	checkOnly := fs.Bool("check-config", false, "validate the config file and exit, without connecting")
	example := fs.Bool("example", false, "print the example config to stdout and exit (walrelay run -example > walrelay.yaml)")
	if code := parse(fs, e, args); code >= 0 {
		return code
	}
	if *example {
		io.WriteString(e.stdout, exampleConfig)
		return exitOK
	}
	if *configPath == "" {
		fmt.Fprintln(e.stderr, "walrelay run: -config is required (walrelay run -h shows an example config)")
		return exitUsage
	}
	cfg, err := loadConfig(*configPath, e.getenv)
	if err != nil {
		return fail(e, "run", exitUsage, err)
	}
	dbURL := *database
	if dbURL == "" {
		dbURL = cfg.Database
	}
	if dbURL == "" {
		dbURL = e.getenv("DATABASE_URL")
	}
	log := newLogger(e.stderr, cfg.Log)
	p, err := build(cfg, dbURL, log, e.stdout)
	if err != nil {
		return fail(e, "run", exitUsage, err)
	}
	if *checkOnly {
		p.close(context.Background())
		fmt.Fprintf(e.stdout, "%s: valid: slot %s, publication %s, %d backfill(s), sinks: %s\n",
			cfg.file, cfg.Stream.Slot, cfg.Stream.Publication, len(cfg.Backfills), strings.Join(p.sinkNames(), ", "))
		if dbURL == "" {
			fmt.Fprintln(e.stdout, "no database yet: pass -database, set database in the file, or set DATABASE_URL to run it")
		}
		return exitOK
	}
	if dbURL == "" {
		p.close(context.Background())
		return fail(e, "run", exitUsage, errors.New("no database: pass -database postgres://user:pass@host/db, set database in the config file, or set DATABASE_URL"))
	}
	if err := p.run(ctx); err != nil {
		return fail(e, "run", exitFailure, err)
	}
	return exitOK
}

func newLogger(w io.Writer, c logConfig) *slog.Logger {
	var level slog.Level
	switch c.Level {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// pipeline is a config turned into the library's configs and sinks, ready
// to run.
type pipeline struct {
	cfg       *runConfig
	log       *slog.Logger
	stream    cdc.Config
	backfills []backfill.Config
	sinks     []builtSink
	runOpts   cdc.RunOptions
	pull      *pull.Config
}

type builtSink struct {
	name  string
	sink  sink.Sink          // with its filter, transforms and retry
	stats sink.StatsReporter // the destination's own counters
}

func (p *pipeline) sinkNames() []string {
	var names []string
	for i, s := range p.sinks {
		names = append(names, fmt.Sprintf("%s (%s)", s.name, p.cfg.sinkKind(i)))
	}
	return names
}

func (p *pipeline) close(ctx context.Context) error {
	var errs []error
	for _, s := range p.sinks {
		if err := s.sink.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close sink %s: %w", s.name, err))
		}
	}
	return errors.Join(errs...)
}

// build turns c into library configs and constructs the sinks (which
// connect to nothing yet), reporting what the library rejects at the line
// of the part of the file it came from.
func build(c *runConfig, dbURL string, log *slog.Logger, stdout io.Writer) (*pipeline, error) {
	p := &pipeline{cfg: c, log: log}
	v := &validator{c: c}
	p.stream = c.cdcConfig(dbURL, log)
	check := p.stream
	if check.ConnString == "" {
		check.ConnString = "postgres://localhost/postgres" // checked when there is one
	}
	if err := check.Validate(); err != nil {
		v.bad("stream", "%v", err)
	}
	for _, b := range c.Backfills {
		p.backfills = append(p.backfills, backfill.Config{
			Table: b.Table, ID: b.ID, ChunkSize: b.ChunkSize,
			Columns: b.Columns, Where: b.Where, OrderBy: b.OrderBy,
		})
	}
	for i, sc := range c.Sinks {
		path := fmt.Sprintf("sinks[%d]", i)
		bs, err := buildSink(c, i, sc, log, stdout)
		if err != nil {
			var ce *configError
			if errors.As(err, &ce) {
				v.errs = append(v.errs, ce)
			} else {
				v.bad(path, "%v", err)
			}
			continue
		}
		p.sinks = append(p.sinks, bs)
	}
	p.runOpts = cdc.RunOptions{
		BatchSize:    c.Delivery.BatchSize,
		BatchTimeout: time.Duration(c.Delivery.BatchTimeout),
		Drain:        time.Duration(c.Delivery.Drain),
		Logger:       log,
	}
	if !c.has("delivery.drain") {
		p.runOpts.Drain = defaultDrain
	}
	if c.Pull != nil {
		p.pull = c.pullAPIConfig(log, v)
	}
	if len(v.errs) > 0 {
		p.close(context.Background())
		return nil, &configErrors{file: c.file, errs: v.errs}
	}
	return p, nil
}

// cdcConfig is the stream section as the stream's configuration.
func (c *runConfig) cdcConfig(dbURL string, log *slog.Logger) cdc.Config {
	s := c.Stream
	cfg := cdc.Config{
		ConnString:        dbURL,
		Slot:              s.Slot,
		Publication:       s.Publication,
		PublicationTables: s.Tables,
		CreateSlot:        s.CreateSlot,
		CreatePublication: s.CreatePublication,
		AlterPublication:  s.AlterPublication,
		WaitForSlot:       s.WaitForSlot,
		BackfillTable:     s.BackfillTable,
		HeartbeatInterval: time.Duration(s.HeartbeatInterval),
		BufferSize:        s.BufferSize,
		Consumer:          message.Consumer{Name: s.ConsumerName},
		Logger:            log,
	}
	switch s.Truncate {
	case "emit":
		cfg.Truncate = cdc.TruncateEmit
	case "fail":
		cfg.Truncate = cdc.TruncateFail
	}
	return cfg
}

// pullAPIConfig is the pull section as the pull API's configuration, its
// brokers those of the kafka sinks when it names none. What is wrong in
// it goes to v; the handler is made once to check it, and closed.
func (c *runConfig) pullAPIConfig(log *slog.Logger, v *validator) *pull.Config {
	pc := pull.Config{
		Brokers:        c.Pull.Brokers,
		Username:       c.Pull.Username,
		Password:       c.Pull.Password,
		InsecureNoAuth: c.Pull.InsecureNoAuth,
		Topics:         c.Pull.Topics,
		Logger:         log,
	}
	if len(pc.Brokers) == 0 {
		pc.Brokers = c.kafkaBrokers()
	}
	var err error
	if pc.TLS, err = loadTLS(c.Pull.TLS); err != nil {
		v.bad("pull.tls", "%v", err)
	}
	pc.SASL = c.Pull.SASL.config()
	if h, err := pull.NewHandler(pc); err != nil {
		v.bad("pull", "%v", err)
	} else {
		h.Close()
	}
	return &pc
}

func (s *saslYAML) config() *kafka.SASL {
	if s == nil {
		return nil
	}
	return &kafka.SASL{Mechanism: s.Mechanism, Username: s.Username, Password: s.Password}
}

// loadTLS makes the TLS config of a tls: section (nil = no TLS).
func loadTLS(t *tlsConfig) (*tls.Config, error) {
	if t == nil {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s holds no PEM certificate", t.CAFile)
		}
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, errors.New("cert_file and key_file go together")
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// buildSink makes sinks[i]: the destination, its transforms, its filter and
// its own retry (so that one failing destination is retried alone).
func buildSink(c *runConfig, i int, sc sinkConfig, log *slog.Logger, stdout io.Writer) (builtSink, error) {
	name := c.sinkName(i)
	path := fmt.Sprintf("sinks[%d]", i)
	enc := sink.JSON
	switch sc.Format {
	case "record_only":
		enc = sink.RecordOnly
	case "event":
		enc = sink.Event
	}
	var dest sink.Sink
	var stats sink.StatsReporter
	slg := log.With("sink", name)
	switch c.sinkKind(i) {
	case "webhook":
		s, err := c.webhookSink(path, sc.Webhook, enc, slg)
		if err != nil {
			return builtSink{}, err
		}
		dest, stats = s, s
	case "kafka":
		s, err := c.kafkaSink(path, sc.Kafka, enc, slg)
		if err != nil {
			return builtSink{}, err
		}
		dest, stats = s, s
	case "stdout":
		s := &linesSink{w: stdout, enc: enc}
		dest, stats = s, s
	}
	out := filtered(transformed(dest, sc), sc)
	out = sink.Retry(out, sink.RetryOptions{
		Backoff: sinkBackoff,
		OnRetry: func(attempt int, wait time.Duration, err error) {
			slg.Warn("sink write failed; retrying", "attempt", attempt, "retry_in", wait, "err", err)
		},
	})
	return builtSink{name: name, sink: out, stats: stats}, nil
}

// errAt is err as the configuration error of the key at path.
func (c *runConfig) errAt(path string, err error) *configError {
	return &configError{line: c.line(path), msg: path + ": " + err.Error()}
}

// webhookSink makes the webhook sink of the sink at path.
func (c *runConfig) webhookSink(path string, w *webhookConfig, enc sink.Encoder, log *slog.Logger) (*webhook.Sink, error) {
	tc, err := loadTLS(&tlsConfig{CAFile: w.CAFile})
	if err != nil {
		return nil, c.errAt(path+".webhook.ca_file", err)
	}
	if w.CAFile == "" {
		tc = nil
	}
	header := http.Header{}
	for k, v := range w.Headers {
		header[k] = []string{v}
	}
	s, err := webhook.New(webhook.Config{
		URL: w.URL, Secret: w.Secret, Header: header, Encoder: enc,
		MaxBatchSize: w.MaxBatchSize, Timeout: time.Duration(w.Timeout), StopOn: w.StopOn,
		TLSConfig: tc, Logger: log,
	})
	if err != nil {
		return nil, c.errAt(path+".webhook", err)
	}
	return s, nil
}

// kafkaSink makes the kafka sink of the sink at path.
func (c *runConfig) kafkaSink(path string, k *kafkaConfig, enc sink.Encoder, log *slog.Logger) (*kafka.Sink, error) {
	tc, err := loadTLS(k.TLS)
	if err != nil {
		return nil, c.errAt(path+".kafka.tls", err)
	}
	s, err := kafka.New(kafka.Config{
		Brokers: k.Brokers, Topic: k.Topic, Prefix: k.Prefix, Encoder: enc,
		Compression: kafka.Compression(k.Compression), AllowAutoTopicCreation: k.AllowAutoTopicCreation,
		TLS: tc, SASL: k.SASL.config(), Logger: log,
	})
	if err != nil {
		return nil, c.errAt(path+".kafka", err)
	}
	return s, nil
}

// transformed is out with the sink's column transforms applied to what it
// writes, if it has any.
func transformed(out sink.Sink, sc sinkConfig) sink.Sink {
	var fns []sink.Transform
	if len(sc.DropColumns) > 0 {
		fns = append(fns, sink.DropColumns(sc.DropColumns...))
	}
	if len(sc.MaskColumns) > 0 {
		fns = append(fns, sink.MaskColumns(sc.MaskColumns...))
	}
	if len(sc.RenameColumns) > 0 {
		fns = append(fns, sink.RenameColumns(sc.RenameColumns))
	}
	if len(fns) > 0 {
		out = sink.Map(out, sink.Chain(fns...))
	}
	return out
}

// filtered is out writing only the messages of the sink's tables and
// actions, if it names any.
func filtered(out sink.Sink, sc sinkConfig) sink.Sink {
	var keep []sink.Predicate
	if len(sc.Tables) > 0 {
		keep = append(keep, sink.Tables(sc.Tables...)) // validate checked the names
	}
	if len(sc.Actions) > 0 {
		actions := make([]message.Action, len(sc.Actions))
		for j, a := range sc.Actions {
			actions[j] = message.Action(a)
		}
		keep = append(keep, sink.Actions(actions...))
	}
	if len(keep) > 0 {
		out = sink.Filter(out, sink.All(keep...))
	}
	return out
}

// sinkBackoff retries one sink's failed writes as sink.DefaultBackoff does
// (from 100ms, without end: the drain at shutdown bounds it), but up to 30s
// between attempts.
func sinkBackoff() backoff.BackOff {
	b := sink.DefaultBackoff().(*backoff.ExponentialBackOff)
	b.MaxInterval = 30 * time.Second
	return b
}

// linesSink writes each message as one line of its encoding (JSON lines by
// default) to w: the stdout sink.
type linesSink struct {
	sink.Counters
	mu     sync.Mutex
	w      io.Writer
	enc    sink.Encoder
	closed bool
}

func (s *linesSink) Write(ctx context.Context, msgs ...message.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("stdout: %w", err)
	}
	var buf []byte
	for _, m := range msgs {
		b, err := s.enc(m)
		if err != nil {
			err = sink.Permanent(fmt.Errorf("stdout: encode: %w", err))
			s.Failed(err)
			return err
		}
		buf = append(append(buf, b...), '\n')
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return sink.ErrClosed
	}
	if _, err := s.w.Write(buf); err != nil {
		err = fmt.Errorf("stdout: %w", err)
		s.Failed(err)
		return err
	}
	s.Delivered(len(msgs))
	s.Wrote()
	return nil
}

func (s *linesSink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// run streams until ctx ends (a signal: nil) or the pipeline fails.
func (p *pipeline) run(ctx context.Context) (err error) {
	log := p.log
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = errors.Join(err, p.close(cctx))
	}()

	// The endpoints listen before the stream opens, so that a standby
	// waiting for the slot (wait_for_slot) is live, and not ready.
	var ep endpoints
	if p.cfg.HTTP.Listen != "" {
		stop, err := serve(p.cfg.HTTP.Listen, ep.mux(), 30*time.Second, log, "serving metrics and health")
		if err != nil {
			return fmt.Errorf("http.listen: %w", err)
		}
		defer stop()
	}
	if p.pull != nil {
		stop, err := p.servePull()
		if err != nil {
			return err
		}
		defer stop()
	}

	s, err := cdc.Open(ctx, p.stream)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while opening (a standby waiting for the slot)
		}
		return fmt.Errorf("open the stream: %w", err)
	}
	defer s.Close() // after Run and the backfills returned: sends the last acknowledged position
	ep.health.Store(cdc.NewHealth(s, cdc.HealthOptions{}))
	reporters := map[string]sink.StatsReporter{}
	sinks := make([]sink.Sink, len(p.sinks))
	names := make([]string, len(p.sinks))
	for i, bs := range p.sinks {
		reporters[bs.name] = bs.stats
		sinks[i] = bs.sink
		names[i] = bs.name
	}
	var mh http.Handler = prom.Handler(s, prom.Options{Sinks: reporters})
	ep.metrics.Store(&mh)
	log.Info("walrelay run started", "slot", p.stream.Slot, "publication", p.stream.Publication,
		"sinks", strings.Join(names, ","), "backfills", len(p.backfills))
	return p.relay(ctx, s, sinks)
}

// endpoints are the health and metrics handlers of http.listen. Until the
// stream opens they answer that it is not open yet; then the stream's
// health and metrics answer.
type endpoints struct {
	health  atomic.Pointer[cdc.Health]
	metrics atomic.Pointer[http.Handler]
}

// mux serves /livez, /readyz and /metrics.
func (ep *endpoints) mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/livez", func(w http.ResponseWriter, r *http.Request) {
		if h := ep.health.Load(); h != nil {
			h.LiveHandler().ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`)
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if h := ep.health.Load(); h != nil {
			h.ReadyHandler().ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"status":"fail","problems":["the stream is not open yet"]}`)
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		if h := ep.metrics.Load(); h != nil {
			(*h).ServeHTTP(w, r)
			return
		}
		http.Error(w, "the stream is not open yet", http.StatusServiceUnavailable)
	})
	return mux
}

// servePull serves the pull API on pull.listen. stop stops serving, then
// closes the handler.
func (p *pipeline) servePull() (stop func(), err error) {
	h, err := pull.NewHandler(*p.pull)
	if err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	stopServe, err := serve(p.cfg.Pull.Listen, h, pull.DefaultMaxTimeout+30*time.Second, p.log, "serving the pull API")
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("pull.listen: %w", err)
	}
	return func() {
		stopServe()
		h.Close()
	}, nil
}

// relay runs the backfills alongside the stream delivering to sinks, until
// ctx ends or one of them fails. A stop by ctx is no error.
func (p *pipeline) relay(ctx context.Context, s *cdc.Stream, sinks []sink.Sink) error {
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, b := range p.backfills {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Backfill(rctx, b); err != nil && rctx.Err() == nil {
				cancel(fmt.Errorf("backfill %s of %s: %w", b.ID, b.Table, err))
			}
		}()
	}
	runErr := cdc.Run(rctx, s, sink.Fanout(sinks...), p.runOpts)
	cancel(nil)
	wg.Wait()
	if cause := context.Cause(rctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause // a backfill failed
	}
	if ctx.Err() != nil && errors.Is(runErr, ctx.Err()) {
		if runErr != ctx.Err() {
			// A write was cut short: by the end of the drain, or a failing
			// sink. Its messages are delivered again after a restart.
			p.log.Warn("the batch in flight at shutdown was not delivered within delivery.drain; it will be sent again after a restart", "err", runErr)
		}
		p.log.Info("walrelay run stopped", "acked_lsn", s.Acked().String())
		return nil
	}
	return runErr
}

// serve listens on addr and serves h until stop is called.
func serve(addr string, h http.Handler, writeTimeout time.Duration, log *slog.Logger, what string) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: writeTimeout,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(what+" failed", "err", err)
		}
	}()
	log.Info(what, "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	}, nil
}
