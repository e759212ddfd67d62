package lockd

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Protocol limits (docs/protocol.md). Servers may lower MaxLine and raise
// nothing.
const (
	// DefaultMaxLine is the longest request line, in bytes, without its
	// newline. Longer lines get ERR toolong and the connection is closed,
	// because what follows cannot be told apart from the rest of the line.
	DefaultMaxLine = 1024
	// MaxClientLen is the longest client name given in HELLO.
	MaxClientLen = 64
	// MaxSecretLen is the longest AUTH secret.
	MaxSecretLen = 256
	// MaxDuration bounds ttl= and wait=.
	MaxDuration = 24 * time.Hour
	// MinTTL is the shortest lease, ttl= other than 0. A client renews a
	// lease every third of its TTL: a shorter one would have it renew
	// faster than any server answers, and lose the lock anyway.
	MinTTL = time.Millisecond
)

// Verb is a request's first word.
type Verb uint8

const (
	VerbHello  Verb = iota + 1 // HELLO <client> [pid=N]: say who this session is
	VerbAuth                   // AUTH <secret>: present the server's shared secret
	VerbLock                   // LOCK <name> [READ|WRITE] [ttl=D] [wait=D]
	VerbUnlock                 // UNLOCK <name> [token=N]
	VerbRenew                  // RENEW <name> [token=N] [ttl=D]
	VerbCancel                 // CANCEL <name>: withdraw a queued LOCK
	VerbStatus                 // STATUS [name] [limit=N] [after=NAME]: holders and waiters
	VerbPing                   // PING: keep an idle session alive
	VerbQuit                   // QUIT: close the session (its locks are released)
	VerbHelp                   // HELP: list the verbs
	VerbDebug                  // DEBUG: heap and table sizes (servers started with Config.Debug)
	// CHECK <name> [consistency=C]: the holders of name (the seed's check);
	// information, never proof of ownership.
	VerbCheck
	VerbResume       // RESUME <session> <secret>: re-attach a cluster session at this server
	VerbMembers      // MEMBERS: the cluster's members and their raft state
	VerbMemberAdd    // MEMBER ADD <node> <raft-addr>: add a voter (forwarded to the leader)
	VerbMemberRemove // MEMBER REMOVE <node>: remove a member (forwarded to the leader)
)

var verbNames = [...]string{VerbHello: "HELLO", VerbAuth: "AUTH", VerbLock: "LOCK", VerbUnlock: "UNLOCK",
	VerbRenew: "RENEW", VerbCancel: "CANCEL", VerbStatus: "STATUS", VerbPing: "PING", VerbQuit: "QUIT", VerbHelp: "HELP",
	VerbDebug: "DEBUG", VerbCheck: "CHECK", VerbResume: "RESUME", VerbMembers: "MEMBERS", VerbMemberAdd: "MEMBER ADD",
	VerbMemberRemove: "MEMBER REMOVE"}

// Consistency is what a read (CHECK, STATUS) asks of a cluster: how
// current its answer must be. A single server's table is always current.
type Consistency string

// The consistencies a read may ask for (docs/protocol.md, "Cluster").
const (
	// ConsistencyDefault ("" on the wire: not given) reads the leader's
	// view without a quorum check (Consul's default), forwarded from a
	// follower: current except while a deposed leader has not noticed.
	ConsistencyDefault Consistency = "default"
	// ConsistencyStale answers from the server's own replica, saying how
	// far behind it may be; refused past the server's --max-stale.
	ConsistencyStale Consistency = "stale"
	// ConsistencyConsistent is linearizable: the leader confirms with a
	// quorum that it still leads, and the answer waits for that index.
	ConsistencyConsistent Consistency = "consistent"
)

// ParseConsistency reads stale, default or consistent, in any case.
func ParseConsistency(s string) (Consistency, error) {
	switch c := Consistency(strings.ToLower(s)); c {
	case ConsistencyDefault, ConsistencyStale, ConsistencyConsistent:
		return c, nil
	}
	return "", fmt.Errorf("lockd: consistency %q: want stale, default or consistent", s)
}

