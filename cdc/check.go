package cdc

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Severity says whether a [Finding] stops [Open].
type Severity string

const (
	// SeverityBlocking: Open refuses to start (it returns a [*CheckError]).
	SeverityBlocking Severity = "blocking"
	// SeverityWarning: Open starts and logs the finding at Warn.
	SeverityWarning Severity = "warning"
)

// FindingCode names what a [Finding] is about, stable for programs.
type FindingCode string

// The findings of [Check].
const (
	// FindingWALLevel: wal_level is not logical.
	FindingWALLevel FindingCode = "wal_level"
	// FindingServerVersion: the server cannot do what Config asks
	// (Failover before 17, decoding on a standby before 16).
	FindingServerVersion FindingCode = "server_version"
	// FindingReplicationRole: the role has neither REPLICATION nor
	// superuser, so Postgres refuses its replication connection.
	FindingReplicationRole FindingCode = "replication_role"
	// FindingAllTablesSuperuser: CreatePublication with
	// PublicationAllTables by a role that is not a superuser.
	FindingAllTablesSuperuser FindingCode = "all_tables_superuser"
	// FindingPublicationMissing: the publication does not exist and
	// Config.CreatePublication is off.
	FindingPublicationMissing FindingCode = "publication_missing"
	// FindingTableMissing: a table of Config.PublicationTables does not
	// exist.
	FindingTableMissing FindingCode = "table_missing"
	// FindingTableNotPublished: a table of Config.PublicationTables is
	// not in the existing publication (and Config.AlterPublication is off).
	FindingTableNotPublished FindingCode = "table_not_published"
	// FindingReplicaIdentity: a table that is, or would be, published has
	// no primary key and REPLICA IDENTITY DEFAULT (or NOTHING, or an index
	// that was dropped): its UPDATEs and DELETEs fail while it is in a
	// publication that publishes them. Blocking when Open would publish
	// it; a warning when it is published already.
	FindingReplicaIdentity FindingCode = "replica_identity"
	// FindingSlotMissing: the slot does not exist and Config.CreateSlot is
	// off.
	FindingSlotMissing FindingCode = "slot_missing"
	// FindingSlotUnusable: the slot is of another plugin or database,
	// physical, invalidated, or a standby's synchronised copy; or it
	// exists, and Config.TemporarySlot would create a slot of its name.
	FindingSlotUnusable FindingCode = "slot_unusable"
	// FindingSlotInUse: another process streams from the slot (a warning:
	// Open waits with Config.WaitForSlot, or returns [ErrSlotInUse]).
	FindingSlotInUse FindingCode = "slot_in_use"
)

// Finding is one problem [Check] found, with the SQL that fixes it. It
// marshals to JSON as {"severity", "code", "object", "message", "fix"}.
type Finding struct {
	Severity Severity    `json:"severity"`
	Code     FindingCode `json:"code"`
	// Object is what the finding is about: a table ("schema.table"), the
	// role, the publication or the slot; "" for the server.
	Object  string `json:"object,omitempty"`
	Message string `json:"message"`
	// Fix is SQL that fixes it, or "" when SQL cannot (a restart, say,
	// which Message then names).
	Fix string `json:"fix,omitempty"`
	// Err is the error the finding stands for, for errors.Is and
	// errors.As through a [*CheckError]: [ErrWALLevel], [ErrPrivilege],
	// [ErrReplicaIdentity], a [*SlotError], …
	Err error `json:"-"`
}

func (f Finding) String() string {
	s := string(f.Severity) + ": " + f.Message
	if f.Fix != "" {
		s += " (fix: " + f.Fix + ")"
	}
	return s
}

// CheckError is [Open]'s error when [Check] found blocking problems. It
// wraps each blocking finding's Err, so errors.Is(err, ErrWALLevel) and
// the like hold.
type CheckError struct {
	// Findings are all of Check's findings, warnings included.
	Findings []Finding
}

func (e *CheckError) Error() string {
	var b strings.Builder
	b.WriteString("cdc: the database is not ready")
	for _, f := range e.Blocking() {
		b.WriteString("; ")
		b.WriteString(f.Message)
		if f.Fix != "" {
			b.WriteString(" (fix: ")
			b.WriteString(f.Fix)
			b.WriteString(")")
		}
	}
	return b.String()
}

