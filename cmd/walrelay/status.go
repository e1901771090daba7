package main

import (
	"context"
	"errors"
)

func statusCmd(ctx context.Context, e *env, args []string) int {
	return fail(e, "status", exitFailure, errors.New("not built yet"))
}
