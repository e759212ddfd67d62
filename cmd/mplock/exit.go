package main

import (
	"errors"
	"fmt"
	"io"
)

// Exit codes, a contract for scripts (documented in the README).
const (
	exitOK          = 0   // everything asked for happened and every check passed
	exitFailure     = 1   // a check failed (a locked run lost updates) or a run failed
	exitUsage       = 2   // bad flags or arguments; nothing was run
	exitDeadlock    = 3   // mplock deadlock: a deadlock was detected and not resolved
	exitInterrupted = 130 // Ctrl-C or SIGTERM, after printing what finished
)

// exitError carries an exit code with the error that explains it. A nil err
// means the command already said everything and only the code remains.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageErrorf reports bad input: exit code 2, message on stderr.
func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// withCode attaches an exit code to err (which may be nil).
func withCode(code int, err error) error { return &exitError{code: code, err: err} }

// exitCode turns the error a command returned into an exit code and prints it
// to stderr as one line prefixed "mplock: ".
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	code := exitFailure
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		if ee.err == nil {
			return code
		}
	}
	fmt.Fprintf(stderr, "mplock: %v\n", err)
	if code == exitUsage {
		fmt.Fprintln(stderr, "Run 'mplock --help' or 'mplock <command> --help' for usage.")
	}
	return code
}
