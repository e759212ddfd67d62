package replica

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"time"

	"mplock/lockd"
)

// Op is the type of a log command: the first byte of every log entry.
type Op uint8

// The commands. Every change to the replicated table is one of these, in
// the log; nothing else changes it. The values are part of the log format:
// never renumber them.
const (
	// OpOpenSession opens a session (SecretHash, Client, PID, Addr, TTL,
	// Node). Its id is the log index of this entry. A retry with the same
	// secret returns the session it opened.
	OpOpenSession Op = 1
	// OpResumeSession re-attaches a session at Node (Session, SecretHash);
	// the result carries its whole state (held locks, waits).
	OpResumeSession Op = 2
	// OpCloseSession ends a session at its client's request (QUIT).
	OpCloseSession Op = 3
	// OpExpireSession ends a session whose TTL ran out without keepalives;
	// only the leader's lessor proposes it.
	OpExpireSession Op = 4
	// OpLock is LOCK (Session, Request, Name, Mode, LockTTL, Wait).
	OpLock Op = 5
	// OpUnlock is UNLOCK (Session, Request, Name, Token).
	OpUnlock Op = 6
	// OpRenew is RENEW (Session, Request, Name, Token, LockTTL).
	OpRenew Op = 7
	// OpCancel is CANCEL (Session, Request, Name).
	OpCancel Op = 8
	// OpAdvance applies the lease expiries and wait timeouts due at the
	// entry's time (the leader's lessor proposes it when one falls due).
	OpAdvance Op = 9
	// OpExtendLeases gives every lock lease a full TTL from the entry's
	// time: a new leader's first command, and a leader's after it found it
	// had stood still.
	OpExtendLeases Op = 10
	// OpNodeInfo records a node's client and raft addresses (Node,
	// ClientAddr, RaftAddr), so that every node can list the members.
	OpNodeInfo Op = 11

	// opIgnorable, set in the type byte, lets an FSM that does not know the
	// type skip the entry instead of stopping (Consul's
	// IgnoreUnknownTypeFlag). Only commands whose loss cannot make replicas
	// disagree on the table may carry it.
	opIgnorable Op = 0x80
)

var opNames = map[Op]string{
	OpOpenSession: "open-session", OpResumeSession: "resume-session", OpCloseSession: "close-session",
	OpExpireSession: "expire-session", OpLock: "lock", OpUnlock: "unlock", OpRenew: "renew",
	OpCancel: "cancel", OpAdvance: "advance", OpExtendLeases: "extend-leases", OpNodeInfo: "node-info",
}

