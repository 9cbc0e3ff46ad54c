package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// proc reads a server process's memory and CPU time from /proc (Linux).
type proc struct{ pid int }

// status returns a kB field of /proc/PID/status (VmRSS, VmHWM) in MiB.
func (p *proc) status(field string) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid))
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		k, v, ok := strings.Cut(string(line), ":")
		if !ok || k != field {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("/proc/%d/status: %s is %q", p.pid, field, v)
		}
		kb, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, err
		}
		return kb / 1024, nil
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", p.pid, field)
}

// clockTick is USER_HZ, 100 on every Linux architecture berth runs on.
const clockTick = 100

// cpu returns the user+system CPU time the process has used.
func (p *proc) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces: count from the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", p.pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", p.pid, len(f)+2)
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", p.pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTick, nil
}

// resetPeak sets VmHWM back to the current RSS (clear_refs 5), so the next reading is the
// peak of what follows. It needs the right to write the process's clear_refs.
func (p *proc) resetPeak() error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.pid), []byte("5"), 0)
}

// cpuMeter measures the server's CPU time over a stretch of wall time.
type cpuMeter struct {
	p     *proc
	cpu   time.Duration
	start time.Time
}

func (p *proc) meter() cpuMeter {
	if p == nil {
		return cpuMeter{}
	}
	c, _ := p.cpu()
	return cpuMeter{p: p, cpu: c, start: time.Now()}
}

// cores returns the average number of cores the server kept busy since the meter started
// (0 when unknown).
func (m cpuMeter) cores() float64 {
	if m.p == nil {
		return 0
	}
	c, err := m.p.cpu()
	wall := time.Since(m.start)
	if err != nil || wall <= 0 {
		return 0
	}
	return (c - m.cpu).Seconds() / wall.Seconds()
}
