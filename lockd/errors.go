package lockd

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors from the table, the server's ERR replies and the
// client all match these with errors.Is.
var (
	ErrBadName      = errors.New("lockd: invalid name")
	ErrLocked       = errors.New("lockd: locked by another session")
	ErrHeld         = errors.New("lockd: this session already holds or waits for the name")
	ErrNotHolder    = errors.New("lockd: not held by this session")
	ErrNotWaiting   = errors.New("lockd: this session is not waiting for the name")
	ErrLimit        = errors.New("lockd: too many locks for one session")
	ErrAuth         = errors.New("lockd: authentication required or failed")
	ErrShutdown     = errors.New("lockd: server shutting down")
	ErrBusy         = errors.New("lockd: server has too many sessions")
	ErrSyntax       = errors.New("lockd: malformed request")
	ErrUnknown      = errors.New("lockd: unknown request")
	ErrTooLong      = errors.New("lockd: line too long")
	ErrTimeout      = errors.New("lockd: wait timed out")
	ErrLeaseExpired = errors.New("lockd: lease expired")
	ErrUnlocked     = errors.New("lockd: unlocked")
	ErrConnLost     = errors.New("lockd: connection to server lost")
	ErrClosed       = errors.New("lockd: client closed")
	ErrProtocol     = errors.New("lockd: unexpected reply from server")
	ErrServerClosed = errors.New("lockd: server closed")
	// ErrUnavailable: a cluster member could not reach a leader in time,
	// or does not know whether a change was applied: retry the same
	// request (same req=), at this member or another.
	ErrUnavailable = errors.New("lockd: cluster unavailable")
	// ErrStale: a stale read was refused: the member has not heard from a
	// leader for longer than its --max-stale.
	ErrStale = errors.New("lockd: too stale")
	// ErrSessionLost: the session is gone (expired, closed, or its secret
	// is wrong), and every lock it held with it.
	ErrSessionLost = errors.New("lockd: session lost")
)

// Code is an error code in an ERR reply: one lower-case word.
type Code string

// The error codes of the protocol (docs/protocol.md).
const (
	CodeSyntax     Code = "syntax"     // malformed request; connection stays
	CodeUnknown    Code = "unknown"    // unknown verb; connection stays
	CodeBadName    Code = "badname"    // invalid resource or client name
	CodeTooLong    Code = "toolong"    // line longer than the limit; connection closed
	CodeHeld       Code = "held"       // already holding or waiting for that name
	CodeNotHeld    Code = "notheld"    // UNLOCK/RENEW by a session that does not hold it
	CodeNotWaiting Code = "notwaiting" // CANCEL by a session that does not wait
	CodeLocked     Code = "locked"     // try-lock (wait=0) found the name taken
	CodeLimit      Code = "limit"      // max locks per session reached
	CodeAuth       Code = "auth"       // AUTH needed first, or wrong secret (then closed)
	CodeShutdown   Code = "shutdown"   // server shutting down
	CodeBusy       Code = "busy"       // too many sessions; connection closed
	// A cluster's own (docs/protocol.md, "Cluster").
	CodeUnavailable Code = "unavailable" // no leader, or the outcome is unknown: retry with the same req=
	CodeStale       Code = "stale"       // a stale read past --max-stale
	CodeSession     Code = "session"     // RESUME of a session that is gone, or with a wrong secret
)

var codeErrors = []struct {
	code Code
	err  error
}{
	{CodeSyntax, ErrSyntax}, {CodeUnknown, ErrUnknown}, {CodeBadName, ErrBadName},
	{CodeTooLong, ErrTooLong}, {CodeHeld, ErrHeld}, {CodeNotHeld, ErrNotHolder},
	{CodeNotWaiting, ErrNotWaiting}, {CodeLocked, ErrLocked}, {CodeLimit, ErrLimit},
	{CodeAuth, ErrAuth}, {CodeShutdown, ErrShutdown}, {CodeBusy, ErrBusy},
	{CodeUnavailable, ErrUnavailable}, {CodeStale, ErrStale}, {CodeSession, ErrSessionLost},
}

// codeOf returns the protocol code for err, CodeSyntax when none matches.
func codeOf(err error) Code {
	for _, ce := range codeErrors {
		if errors.Is(err, ce.err) {
			return ce.code
		}
	}
	return CodeSyntax
}

// ServerError is an ERR reply from the server. It matches the sentinel of
// its code with errors.Is.
type ServerError struct {
	Code Code
	Text string
}

func (e *ServerError) Error() string { return fmt.Sprintf("lockd: server: %s: %s", e.Code, e.Text) }

// Is makes errors.Is(err, ErrLocked) true for an "ERR locked" reply, and so on.
func (e *ServerError) Is(target error) bool {
	for _, ce := range codeErrors {
		if ce.code == e.Code {
			return target == ce.err
		}
	}
	return false
}
