// Command pull serves walrelay's REST pull API (package pull) over a Kafka
// topic that the sink/kafka sink filled with a few changes, and shows the
// client flow of Upstash's Kafka REST API with curl: it prints each
// command (list topics, fetch by offset, consume through a consumer group,
// commit, check the committed offset, delete the consumer), runs it once
// to show its output, and exits. With -serve it then keeps serving, and
// the printed commands work as they are.
//
// Usage:
//
//	pull [-brokers host:port,…] [-addr 127.0.0.1:8080] [-serve]
//
// Without -brokers it starts an in-process Kafka
// (github.com/twmb/franz-go/pkg/kfake, which the module otherwise uses only
// in tests). With -serve it keeps serving until interrupted. The basic-auth
// password is PULL_PASSWORD, or a random one printed at start.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "pull:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("pull", flag.ContinueOnError)
	fs.SetOutput(out)
	brokers := fs.String("brokers", "", "Kafka brokers, comma-separated (default: an in-process Kafka)")
	addr := fs.String("addr", "127.0.0.1:0", "address to serve the API on")
	serve := fs.Bool("serve", false, "keep serving after the demonstration")
	if err := fs.Parse(args); err != nil {
		return err
	}
	password := os.Getenv("PULL_PASSWORD")
	if password == "" {
		password = rand.Text()
	}
	var list []string
	if *brokers != "" {
		list = strings.Split(*brokers, ",")
	}
	return demo(ctx, demoConfig{Brokers: list, Addr: *addr, Serve: *serve, Password: password}, out)
}
