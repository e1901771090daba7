//go:build !linux && !darwin && !freebsd && !netbsd && !openbsd && !dragonfly

package main

// isTerminal is false where walrelay cannot tell: drop then needs -yes.
func isTerminal(fd int) bool { return false }
