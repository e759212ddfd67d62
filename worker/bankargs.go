package worker

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"mplock/lock"
	"mplock/shm"
)

// Descriptors a bank worker inherits from its coordinator.
const (
	BankRegionFD = 3 // the shared region
	BankReportFD = 4 // the write end of the report pipe
)

// Args returns s as the arguments of `mplock worker bank`; ParseBankArgs
// reads them back. Both sides of the contract live here.
func (s BankSpec) Args() []string {
	args := []string{
		"-slot", strconv.Itoa(s.Slot),
		"-kind", s.Kind.String(),
		"-ops", strconv.FormatInt(s.Ops, 10),
		"-cap", strconv.FormatInt(s.Cap, 10),
		"-think", s.Think.String(),
		"-hold", s.Hold.String(),
	}
	if s.LockFile != "" {
		args = append(args, "-lock-file", s.LockFile)
	}
	if s.Kind == lock.SysV {
		args = append(args, "-sem-id", strconv.Itoa(s.SemID))
	}
	if s.NoLatency {
		args = append(args, "-no-latency")
	}
	if s.Trace {
		args = append(args, "-trace")
	}
	if s.KillAt > 0 {
		args = append(args, "-kill-at", strconv.FormatInt(s.KillAt, 10))
	}
	if s.Pin {
		args = append(args, "-cpu", strconv.Itoa(s.CPU))
	}
	return args
}

// ParseBankArgs parses the arguments Args produces.
func ParseBankArgs(args []string) (BankSpec, error) {
	var s BankSpec
	fs := flag.NewFlagSet("mplock worker bank", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.IntVar(&s.Slot, "slot", -1, "")
	kind := fs.String("kind", "", "")
	fs.Int64Var(&s.Ops, "ops", 0, "")
	fs.Int64Var(&s.Cap, "cap", 0, "")
	fs.DurationVar(&s.Think, "think", 0, "")
	fs.DurationVar(&s.Hold, "hold", 0, "")
	fs.StringVar(&s.LockFile, "lock-file", "", "")
	fs.IntVar(&s.SemID, "sem-id", 0, "")
	fs.BoolVar(&s.NoLatency, "no-latency", false, "")
	fs.BoolVar(&s.Trace, "trace", false, "")
	fs.Int64Var(&s.KillAt, "kill-at", 0, "")
	fs.IntVar(&s.CPU, "cpu", -1, "")
	if err := fs.Parse(args); err != nil {
		return s, fmt.Errorf("worker: bank: %w", err)
	}
	if fs.NArg() > 0 {
		return s, fmt.Errorf("worker: bank: unexpected argument %q", fs.Arg(0))
	}
	k, err := lock.ParseKind(*kind)
	if err != nil {
		return s, fmt.Errorf("worker: bank: %w", err)
	}
	s.Kind = k
	s.Pin = s.CPU >= 0
	if s.Slot < 0 || s.Ops < 0 || s.Cap < 0 || s.Think < 0 || s.Hold < 0 {
		return s, fmt.Errorf("worker: bank: negative -slot, -ops, -cap, -think or -hold")
	}
	return s, nil
}

// BankMain is the whole of a bank worker process: it parses args, maps the
// region on fd 3, and runs the worker, reporting on fd 4.
func BankMain(ctx context.Context, args []string) error {
	spec, err := ParseBankArgs(args)
	if err != nil {
		return err
	}
	region, err := shm.Open(os.NewFile(BankRegionFD, "region"))
	if err != nil {
		return err
	}
	defer region.Close()
	report := os.NewFile(BankReportFD, "report")
	defer report.Close()
	return RunBank(ctx, region, spec, report)
}
