package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/walrelay/walrelay/message"
)

// runConfig is the YAML file of walrelay run. Every key is documented in
// the example config (walrelay.example.yaml, printed by walrelay run -h).
type runConfig struct {
	Database  string           `yaml:"database"`
	Stream    streamConfig     `yaml:"stream"`
	Backfills []backfillConfig `yaml:"backfills"`
	Sinks     []sinkConfig     `yaml:"sinks"`
	Delivery  deliveryConfig   `yaml:"delivery"`
	HTTP      httpConfig       `yaml:"http"`
	Pull      *pullConfig      `yaml:"pull"`
	Log       logConfig        `yaml:"log"`

	// file is the config's path, for errors; lines maps the path of each
	// key given ("stream.slot", "sinks[1].webhook.url") to its line.
	file  string
	lines map[string]int
}

type streamConfig struct {
	Slot              string   `yaml:"slot"`
	Publication       string   `yaml:"publication"`
	Tables            []string `yaml:"tables"`
	CreateSlot        bool     `yaml:"create_slot"`
	CreatePublication bool     `yaml:"create_publication"`
	AlterPublication  bool     `yaml:"alter_publication"`
	WaitForSlot       bool     `yaml:"wait_for_slot"`
	BackfillTable     string   `yaml:"backfill_table"`
	HeartbeatInterval duration `yaml:"heartbeat_interval"`
	BufferSize        int      `yaml:"buffer_size"`
	Truncate          string   `yaml:"truncate"`
	ConsumerName      string   `yaml:"consumer_name"`
}

type backfillConfig struct {
	Table     string   `yaml:"table"`
	ID        string   `yaml:"id"`
	ChunkSize int      `yaml:"chunk_size"`
	Columns   []string `yaml:"columns"`
	Where     string   `yaml:"where"`
	OrderBy   []string `yaml:"order_by"`
}

type sinkConfig struct {
	Name          string            `yaml:"name"`
	Tables        []string          `yaml:"tables"`
	Actions       []string          `yaml:"actions"`
	Format        string            `yaml:"format"`
	DropColumns   []string          `yaml:"drop_columns"`
	MaskColumns   []string          `yaml:"mask_columns"`
	RenameColumns map[string]string `yaml:"rename_columns"`

	// Exactly one of these is given; its key names the sink's kind.
	Webhook *webhookConfig `yaml:"webhook"`
	Kafka   *kafkaConfig   `yaml:"kafka"`
	Stdout  *struct{}      `yaml:"stdout"`
}

type webhookConfig struct {
	URL          string            `yaml:"url"`
	Secret       string            `yaml:"secret"`
	Headers      map[string]string `yaml:"headers"`
	MaxBatchSize int               `yaml:"max_batch_size"`
	Timeout      duration          `yaml:"timeout"`
	StopOn       []int             `yaml:"stop_on"`
	CAFile       string            `yaml:"ca_file"`
}

type kafkaConfig struct {
	Brokers                []string   `yaml:"brokers"`
	Topic                  string     `yaml:"topic"`
	Prefix                 string     `yaml:"prefix"`
	Compression            string     `yaml:"compression"`
	AllowAutoTopicCreation bool       `yaml:"allow_auto_topic_creation"`
	SASL                   *saslYAML  `yaml:"sasl"`
	TLS                    *tlsConfig `yaml:"tls"`
}

type saslYAML struct {
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	Password  string `yaml:"password"`
}