func (o Op) String() string {
	if s, ok := opNames[o]; ok {
		return s
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// known reports whether this build can apply o.
func (o Op) known() bool { _, ok := opNames[o]; return ok }

// sessionOp reports whether o acts for a session with a request id (and is
// de-duplicated by it).
func (o Op) sessionOp() bool {
	switch o {
	case OpCloseSession, OpLock, OpUnlock, OpRenew, OpCancel:
		return true
	}
	return false
}

// commandVersion is the version of the entry header and body this build
// writes; it applies entries of this version only.
const commandVersion = 1

// headerLen is the entry header: type byte, version byte, stamp (int64,
// big-endian Unix nanoseconds of the leader's clock).
const headerLen = 10

// Command is one change to the table. Which fields count depends on Op (see
// the Op constants); build commands with the constructors (OpenSession,
// Lock, ...). Stamp is set by the leader when it proposes the command, never
// by the caller.
type Command struct {
	Op    Op    `json:"-"`
	Stamp int64 `json:"-"`

	Session lockd.SessionID `json:"session,omitempty"`
	// Request is the session's request id: ids of one session must rise,
	// and a command whose id was already applied returns the recorded
	// result instead of applying again. Zero: not de-duplicated.
	// OpResumeSession is not de-duplicated: there Request is the attempt's
	// id (ResumeAttempt), echoed in its Result, so that the node that
	// proposed a resume tells its own entry from an older resume of the
	// same session (one replayed from the log after a restart).
	Request uint64 `json:"request,omitempty"`

	SecretHash string        `json:"secret_hash,omitempty"` // OpOpenSession, OpResumeSession
	Client     string        `json:"client,omitempty"`      // OpOpenSession
	PID        int           `json:"pid,omitempty"`         // OpOpenSession
	Addr       string        `json:"addr,omitempty"`        // OpOpenSession: the client's address
	TTL        time.Duration `json:"ttl,omitempty"`         // OpOpenSession: the session's TTL
	Node       string        `json:"node,omitempty"`        // Open/ResumeSession: attached at; OpNodeInfo

	Name    string        `json:"name,omitempty"`     // Lock, Unlock, Renew, Cancel
	Mode    lockd.Mode    `json:"mode,omitempty"`     // OpLock
	LockTTL time.Duration `json:"lock_ttl,omitempty"` // Lock, Renew: the lease (0: none, or keep)
	Wait    time.Duration `json:"wait,omitempty"`     // OpLock: <0 for ever, 0 try-lock, >0 bound
	Token   lockd.Token   `json:"token,omitempty"`    // Unlock, Renew: 0 or the grant's token

	ClientAddr string `json:"client_addr,omitempty"` // OpNodeInfo
	RaftAddr   string `json:"raft_addr,omitempty"`   // OpNodeInfo
}

// HashSecret is how a session secret is stored and compared: hex SHA-256.
// The log and snapshots hold only the hash.
func HashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// OpenSession opens a session with a fresh random secret (the caller makes
// it; it is the session's bearer credential for RESUME), a TTL (0: the
// node's Config.SessionTTL), the client's name, pid and address, and the
// node it is attached at.
func OpenSession(secret string, ttl time.Duration, client string, pid int, addr, node string) Command {
	return Command{Op: OpOpenSession, SecretHash: HashSecret(secret), TTL: ttl, Client: client, PID: pid, Addr: addr, Node: node}
}

// ResumeSession re-attaches session id at node, if secret is its secret.
func ResumeSession(id lockd.SessionID, secret, node string) Command {
	return Command{Op: OpResumeSession, Session: id, SecretHash: HashSecret(secret), Node: node}
}

// ResumeAttempt is ResumeSession with an attempt id (any number the
// proposer will recognise, unique among its own attempts), which the
// Result and the Observer carry back in Request.
func ResumeAttempt(id lockd.SessionID, secret, node string, attempt uint64) Command {
	c := ResumeSession(id, secret, node)
	c.Request = attempt
	return c
}

// CloseSession ends a session (its locks are released, its waits cancelled).
func CloseSession(id lockd.SessionID, request uint64) Command {
	return Command{Op: OpCloseSession, Session: id, Request: request}
}

// Lock asks for r.Name for session id (see lockd.Table.Lock).
func Lock(id lockd.SessionID, request uint64, r lockd.LockRequest) Command {
	return Command{Op: OpLock, Session: id, Request: request, Name: r.Name, Mode: r.Mode, LockTTL: r.TTL, Wait: r.Wait}
}

// Unlock releases session id's lock on name (token 0: whichever grant it
// holds).
func Unlock(id lockd.SessionID, request uint64, name string, token lockd.Token) Command {
	return Command{Op: OpUnlock, Session: id, Request: request, Name: name, Token: token}
}

// Renew extends session id's lease on name (ttl 0: its own TTL).
func Renew(id lockd.SessionID, request uint64, name string, token lockd.Token, ttl time.Duration) Command {
	return Command{Op: OpRenew, Session: id, Request: request, Name: name, Token: token, LockTTL: ttl}
}

// Cancel withdraws session id's queued request for name.
func Cancel(id lockd.SessionID, request uint64, name string) Command {
	return Command{Op: OpCancel, Session: id, Request: request, Name: name}
}

// NodeInfoCommand records node's client and raft addresses.
func NodeInfoCommand(node, clientAddr, raftAddr string) Command {
	return Command{Op: OpNodeInfo, Node: node, ClientAddr: clientAddr, RaftAddr: raftAddr}
}

// validate checks what can be checked before a command is proposed, so that
// the log holds only commands that parse. The FSM still refuses what the
// table refuses (a bad name, an unknown session) as a result.
func (c *Command) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: "+format, append([]any{ErrBadCommand, c.Op}, args...)...)
	}
	if !c.Op.known() {
		return fmt.Errorf("%w: %d", ErrUnknownCommand, uint8(c.Op))
	}
	if c.Op.sessionOp() || c.Op == OpResumeSession || c.Op == OpExpireSession {
		if c.Session == 0 {
			return bad("no session")
		}
	}
	if c.Op.sessionOp() && c.Request == math.MaxUint64 {
		// A server's counter of the session's ids would wrap after it.
		return bad("request id %d: the largest id is %d", c.Request, uint64(math.MaxUint64-1))
	}
	switch c.Op {
	case OpOpenSession, OpResumeSession:
		if len(c.SecretHash) != 2*sha256.Size {
			return bad("secret hash of %d characters", len(c.SecretHash))
		}
		if c.TTL < 0 {
			return bad("negative ttl %v", c.TTL)
		}
	case OpLock:
		if c.Mode != 0 && c.Mode != lockd.Shared && c.Mode != lockd.Exclusive {
			return bad("mode %d", c.Mode)
		}
		if err := lockd.ValidTTL(c.LockTTL); err != nil {
			return bad("%v", err)
		}
	case OpRenew:
		if err := lockd.ValidTTL(c.LockTTL); err != nil {
			return bad("%v", err)
		}
	case OpNodeInfo:
		if c.Node == "" {
			return bad("no node")
		}
	}
	return nil
}

