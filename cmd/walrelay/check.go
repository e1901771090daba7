package main

import (
	"context"
	"errors"
)

func checkCmd(ctx context.Context, e *env, args []string) int {
	return fail(e, "check", exitFailure, errors.New("not built yet"))
}
