// Command walrelay runs walrelay without writing Go: it checks a database
// before streaming from it, shows the state of walrelay's slots and
// backfills, tails changes to the terminal, runs a pipeline from a YAML file
// and removes what walrelay created.
//
// Install:
//
//	go install github.com/walrelay/walrelay/cmd/walrelay@latest
//
// Usage:
//
//	walrelay check  [flags]            preflight: what would stop a stream, and the SQL that fixes it
//	walrelay status [flags]            slots, publications and backfills: active, lag, retained WAL
//	walrelay tail   [flags]            changes to stdout as JSON lines
//	walrelay run    -config FILE       a stream, its backfills and its sinks, until SIGTERM
//	walrelay drop   [flags]            remove a slot, publication and progress table
//
// The database is the -database flag, else the config file's, else the
// DATABASE_URL environment variable. check, status, tail and drop need
// nothing else; "walrelay <command> -h" explains each command's flags with
// an example.
//
// # Before streaming: check
//
// walrelay check looks at the database as a stream would use it and changes
// nothing: wal_level, the role's REPLICATION attribute, the publication and
// its tables (missing, not in the publication, without a primary key or
// replica identity), and the slot. Each finding is printed with its severity
// and the SQL that fixes it:
//
//	$ walrelay check -tables public.orders,public.events
//	checked slot "walrelay", publication "walrelay" with public.orders, public.events
//
//	BLOCKING  replica_identity  public.events
//	  table "public"."events" has no primary key and REPLICA IDENTITY DEFAULT: ...
//	  fix: ALTER TABLE "public"."events" REPLICA IDENTITY FULL;
//
//	1 blocking finding, 0 warnings: walrelay cannot stream until the blocking ones are fixed
//
// It exits 3 when a finding is blocking, 0 otherwise (warnings included);
// -json prints {"blocking", "warnings", "findings": [{"severity", "code",
// "object", "message", "fix"}]} for scripts and deploy steps. The slot and
// publication default to "walrelay"; with -create (the default) a missing
// slot, and the publication of -tables, count as created, as run and tail
// create them.
//
// # While it runs: status
//
// walrelay status reads, without streaming, every logical slot of the
// pgoutput plugin in the database (or those -slot names): active or not, the
// lag in bytes and the walsender's flush lag, the WAL it retains, wal_status
// and safe_wal_size; then the publications and their tables, and the
// backfills of the progress table, done or where they resume. -json too.
//
// # Looking at the changes: tail
//
// walrelay tail prints changes as they commit, one JSON message per line in
// the shape Sequin delivers (package message). By default it streams from
// a temporary slot that Postgres drops when tail exits, and with -tables
// it creates a publication of those tables that it drops at exit: nothing
// is left behind.
//
//	walrelay tail -tables public.orders -action update,delete | jq .record
//
// With -slot it streams from a lasting slot (-create creates it) and an
// existing -publication, and acknowledges what it printed when it stops,
// so the next tail of that slot goes on from there. -table and -action
// filter what is printed, -n stops after that many messages; SIGINT and
// SIGTERM stop it cleanly, and so does a closed stdout (tail | head).
//
// # A pipeline from a file: run
//
// walrelay run -config walrelay.yaml runs one stream, its backfills and its
// sinks (webhook, Kafka, stdout, each with table and action filters and
// column transforms), with /metrics, /livez and /readyz on http.listen and
// optionally the REST pull API. A message is acknowledged to Postgres only
// once every sink took it; SIGTERM stops reading, delivers and acknowledges
// what was taken (for at most delivery.drain) and exits 0. ${VAR} in values
// comes from the environment (an unset one is an error naming it and its
// line), and an unknown key is an error naming the key and its line.
// -check-config validates a file without connecting; -example prints one
// with every option.
//
// # Cleaning up: drop
//
// walrelay drop removes a slot (freeing its WAL; its undelivered changes are
// lost), its publication, the backfill progress table and, when named,
// idempotency tables. It lists them and asks to type yes; -yes is for
// scripts. Without a terminal on stdin and without -yes it refuses, with exit
// status 2. A slot in use is not dropped.
//
// # Exit status
//
// 0 success; 1 the command failed (the error says why and what to do: a
// refused connection names the host and says to check the URL, a database
// that is not ready lists the SQL that fixes it); 2 a usage or configuration
// error, among them no database (neither -database nor DATABASE_URL) and drop
// without a terminal or -yes; 3 check found a blocking problem.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit statuses, documented in the package comment and in -h.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitBlocking = 3
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *env, args []string) int
}

func commands() []command {
	return []command{
		{"check", "preflight: what would stop a stream, and the SQL that fixes it", checkCmd},
		{"status", "slots, publications and backfills: active, lag, retained WAL", statusCmd},
		{"tail", "stream changes to stdout as JSON lines", tailCmd},
		{"run", "run a stream, its backfills and its sinks from a YAML config", runCmd},
		{"drop", "remove what walrelay created (slot, publication, progress table)", dropCmd},
	}
}

// env is what a command reads and writes besides its arguments, so that
// tests can run commands in-process as well as through the built binary.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	// terminal reports that stdin is a terminal, where drop may ask.
	terminal bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// A closed stdout (walrelay tail | head) makes writes fail with EPIPE
	// instead of killing the process, so that tail cleans up.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	code := walrelay(ctx, &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, terminal: isTerminal(int(os.Stdin.Fd()))}, os.Args[1:])
	stop()
	os.Exit(code)
}

// walrelay dispatches args to a command and returns the exit status.
func walrelay(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		usage(e.stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(e.stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, e, args[1:])
		}
	}
	fmt.Fprintf(e.stderr, "walrelay: unknown command %q\n\n", args[0])
	usage(e.stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, `walrelay streams Postgres changes as Sequin-shaped JSON.

Usage:
  walrelay <command> [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-7s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run "walrelay <command> -h" for a command's flags and an example.

The database is -database, else the config file's, else $DATABASE_URL.

Exit status: 0 success, 1 failure, 2 usage or configuration error,
3 check found a blocking problem.
`)
}

// fail prints err for the command name and returns code.
func fail(e *env, name string, code int, err error) int {
	fmt.Fprintf(e.stderr, "walrelay %s: %v\n", name, err)
	return code
}
