package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/walrelay/walrelay/cdc"
)

const checkSummary = `checks the database for what would stop a walrelay stream, and prints the SQL
that fixes each finding: wal_level, the role's REPLICATION attribute, the
publication and its tables (missing, not published, no primary key or
replica identity), and the slot (missing, of another plugin or database,
invalidated, in use). It changes nothing.

With -create (the default) the slot, and the publication of -tables, count as
created when missing, as walrelay run and tail create them; -create=false
checks that they exist already.

Exit status: 0 no blocking finding (warnings may be printed), 1 the check
could not run (no connection, say), 2 usage error (no database given, a bad
flag), 3 a blocking finding.`

const checkExample = `  DATABASE_URL=postgres://app@db/app walrelay check -tables public.orders,public.items
  walrelay check -database postgres://app@db/app -slot orders_cdc -publication orders_pub -create=false
  walrelay check -json | jq '.findings[] | select(.severity == "blocking") | .fix'
`

func checkCmd(ctx context.Context, e *env, args []string) int {
	fs := newDBFlags(e, "check", checkSummary, checkExample)
	slot, pub := fs.slotFlags("")
	var tables listFlag
	fs.Var(&tables, "tables", "tables the publication should have, `schema.table,...` (repeatable)")
	create := fs.Bool("create", true, "count a missing slot, and the publication of -tables, as created (as walrelay run and tail do)")
	asJSON := fs.Bool("json", false, "print the findings as JSON: {\"blocking\": n, \"warnings\": n, \"findings\": [{severity, code, object, message, fix}]}")
	url, code := fs.parse(args)
	if code >= 0 {
		return code
	}
	cfg := cdc.Config{
		ConnString:        url,
		Slot:              *slot,
		Publication:       *pub,
		PublicationTables: tables,
		CreateSlot:        *create,
		CreatePublication: *create && len(tables) > 0,
	}
	findings, err := cdc.Check(ctx, cfg)
	if err != nil {
		return failErr(e, "check", err)
	}
	var blocking, warnings int
	for _, f := range findings {
		if f.Severity == cdc.SeverityBlocking {
			blocking++
		} else {
			warnings++
		}
	}
	if *asJSON {
		out := struct {
			Blocking int           `json:"blocking"`
			Warnings int           `json:"warnings"`
			Findings []cdc.Finding `json:"findings"`
		}{blocking, warnings, findings}
		if out.Findings == nil {
			out.Findings = []cdc.Finding{}
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return fail(e, "check", exitFailure, err)
		}
	} else {
		printFindings(e, cfg, findings, blocking, warnings)
	}
	if blocking > 0 {
		return exitBlocking
	}
	return exitOK
}

func printFindings(e *env, cfg cdc.Config, findings []cdc.Finding, blocking, warnings int) {
	w := e.stdout
	what := fmt.Sprintf("slot %q, publication %q", cfg.Slot, cfg.Publication)
	if len(cfg.PublicationTables) > 0 {
		what += " with " + strings.Join(cfg.PublicationTables, ", ")
	}
	fmt.Fprintf(w, "checked %s\n", what)
	for _, f := range findings {
		sev := "warning "
		if f.Severity == cdc.SeverityBlocking {
			sev = "BLOCKING"
		}
		fmt.Fprintf(w, "\n%s  %s", sev, f.Code)
		if f.Object != "" {
			fmt.Fprintf(w, "  %s", f.Object)
		}
		fmt.Fprintf(w, "\n  %s\n", f.Message)
		if f.Fix != "" {
			fmt.Fprintf(w, "  fix: %s\n", f.Fix)
		}
	}
	switch {
	case blocking > 0:
		fmt.Fprintf(w, "\n%s, %s: walrelay cannot stream until the blocking ones are fixed\n", plural(blocking, "blocking finding"), plural(warnings, "warning"))
	case warnings > 0:
		fmt.Fprintf(w, "\n%s, nothing blocking: walrelay can stream\n", plural(warnings, "warning"))
	default:
		fmt.Fprintf(w, "ok: nothing found; walrelay can stream\n")
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
