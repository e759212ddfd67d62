package replica

import (
	"errors"
	"fmt"

	"mplock/lockd"
)

// Errors of the replication layer. Node.Apply's errors match exactly one of
// ErrNotApplied and ErrAmbiguous with errors.Is, so a caller knows whether
// to retry:
//
//   - ErrNotApplied: the command is known not to be in the log (no leader
//     within the context, the leader refused it, the connection to the leader
//     failed before the request left). Retrying is safe.
//   - ErrAmbiguous: the command may or may not be applied (leadership lost
//     while it was being committed, the connection to the leader broke after
//     it was sent, the context ended while waiting). Retry it unchanged (same
//     session and request id): the FSM de-duplicates it and returns the
//     recorded result.
var (
	ErrNotApplied = errors.New("replica: not applied")
	ErrAmbiguous  = errors.New("replica: outcome unknown (retry with the same request id)")

	// ErrNoLeader (with ErrNotApplied): no leader was known within the context.
	ErrNoLeader = errors.New("replica: no leader")
	// ErrNotLeader: a leader-only call reached a node that is not the leader.
	ErrNotLeader = errors.New("replica: not the leader")
	// ErrShutdown: the node is shut down.
	ErrShutdown = errors.New("replica: node shut down")
	// ErrStale: a stale read was refused because this node has not heard
	// from a leader for longer than Config.MaxStale (or never).
	ErrStale = errors.New("replica: too stale")
	// ErrBadCommand: a command failed validation before it was proposed.
	ErrBadCommand = errors.New("replica: invalid command")
	// ErrUnknownCommand: a command type this build does not know.
	ErrUnknownCommand = errors.New("replica: unknown command type")
	// ErrAuth: a peer presented the wrong cluster secret.
	ErrAuth = errors.New("replica: cluster secret mismatch")
	// ErrNoSecret: NewNode was given no Config.Secret. The raft port
	// takes log entries and forwarded writes for any session: without a
	// secret any process that can reach it could release others' locks
	// or stop the members.
	ErrNoSecret = errors.New("replica: no cluster secret (Config.Secret): the raft port would obey anyone who can reach it")

	// Results of the FSM (in Result.Err), besides lockd's sentinels:

	// ErrNoSession: the command names a session that does not exist (never
	// opened, closed, or expired).
	ErrNoSession = errors.New("replica: no such session")
	// ErrRequestOrder: the request id is at or below the session's last one
	// and its result is no longer recorded (or it was never applied, and a
	// later request already was). Request ids of one session must rise.
	ErrRequestOrder = errors.New("replica: request id out of order")
)

// Codes of the replica's own refusals (lockd.Code is the protocol's type).
const (
	CodeNoSession    lockd.Code = "nosession"
	CodeRequestOrder lockd.Code = "order"
)

// codeErrors maps every code a Result.Err can carry to its sentinel. The
// FSM records refusals by code and text (so that they survive snapshots and
// forwarding), and TableError matches the sentinel again.
var codeErrors = []struct {
	code lockd.Code
	err  error
}{
	{lockd.CodeBadName, lockd.ErrBadName}, {lockd.CodeHeld, lockd.ErrHeld},
	{lockd.CodeNotHeld, lockd.ErrNotHolder}, {lockd.CodeNotWaiting, lockd.ErrNotWaiting},
	{lockd.CodeLocked, lockd.ErrLocked}, {lockd.CodeLimit, lockd.ErrLimit},
	{lockd.CodeAuth, lockd.ErrAuth}, {lockd.CodeSyntax, lockd.ErrSyntax},
	{CodeNoSession, ErrNoSession}, {CodeRequestOrder, ErrRequestOrder},
}

// TableError is a command the FSM applied and refused (the table's or the
// FSM's reason): the command is in the log, and changed nothing. It matches
// its sentinel with errors.Is (lockd.ErrLocked, lockd.ErrNotHolder,
// ErrNoSession, ...), and Code is the protocol's error code.
type TableError struct {
	Code lockd.Code
	Text string
}

func (e *TableError) Error() string { return e.Text }

// Is matches the sentinel of e's code.
func (e *TableError) Is(target error) bool {
	for _, ce := range codeErrors {
		if ce.code == e.Code {
			return target == ce.err
		}
	}
	return false
}

// tableError records err (from the table or the FSM) by code and text.
func tableError(err error) *TableError {
	if err == nil {
		return nil
	}
	var te *TableError
	if errors.As(err, &te) {
		return te
	}
	for _, ce := range codeErrors {
		if errors.Is(err, ce.err) {
			return &TableError{Code: ce.code, Text: err.Error()}
		}
	}
	return &TableError{Code: lockd.CodeSyntax, Text: err.Error()}
}

// notApplied and ambiguous wrap a cause with the retry class.
func notApplied(cause error) error { return fmt.Errorf("%w: %w", ErrNotApplied, cause) }
func ambiguous(cause error) error  { return fmt.Errorf("%w: %w", ErrAmbiguous, cause) }
