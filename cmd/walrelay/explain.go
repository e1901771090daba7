package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/walrelay/walrelay/cdc"
)

// explain is a command's failure: the exit status for err and the error
// with what to do about it.
func explain(err error) (int, error) {
	var ce *cdc.ConfigError
	var check *cdc.CheckError
	var connect *pgconn.ConnectError
	switch {
	case errors.As(err, &ce):
		return exitUsage, err
	case errors.As(err, &check):
		var b strings.Builder
		b.WriteString("the database is not ready:")
		for _, f := range check.Blocking() {
			msg := f.Message
			if f.Code == cdc.FindingTableMissing {
				msg = "table " + f.Object + " does not exist" // the library's message names its Config field
			}
			fmt.Fprintf(&b, "\n  %s", msg)
			if f.Fix != "" {
				fmt.Fprintf(&b, "\n    fix: %s", f.Fix)
			}
		}
		b.WriteString("\n(walrelay check lists every finding)")
		return exitFailure, errors.New(b.String())
	case cdc.IsAuthError(err):
		return exitFailure, fmt.Errorf("%w\n(check the user and password in the database URL, pg_hba.conf, and that the role has the privileges walrelay check lists)", err)
	case errors.As(err, &connect):
		return exitFailure, fmt.Errorf("%w\n(check the database URL, -database or DATABASE_URL: host, port and database name, and that the server is up and accepts connections from here)", err)
	case errors.Is(err, cdc.ErrSlotInUse):
		return exitFailure, fmt.Errorf("%w\n(another process streams from the slot: stop it first, or use another slot)", err)
	}
	return exitFailure, err
}

// failErr prints err, explained, for the command name and returns its
// exit status.
func failErr(e *env, name string, err error) int {
	code, err := explain(err)
	return fail(e, name, code, err)
}