// Unwrap returns the blocking findings' errors.
func (e *CheckError) Unwrap() []error {
	var errs []error
	for _, f := range e.Blocking() {
		if f.Err != nil {
			errs = append(errs, f.Err)
		}
	}
	return errs
}

// Blocking returns the findings that stop Open.
func (e *CheckError) Blocking() []Finding { return blocking(e.Findings) }

func blocking(fs []Finding) []Finding {
	var out []Finding
	for _, f := range fs {
		if f.Severity == SeverityBlocking {
			out = append(out, f)
		}
	}
	return out
}

// Check looks at the database as [Open] would use it with cfg, changing
// nothing, and returns what it found: wal_level, the server's version, the
// role's REPLICATION attribute, the publication and its tables (missing
// ones, and tables without a primary key whose REPLICA IDENTITY would make
// the application's UPDATEs and DELETEs fail), and the slot. Each
// [Finding] carries its severity, a message and the SQL that fixes it.
//
// Open runs the same checks first: a blocking finding makes it return a
// [*CheckError] before it creates anything, and it logs the warnings.
// Check's error is for a check that could not run (an invalid Config, no
// connection, a query that failed).
func Check(ctx context.Context, cfg Config) ([]Finding, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	conn, release, err := cfg.connectOne(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	p, err := inspect(ctx, conn.Conn(), &cfg)
	if err != nil {
		return nil, err
	}
	return p.findings, nil
}

// preflight is what inspect learnt about the database.
type preflight struct {
	findings  []Finding
	dbName    string
	standby   bool
	pubExists bool
	// add are the PublicationTables missing from the existing publication
	// that Open adds (Config.AlterPublication).
	add  []string
	slot *slotRow
}

func (p *preflight) add1(f Finding) { p.findings = append(p.findings, f) }

// inspect runs Check's queries on conn.
func inspect(ctx context.Context, conn *pgx.Conn, cfg *Config) (*preflight, error) {
	p := &preflight{}
	var walLevel string
	var version int
	if err := conn.QueryRow(ctx, "select current_setting('wal_level'), current_database(), current_setting('server_version_num')::int, pg_is_in_recovery()").Scan(&walLevel, &p.dbName, &version, &p.standby); err != nil {
		return nil, fmt.Errorf("cdc: check server: %w", err)
	}
	if walLevel != "logical" {
		p.add1(Finding{Severity: SeverityBlocking, Code: FindingWALLevel,
			Message: fmt.Sprintf("wal_level is %q, not logical; set it and restart the server", walLevel),
			Fix:     "ALTER SYSTEM SET wal_level = logical; -- then restart the server",
			Err:     fmt.Errorf("%w: it is %q; set wal_level = logical in postgresql.conf and restart the server", ErrWALLevel, walLevel)})
	}
	if p.standby && version < 160000 {
		p.add1(Finding{Severity: SeverityBlocking, Code: FindingServerVersion,
			Message: fmt.Sprintf("the server is a standby (in recovery), and logical decoding on a standby needs PostgreSQL 16 or newer; the server is %d.%d", version/10000, version%10000),
			Err:     fmt.Errorf("%w: the server is a standby (in recovery), and logical decoding on a standby needs PostgreSQL 16 or newer; the server is %d.%d", ErrServerVersion, version/10000, version%10000)})
	}
	if cfg.Failover && version < 170000 {
		p.add1(Finding{Severity: SeverityBlocking, Code: FindingServerVersion,
			Message: fmt.Sprintf("Config.Failover needs PostgreSQL 17 or newer (failover slots); the server is %d.%d", version/10000, version%10000),
			Err:     fmt.Errorf("%w: Config.Failover needs PostgreSQL 17 or newer (failover slots); the server is %d.%d", ErrServerVersion, version/10000, version%10000)})
	}

	// The role: REPLICATION or superuser (on Amazon RDS and Aurora,
	// membership of rds_replication stands for REPLICATION).
	var role string
	var super, repl bool
	if err := conn.QueryRow(ctx, `select r.rolname, r.rolsuper, r.rolreplication or exists(
			select 1 from pg_roles g where g.rolname = 'rds_replication' and pg_has_role(r.oid, g.oid, 'member'))
		from pg_roles r where r.rolname = current_user`).Scan(&role, &super, &repl); err != nil {
		return nil, fmt.Errorf("cdc: check role: %w", err)
	}
	if !super && !repl {
		p.add1(Finding{Severity: SeverityBlocking, Code: FindingReplicationRole, Object: role,
			Message: fmt.Sprintf("role %q has no REPLICATION attribute, so Postgres refuses its replication connection", role),
			Fix:     "ALTER ROLE " + pgx.Identifier{role}.Sanitize() + " WITH REPLICATION;",
			Err:     fmt.Errorf("%w: role %q needs REPLICATION (ALTER ROLE %s WITH REPLICATION)", ErrPrivilege, role, pgx.Identifier{role}.Sanitize())})
	}

	if err := p.publication(ctx, conn, cfg, super); err != nil {
		return nil, err
	}

	st, err := slotState(ctx, conn, cfg.Slot)
	if err != nil {
		return nil, err
	}
	p.slot = st
	switch {
	case st == nil && !cfg.CreateSlot && !cfg.TemporarySlot:
		p.add1(Finding{Severity: SeverityBlocking, Code: FindingSlotMissing, Object: cfg.Slot,
			Message: fmt.Sprintf("replication slot %q does not exist", cfg.Slot),
			Fix:     "SELECT pg_create_logical_replication_slot(" + quoteLiteral(cfg.Slot) + ", 'pgoutput');",
			Err:     &SlotError{Slot: cfg.Slot, Err: ErrSlotNotFound, Detail: "create it with pg_create_logical_replication_slot(name, 'pgoutput'), or set Config.CreateSlot"}})
	case st == nil:
	case cfg.TemporarySlot:
		err := &SlotError{Slot: cfg.Slot, Err: ErrSlotMismatch, Detail: "a slot of that name exists already, and Config.TemporarySlot creates its own; choose another name"}
		p.add1(Finding{Severity: SeverityBlocking, Code: FindingSlotUnusable, Object: cfg.Slot, Message: err.Error(), Err: err})
	default:
		if err := st.check(cfg.Slot, p.dbName); err != nil {
			f := Finding{Severity: SeverityBlocking, Code: FindingSlotUnusable, Object: cfg.Slot, Message: err.Error(), Err: err}
			if errors.Is(err, ErrSlotInvalidated) {
				f.Fix = "SELECT pg_drop_replication_slot(" + quoteLiteral(cfg.Slot) + "); -- then let Open create it again, and backfill"
			}
			p.add1(f)
		} else if st.active {
			p.add1(Finding{Severity: SeverityWarning, Code: FindingSlotInUse, Object: cfg.Slot,
				Message: fmt.Sprintf("replication slot %q is in use by backend pid %d", cfg.Slot, st.activePID),
				Err:     &SlotError{Slot: cfg.Slot, Err: ErrSlotInUse, Detail: fmt.Sprintf("held by backend pid %d; set Config.WaitForSlot to wait as a standby", st.activePID)}})
		}
	}
	return p, nil
}

// publication checks the publication and its tables.
func (p *preflight) publication(ctx context.Context, conn *pgx.Conn, cfg *Config, super bool) error {
	pub := cfg.Publication
	var allTables, updates bool
	err := conn.QueryRow(ctx, "select puballtables, pubupdate or pubdelete from pg_publication where pubname = $1", pub).Scan(&allTables, &updates)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return fmt.Errorf("cdc: check publication: %w", err)
	default:
		p.pubExists = true
	}
	tables, err := p.configuredTables(ctx, conn, cfg)
	if err != nil {
		return err
	}

	// newly are the tables Open would publish: it refuses those that would
	// break the application's UPDATEs.
	var newly []uint32
	switch {
	case !p.pubExists && !cfg.CreatePublication:
		p.publicationMissing(pub, tables)
		return nil
	case !p.pubExists && cfg.PublicationAllTables:
		if !super {
			p.add1(Finding{Severity: SeverityBlocking, Code: FindingAllTablesSuperuser, Object: pub,
				Message: "only a superuser may create a publication FOR ALL TABLES; list the tables in Config.PublicationTables instead",
				Err:     fmt.Errorf("%w: CREATE PUBLICATION ... FOR ALL TABLES needs a superuser", ErrPrivilege)})
		}
		all, err := oids(ctx, conn, `select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace
			where c.relkind = 'r' and c.relpersistence = 'p' and c.oid >= 16384
			and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_toast'`)
		if err != nil {
			return err
		}
		newly, updates = all, true
	case !p.pubExists:
		for _, t := range tables {
			newly = append(newly, t.oid)
		}
		updates = true
	default:
		if newly, err = p.existingPublication(ctx, conn, cfg, tables, allTables, updates); err != nil {
			return err
		}
	}
	if !updates || len(newly) == 0 {
		return nil
	}
	bad, err := identityProblems(ctx, conn, newly)
	if err != nil {
		return err
	}
	for _, b := range bad {
		p.add1(b.finding(SeverityBlocking, "publishing it would make its UPDATEs and DELETEs fail, so walrelay does not publish it"))
	}
	return nil
}

