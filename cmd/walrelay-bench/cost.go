package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Cost is what serving one consumer cost: the CPU of the server's walsender
// (the process that decodes the WAL and writes it to the consumer), split
// into user time (decoding) and system time (mostly socket writes and
// waking the reader), per row; the consumer's own CPU (user and system) per
// row; and its voluntary context switches (times it waited for data, among
// others), per 1,000 rows. On two cores, when the walsender and the
// consumer each need most of a core at the rate reached, both are the
// limit.
type Cost struct {
	WalsenderUserUS float64 // µs of walsender user CPU per row
	WalsenderSysUS  float64 // µs of walsender system CPU per row
	ConsumerUS      float64 // µs of the consumer's CPU (user and system) per row
	SwitchesPer1k   float64 // consumer's voluntary context switches per 1,000 rows
}

// usage is what a consumer used while it ran: CPU time and voluntary
// context switches. For the in-process consumers it is this process's, which
// for the Kafka and webhook sinks includes the in-process broker or
// receiver.
type usage struct {
	cpu      time.Duration
	switches int64
}

// selfUsage is this process's usage so far.
func selfUsage() usage {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return usage{}
	}
	return usageOf(&ru)
}

func usageOf(ru *syscall.Rusage) usage {
	return usage{cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), switches: ru.Nvcsw}
}

// since is the usage between u0 and u.
func (u usage) since(u0 usage) usage {
	return usage{cpu: u.cpu - u0.cpu, switches: u.switches - u0.switches}
}

// clockTick is the unit of the CPU times in /proc/<pid>/stat (USER_HZ).
const clockTick = 10 * time.Millisecond

// costMeter measures one consumer's Cost. The walsender is a child of the
// postmaster that exits when its consumer disconnects; once the postmaster
// has reaped it, its CPU times are in the postmaster's cutime and cstime
// (/proc/<pid>/stat). The bench's server runs with autovacuum off, so the
// walsender is the only child that starts and exits while a consumer runs.
type costMeter struct {
	postmaster int
	before     []string // the postmaster's children before the consumer started
	cu, cs     int64    // its cutime and cstime then, in ticks
}

// postmasterPID finds the server's postmaster: the parent of this session's
// backend.
func (b *bench) postmasterPID(ctx context.Context) (int, error) {
	var backend int
	if err := b.conn.QueryRow(ctx, "select pg_backend_pid()").Scan(&backend); err != nil {
		return 0, err
	}
	f, err := procStat(backend)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(f[1])
}

// procStat returns the fields of /proc/pid/stat after the command name:
// field 3 of proc(5) (state) is index 0.
func procStat(pid int) ([]string, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return nil, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	return f, nil
}

func (b *bench) children() ([]string, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", b.postmaster, b.postmaster))
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(raw)), nil
}

func (b *bench) reaped() (cu, cs int64, err error) {
	f, err := procStat(b.postmaster)
	if err != nil {
		return 0, 0, err
	}
	// cutime and cstime are fields 16 and 17 of proc(5).
	if cu, err = strconv.ParseInt(f[13], 10, 64); err != nil {
		return 0, 0, err
	}
	cs, err = strconv.ParseInt(f[14], 10, 64)
	return cu, cs, err
}

// startCost is called before the consumer connects.
func (b *bench) startCost() (*costMeter, error) {
	m := &costMeter{postmaster: b.postmaster}
	var err error
	if m.before, err = b.children(); err != nil {
		return nil, err
	}
	if m.cu, m.cs, err = b.reaped(); err != nil {
		return nil, err
	}
	return m, nil
}

// stop is called after the consumer disconnected: it waits (up to 10 s) for
// the postmaster to reap every child that started since startCost, then
// returns the cost per row given what the consumer used.
func (b *bench) stopCost(m *costMeter, rows int, used usage) (Cost, error) {
	for deadline := time.Now().Add(10 * time.Second); ; {
		now, err := b.children()
		if err != nil {
			return Cost{}, err
		}
		if !slices.ContainsFunc(now, func(c string) bool { return !slices.Contains(m.before, c) }) {
			break
		}
		if time.Now().After(deadline) {
			return Cost{}, fmt.Errorf("walsender still running 10 s after its consumer stopped (children %v, before %v)", now, m.before)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cu, cs, err := b.reaped()
	if err != nil {
		return Cost{}, err
	}
	perRow := func(ticks int64) float64 {
		return float64((time.Duration(ticks) * clockTick).Microseconds()) / float64(rows)
	}
	return Cost{
		WalsenderUserUS: perRow(cu - m.cu),
		WalsenderSysUS:  perRow(cs - m.cs),
		ConsumerUS:      float64(used.cpu.Microseconds()) / float64(rows),
		SwitchesPer1k:   float64(used.switches) * 1000 / float64(rows),
	}, nil
}

// medianCost is the median of each figure over the rounds.
func medianCost(cs []Cost) Cost {
	var u, s, c, w []float64
	for _, x := range cs {
		u, s = append(u, x.WalsenderUserUS), append(s, x.WalsenderSysUS)
		c, w = append(c, x.ConsumerUS), append(w, x.SwitchesPer1k)
	}
	return Cost{WalsenderUserUS: median(u), WalsenderSysUS: median(s), ConsumerUS: median(c), SwitchesPer1k: median(w)}
}