func (v Verb) String() string {
	if int(v) < len(verbNames) && verbNames[v] != "" {
		return verbNames[v]
	}
	return fmt.Sprintf("Verb(%d)", uint8(v))
}

func parseVerb(s string) (Verb, bool) {
	for v, name := range verbNames {
		if name != "" && strings.EqualFold(s, name) {
			return Verb(v), true
		}
	}
	return 0, false
}

// aliases are the seed's verbs, which are other verbs with fixed options:
// PREEMPT <name> is LOCK <name> WRITE wait=0 (take it if free, else fail
// at once), RELEASE <name> is UNLOCK <name>.
var aliases = map[string]Verb{"PREEMPT": VerbLock, "RELEASE": VerbUnlock}

// Request is one parsed request line. Fields a verb does not use are zero.
type Request struct {
	Verb Verb
	// Name is the resource (LOCK, UNLOCK, RENEW, CANCEL, STATUS; "" for all
	// in STATUS) or the client's own name (HELLO).
	Name    string
	Mode    Mode          // LOCK; zero when not given (the server takes WRITE)
	TTL     time.Duration // LOCK, RENEW, when HasTTL
	HasTTL  bool
	Wait    time.Duration // LOCK, when HasWait: 0 is a try-lock
	HasWait bool
	Token   Token  // UNLOCK, RENEW: 0 when not given (any)
	PID     int    // HELLO
	Secret  string // AUTH
	Limit   int    // STATUS: names per page; 0 when not given
	After   string // STATUS: the page starts after this name
	// Req is the request's id in its session (req=N), for LOCK, UNLOCK,
	// RENEW and CANCEL: ids of one session rise, and a cluster answers a
	// retry of an id it applied with that request's outcome instead of
	// applying it twice. 0: not given (the server numbers it).
	Req uint64
	// Consistency is what CHECK or STATUS asks of a cluster; "" when not
	// given (the default).
	Consistency Consistency
	Session     SessionID // RESUME (with Secret)
	Addr        string    // MEMBER ADD: the new node's raft address (Name is its id)
}

// syntaxErr is a parse error that carries the protocol code to reply with.
type syntaxErr struct {
	code Code
	msg  string
}

func (e *syntaxErr) Error() string { return "lockd: " + string(e.code) + ": " + e.msg }

func (e *syntaxErr) Is(target error) bool {
	for _, ce := range codeErrors {
		if ce.code == e.code {
			return target == ce.err
		}
	}
	return false
}

func errSyntax(format string, args ...any) error {
	return &syntaxErr{code: CodeSyntax, msg: fmt.Sprintf(format, args...)}
}