// configTable is a table of Config.PublicationTables that exists.
type configTable struct {
	name, ident string // schema.table, plain and quoted
	oid         uint32
}

// configuredTables resolves Config.PublicationTables, with a blocking
// finding for each that does not exist.
func (p *preflight) configuredTables(ctx context.Context, conn *pgx.Conn, cfg *Config) ([]configTable, error) {
	tables := make([]configTable, 0, len(cfg.PublicationTables))
	for _, t := range cfg.PublicationTables {
		schema, name, _ := qualifiedTable(t) // validate checked it
		ident := pgx.Identifier{schema, name}.Sanitize()
		var oid *uint32
		if err := conn.QueryRow(ctx, "select to_regclass($1)::oid", ident).Scan(&oid); err != nil {
			return nil, fmt.Errorf("cdc: check table %s: %w", ident, err)
		}
		if oid == nil {
			p.add1(Finding{Severity: SeverityBlocking, Code: FindingTableMissing, Object: schema + "." + name,
				Message: fmt.Sprintf("table %s of Config.PublicationTables does not exist", ident),
				Err:     fmt.Errorf("%w: %s", ErrTableNotFound, ident)})
			continue
		}
		tables = append(tables, configTable{name: schema + "." + name, ident: ident, oid: *oid})
	}
	return tables, nil
}

