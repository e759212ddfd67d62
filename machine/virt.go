package machine

import (
	"bufio"
	"os"
	"strings"
)

// hypervisor names the hypervisor the machine runs under, "" when the CPU
// does not report one (the "hypervisor" flag of /proc/cpuinfo), and
// "unknown" when it does but no vendor file names it.
func hypervisor() string {
	if !cpuFlag("hypervisor") {
		return ""
	}
	for _, path := range []string{"/sys/hypervisor/type", "/sys/class/dmi/id/sys_vendor", "/sys/class/dmi/id/product_name"} {
		if v := readLine(path); v != "" {
			return v
		}
	}
	return "unknown"
}

// cpuFlag reports whether the first CPU of /proc/cpuinfo has flag.
func cpuFlag(flag string) bool {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(k) != "flags" {
			continue
		}
		for _, f := range strings.Fields(v) {
			if f == flag {
				return true
			}
		}
		return false
	}
	return false
}
