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
// waking the reader), per row; and the consumer's voluntary context
// switches (times it waited for data, among others), per 1,000 rows.
type Cost struct {
	WalsenderUserUS float64 // µs of walsender user CPU per row
	WalsenderSysUS  float64 // µs of walsender system CPU per row
	SwitchesPer1k   float64 // consumer's voluntary context switches per 1,000 rows
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
// returns the cost per row given the consumer's voluntary context switches.
func (b *bench) stopCost(m *costMeter, rows int, switches int64) (Cost, error) {
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
		SwitchesPer1k:   float64(switches) * 1000 / float64(rows),
	}, nil
}

// selfSwitches is this process's voluntary context switches so far.
func selfSwitches() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Nvcsw
}

// medianCost is the median of each figure over the rounds.
func medianCost(cs []Cost) Cost {
	var u, s, w []float64
	for _, c := range cs {
		u, s, w = append(u, c.WalsenderUserUS), append(s, c.WalsenderSysUS), append(w, c.SwitchesPer1k)
	}
	return Cost{WalsenderUserUS: median(u), WalsenderSysUS: median(s), SwitchesPer1k: median(w)}
}