// ParseRequest parses one request line, with or without its "\n" or "\r\n".
// Verbs, modes and keys are case-insensitive; names are not. Errors match
// ErrSyntax, ErrUnknown or ErrBadName with errors.Is, and their text is
// safe to send back (it quotes what it repeats).
func ParseRequest(line []byte) (Request, error) {
	s := string(line)
	s = strings.TrimSuffix(s, "\n")
	s = strings.TrimSuffix(s, "\r")
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c >= 0x7f {
			return Request{}, errSyntax("byte %q at %d: requests are printable ASCII", c, i)
		}
	}
	var words [8]string
	f := fields(s, words[:0])
	if len(f) == 0 {
		return Request{}, errSyntax("empty request (try HELP)")
	}
	v, ok := parseVerb(f[0])
	alias := ""
	if !ok {
		if v, ok = aliases[strings.ToUpper(f[0])]; ok {
			alias = strings.ToUpper(f[0])
		} else if strings.EqualFold(f[0], "MEMBER") {
			return parseMember(f[1:])
		} else {
			return Request{}, &syntaxErr{code: CodeUnknown, msg: fmt.Sprintf("unknown request %q (try HELP)", clip(f[0]))}
		}
	}
	r := Request{Verb: v}
	args := f[1:]
	if alias != "" && len(args) == 0 {
		return Request{}, errSyntax("usage: %s <name> [req=N]", alias)
	}
	switch v {
	case VerbResume:
		if len(args) != 2 {
			return Request{}, errSyntax("usage: RESUME <session> <secret>")
		}
		n, err := strconv.ParseUint(args[0], 10, 64)
		if err != nil || n == 0 {
			return Request{}, errSyntax("RESUME %q: want a session id", clip(args[0]))
		}
		if len(args[1]) > MaxSecretLen {
			return Request{}, errSyntax("secret longer than %d bytes", MaxSecretLen)
		}
		r.Session, r.Secret = SessionID(n), args[1]
		return r, nil
	case VerbPing, VerbQuit, VerbHelp, VerbDebug, VerbMembers:
		if len(args) > 0 {
			return Request{}, errSyntax("%s takes no arguments", v)
		}
		return r, nil
	case VerbAuth:
		if len(args) != 1 {
			return Request{}, errSyntax("usage: AUTH <secret>")
		}
		if len(args[0]) > MaxSecretLen {
			return Request{}, errSyntax("secret longer than %d bytes", MaxSecretLen)
		}
		r.Secret = args[0]
		return r, nil
	case VerbStatus:
		return parseStatusArgs(r, args)
	}
	if len(args) == 0 || strings.Contains(args[0], "=") {
		return Request{}, errSyntax("%s needs a name first: %s", v, usage(v))
	}
	r.Name, args = args[0], args[1:]
	if alias == "PREEMPT" {
		r.Mode, r.HasWait = Exclusive, true
	}
	if v == VerbHello {
		if err := validClient(r.Name); err != nil {
			return Request{}, &syntaxErr{code: CodeBadName, msg: err.Error()}
		}
	} else if err := ValidName(r.Name); err != nil {
		return Request{}, &syntaxErr{code: CodeBadName, msg: clipErr(err)}
	}
	var seen [6]bool // ttl, wait, token, pid, req, consistency
	for _, a := range args {
		key, val, isKV := strings.Cut(a, "=")
		if !isKV {
			if v != VerbLock || r.Mode != 0 {
				return Request{}, errSyntax("unexpected %q: %s", clip(a), usage(v))
			}
			m, err := ParseMode(a)
			if err != nil {
				return Request{}, errSyntax("mode %q: want READ or WRITE", clip(a))
			}
			r.Mode = m
			continue
		}
		key = strings.ToLower(key)
		if alias != "" && key != "req" && (key != "ttl" || alias != "PREEMPT") && (key != "token" || alias != "RELEASE") {
			return Request{}, errSyntax("%s takes no %s=: PREEMPT <name> [ttl=D] [req=N], RELEASE <name> [token=T] [req=N]", alias, clip(key))
		}
		if i := keyIndex(key); i >= 0 {
			if seen[i] {
				return Request{}, errSyntax("%s= given twice", key)
			}
			seen[i] = true
		}
		var err error
		switch {
		case key == "ttl" && (v == VerbLock || v == VerbRenew):
			r.TTL, err = parseDuration(key, val)
			if err == nil && ValidTTL(r.TTL) != nil {
				err = errSyntax("ttl=%q: want 0 (no lease) or a duration from %v to %v", clip(val), MinTTL, MaxDuration)
			}
			r.HasTTL = true
		case key == "wait" && v == VerbLock:
			r.Wait, err = parseDuration(key, val)
			r.HasWait = true
		case key == "token" && (v == VerbUnlock || v == VerbRenew):
			var n uint64
			n, err = strconv.ParseUint(val, 10, 64)
			if err != nil || n == 0 {
				err = errSyntax("token=%q: want a positive integer", clip(val))
			}
			r.Token = Token(n)
		case key == "pid" && v == VerbHello:
			var n int64
			n, err = strconv.ParseInt(val, 10, 32)
			if err != nil || n < 0 {
				err = errSyntax("pid=%q: want a process id", clip(val))
			}
			r.PID = int(n)
		case key == "req" && takesReq(v):
			r.Req, err = strconv.ParseUint(val, 10, 64)
			if err != nil || r.Req == 0 {
				err = errSyntax("req=%q: want a positive integer, rising in the session", clip(val))
			}
		case key == "consistency" && v == VerbCheck:
			r.Consistency, err = ParseConsistency(val)
			if err != nil {
				err = errSyntax("consistency=%q: want stale, default or consistent", clip(val))
			}
		default:
			return Request{}, errSyntax("%s does not take %s=: %s", v, clip(key), usage(v))
		}
		if err != nil {
			return Request{}, err
		}
	}
	return r, nil
}

