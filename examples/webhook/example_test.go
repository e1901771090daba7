package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/internal/testtime"
)

func TestMain(m *testing.M) {
	deliveryWait = testtime.Bound(deliveryWait)
	os.Exit(pgtest.Main(m))
}

func TestExample(t *testing.T) {
	t.Setenv("DATABASE_URL", pgtest.NewDatabase(t))
	t.Setenv("SLOT", pgtest.Name(t, "slot"))
	ctx, cancel := context.WithTimeout(t.Context(), testtime.Bound(2*time.Minute))
	defer cancel()
	var out strings.Builder
	if err := runTo(ctx, &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out.String())
	}
	for _, want := range []string{
		`received insert public.webhook_example_orders {"id":1,"item":"espresso","qty":2}`,
		`received update public.webhook_example_orders {"id":1,"item":"espresso","qty":3}`,
		`received delete public.webhook_example_orders {"id":2`,
		"all 5 changes received",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
