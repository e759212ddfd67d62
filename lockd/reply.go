package lockd

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Replies. Every request gets exactly one reply, in request order: a line
// starting "OK" or "ERR", which STATUS precedes with data lines. Lines
// starting "* " are events the server sends on its own (a queued lock
// granted, a lease lost, the server closing); they never split a reply.
// The append functions below write the server's side, parseReply reads the
// client's.

func appendOK(b []byte, word string) []byte { return append(append(b, "OK "...), word...) }

func appendErr(b []byte, code Code, text string) []byte {
	b = append(append(append(b, "ERR "...), code...), ' ')
	return append(append(b, text...), '\n')
}

func appendKV(b []byte, key, val string) []byte {
	return append(append(append(append(b, ' '), key...), '='), val...)
}

func appendKU(b []byte, key string, v uint64) []byte {
	return strconv.AppendUint(append(append(append(b, ' '), key...), '='), v, 10)
}

func appendKD(b []byte, key string, d time.Duration) []byte { return appendKV(b, key, d.String()) }

func appendKT(b []byte, key string, t time.Time) []byte {
	return t.UTC().AppendFormat(append(append(append(b, ' '), key...), '='), time.RFC3339Nano)
}

// appendGrantLine: "OK LOCKED name MODE token=N ttl=D" and the like.
func appendGrant(b []byte, g Grant) []byte {
	b = append(append(append(append(b, ' '), g.Name...), ' '), g.Mode.String()...)
	b = appendKU(b, "token", uint64(g.Token))
	return appendKD(b, "ttl", g.TTL)
}

func appendLocked(b []byte, g Grant) []byte {
	return append(appendGrant(appendOK(b, "LOCKED"), g), '\n')
}

func appendQueued(b []byte, name string, m Mode, pos int) []byte {
	b = append(append(append(append(appendOK(b, "QUEUED"), ' '), name...), ' '), m.String()...)
	return append(appendKU(b, "position", uint64(pos)), '\n')
}

func appendEvent(b []byte, ev Event) []byte {
	b = append(append(append(b, "* "...), ev.Kind.String()...), ' ')
	b = append(append(append(b, ev.Name...), ' '), ev.Mode.String()...)
	switch ev.Kind {
	case EventGranted:
		b = appendKU(b, "token", uint64(ev.Token))
		b = appendKD(b, "ttl", ev.TTL)
		b = appendKD(b, "waited", ev.Waited.Round(time.Microsecond))
	case EventLost:
		b = appendKU(b, "token", uint64(ev.Token))
		b = appendKV(b, "reason", string(ev.Reason))
	case EventTimedOut:
		b = appendKD(b, "waited", ev.Waited.Round(time.Microsecond))
	case EventCancelled:
		b = appendKV(b, "reason", string(ev.Reason))
	}
	return append(b, '\n')
}

func appendBye(b []byte, reason string) []byte {
	return append(appendKV(append(b, "* BYE"...), "reason", reason), '\n')
}

func clientOrDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// appendStatus writes STATUS's data lines and its final OK line.
func appendStatus(b []byte, st Status) []byte {
	holders, waiters := 0, 0
	for _, l := range st.Locks {
		for _, h := range l.Holders {
			b = appendHolder(b, l.Name, h)
			holders++
		}
		for _, w := range l.Waiters {
			b = appendWaiter(b, l.Name, w)
			waiters++
		}
	}
	for _, s := range st.Sessions {
		b = strconv.AppendUint(append(b, "SESSION "...), uint64(s.ID), 10)
		b = appendKV(b, "client", clientOrDash(s.Client))
		b = appendKU(b, "pid", uint64(s.PID))
		b = appendKV(b, "addr", s.Addr)
		b = appendKT(b, "since", s.Since)
		b = appendKU(b, "held", uint64(s.Held))
		b = appendKU(b, "waiting", uint64(s.Waiting))
		b = append(b, '\n')
	}
	b = appendKT(appendOK(b, "STATUS"), "now", st.Now)
	b = appendKU(b, "locks", uint64(len(st.Locks)))
	b = appendKU(b, "holders", uint64(holders))
	b = appendKU(b, "waiters", uint64(waiters))
	b = appendKU(b, "sessions", uint64(len(st.Sessions)))
	if st.Next != "" {
		b = appendKV(b, "next", st.Next)
	}
	return append(b, '\n')
}

// replyKind is what a line from the server is.
type replyKind uint8

const (
	replyOK    replyKind = iota + 1 // "OK WORD ..."
	replyErr                        // "ERR code text"
	replyEvent                      // "* WORD ..."
	replyData                       // "HOLDER ...", "WAITER ...", "SESSION ..." (STATUS)
)

