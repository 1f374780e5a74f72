package proc

import (
	"os"
	"os/exec"
	"slices"
	"testing"
)

func TestExpandFindsChildren(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skipf("no sleep to start: %v", err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	self := os.Getpid()
	alone, err := expand([]Target{{PID: self}})
	if err != nil || !slices.Equal(alone, []int{self}) {
		t.Errorf("a single process: got %v, %v; want only %d", alone, err, self)
	}
	tree, err := expand([]Target{{PID: self, Tree: true}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(tree, self) || !slices.Contains(tree, cmd.Process.Pid) {
		t.Errorf("the tree of %d is %v; want it and its child %d", self, tree, cmd.Process.Pid)
	}
}

func TestReadsThisProcess(t *testing.T) {
	self := []Target{{PID: os.Getpid()}}
	if _, err := CPU(self); err != nil {
		t.Errorf("CPU: %v", err)
	}
	for _, tree := range []bool{false, true} {
		m, err := Memory([]Target{{PID: os.Getpid(), Tree: tree}})
		if err != nil || m == 0 {
			t.Errorf("Memory (tree %v) = %d, %v; want some memory", tree, m, err)
		}
	}
	if _, err := CPU([]Target{{PID: 1 << 30}}); err != nil {
		t.Errorf("a process that is gone counts nothing, got %v", err)
	}
}

func TestReadMachine(t *testing.T) {
	m := ReadMachine()
	if m.CPUs < 1 || m.Model == "" || m.Kernel == "" {
		t.Errorf("ReadMachine() = %+v", m)
	}
	if LoadAverage() == "" {
		t.Error("LoadAverage() is empty")
	}
}
