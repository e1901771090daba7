package cdc

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzConfig feeds arbitrary connection strings, names and sizes to the
// Config validation: it never panics, rejects with a *ConfigError that does
// not quote the connection string's password, and a Config it accepts has
// every default filled in.
func FuzzConfig(f *testing.F) {
	f.Add("postgres://u:hunter2@127.0.0.1:5432/db?sslmode=disable", "slot_1", "pub", 0, int64(0), 0, "", false)
	f.Add("host=127.0.0.1 user=u password=hunter2 dbname=db", "s", "p", 10, int64(time.Second), 2, "public.t", true)
	f.Add("postgres://u:hunter2@[::1", "Slot", "", -1, int64(-1), 7, "t", false)
	f.Add("password='hunter2' host=/tmp port=99999", "x", "p", 1, int64(1), -1, "", true)
	f.Add("postgresql://%zz@h/db", strings.Repeat("a", 64), "p", 0, int64(0), 0, "", false)
	f.Fuzz(func(t *testing.T, conn, slot, pub string, buf int, status int64, truncate int, tables string, createPub bool) {
		cfg := Config{
			ConnString: conn, Slot: slot, Publication: pub, BufferSize: buf,
			StatusInterval: time.Duration(status), Truncate: TruncateMode(truncate),
			CreatePublication: createPub,
		}
		if tables != "" {
			cfg.PublicationTables = strings.Split(tables, ",")
		}
		err := cfg.validate()
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("validate returned %T %v, want *ConfigError", err, err)
			}
			if strings.Contains(conn, "hunter2") && strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error quotes the password: %v", err)
			}
			return
		}
		if cfg.BufferSize <= 0 || cfg.StatusInterval <= 0 || cfg.HeartbeatInterval == 0 || cfg.Backoff == nil || cfg.Logger == nil {
			t.Fatalf("accepted config without defaults: %+v", cfg)
		}
		if checkIdent("Slot", cfg.Slot) != nil || cfg.Publication == "" {
			t.Fatalf("accepted slot %q publication %q", cfg.Slot, cfg.Publication)
		}
	})
}
