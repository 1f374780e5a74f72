package proc

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/prometheus/procfs"
)

// Machine describes where the figures were measured.
type Machine struct {
	CPUs   int    // runtime.NumCPU, what nproc prints
	Model  string // the first CPU's model name
	Kernel string
}

// ReadMachine reads the machine's description, with "unknown" for what
// cannot be read.
func ReadMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Model: "unknown", Kernel: "unknown"}
	if fs, err := procfs.NewDefaultFS(); err == nil {
		if cpus, err := fs.CPUInfo(); err == nil && len(cpus) > 0 {
			m.Model = cpus[0].ModelName
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	return m
}

// LoadAverage is the 1, 5 and 15 minute load averages, "unknown" when
// they cannot be read.
func LoadAverage() string {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return "unknown"
	}
	l, err := fs.LoadAvg()
	if err != nil {
		return "unknown"
	}
	return fmt.Sprintf("%.2f %.2f %.2f", l.Load1, l.Load5, l.Load15)
}