// fingerprint identifies what a session command asks (its op, name, mode,
// token and wait), so that the FSM tells a retry, which repeats its
// request unchanged, from another request under a reused id. The lease
// TTL is left out: a LOCK without ttl= gets the member's --ttl, which a
// retry at another member may have otherwise. FNV-1a over a canonical
// encoding: deterministic on every replica; a session can confuse only
// itself with a collision.
func (c *Command) fingerprint() uint64 {
	h := fnv.New64a()
	var b [1 + 1 + 8 + 8]byte
	b[0], b[1] = byte(c.Op), byte(c.Mode)
	binary.BigEndian.PutUint64(b[2:], uint64(c.Token))
	binary.BigEndian.PutUint64(b[10:], uint64(c.Wait))
	h.Write(b[:])
	h.Write([]byte(c.Name))
	return h.Sum64() | 1 // never 0, which stands for "not recorded"
}

// encode returns the entry bytes: the header (type, version, stamp), then
// the body as JSON. encoding/json writes struct fields in declaration order,
// so equal commands give equal bytes.
func (c *Command) encode() ([]byte, error) {
	body, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("replica: encode %s: %w", c.Op, err)
	}
	b := make([]byte, headerLen, headerLen+len(body))
	b[0] = byte(c.Op)
	b[1] = commandVersion
	binary.BigEndian.PutUint64(b[2:], uint64(c.Stamp))
	return append(b, body...), nil
}

// setStamp writes the leader's time into an encoded entry.
func setStamp(entry []byte, stamp int64) {
	binary.BigEndian.PutUint64(entry[2:headerLen], uint64(stamp))
}

// errIgnored is decodeCommand's answer for an unknown type flagged
// ignorable.
var errIgnored = fmt.Errorf("%w (ignorable)", ErrUnknownCommand)

// decodeCommand parses an entry. An unknown type is ErrUnknownCommand, or
// errIgnored when flagged ignorable; so is a version this build does not
// read.
func decodeCommand(entry []byte) (Command, error) {
	if len(entry) < headerLen {
		return Command{}, fmt.Errorf("%w: entry of %d bytes", ErrBadCommand, len(entry))
	}
	op := Op(entry[0])
	ignorable := op&opIgnorable != 0
	op &^= opIgnorable
	if !op.known() || entry[1] != commandVersion {
		if ignorable {
			return Command{}, errIgnored
		}
		return Command{}, fmt.Errorf("%w: type %d version %d", ErrUnknownCommand, uint8(op), entry[1])
	}
	c := Command{Op: op, Stamp: int64(binary.BigEndian.Uint64(entry[2:headerLen]))}
	dec := json.NewDecoder(bytes.NewReader(entry[headerLen:]))
	if err := dec.Decode(&c); err != nil {
		return Command{}, fmt.Errorf("%w: %s: %v", ErrBadCommand, op, err)
	}
	return c, nil
}
