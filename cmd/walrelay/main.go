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
// DATABASE_URL environment variable.
//
// Exit status: 0 success; 1 the command failed (the error says why and what
// to do); 2 a usage or configuration error; 3 check found a blocking problem.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
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

// newFlags returns a flag set for a command whose -h prints the summary,
// the example and the flags.
func newFlags(e *env, name, summary, example string) *flag.FlagSet {
	fs := flag.NewFlagSet("walrelay "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "walrelay %s: %s\n\nExample:\n%s\nFlags:\n", name, summary, example)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args into fs. It returns -1 when the command goes on, or
// the exit status: exitOK after -h, exitUsage after a bad flag (fs has
// printed the error and the usage).
func parse(fs *flag.FlagSet, e *env, args []string) int {
	fs.SetOutput(e.stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return exitUsage
	}
	return -1
}

// databaseURL is the database a command connects to: the flag's value, else
// $DATABASE_URL.
func databaseURL(e *env, flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if u := e.getenv("DATABASE_URL"); u != "" {
		return u, nil
	}
	return "", errors.New("no database: pass -database postgres://user:pass@host/db or set DATABASE_URL")
}

// fail prints err for the command name and returns code.
func fail(e *env, name string, code int, err error) int {
	fmt.Fprintf(e.stderr, "walrelay %s: %v\n", name, err)
	return code
}

// listFlag is a flag that may be repeated and takes comma-separated
// lists: -table a -table b,c is [a b c].
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}