// parseStatusArgs parses STATUS [name] [limit=N] [after=NAME]: a name, or
// a page of every name.
func parseStatusArgs(r Request, args []string) (Request, error) {
	const use = "usage: STATUS [name] or STATUS [limit=N] [after=NAME]"
	var seenLimit, seenAfter bool
	for _, a := range args {
		key, val, isKV := strings.Cut(a, "=")
		switch key = strings.ToLower(key); {
		case !isKV:
			if r.Name != "" {
				return Request{}, errSyntax("%s", use)
			}
			if err := ValidName(a); err != nil {
				return Request{}, &syntaxErr{code: CodeBadName, msg: clipErr(err)}
			}
			r.Name = a
		case key == "limit" && !seenLimit:
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 || n > MaxStatusLimit {
				return Request{}, errSyntax("limit=%q: want a number of names from 1 to %d", clip(val), MaxStatusLimit)
			}
			r.Limit, seenLimit = n, true
		case key == "consistency" && r.Consistency == "":
			c, err := ParseConsistency(val)
			if err != nil {
				return Request{}, errSyntax("consistency=%q: want stale, default or consistent", clip(val))
			}
			r.Consistency = c
		case key == "after" && !seenAfter:
			if err := ValidName(val); err != nil {
				return Request{}, &syntaxErr{code: CodeBadName, msg: "after=: " + clipErr(err)}
			}
			r.After, seenAfter = val, true
		default:
			return Request{}, errSyntax("unexpected %q: %s", clip(a), use)
		}
	}
	if r.Name != "" && (seenLimit || seenAfter) {
		return Request{}, errSyntax("STATUS of one name takes no limit= or after=: %s", use)
	}
	return r, nil
}

// fields splits s at spaces and tabs into buf (which it returns), without
// allocating for the usual short request.
func fields(s string, buf []string) []string {
	for {
		for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
			s = s[1:]
		}
		if s == "" {
			return buf
		}
		i := strings.IndexAny(s, " \t")
		if i < 0 {
			return append(buf, s)
		}
		buf = append(buf, s[:i])
		s = s[i:]
	}
}

func keyIndex(key string) int {
	switch key {
	case "ttl":
		return 0
	case "wait":
		return 1
	case "token":
		return 2
	case "pid":
		return 3
	case "req":
		return 4
	case "consistency":
		return 5
	}
	return -1
}

// takesReq reports whether a verb changes the table, and so takes req=.
func takesReq(v Verb) bool {
	switch v {
	case VerbLock, VerbUnlock, VerbRenew, VerbCancel:
		return true
	}
	return false
}

// parseMember parses MEMBER ADD <node> <raft-addr> and MEMBER REMOVE <node>.
func parseMember(args []string) (Request, error) {
	const use = "usage: MEMBER ADD <node> <raft-host:port> or MEMBER REMOVE <node>"
	if len(args) == 0 {
		return Request{}, errSyntax("%s", use)
	}
	var r Request
	switch strings.ToUpper(args[0]) {
	case "ADD":
		if len(args) != 3 {
			return Request{}, errSyntax("%s", use)
		}
		if _, _, err := net.SplitHostPort(args[2]); err != nil || strings.Contains(args[2], "=") {
			return Request{}, errSyntax("MEMBER ADD: raft address %q: want host:port", clip(args[2]))
		}
		r = Request{Verb: VerbMemberAdd, Name: args[1], Addr: args[2]}
	case "REMOVE":
		if len(args) != 2 {
			return Request{}, errSyntax("%s", use)
		}
		r = Request{Verb: VerbMemberRemove, Name: args[1]}
	default:
		return Request{}, errSyntax("%s", use)
	}
	if err := ValidName(r.Name); err != nil {
		return Request{}, &syntaxErr{code: CodeBadName, msg: "node id: " + clipErr(err)}
	}
	return r, nil
}

