package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestREADMEConfig runs the config of README's "Without writing Go" as the
// README says: validated, then run against a database with the table it
// names, printing the backfill's reads and the live changes (without the
// dropped column) until SIGTERM, which exits 0.
func TestREADMEConfig(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Without writing Go\n")
	_, block, ok2 := strings.Cut(section, "```yaml\n")
	block, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal(`README has no yaml block under "## Without writing Go"`)
	}
	path := filepath.Join(t.TempDir(), "walrelay.yaml")
	if err := os.WriteFile(path, []byte(block), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HTTP_LISTEN", "127.0.0.1:0")
	d := newDB(t, "create table orders (id int primary key, item text, internal_notes text)",
		"insert into orders values (1, 'book', 'a'), (2, 'pen', 'b')")
	if r := run(t, d.url, "run", "-config", path, "-check-config"); r.code != exitOK {
		t.Fatalf("-check-config of README's config: %v", r)
	}

	p := start(t, d.url, "run", "-config", path)
	type line struct {
		Action string         `json:"action"`
		Record map[string]any `json:"record"`
	}
	seen := map[string]bool{}
	expect := func(want ...string) {
		t.Helper()
		for _, w := range want {
			for !seen[w] {
				var l line
				raw := p.line()
				if err := json.Unmarshal([]byte(raw), &l); err != nil {
					t.Fatalf("stdout line %q: %v", raw, err)
				}
				if _, ok := l.Record["internal_notes"]; ok || (l.Record["item"] == nil && l.Action != "delete") {
					t.Errorf("%s record %v: want item (but in a delete, whose non-key columns are null) and no internal_notes (drop_columns)", l.Action, l.Record)
				}
				seen[fmt.Sprintf("%s %v", l.Action, l.Record["id"])] = true // ids are small: %v of a float64 prints 3
			}
		}
	}
	expect("read 1", "read 2")
	d.exec("insert into orders values (3, 'ink', 'c')", "update orders set item = 'books' where id = 1", "delete from orders where id = 2")
	expect("insert 3", "update 1", "delete 2")
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != exitOK {
		t.Fatalf("exit %d after SIGTERM, want 0; stderr:\n%s", code, p.stderr)
	}
}
