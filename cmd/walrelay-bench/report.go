package main

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// print writes the report as Markdown tables.
func (r *Report) print(w io.Writer) {
	conn := "TCP to 127.0.0.1, " + r.TCP + " congestion control (on loopback it decides whether the walsender's writes coalesce: BENCHMARKS.md)"
	if r.Socket == "unix" {
		conn = "the server's Unix-domain socket"
	}
	fmt.Fprintf(w, "command:  %s\nmachine:  %s\nclients:  %s\npostgres: %s\nrounds:   %d (medians)\n\n",
		r.Command, r.Machine, conn, r.Postgres, r.Rounds)

	if len(r.Throughput) > 0 {
		r.printThroughput(w)
	}
	if len(r.Latency) > 0 {
		r.printLatency(w)
	}
	if r.RSS.BigRows > 0 {
		fmt.Fprintln(w, "## Peak RSS (VmHWM of a child process streaming one transaction into the null sink)")
		fmt.Fprintln(w)
		fmt.Fprintf(w, "| %d-row transaction | %.1f MB |\n| %d-row transaction | %.1f MB |\n| ratio | %.2f |\n\n",
			r.RSS.BigRows, r.RSS.BigMB, r.RSS.SmallRows, r.RSS.SmallMB, r.RSS.Ratio)
	}
	if r.Backfill.Rows > 0 {
		fmt.Fprintln(w, "## Backfill (backfill.Iterator, default adaptive pages) vs COPY (select … order by id) TO STDOUT")
		fmt.Fprintln(w)
		bf := r.Backfill
		fmt.Fprintf(w, "| rows | %d |\n| COPY rows/s | %.0f |\n\n", bf.Rows, bf.CopyRowsPerSec)
		tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
		fmt.Fprintln(tw, "| collector setting for the read\t iterator rows/s\t iterator/COPY\t collections per read\t")
		for _, rd := range bf.Reads {
			fmt.Fprintf(tw, "| %s\t %.0f\t %.2f\t %d\t\n", rd.Setting, rd.RowsPerSec, rd.Ratio, rd.GCs)
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
}

func (r *Report) printThroughput(w io.Writer) {
	fmt.Fprintln(w, "## Throughput: walrelay (cdc.Run, seed JSON, ack, null sink) vs pg_recvlogical (pgoutput to /dev/null)")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "| scenario\t rows\t rows/tx\t WAL MB\t pg_recvlogical rows/s\t MB/s\t walrelay rows/s\t MB/s\t walrelay/recvlogical\t")
	for _, t := range r.Throughput {
		fmt.Fprintf(tw, "| %s\t %d\t %d\t %.1f\t %.0f\t %.1f\t %.0f\t %.1f\t %.2f\t\n", t.Scenario, t.Rows, t.PerTx,
			float64(t.WALBytes)/1e6, t.Recv.RowsPerSec, t.Recv.MBPerSec, t.Null.RowsPerSec, t.Null.MBPerSec, t.NullRatio)
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## Sinks through cdc.Run, as ratios to the null sink")
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "| scenario\t null rows/s\t Kafka (kfake) rows/s\t Kafka/null\t Kafka, broker discarding, rows/s\t discarding/null\t webhook (batch 500) rows/s\t webhook/null\t")
	for _, t := range r.Throughput {
		fmt.Fprintf(tw, "| %s\t %.0f\t %.0f\t %.2f\t %.0f\t %.2f\t %.0f\t %.2f\t\n", t.Scenario, t.Null.RowsPerSec,
			t.Kafka.RowsPerSec, t.KafkaRatio, t.KafkaDrop.RowsPerSec, t.DropRatio, t.Webhook.RowsPerSec, t.HookRatio)
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## Stream.Next and an encoding of each message, as ratios to cdc.Run (null sink)")
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "| scenario\t cdc.Run rows/s\t Next + json.Marshal rows/s\t marshal/Run\t Next + AppendJSON rows/s\t append/Run\t")
	for _, t := range r.Throughput {
		fmt.Fprintf(tw, "| %s\t %.0f\t %.0f\t %.2f\t %.0f\t %.2f\t\n", t.Scenario, t.Null.RowsPerSec,
			t.NextMarshal.RowsPerSec, t.MarshalRatio, t.NextAppend.RowsPerSec, t.AppendRatio)
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## What each consumer cost: the walsender's CPU per row (user, system), the consumer's CPU per row and its voluntary context switches")
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "| scenario\t consumer\t rows/s\t walsender user µs/row\t walsender system µs/row\t consumer CPU µs/row\t consumer switches per 1k rows\t")
	for _, t := range r.Throughput {
		for _, c := range t.Costs {
			fmt.Fprintf(tw, "| %s\t %s\t %.0f\t %.2f\t %.2f\t %.2f\t %.0f\t\n", t.Scenario, c.Consumer, c.RowsPerSec,
				c.WalsenderUserUS, c.WalsenderSysUS, c.ConsumerUS, c.SwitchesPer1k)
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
}

func (r *Report) printLatency(w io.Writer) {
	fmt.Fprintln(w, "## Latency from commit, steady single-row commits, synchronous_commit = on")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "| path\t commits\t commits/s\t p50 ms\t p99 ms\t p99.9 ms\t max ms\t")
	for _, l := range r.Latency {
		fmt.Fprintf(tw, "| %s\t %d\t %.0f\t %.2f\t %.2f\t %.2f\t %.2f\t\n", l.Path, l.Commits, l.CommitsPerSec, l.P50, l.P99, l.P999, l.Max)
	}
	tw.Flush()
	fmt.Fprintln(w)
}
