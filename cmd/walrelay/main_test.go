package main

import (
	"os"
	"testing"

	"github.com/walrelay/walrelay/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := pgtest.Main(m)
	removeBinary()
	os.Exit(code)
}
