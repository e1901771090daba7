package main

import (
	"context"
	"errors"
)

func runCmd(ctx context.Context, e *env, args []string) int {
	return fail(e, "run", exitFailure, errors.New("not built yet"))
}
