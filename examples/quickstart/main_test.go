package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/internal/testtime"
)

func TestMain(m *testing.M) {
	runTimeout = testtime.Bound(runTimeout)
	os.Exit(pgtest.Main(m))
}

func TestQuickstart(t *testing.T) {
	t.Setenv("DATABASE_URL", pgtest.NewDatabase(t))
	var out bytes.Buffer
	if err := run(t.Context(), &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines:\n%s", len(lines), out.String())
	}
	var actions []string
	for _, l := range lines {
		var m struct {
			Action   string `json:"action"`
			Metadata struct {
				TableName   string         `json:"table_name"`
				Annotations map[string]any `json:"transaction_annotations"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %s", l)
		}
		if m.Metadata.TableName != name {
			t.Errorf("table %q", m.Metadata.TableName)
		}
		actions = append(actions, m.Action)
		if m.Action == "update" && m.Metadata.Annotations["username"] != "ada" {
			t.Errorf("update lacks its annotations: %s", l)
		}
	}
	if got := strings.Join(actions, ","); got != "insert,update,delete" {
		t.Errorf("actions %s", got)
	}
}
