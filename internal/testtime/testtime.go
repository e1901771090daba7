// Package testtime holds the one knob for how long walrelay's tests wait.
//
// Tests wait for progress they can observe (a row delivered, a message in a
// log, a process gone), never for a fixed amount of work in a fixed time.
// Each such wait still has an overall bound, so that a hung test fails with
// a message instead of running until go test's -timeout; the bound is
// generous and scales with WALRELAY_TEST_TIME_SCALE (a positive number,
// default 1) for machines slower or busier than usual:
//
//	WALRELAY_TEST_TIME_SCALE=3 go test -race -count=1 -timeout 30m ./...
//
// Negative checks ("nothing arrives for a while") keep a short fixed window:
// they cannot fail because a machine is slow.
package testtime

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Env is the environment variable that scales every bound.
const Env = "WALRELAY_TEST_TIME_SCALE"

var scale = sync.OnceValue(func() float64 {
	f, err := parse(os.Getenv(Env))
	if err != nil {
		panic(err)
	}
	return f
})

// parse reads the knob's value: empty is 1.
func parse(v string) (float64, error) {
	if v == "" {
		return 1, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f > 0) || f > 1000 {
		return 0, fmt.Errorf("testtime: %s=%q: want a positive number up to 1000 (a factor for every wait's bound)", Env, v)
	}
	return f, nil
}

// Scale returns the factor set by WALRELAY_TEST_TIME_SCALE, 1 by default.
// It panics on a value that is not a positive number.
func Scale() float64 { return scale() }

// Bound returns d, an overall bound on a wait for progress, multiplied by
// Scale.
func Bound(d time.Duration) time.Duration { return time.Duration(float64(d) * Scale()) }

// Poll calls cond every 10 ms until it returns true, and reports whether
// it did within Bound(bound).
func Poll(bound time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(Bound(bound))
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// WaitFor polls cond until it returns true, and fails t ("timed out waiting
// for what") when it has not within Bound(bound).
func WaitFor(t testing.TB, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(bound, cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}
