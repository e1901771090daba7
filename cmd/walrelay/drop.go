package main

import (
	"context"
	"errors"
)

func dropCmd(ctx context.Context, e *env, args []string) int {
	return fail(e, "drop", exitFailure, errors.New("not built yet"))
}