type tlsConfig struct {
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

type deliveryConfig struct {
	BatchSize    int      `yaml:"batch_size"`
	BatchTimeout duration `yaml:"batch_timeout"`
	Drain        duration `yaml:"drain"`
}

type httpConfig struct {
	Listen string `yaml:"listen"`
}

type pullConfig struct {
	Listen         string     `yaml:"listen"`
	Brokers        []string   `yaml:"brokers"`
	Username       string     `yaml:"username"`
	Password       string     `yaml:"password"`
	InsecureNoAuth bool       `yaml:"insecure_no_auth"`
	Topics         []string   `yaml:"topics"`
	SASL           *saslYAML  `yaml:"sasl"`
	TLS            *tlsConfig `yaml:"tls"`
}

type logConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// duration is a time.Duration written as Go writes it: 500ms, 30s, 5m, 1h.
type duration time.Duration

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return &configError{line: n.Line, msg: fmt.Sprintf("%q is not a duration (write 500ms, 30s, 5m or 1h)", n.Value)}
	}
	if v < 0 {
		return &configError{line: n.Line, msg: fmt.Sprintf("duration %s is negative", n.Value)}
	}
	*d = duration(v)
	return nil
}

// configError is one problem of a config file, at a line (0 = the file).
type configError struct {
	line int
	msg  string
}

func (e *configError) Error() string {
	if e.line == 0 {
		return e.msg
	}
	return fmt.Sprintf("line %d: %s", e.line, e.msg)
}

// configErrors are all the problems found in a config file, by line. It
// prints one per line, each prefixed with file:line.
type configErrors struct {
	file string
	errs []*configError
}

func (e *configErrors) Error() string {
	var b strings.Builder
	for i, ce := range e.errs {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(e.file)
		if ce.line > 0 {
			fmt.Fprintf(&b, ":%d", ce.line)
		}
		b.WriteString(": ")
		b.WriteString(ce.msg)
	}
	return b.String()
}

// loadConfig reads, expands and validates the config file at path.
func loadConfig(path string, getenv func(string) string) (*runConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseConfig(path, data, getenv)
}

// parseConfig parses data, the config file named file: it expands ${VAR}
// references in values, rejects unknown keys, decodes and validates. Every
// error names the line.
func parseConfig(file string, data []byte, getenv func(string) string) (*runConfig, error) {
	fail := func(errs ...*configError) error {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].line < errs[j].line })
		return &configErrors{file: file, errs: errs}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fail(yamlErrors(err)...)
	}
	c := &runConfig{file: file, lines: map[string]int{}}
	if len(doc.Content) == 0 {
		return nil, fail(&configError{msg: "the file is empty (walrelay run -h prints an example)"})
	}
	root := doc.Content[0]
	var errs []*configError
	expandEnv(root, getenv, false, &errs)
	checkKeys(root, reflect.TypeOf(c).Elem(), "", c.lines, &errs)
	if len(errs) > 0 {
		return nil, fail(errs...)
	}
	if err := root.Decode(c); err != nil {
		errs := yamlErrors(err)
		for _, e := range errs {
			if p := c.pathAt(e.line); p != "" {
				e.msg = p + ": " + e.msg
			}
		}
		return nil, fail(errs...)
	}
	if errs := c.validate(); len(errs) > 0 {
		return nil, fail(errs...)
	}
	return c, nil
}

// yamlErrors turns yaml.v3's errors ("yaml: line 3: …", or a list of
// "line 3: cannot unmarshal …") into configErrors.
func yamlErrors(err error) []*configError {
	var ce *configError
	if errors.As(err, &ce) {
		return []*configError{ce}
	}
	var te *yaml.TypeError
	msgs := []string{err.Error()}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	var out []*configError
	for _, m := range msgs {
		m = strings.TrimPrefix(m, "yaml: ")
		line := 0
		if rest, ok := strings.CutPrefix(m, "line "); ok {
			if n, after, ok := strings.Cut(rest, ": "); ok {
				if l, err := strconv.Atoi(n); err == nil {
					line, m = l, after
				}
			}
		}
		out = append(out, &configError{line: line, msg: m})
	}
	return out
}

