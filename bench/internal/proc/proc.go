// Package proc reads, from /proc, what the comparison measures of the
// processes of a system under test: the CPU time they used and their
// memory. It does not start or stop processes.
package proc

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/prometheus/procfs"
)

// Target is one process whose resources count, and with Tree also every
// process below it: PostgreSQL's postmaster forks a backend per
// connection and a few background processes.
type Target struct {
	PID  int
	Tree bool
}

// userHZ is the unit of /proc/PID/stat's CPU times (USER_HZ): 100 on
// every Linux architecture Go supports.
const userHZ = 100

// CPU returns the CPU time (user and system, all threads) the targets have
// used so far. A tree counts every live process in it and, through each
// one's cutime and cstime, the children it has reaped: a PostgreSQL
// backend that exits still counts, in its postmaster.
func CPU(targets []Target) (time.Duration, error) {
	pids, err := expand(targets)
	if err != nil {
		return 0, err
	}
	var ticks int64
	for _, pid := range pids {
		st, err := stat(pid)
		if errors.Is(err, fs.ErrNotExist) {
			continue // exited between the scan and the read: its parent has it
		}
		if err != nil {
			return 0, err
		}
		ticks += int64(st.UTime+st.STime) + int64(st.CUTime+st.CSTime)
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// Memory returns what counts of the targets' memory, summed. A single
// process counts its peak RSS so far (VmHWM). A tree counts its
// proportional set size now (PSS, from /proc/PID/smaps_rollup): PostgreSQL's
// processes share its buffers, and the pages a backend inherited from the
// postmaster, which a sum of their RSS would count once per process; PSS
// splits each page among the processes that map it. No peak is kept for
// a tree, so the caller samples it; reading PSS walks every page table,
// a few tens of milliseconds for a PostgreSQL with 70 backends.
func Memory(targets []Target) (uint64, error) {
	var total uint64
	for _, t := range targets {
		if !t.Tree {
			st, err := status(t.PID)
			if err != nil {
				return 0, fmt.Errorf("memory of process %d: %w", t.PID, err)
			}
			total += st.VmHWM
			continue
		}
		pids, err := expand([]Target{t})
		if err != nil {
			return 0, err
		}
		for _, pid := range pids {
			p, err := procfs.NewProc(pid)
			if err != nil {
				continue
			}
			r, err := p.ProcSMapsRollup()
			if err != nil {
				continue // exited meanwhile
			}
			total += r.Pss
		}
	}
	return total, nil
}

func status(pid int) (procfs.ProcStatus, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return procfs.ProcStatus{}, err
	}
	return p.NewStatus()
}

func stat(pid int) (procfs.ProcStat, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return procfs.ProcStat{}, err
	}
	return p.Stat()
}

// expand lists the targets' processes: each target, and for a tree every
// process below it, found by its parent in /proc/PID/stat.
func expand(targets []Target) ([]int, error) {
	var pids []int
	var children map[int][]int
	for _, t := range targets {
		pids = append(pids, t.PID)
		if !t.Tree {
			continue
		}
		if children == nil {
			var err error
			if children, err = childrenByParent(); err != nil {
				return nil, err
			}
		}
		queue := slices.Clone(children[t.PID])
		for len(queue) > 0 {
			pid := queue[0]
			queue = append(queue[1:], children[pid]...)
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

func childrenByParent() (map[int][]int, error) {
	all, err := procfs.AllProcs()
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	m := map[int][]int{}
	for _, p := range all {
		st, err := p.Stat()
		if err != nil {
			continue // exited meanwhile
		}
		m[st.PPID] = append(m[st.PPID], st.PID)
	}
	return m, nil
}
