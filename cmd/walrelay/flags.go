package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
)

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

// dbFlags is the flag set of a command that connects to a database: the
// command's own flags and -database.
type dbFlags struct {
	*flag.FlagSet
	e        *env
	name     string
	database *string
}

// newDBFlags returns newFlags's flag set with -database.
func newDBFlags(e *env, name, summary, example string) *dbFlags {
	fs := newFlags(e, name, summary, example)
	return &dbFlags{FlagSet: fs, e: e, name: name,
		database: fs.String("database", "", "postgres URL or DSN (default $DATABASE_URL)")}
}

// defaultName is the slot and publication check and drop use when none
// is named.
const defaultName = "walrelay"

// slotFlags adds -slot and -publication, defaulting to defaultName; doing
// says what the command does with them ("" or " to drop").
func (f *dbFlags) slotFlags(doing string) (slot, publication *string) {
	return f.String("slot", defaultName, "replication slot"+doing),
		f.String("publication", defaultName, "publication"+doing)
}

// parse parses args and returns the database's URL (see databaseURL) and
// -1, or, when the command is to stop, the exit status: as parse's, or
// exitUsage without a database.
func (f *dbFlags) parse(args []string) (url string, code int) {
	if code := parse(f.FlagSet, f.e, args); code >= 0 {
		return "", code
	}
	url, err := databaseURL(f.e, *f.database)
	if err != nil {
		return "", fail(f.e, f.name, exitUsage, err)
	}
	return url, -1
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

var _ flag.Value = (*listFlag)(nil)
