package machine

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of /proc/stat: 100 on every Linux
// architecture mplock builds for (the kernel fixes it for user space).
const clockTick = 100

// CPUSample is the machine's cumulative CPU time, all CPUs, at one moment,
// from the first line of /proc/stat.
type CPUSample struct {
	At    time.Time
	Busy  time.Duration // user, nice, system, irq and softirq
	Steal time.Duration // time the hypervisor ran something else
}

// ErrNoCPUStat is returned where /proc/stat cannot be read.
var ErrNoCPUStat = errors.New("machine: no /proc/stat")

// SampleCPU reads the machine's CPU time so far.
func SampleCPU() (CPUSample, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return CPUSample{}, fmt.Errorf("%w: %v", ErrNoCPUStat, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return CPUSample{}, fmt.Errorf("%w: empty", ErrNoCPUStat)
	}
	return parseCPULine(sc.Text(), time.Now())
}

// parseCPULine reads "cpu user nice system idle iowait irq softirq steal ...".
func parseCPULine(line string, at time.Time) (CPUSample, error) {
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return CPUSample{}, fmt.Errorf("machine: /proc/stat: unexpected first line %q", line)
	}
	var v [8]int64
	for i := range v {
		n, err := strconv.ParseInt(f[i+1], 10, 64)
		if err != nil {
			return CPUSample{}, fmt.Errorf("machine: /proc/stat: field %d of %q: %v", i+1, line, err)
		}
		v[i] = n
	}
	tick := func(n int64) time.Duration { return time.Duration(n) * time.Second / clockTick }
	user, nice, system, irq, softirq, steal := v[0], v[1], v[2], v[5], v[6], v[7]
	return CPUSample{At: at, Busy: tick(user + nice + system + irq + softirq), Steal: tick(steal)}, nil
}

// Activity is what all the machine's CPUs did between two samples, in CPUs:
// Busy 1.5 means one and a half CPUs were busy on average.
type Activity struct {
	Elapsed time.Duration
	Busy    float64
	Steal   float64
}

// Since returns the activity from earlier to s.
func (s CPUSample) Since(earlier CPUSample) Activity {
	el := s.At.Sub(earlier.At)
	if el <= 0 {
		return Activity{}
	}
	return Activity{
		Elapsed: el,
		Busy:    (s.Busy - earlier.Busy).Seconds() / el.Seconds(),
		Steal:   (s.Steal - earlier.Steal).Seconds() / el.Seconds(),
	}
}
