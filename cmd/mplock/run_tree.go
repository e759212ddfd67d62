package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// proc is one process of a command's tree, as /proc shows it.
type proc struct {
	pid  int
	args string // its command line, shortened
}

func (p proc) String() string { return fmt.Sprintf("%d (%s)", p.pid, p.args) }

// processTree returns the live (not zombie) descendants of root, parents
// before children, by their parent links in /proc. Every process a command
// starts stays a descendant of its init, however it detaches: orphans are
// reparented to the init of their PID namespace, or to the nearest child
// subreaper. The pids are /proc's, which are the host's even for processes
// in a PID namespace of their own (mplock mounts no /proc for them).
func processTree(root int) []proc {
	children := map[int][]int{}
	live := map[int]bool{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		if err != nil {
			continue
		}
		st, ok := procStat(pid)
		if !ok {
			continue
		}
		children[st.ppid] = append(children[st.ppid], pid)
		live[pid] = st.state != 'Z' && st.state != 'X'
	}
	var out []proc
	queue := []int{root}
	for len(queue) > 0 {
		kids := children[queue[0]]
		slices.Sort(kids)
		queue = append(queue[1:], kids...)
		for _, k := range kids {
			if !live[k] {
				continue
			}
			// A process whose command line and name can no longer be
			// read has exited since /proc was listed (another killer,
			// mplock run or the init, was faster): it is not left.
			if args := processArgs(k); args != "" {
				out = append(out, proc{pid: k, args: args})
			}
		}
	}
	return out
}

// processArgs is pid's command line for a message: its arguments joined
// by spaces, at most 60 bytes, or its name from /proc/PID/comm.
func processArgs(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(b) == 0 {
		b, _ = os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		return strings.TrimSpace(string(b))
	}
	s := string(bytes.ReplaceAll(bytes.TrimRight(b, "\x00"), []byte{0}, []byte{' '}))
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

// describeProcs lists ps for a message: "1 process: 4242 (sleep 3333)".
func describeProcs(ps []proc) string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.String()
	}
	what := "processes"
	if len(ps) == 1 {
		what = "process"
	}
	return fmt.Sprintf("%d %s: %s", len(ps), what, strings.Join(names, ", "))
}