// reply is a parsed server line: the first word after OK or *, the code of
// an ERR, or the data line's kind; then positional args and key=value
// pairs. The fields are substrings of the line, kept in fixed arrays so
// that parsing a reply allocates nothing.
type reply struct {
	kind  replyKind
	word  string
	text  string // ERR: the message
	nargs int
	nkv   int
	args  [4]string
	kv    [24]string // key, value, key, value...
}

func parseReply(line string) reply {
	line = strings.TrimRight(line, "\r\n")
	var r reply
	switch {
	case strings.HasPrefix(line, "OK "), line == "OK":
		r.kind, line = replyOK, line[2:]
	case strings.HasPrefix(line, "ERR "):
		code, text, _ := strings.Cut(line[4:], " ")
		r.kind, r.word, r.text = replyErr, code, text
		return r
	case strings.HasPrefix(line, "* "):
		r.kind, line = replyEvent, line[2:]
	default:
		r.kind = replyData
	}
	first := true
	for len(line) > 0 {
		line = strings.TrimLeft(line, " \t")
		i := strings.IndexAny(line, " \t")
		if i < 0 {
			i = len(line)
		}
		f := line[:i]
		line = line[i:]
		switch {
		case f == "":
		case first:
			r.word, first = f, false
		case strings.IndexByte(f, '=') >= 0:
			if r.nkv+2 <= len(r.kv) {
				k, v, _ := strings.Cut(f, "=")
				r.kv[r.nkv], r.kv[r.nkv+1] = k, v
				r.nkv += 2
			}
		default:
			if r.nargs < len(r.args) {
				r.args[r.nargs] = f
				r.nargs++
			}
		}
	}
	return r
}

func (r *reply) arg(i int) string {
	if i < r.nargs {
		return r.args[i]
	}
	return ""
}

func (r *reply) get(key string) string {
	for i := 0; i+1 < r.nkv; i += 2 {
		if r.kv[i] == key {
			return r.kv[i+1]
		}
	}
	return ""
}

func (r *reply) uint(key string) uint64 {
	n, _ := strconv.ParseUint(r.get(key), 10, 64)
	return n
}

func (r *reply) dur(key string) time.Duration {
	d, _ := time.ParseDuration(r.get(key))
	return d
}

func (r *reply) time(key string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, r.get(key))
	return t
}

func (r *reply) mode() Mode {
	m, _ := ParseMode(r.arg(1))
	return m
}

func (r *reply) err() error {
	if r.kind == replyErr {
		return &ServerError{Code: Code(r.word), Text: r.text}
	}
	return nil
}

func (r *reply) String() string {
	return fmt.Sprintf("%v %s %v %v %s", r.kind, r.word, r.args[:r.nargs], r.kv[:r.nkv], r.text)
}

// parseStatus reads STATUS's data lines and final line.
func parseStatus(data []string, final reply) (Status, error) {
	st := Status{Now: final.time("now"), Next: final.get("next")}
	byName := map[string]int{}
	lock := func(name string) *LockStatus {
		i, ok := byName[name]
		if !ok {
			i = len(st.Locks)
			byName[name] = i
			st.Locks = append(st.Locks, LockStatus{Name: name})
		}
		return &st.Locks[i]
	}
	for _, line := range data {
		r := parseReply(line)
		switch r.word {
		case "HOLDER":
			l := lock(r.arg(0))
			l.Holders = append(l.Holders, HolderStatus{Session: SessionID(r.uint("session")), Client: dashless(r.get("client")),
				PID: int(r.uint("pid")), Mode: r.mode(), Token: Token(r.uint("token")), Since: r.time("since"),
				TTL: r.dur("ttl"), Expires: r.time("expires")})
		case "WAITER":
			l := lock(r.arg(0))
			l.Waiters = append(l.Waiters, WaiterStatus{Session: SessionID(r.uint("session")), Client: dashless(r.get("client")),
				PID: int(r.uint("pid")), Mode: r.mode(), Position: int(r.uint("position")), Since: r.time("since"),
				Deadline: r.time("deadline")})
		case "SESSION":
			id, _ := strconv.ParseUint(r.arg(0), 10, 64)
			st.Sessions = append(st.Sessions, SessionStatus{ID: SessionID(id), Client: dashless(r.get("client")),
				PID: int(r.uint("pid")), Addr: r.get("addr"), Since: r.time("since"),
				Held: int(r.uint("held")), Waiting: int(r.uint("waiting"))})
		default:
			return Status{}, fmt.Errorf("%w: status line %q", ErrProtocol, line)
		}
	}
	return st, nil
}

func dashless(s string) string {
	if s == "-" {
		return ""
	}
	return s
}
