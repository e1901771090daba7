package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/walrelay/walrelay/backfill"
	"github.com/walrelay/walrelay/cdc"
)

const statusSummary = `shows walrelay's slots, the publications and the backfills, without
streaming. Walrelay's slots are the logical replication slots of the pgoutput
plugin in the database (the plugin walrelay streams with; other plugins' and
physical slots are left out), or those -slot names. For each: active or not
(and the backend holding it), the lag in bytes (WAL not yet confirmed by
its consumer) and in time (the walsender's flush_lag, while it streams),
the WAL it retains, wal_status and safe_wal_size (how much more WAL may be
written before max_slot_wal_keep_size invalidates it). Then every publication
with its tables, and the backfills saved in the progress table: done, or the
key they resume after.

Exit status: 0 printed, 1 failure (no connection, say), 2 usage error.`

const statusExample = `  DATABASE_URL=postgres://app@db/app walrelay status
  walrelay status -slot orders_cdc -json | jq '.slots[0].lag_bytes'
`

func statusCmd(ctx context.Context, e *env, args []string) int {
	fs := newDBFlags(e, "status", statusSummary, statusExample)
	var slots listFlag
	fs.Var(&slots, "slot", "only these slots, `name,...` (repeatable; default every pgoutput slot)")
	progress := fs.String("progress-table", "", "backfill progress table (default public.walrelay_backfills)")
	asJSON := fs.Bool("json", false, "print JSON: {\"slots\": [...], \"publications\": [...], \"backfills\": [...]}")
	url, code := fs.parse(args)
	if code >= 0 {
		return code
	}
	r := statusReport{asked: slots}
	var err error
	if r.slots, err = cdc.ListSlots(ctx, url); err != nil {
		return failErr(e, "status", err)
	}
	if len(slots) > 0 {
		r.slots = slices.DeleteFunc(r.slots, func(s cdc.SlotState) bool { return !slices.Contains(slots, s.Slot) })
	}
	if r.pubs, err = cdc.ListPublications(ctx, url); err != nil {
		return failErr(e, "status", err)
	}
	if r.bfs, err = cdc.ListBackfills(ctx, url, *progress); err != nil {
		return failErr(e, "status", err)
	}
	write := r.writeTable
	if *asJSON {
		write = r.writeJSON
	}
	if err := write(e.stdout); err != nil {
		return fail(e, "status", exitFailure, err)
	}
	return exitOK
}

// statusReport is what status prints: the slots (those asked for, if
// any were), the publications and the backfills.
type statusReport struct {
	asked []string
	slots []cdc.SlotState
	pubs  []cdc.Publication
	bfs   []backfill.Progress
}

// writeJSON writes the report as one indented JSON object.
func (r *statusReport) writeJSON(w io.Writer) error {
	out := struct {
		Slots        []cdc.SlotState   `json:"slots"`
		Publications []cdc.Publication `json:"publications"`
		Backfills    []backfillJSON    `json:"backfills"`
		Missing      []string          `json:"missing_slots,omitempty"`
	}{Slots: nonNil(r.slots), Publications: nonNil(r.pubs), Backfills: []backfillJSON{}, Missing: missing(r.asked, r.slots)}
	for _, b := range r.bfs {
		out.Backfills = append(out.Backfills, backfillJSON{b.ID, b.Table, b.Done, b.Cursor, b.UpdatedAt})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// writeTable writes the report as three tables, slots, publications and
// backfills, with a blank line between them.
func (r *statusReport) writeTable(out io.Writer) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	r.slotTable(w)
	fmt.Fprintln(w)
	r.publicationTable(w)
	fmt.Fprintln(w)
	r.backfillTable(w)
	return w.Flush()
}

func (r *statusReport) slotTable(w io.Writer) {
	fmt.Fprintln(w, "SLOT\tACTIVE\tLAG\tFLUSH LAG\tRETAINED\tWAL STATUS\tSAFE WAL SIZE")
	for _, s := range r.slots {
		active := "no"
		if s.Active {
			active = fmt.Sprintf("yes (pid %d)", s.ActivePID)
		}
		flushLag := "-"
		if s.FlushLag > 0 {
			flushLag = s.FlushLag.Round(time.Millisecond).String()
		}
		safe := "unlimited"
		if s.SafeWALSize >= 0 {
			safe = size(s.SafeWALSize)
		}
		status := s.WALStatus
		if s.Invalidation != "" {
			status += " (" + s.Invalidation + ")"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Slot, active, size(s.LagBytes), flushLag, size(s.RetainedBytes), status, safe)
	}
	if len(r.slots) == 0 {
		fmt.Fprintln(w, "(none)")
	}
	for _, m := range missing(r.asked, r.slots) {
		fmt.Fprintf(w, "%s\tno such pgoutput slot\n", m)
	}
}

func (r *statusReport) publicationTable(w io.Writer) {
	fmt.Fprintln(w, "PUBLICATION\tTABLES")
	for _, p := range r.pubs {
		tables := strings.Join(p.Tables, ", ")
		if p.AllTables {
			tables = "FOR ALL TABLES: " + tables
		}
		if tables == "" {
			tables = "(no tables)"
		}
		fmt.Fprintf(w, "%s\t%s\n", p.Name, tables)
	}
	if len(r.pubs) == 0 {
		fmt.Fprintln(w, "(none)")
	}
}

func (r *statusReport) backfillTable(w io.Writer) {
	fmt.Fprintln(w, "BACKFILL\tTABLE\tSAVED\tPROGRESS")
	for _, b := range r.bfs {
		prog := "done"
		if !b.Done {
			prog = "in progress, resumes after key " + strings.Join(b.Cursor, ", ")
			if len(b.Cursor) == 0 {
				prog = "started, no chunk saved yet"
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s ago\t%s\n", b.ID, b.Table, time.Since(b.UpdatedAt).Round(time.Second), prog)
	}
	if len(r.bfs) == 0 {
		fmt.Fprintln(w, "(none)")
	}
}

type backfillJSON struct {
	ID     string    `json:"id"`
	Table  string    `json:"table"`
	Done   bool      `json:"done"`
	Cursor []string  `json:"cursor"`
	Saved  time.Time `json:"saved_at"`
}

// missing are the names asked for that are not among the slots.
func missing(asked []string, st []cdc.SlotState) []string {
	var out []string
	for _, a := range asked {
		if !slices.ContainsFunc(st, func(s cdc.SlotState) bool { return s.Slot == a }) {
			out = append(out, a)
		}
	}
	return out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// size formats n bytes for people: 0 B, 512 B, 1.5 kB, 16.0 MB, 2.1 GB.
func size(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n), 0
	for f >= unit && i < 4 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %s", f, []string{"", "kB", "MB", "GB", "TB"}[i])
}
