package main

import (
	"context"
	"errors"
)

func tailCmd(ctx context.Context, e *env, args []string) int {
	return fail(e, "tail", exitFailure, errors.New("not built yet"))
}