// publicationMissing reports a publication that does not exist and that
// Open may not create, with the CREATE PUBLICATION that fixes it.
func (p *preflight) publicationMissing(pub string, tables []configTable) {
	pubIdent := pgx.Identifier{pub}.Sanitize()
	fix := "CREATE PUBLICATION " + pubIdent + " FOR TABLE <schema.table>, ...;"
	if len(tables) > 0 {
		names := make([]string, len(tables))
		for i, t := range tables {
			names[i] = t.ident
		}
		fix = "CREATE PUBLICATION " + pubIdent + " FOR TABLE " + strings.Join(names, ", ") + ";"
	}
	p.add1(Finding{Severity: SeverityBlocking, Code: FindingPublicationMissing, Object: pub,
		Message: fmt.Sprintf("publication %q does not exist", pub),
		Fix:     fix,
		Err:     fmt.Errorf("%w: %q (create it with CREATE PUBLICATION, or set Config.CreatePublication)", ErrPublicationNotFound, pub)})
}

// existingPublication checks the configured tables against a publication
// that exists: those missing from it are a warning, or with
// AlterPublication are to be added (and returned, when the publication
// publishes UPDATEs and DELETEs, for the identity check of what Open
// would publish). The tables published already are checked for a replica
// identity their UPDATEs need.
func (p *preflight) existingPublication(ctx context.Context, conn *pgx.Conn, cfg *Config, tables []configTable, allTables, updates bool) (newly []uint32, err error) {
	pub := cfg.Publication
	published, err := oids(ctx, conn, `select c.oid from pg_publication_tables pt
		join pg_namespace n on n.nspname = pt.schemaname
		join pg_class c on c.relnamespace = n.oid and c.relname = pt.tablename
		where pt.pubname = $1`, pub)
	if err != nil {
		return nil, err
	}
	// A table counts as published when it, or a partitioned table it is a
	// partition of, is in the publication.
	in := make(map[uint32]bool, len(published))
	for _, o := range published {
		in[o] = true
	}
	for _, t := range tables {
		if in[t.oid] || allTables {
			continue
		}
		anc, err := oids(ctx, conn, "select relid from pg_partition_ancestors($1)", t.oid)
		if err != nil {
			return nil, err
		}
		if anyIn(anc, in) {
			continue
		}
		if cfg.AlterPublication {
			p.add = append(p.add, t.ident)
			if updates {
				newly = append(newly, t.oid)
			}
			continue
		}
		p.add1(Finding{Severity: SeverityWarning, Code: FindingTableNotPublished, Object: t.name,
			Message: fmt.Sprintf("table %s of Config.PublicationTables is not in publication %q: its changes are not streamed (set Config.AlterPublication to add it)", t.ident, pub),
			Fix:     "ALTER PUBLICATION " + pgx.Identifier{pub}.Sanitize() + " ADD TABLE " + t.ident + ";",
			Err:     fmt.Errorf("%w: %s is not in publication %q", ErrTableNotPublished, t.ident, pub)})
	}
	if updates {
		bad, err := identityProblems(ctx, conn, published)
		if err != nil {
			return nil, err
		}
		for _, b := range bad {
			p.add1(b.finding(SeverityWarning, "it is in publication "+pgx.Identifier{pub}.Sanitize()+", so its UPDATEs and DELETEs fail"))
		}
	}
	return newly, nil
}

