package worker

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// pinThread binds the calling OS thread (the caller has locked its goroutine
// to it) to cpu, and returns the CPU the kernel reports the thread bound to.
func pinThread(cpu int) (int, error) {
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return -1, fmt.Errorf("worker: pin to CPU %d: %w", cpu, err)
	}
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return -1, fmt.Errorf("worker: read back affinity: %w", err)
	}
	if set.Count() != 1 || !set.IsSet(cpu) {
		return -1, fmt.Errorf("worker: pinned to CPU %d, but the kernel reports %d CPUs allowed", cpu, set.Count())
	}
	return cpu, nil
}

// cpuSetSize is CPU_SETSIZE, the CPUs a unix.CPUSet can name.
const cpuSetSize = 1024

// AllowedCPUs lists the CPUs this process may run on, in order.
func AllowedCPUs() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("worker: affinity: %w", err)
	}
	var cpus []int
	for cpu := 0; cpu < cpuSetSize; cpu++ {
		if set.IsSet(cpu) {
			cpus = append(cpus, cpu)
		}
	}
	return cpus, nil
}