// expandEnv replaces ${VAR} in every scalar value (not in keys) under n by
// the environment variable's value; see envHelp for the rules.
func expandEnv(n *yaml.Node, getenv func(string) string, isKey bool, errs *[]*configError) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			expandEnv(c, getenv, false, errs)
		}
	case yaml.MappingNode:
		for i, c := range n.Content {
			expandEnv(c, getenv, i%2 == 0, errs)
		}
	case yaml.ScalarNode:
		if isKey || !strings.Contains(n.Value, "$") {
			return
		}
		v, err := expand(n.Value, getenv)
		if err != nil {
			*errs = append(*errs, &configError{line: n.Line, msg: err.Error()})
			return
		}
		n.Value = v
		if n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle|yaml.TaggedStyle) == 0 {
			// A plain scalar is typed by what it holds once expanded
			// (port: ${PORT} is a number), except that an expansion never
			// makes a value null.
			n.Tag = ""
			switch v {
			case "", "~", "null", "Null", "NULL":
				n.Tag = "!!str"
			}
		}
	}
}

const envHelp = `In values, ${VAR} is replaced by the environment variable VAR, which
must be set and not empty; ${VAR:-default} gives a default for when it is
unset or empty. $$ is a literal $ (write $${VAR} for the text ${VAR}); a $
followed by anything else is kept as it is. Keys and comments are not
expanded. Top-level keys starting with x- are ignored: a place for YAML
anchors (&name) that sinks merge (<<: *name).`

// expand applies the ${VAR} rules to s. Errors name the variable, never its
// value.
func expand(s string, getenv func(string) string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
			continue
		case '{':
		default:
			b.WriteByte('$')
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("%q has ${ without its closing } (write $$ for a literal $)", s[i:])
		}
		ref := s[i+2 : i+end]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !validEnvName(name) {
			return "", fmt.Errorf("${%s} is not a variable reference: a name is letters, digits and _ (write $$ for a literal $)", ref)
		}
		v := getenv(name)
		if v == "" {
			if !hasDef {
				return "", fmt.Errorf("environment variable %s is not set (${%s}; set it, or give a default: ${%s:-value})", name, name, name)
			}
			v = def
		}
		b.WriteString(v)
		i += end
	}
	return b.String(), nil
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// checkKeys reports the keys of n that t has no field for, and records the
// line of every key in lines, by path.
func checkKeys(n *yaml.Node, t reflect.Type, path string, lines map[string]int, errs *[]*configError) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // Decode reports the type
		}
		fields, names := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" { // a merge of anchored mappings
				if v.Kind == yaml.SequenceNode {
					for _, m := range v.Content {
						checkKeys(m, t, path, lines, errs)
					}
				} else {
					checkKeys(v, t, path, lines, errs)
				}
				continue
			}
			f, ok := fields[k.Value]
			if !ok && path == "" && strings.HasPrefix(k.Value, "x-") {
				continue // a place for anchors, as in Compose files
			}
			if !ok {
				*errs = append(*errs, &configError{line: k.Line, msg: unknownKey(k.Value, path, names)})
				continue
			}
			p := join(path, k.Value)
			lines[p] = k.Line
			checkKeys(v, f.Type, p, lines, errs)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := join(path, n.Content[i].Value)
			lines[p] = n.Content[i].Line
			checkKeys(n.Content[i+1], t.Elem(), p, lines, errs)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			lines[p] = item.Line
			checkKeys(item, t.Elem(), p, lines, errs)
		}
	}
}

// yamlFields are the fields of struct type t by their YAML keys, and the
// keys in field order.
func yamlFields(t reflect.Type) (map[string]reflect.StructField, []string) {
	fields := map[string]reflect.StructField{}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		if tag := strings.Split(f.Tag.Get("yaml"), ",")[0]; tag != "" && tag != "-" {
			fields[tag] = f
			names = append(names, tag)
		}
	}
	return fields, names
}

