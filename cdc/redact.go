package cdc

import (
	"fmt"
	"log/slog"
	"strings"
)

// redacted replaces secrets in what a Config prints.
const redacted = "xxxxx"

// String formats the Config as %+v would, with the passwords in
// ConnString masked, so that printing or logging a Config leaks no secret.
func (c Config) String() string {
	type fields Config // the same fields without the methods
	f := fields(c)
	f.ConnString = redactConnString(c.ConnString)
	return fmt.Sprintf("cdc.Config%+v", f)
}

// GoString is String: %#v masks the passwords too.
func (c Config) GoString() string { return c.String() }

// LogValue gives slog the connection (passwords masked), slot and
// publication.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("conn_string", redactConnString(c.ConnString)),
		slog.String("slot", c.Slot),
		slog.String("publication", c.Publication),
	)
}

// secretKeys are the connection parameters whose values are masked.
var secretKeys = map[string]bool{"password": true, "sslpassword": true}

// redactConnString returns a postgres URL or key=value DSN with its
// passwords (password, sslpassword, the URL's user-info password) replaced
// by "xxxxx". What it cannot parse it does not echo.
func redactConnString(s string) string {
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
		return redactURL(s)
	}
	out, ok := redactDSN(s)
	if !ok {
		return "(unparsable connection string)"
	}
	return out
}

func redactURL(s string) string {
	scheme, rest, _ := strings.Cut(s, "://")
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		user, _, hasPass := strings.Cut(authority[:at], ":")
		if hasPass {
			authority = user + ":" + redacted + authority[at:]
		}
	}
	path, query, hasQuery := strings.Cut(tail, "?")
	if hasQuery {
		frag := ""
		if i := strings.IndexByte(query, '#'); i >= 0 {
			query, frag = query[:i], query[i:]
		}
		params := strings.Split(query, "&")
		for i, p := range params {
			k, _, hasValue := strings.Cut(p, "=")
			if hasValue && secretKeys[strings.ToLower(k)] {
				params[i] = k + "=" + redacted
			}
		}
		tail = path + "?" + strings.Join(params, "&") + frag
	}
	return scheme + "://" + authority + tail
}

// redactDSN masks the secret values of a key=value DSN (values may be
// single-quoted, with backslash escapes), keeping the rest as written.
func redactDSN(s string) (string, bool) {
	var b strings.Builder
	i := 0
	for {
		for i < len(s) && isSpace(s[i]) {
			b.WriteByte(s[i])
			i++
		}
		if i == len(s) {
			return b.String(), true
		}
		eq := strings.IndexByte(s[i:], '=')
		if eq < 0 {
			return "", false
		}
		key := strings.TrimSpace(s[i : i+eq])
		b.WriteString(s[i : i+eq+1])
		i += eq + 1
		for i < len(s) && isSpace(s[i]) {
			b.WriteByte(s[i])
			i++
		}
		start := i
		if i < len(s) && s[i] == '\'' {
			i++
			for i < len(s) && s[i] != '\'' {
				if s[i] == '\\' {
					i++
				}
				i++
			}
			if i >= len(s) {
				return "", false // unterminated quote
			}
			i++
		} else {
			for i < len(s) && !isSpace(s[i]) {
				if s[i] == '\\' {
					i++
				}
				i++
			}
			i = min(i, len(s))
		}
		if secretKeys[key] {
			b.WriteString(redacted)
		} else {
			b.WriteString(s[start:i])
		}
	}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}
