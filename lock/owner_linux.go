package lock

import (
	"bytes"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// alive reports whether process pid exists and is not a zombie. A zombie is
// dead for our purpose: it will never release anything, it only waits to be
// reaped by its parent.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := unix.Kill(pid, 0); err == unix.ESRCH {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !os.IsNotExist(err)
	}
	// The state follows the command name, which is in parentheses and may
	// itself contain ')': take the last one.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return true
	}
	switch stat[i+2] {
	case 'Z', 'X', 'x':
		return false
	}
	return true
}