// unknownKey says that key (in the mapping at path) is none of names, and
// which of them it is most like, or lists them all.
func unknownKey(key, path string, names []string) string {
	msg := fmt.Sprintf("unknown key %q", key)
	if path != "" {
		msg += " in " + path
	}
	if s := closest(key, names); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	} else {
		msg += " (known: " + strings.Join(names, ", ") + ")"
	}
	return msg
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// closest returns the name within two edits of s, or "".
func closest(s string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(s, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// line is the line of the key at path, or of its nearest parent given.
func (c *runConfig) line(path string) int {
	for path != "" {
		if l, ok := c.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// pathAt is the longest path of a key on line, or "".
func (c *runConfig) pathAt(line int) string {
	best := ""
	for p, l := range c.lines {
		if l == line && len(p) > len(best) {
			best = p
		}
	}
	return best
}

func (c *runConfig) has(path string) bool {
	_, ok := c.lines[path]
	return ok
}

// sinkKind is the kind of sinks[i]: the key given of webhook, kafka, stdout.
func (c *runConfig) sinkKind(i int) string {
	for _, k := range []string{"webhook", "kafka", "stdout"} {
		if c.has(fmt.Sprintf("sinks[%d].%s", i, k)) {
			return k
		}
	}
	return ""
}

// sinkName is sinks[i]'s name, or its kind when unnamed and the only one of
// its kind, else kind-i.
func (c *runConfig) sinkName(i int) string {
	if n := c.Sinks[i].Name; n != "" {
		return n
	}
	kind, same := c.sinkKind(i), 0
	for j := range c.Sinks {
		if c.sinkKind(j) == kind {
			same++
		}
	}
	if same == 1 {
		return kind
	}
	return fmt.Sprintf("%s-%d", kind, i)
}

// validate checks the values the YAML types cannot: required keys, names,
// URLs and addresses, choices. What the library's constructors check
// besides is reported when the pipeline is built.
func (c *runConfig) validate() []*configError {
	v := &validator{c: c}
	v.stream()
	v.backfills()
	v.sinks()
	v.service()
	return v.errs
}

// validator collects configuration errors (of validate, or of build), in
// the order the checks run.
type validator struct {
	c    *runConfig
	errs []*configError
}

// bad records an error at path, on the line the path is at.
func (v *validator) bad(path, format string, args ...any) {
	v.errs = append(v.errs, &configError{line: v.c.line(path), msg: path + ": " + fmt.Sprintf(format, args...)})
}

// table checks that name is a table name (schema.table or table).
func (v *validator) table(path, name string) {
	if _, _, err := message.ParseTable(name); err != nil {
		v.bad(path, "%v", err)
	}
}

// stream checks the stream section.
func (v *validator) stream() {
	s := v.c.Stream
	if s.Slot == "" {
		v.bad("stream.slot", "is required: the replication slot's name")
	}
	if s.Publication == "" {
		v.bad("stream.publication", "is required: the publication's name")
	}
	for i, t := range s.Tables {
		v.table(fmt.Sprintf("stream.tables[%d]", i), t)
	}
	if s.CreatePublication && len(s.Tables) == 0 {
		v.bad("stream.create_publication", "needs stream.tables: the tables to publish")
	}
	if s.BackfillTable != "" {
		v.table("stream.backfill_table", s.BackfillTable)
	}
	if s.BufferSize < 0 {
		v.bad("stream.buffer_size", "%d is negative", s.BufferSize)
	}
	switch s.Truncate {
	case "", "skip", "emit", "fail":
	default:
		v.bad("stream.truncate", "%q is not skip, emit or fail", s.Truncate)
	}
}

// backfills checks the backfills list: each needs a table and an id no
// other backfill has.
func (v *validator) backfills() {
	ids := map[string]bool{}
	for i, b := range v.c.Backfills {
		p := fmt.Sprintf("backfills[%d]", i)
		if b.Table == "" {
			v.bad(p+".table", "is required")
		} else {
			v.table(p+".table", b.Table)
		}
		if b.ID == "" {
			v.bad(p+".id", "is required: it names the backfill's progress and is part of every read's idempotency key")
		} else if ids[b.ID] {
			v.bad(p+".id", "%q is the id of another backfill", b.ID)
		}
		ids[b.ID] = true
		if b.ChunkSize < 0 {
			v.bad(p+".chunk_size", "%d is negative", b.ChunkSize)
		}
	}
}

// sinks checks the sinks list: at least one sink, each of exactly one
// kind, under a name no other sink has.
func (v *validator) sinks() {
	if len(v.c.Sinks) == 0 {
		v.bad("sinks", "at least one sink (webhook, kafka or stdout) is required")
	}
	names := map[string]bool{}
	for i := range v.c.Sinks {
		p := fmt.Sprintf("sinks[%d]", i)
		kinds := 0
		for _, k := range []string{"webhook", "kafka", "stdout"} {
			if v.c.has(p + "." + k) {
				kinds++
			}
		}
		if kinds != 1 {
			v.bad(p, "needs exactly one of webhook, kafka or stdout")
			continue
		}
		name := v.c.sinkName(i)
		if names[name] {
			v.bad(p+".name", "%q is the name of another sink", name)
		}
		names[name] = true
		v.sink(i, p)
	}
}

// sink checks sink i (at path p) past its kind and name: its filters,
// format and the settings of its kind.
func (v *validator) sink(i int, p string) {
	sk := v.c.Sinks[i]
	for j, t := range sk.Tables {
		v.table(fmt.Sprintf("%s.tables[%d]", p, j), t)
	}
	for j, a := range sk.Actions {
		if !message.Action(a).Valid() {
			v.bad(fmt.Sprintf("%s.actions[%d]", p, j), "%q is not insert, update, delete, read or truncate", a)
		}
	}
	switch sk.Format {
	case "", "json", "record_only", "event":
	default:
		v.bad(p+".format", "%q is not json, record_only or event", sk.Format)
	}
	switch v.c.sinkKind(i) {
	case "webhook":
		w := sk.Webhook
		if w == nil || w.URL == "" {
			v.bad(p+".webhook.url", "is required")
		} else if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// The URL may hold a token: say what is wrong, not what it is.
			v.bad(p+".webhook.url", "is not an http:// or https:// URL")
		}
	case "kafka":
		if sk.Kafka == nil || len(sk.Kafka.Brokers) == 0 {
			v.bad(p+".kafka.brokers", "is required: host:port of at least one broker")
		}
	}
}

// service checks the sections around the pipeline: delivery, http, pull
// and log.
func (v *validator) service() {
	c := v.c
	if c.Delivery.BatchSize < 0 {
		v.bad("delivery.batch_size", "%d is negative", c.Delivery.BatchSize)
	}
	if c.HTTP.Listen != "" {
		if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
			v.bad("http.listen", "%q is not host:port (127.0.0.1:9090, :9090)", c.HTTP.Listen)
		}
	}
	if c.Pull != nil {
		if _, _, err := net.SplitHostPort(c.Pull.Listen); err != nil {
			v.bad("pull.listen", "%q is not host:port (127.0.0.1:8080, :8080)", c.Pull.Listen)
		}
		if len(c.Pull.Brokers) == 0 && len(c.kafkaBrokers()) == 0 {
			v.bad("pull.brokers", "is required when no kafka sink gives brokers")
		}
	}
	switch c.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		v.bad("log.level", "%q is not debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "", "text", "json":
	default:
		v.bad("log.format", "%q is not text or json", c.Log.Format)
	}
}

// kafkaBrokers are the brokers of the first kafka sink, the pull API's
// default.
func (c *runConfig) kafkaBrokers() []string {
	for _, s := range c.Sinks {
		if s.Kafka != nil && len(s.Kafka.Brokers) > 0 {
			return s.Kafka.Brokers
		}
	}
	return nil
}
