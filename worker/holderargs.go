package worker

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// HolderReportFD is the descriptor of the report pipe a deadlock holder
// inherits from its coordinator; its control lines come on stdin.
const HolderReportFD = 3

// Control lines the coordinator sends a holder on stdin. The end of stdin
// tells it to stop.
const (
	HolderGo   = "go"   // start: take the first lock
	HolderNext = "next" // (Sync) every holder has its first lock: go on
)

// HolderSpec is what one deadlock holder does: take Locks in order, holding
// each for Hold before asking for the next, then release them all.
type HolderSpec struct {
	Name  string       // the name it gives the servers in HELLO: "P1"
	Locks []HolderLock // in the order it takes them
	Hold  time.Duration
	// TryTimeout, when positive, makes every acquire after the first a
	// timed one: if the lock is not granted within TryTimeout, the holder
	// withdraws, releases what it holds, backs off and starts over. Zero:
	// every acquire waits as long as it takes.
	TryTimeout time.Duration
	// Backoff is the base of the randomized backoff after giving up: the
	// n-th retry waits a uniformly random time up to Backoff * 2^n (n
	// capped at 6).
	Backoff time.Duration
	// Sync: after the first lock, wait for HolderNext before going on, so
	// that every holder has its first lock before any asks for a second.
	Sync bool
	Seed uint64
}

// HolderLock is one lock a holder takes: its name and its server.
type HolderLock struct {
	Name string
	Addr string
}

func (l HolderLock) String() string { return l.Name + "@" + l.Addr }

// Args returns s as the arguments of `mplock worker holder`;
// ParseHolderArgs reads them back. Both sides of the contract live here.
func (s HolderSpec) Args() []string {
	args := []string{"-name", s.Name}
	for _, l := range s.Locks {
		args = append(args, "-lock", l.String())
	}
	args = append(args,
		"-hold", s.Hold.String(),
		"-try-timeout", s.TryTimeout.String(),
		"-backoff", s.Backoff.String(),
		"-seed", strconv.FormatUint(s.Seed, 10),
	)
	if s.Sync {
		args = append(args, "-sync")
	}
	return args
}

// ParseHolderArgs parses the arguments Args produces.
func ParseHolderArgs(args []string) (HolderSpec, error) {
	var s HolderSpec
	fs := flag.NewFlagSet("mplock worker holder", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&s.Name, "name", "", "")
	fs.Func("lock", "", func(v string) error {
		name, addr, ok := strings.Cut(v, "@")
		if !ok || name == "" || addr == "" {
			return fmt.Errorf("want NAME@HOST:PORT, not %q", v)
		}
		s.Locks = append(s.Locks, HolderLock{Name: name, Addr: addr})
		return nil
	})
	fs.DurationVar(&s.Hold, "hold", 0, "")
	fs.DurationVar(&s.TryTimeout, "try-timeout", 0, "")
	fs.DurationVar(&s.Backoff, "backoff", 0, "")
	fs.Uint64Var(&s.Seed, "seed", 0, "")
	fs.BoolVar(&s.Sync, "sync", false, "")
	if err := fs.Parse(args); err != nil {
		return s, fmt.Errorf("worker: holder: %w", err)
	}
	switch {
	case fs.NArg() > 0:
		return s, fmt.Errorf("worker: holder: unexpected argument %q", fs.Arg(0))
	case s.Name == "" || len(s.Locks) == 0:
		return s, fmt.Errorf("worker: holder: -name and at least one -lock are needed")
	case s.Hold < 0 || s.TryTimeout < 0 || s.Backoff < 0:
		return s, fmt.Errorf("worker: holder: negative -hold, -try-timeout or -backoff")
	}
	return s, nil
}

// HolderMain is the whole of a holder process: it parses args and runs the
// holder, with control lines on stdin and notes on fd 3.
func HolderMain(ctx context.Context, args []string) error {
	spec, err := ParseHolderArgs(args)
	if err != nil {
		return err
	}
	control, err := OpenControl(0, "control")
	if err != nil {
		return err
	}
	report := os.NewFile(HolderReportFD, "report")
	defer report.Close()
	return RunHolder(ctx, spec, control, report)
}