func parseDuration(key, val string) (time.Duration, error) {
	d, err := time.ParseDuration(val)
	if err != nil || d < 0 || d > MaxDuration {
		return 0, errSyntax("%s=%q: want a duration from 0 to %v, like 500ms or 30s", key, clip(val), MaxDuration)
	}
	return d, nil
}

// ValidTTL checks a lease length as LOCK and RENEW take it: 0 (no lease)
// or from MinTTL to MaxDuration.
func ValidTTL(d time.Duration) error {
	if d == 0 || d >= MinTTL && d <= MaxDuration {
		return nil
	}
	return fmt.Errorf("lockd: ttl %v: want 0 (no lease) or from %v to %v", d, MinTTL, MaxDuration)
}

func validClient(s string) error {
	if len(s) > MaxClientLen {
		return fmt.Errorf("client name longer than %d bytes", MaxClientLen)
	}
	if err := ValidName(s); err != nil {
		return fmt.Errorf("client name: %s", clipErr(err))
	}
	return nil
}

func usage(v Verb) string {
	switch v {
	case VerbHello:
		return "HELLO <client> [pid=N]"
	case VerbLock:
		return "LOCK <name> [READ|WRITE] [ttl=D] [wait=D]"
	case VerbUnlock:
		return "UNLOCK <name> [token=N]"
	case VerbRenew:
		return "RENEW <name> [token=N] [ttl=D]"
	case VerbCancel:
		return "CANCEL <name>"
	case VerbCheck:
		return "CHECK <name> [consistency=stale|default|consistent]"
	}
	return v.String()
}

// clip shortens what an error message repeats from the request.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func clipErr(err error) string { return strings.TrimPrefix(err.Error(), "lockd: ") }

// String formats r as a request line without the newline. For any r that
// ParseRequest returned, ParseRequest(r.String()) returns r again.
func (r Request) String() string { return string(r.AppendTo(nil)) }

// AppendTo appends r's request line, without the newline, to b.
func (r Request) AppendTo(b []byte) []byte {
	b = append(b, r.Verb.String()...)
	switch r.Verb {
	case VerbAuth:
		return append(append(b, ' '), r.Secret...)
	case VerbStatus:
		if r.Name != "" {
			b = append(append(b, ' '), r.Name...)
		}
		if r.Limit != 0 {
			b = strconv.AppendInt(append(b, " limit="...), int64(r.Limit), 10)
		}
		if r.After != "" {
			b = append(append(b, " after="...), r.After...)
		}
		if r.Consistency != "" {
			b = append(append(b, " consistency="...), r.Consistency...)
		}
		return b
	case VerbPing, VerbQuit, VerbHelp, VerbDebug, VerbMembers:
		return b
	case VerbResume:
		b = strconv.AppendUint(append(b, ' '), uint64(r.Session), 10)
		return append(append(b, ' '), r.Secret...)
	case VerbMemberAdd:
		return append(append(append(append(b, ' '), r.Name...), ' '), r.Addr...)
	case VerbMemberRemove:
		return append(append(b, ' '), r.Name...)
	}
	b = append(append(b, ' '), r.Name...)
	if r.Mode != 0 {
		b = append(append(b, ' '), r.Mode.String()...)
	}
	if r.Token != 0 {
		b = strconv.AppendUint(append(b, " token="...), uint64(r.Token), 10)
	}
	if r.HasTTL {
		b = append(append(b, " ttl="...), r.TTL.String()...)
	}
	if r.HasWait {
		b = append(append(b, " wait="...), r.Wait.String()...)
	}
	if r.Verb == VerbHello && r.PID != 0 {
		b = strconv.AppendInt(append(b, " pid="...), int64(r.PID), 10)
	}
	if r.Req != 0 {
		b = strconv.AppendUint(append(b, " req="...), r.Req, 10)
	}
	if r.Consistency != "" {
		b = append(append(b, " consistency="...), r.Consistency...)
	}
	return b
}
