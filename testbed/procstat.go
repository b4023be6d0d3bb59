package testbed

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat. It is 100 on every Linux
// architecture Go supports (the kernel fixes it for userspace, whatever CONFIG_HZ is), and Go has no sysconf.
const clockTicks = 100

// ProcStat is what the load test reads from /proc/<pid>/stat.
type ProcStat struct {
	PPID       int
	CPUTicks   uint64 // utime + stime, in clockTicks
	StartTicks uint64 // starttime, in clockTicks after boot
}

// ParseProcStat parses the one line of /proc/<pid>/stat. The command name (field 2) is in parentheses and may
// itself hold spaces and parentheses, so the fields are counted from the last ')'.
func ParseProcStat(line string) (ProcStat, error) {
	end := strings.LastIndexByte(line, ')')
	if end < 0 || strings.IndexByte(line, '(') < 0 || strings.IndexByte(line, '(') > end {
		return ProcStat{}, errors.New("proc stat: no (command name)")
	}
	f := strings.Fields(line[end+1:])
	// f[0] is field 3 (state); ppid is field 4, utime 14, stime 15, starttime 22.
	if len(f) < 20 {
		return ProcStat{}, fmt.Errorf("proc stat: %d fields after the command name, want at least 20", len(f))
	}
	num := func(name string, i int) (uint64, error) {
		v, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("proc stat: %s %q is not a number", name, f[i])
		}
		return v, nil
	}
	ppid, err := num("ppid", 1)
	if err != nil {
		return ProcStat{}, err
	}
	if ppid > 1<<22 { // PID_MAX_LIMIT
		return ProcStat{}, fmt.Errorf("proc stat: ppid %d is beyond the kernel's pid limit", ppid)
	}
	utime, err := num("utime", 11)
	if err != nil {
		return ProcStat{}, err
	}
	stime, err := num("stime", 12)
	if err != nil {
		return ProcStat{}, err
	}
	start, err := num("starttime", 19)
	if err != nil {
		return ProcStat{}, err
	}
	return ProcStat{PPID: int(ppid), CPUTicks: utime + stime, StartTicks: start}, nil
}

// ParseRSS returns VmRSS of a /proc/<pid>/status in bytes. A kernel thread has no VmRSS: that is an error.
func ParseRSS(status string) (uint64, error) { return parseStatusSize(status, "VmRSS") }

// ParsePeakRSS returns VmHWM (the resident set's high-water mark) of a /proc/<pid>/status in bytes.
func ParsePeakRSS(status string) (uint64, error) { return parseStatusSize(status, "VmHWM") }

func parseStatusSize(status, field string) (uint64, error) {
	for _, line := range strings.Split(status, "\n") {
		v, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("proc status: %s %q, want \"<n> kB\"", field, strings.TrimSpace(v))
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil || kb > 1<<44 {
			return 0, fmt.Errorf("proc status: %s %q is not a size in kB", field, f[0])
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("proc status: no %s line", field)
}

// Usage is a process group's CPU and memory at one moment.
type Usage struct {
	At       time.Time
	CPUTicks uint64 // summed over the group
	RSS      uint64 // bytes, summed over the group
}

// ReadUsage sums CPU ticks and RSS over pid and, with children, every process whose parent is pid (PostgreSQL's
// backends are children of the postmaster). A process that ended between listing and reading is left out.
func ReadUsage(pid int, children bool) (Usage, error) {
	u := Usage{At: time.Now()}
	pids := []int{pid}
	if children {
		entries, err := os.ReadDir("/proc")
		if err != nil {
			return u, err
		}
		for _, e := range entries {
			p, err := strconv.Atoi(e.Name())
			if err != nil || p == pid {
				continue
			}
			b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
			if err != nil {
				continue
			}
			if st, err := ParseProcStat(string(b)); err == nil && st.PPID == pid {
				pids = append(pids, p)
			}
		}
	}
	for i, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			if i == 0 {
				return u, fmt.Errorf("process %d: %w", pid, err)
			}
			continue
		}
		st, err := ParseProcStat(string(b))
		if err != nil {
			return u, fmt.Errorf("process %d: %w", p, err)
		}
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue
		}
		rss, err := ParseRSS(string(status))
		if err != nil {
			return u, fmt.Errorf("process %d: %w", p, err)
		}
		u.CPUTicks += st.CPUTicks
		u.RSS += rss
	}
	return u, nil
}

// CPUPercent is the CPU used between two samples, in percent of one core.
func CPUPercent(a, b Usage) float64 {
	dt := b.At.Sub(a.At).Seconds()
	if dt <= 0 || b.CPUTicks < a.CPUTicks {
		return 0
	}
	return float64(b.CPUTicks-a.CPUTicks) / clockTicks / dt * 100
}
