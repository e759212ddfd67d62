// Package machine describes the machine a measurement was taken on: numbers
// mean little without the CPU, the number of CPUs, the kernel and the power
// management that decides how fast a sleeping CPU wakes up.
package machine

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Info is the context every result carries.
type Info struct {
	CPUModel   string `json:"cpu_model"`
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Kernel     string `json:"kernel"`
	Arch       string `json:"arch"`
	// Governor is the cpuidle governor (how deep idle CPUs sleep), and
	// Frequency the cpufreq scaling governor; "" when the machine has none.
	Governor  string `json:"cpuidle_governor"`
	Frequency string `json:"cpufreq_governor,omitempty"`
	// IdleDriver is the cpuidle driver ("none" in many VMs: an idle CPU
	// halts and a wake-up goes through the hypervisor), and Hypervisor
	// names the hypervisor when the CPU reports running under one ("" on
	// bare metal, "unknown" when it does not say which).
	IdleDriver string `json:"cpuidle_driver,omitempty"`
	Hypervisor string `json:"hypervisor,omitempty"`
	Go         string `json:"go"`
	Version    string `json:"mplock_version"`
	Hostname   string `json:"hostname"`
}

// Collect reads the machine context. version is mplock's own version.
func Collect(version string) Info {
	in := Info{
		CPUs:       runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		Arch:       runtime.GOARCH,
		Go:         runtime.Version(),
		Version:    version,
		CPUModel:   cpuModel(),
		Governor:   readLine("/sys/devices/system/cpu/cpuidle/current_governor"),
		Frequency:  readLine("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
		IdleDriver: readLine("/sys/devices/system/cpu/cpuidle/current_driver"),
		Hypervisor: hypervisor(),
	}
	in.Hostname, _ = os.Hostname()
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		in.Kernel = unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:])
	}
	return in
}

// String is the one-line form printed under human reports.
func (in Info) String() string {
	s := in.CPUModel
	if s == "" {
		s = in.Arch
	}
	s += ", " + itoa(in.CPUs) + " CPUs, GOMAXPROCS " + itoa(in.GOMAXPROCS) + ", " + in.Kernel
	if in.Governor != "" {
		s += ", cpuidle " + in.Governor
	}
	return s
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "model name", "Model", "cpu model":
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func readLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func itoa(n int) string { return strconv.Itoa(n) }