func anyIn(oids []uint32, in map[uint32]bool) bool {
	for _, o := range oids {
		if in[o] {
			return true
		}
	}
	return false
}

func oids(ctx context.Context, conn *pgx.Conn, sql string, args ...any) ([]uint32, error) {
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("cdc: check publication: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[uint32])
	if err != nil {
		return nil, fmt.Errorf("cdc: check publication: %w", err)
	}
	return out, nil
}

// identityProblem is a table whose UPDATEs and DELETEs Postgres refuses
// while it is published: no replica identity to write to the WAL.
type identityProblem struct {
	ident     string // quoted schema.table
	name      string // schema.table
	replident string // d, n or i
}

func (b identityProblem) finding(sev Severity, what string) Finding {
	why := "no primary key and REPLICA IDENTITY DEFAULT"
	switch b.replident {
	case "n":
		why = "REPLICA IDENTITY NOTHING"
	case "i":
		why = "REPLICA IDENTITY USING INDEX of an index that no longer exists"
	}
	return Finding{Severity: sev, Code: FindingReplicaIdentity, Object: b.name,
		Message: fmt.Sprintf("table %s has %s: %s; give it a primary key or REPLICA IDENTITY FULL", b.ident, why, what),
		Fix:     "ALTER TABLE " + b.ident + " REPLICA IDENTITY FULL;",
		Err:     fmt.Errorf("%w: %s has %s", ErrReplicaIdentity, b.ident, why)}
}

// identityProblems returns, among the tables with the given oids and their
// partitions, those that have no usable replica identity.
func identityProblems(ctx context.Context, conn *pgx.Conn, tables []uint32) ([]identityProblem, error) {
	rows, err := conn.Query(ctx, `select distinct n.nspname, c.relname, c.relreplident::text
		from unnest($1::oid[]) t(oid)
		left join lateral pg_partition_tree(t.oid) pt on true -- no rows unless partitioned
		join pg_class c on c.oid = coalesce(pt.relid, t.oid)
		join pg_namespace n on n.oid = c.relnamespace
		where c.relkind = 'r' and (c.relreplident = 'n'
			or c.relreplident = 'd' and not exists(select 1 from pg_index i where i.indrelid = c.oid and i.indisprimary)
			or c.relreplident = 'i' and not exists(select 1 from pg_index i where i.indrelid = c.oid and i.indisreplident))
		order by 1, 2`, tables)
	if err != nil {
		return nil, fmt.Errorf("cdc: check replica identity: %w", err)
	}
	var out []identityProblem
	var schema, name, ri string
	_, err = pgx.ForEachRow(rows, []any{&schema, &name, &ri}, func() error {
		out = append(out, identityProblem{ident: pgx.Identifier{schema, name}.Sanitize(), name: schema + "." + name, replident: ri})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cdc: check replica identity: %w", err)
	}
	return out, nil
}
