package worker

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"mplock/dmutex"
)

// A mutex process tells its coordinator what it does in lines on its report
// pipe (fd 4), one note per line:
//
//	listening ADDR                   its listener is up
//	delivery WHEN N MEDIAN MEAN MIN  one-message delivery time (ns), from N ping round trips
//	                                 before the start (WHEN=idle) or during the run (WHEN=run)
//	event AT KIND PROC PEER TS WHY OTHER_TS OTHER_ID COUNT
//	                                 an algorithm event (only with Verbose); WHY is a
//	                                 dmutex.Reason ("-" for none), OTHER the request it
//	                                 is about, COUNT a number it reports
//	rejected AT TEXT                 a malformed or unexpected message or connection it refused
//	lost AT TEXT                     a link broke before the run's end
//	done USER_NS SYS_NS              it finished; its CPU time
//
// AT is the shared monotonic clock in ns.

// NoteKind is the type of a note.
type NoteKind uint8

// Note kinds.
const (
	NoteListening NoteKind = iota + 1
	NoteDelivery
	NoteEvent
	NoteRejected
	NoteLost
	NoteDone
)

var noteNames = [...]string{
	NoteListening: "listening", NoteDelivery: "delivery", NoteEvent: "event",
	NoteRejected: "rejected", NoteLost: "lost", NoteDone: "done",
}

func (k NoteKind) String() string {
	if int(k) < len(noteNames) && k > 0 {
		return noteNames[k]
	}
	return fmt.Sprintf("note(%d)", uint8(k))
}

// Delivery is the one-message delivery time a process measured: half the
// round trip of a ping and its pong, over Rounds round trips.
type Delivery struct {
	When   string // "idle": before the start; "run": during the run
	Rounds int
	Median int64 // ns
	Mean   int64 // ns
	Min    int64 // ns
}

// Note is one line of a mutex process's report.
type Note struct {
	Kind     NoteKind
	At       int64 // ns, for events, rejections and lost links
	Addr     string
	Delivery Delivery
	Event    dmutex.Event
	Text     string
	UserNs   int64
	SysNs    int64
}

// ParseNote parses one report line (without its newline).
func ParseNote(line string) (Note, error) {
	kind, rest, _ := strings.Cut(line, " ")
	bad := func() (Note, error) { return Note{}, fmt.Errorf("worker: bad report line %q", line) }
	var n Note
	switch kind {
	case "listening":
		n = Note{Kind: NoteListening, Addr: rest}
		if rest == "" {
			return bad()
		}
	case "delivery":
		f := strings.Fields(rest)
		if len(f) != 5 || f[0] != "idle" && f[0] != "run" {
			return bad()
		}
		v, err := ints(f[1:], 4)
		if err != nil {
			return bad()
		}
		n = Note{Kind: NoteDelivery, Delivery: Delivery{When: f[0], Rounds: int(v[0]), Median: v[1], Mean: v[2], Min: v[3]}}
	case "event":
		f := strings.Fields(rest)
		if len(f) != 9 {
			return bad()
		}
		k, err := dmutex.ParseEventKind(f[1])
		why, err2 := dmutex.ParseReason(f[5])
		v, err3 := ints([]string{f[0], f[2], f[3], f[4], f[6], f[7], f[8]}, 7)
		if err != nil || err2 != nil || err3 != nil {
			return bad()
		}
		n = Note{Kind: NoteEvent, At: v[0], Event: dmutex.Event{Kind: k, Process: int(v[1]), Peer: int(v[2]), TS: uint64(v[3]),
			Why: why, Other: dmutex.Stamp{TS: uint64(v[4]), ID: int(v[5])}, Count: int(v[6])}}
	case "rejected", "lost":
		at, text, _ := strings.Cut(rest, " ")
		v, err := strconv.ParseInt(at, 10, 64)
		if err != nil {
			return bad()
		}
		n = Note{Kind: NoteRejected, At: v, Text: text}
		if kind == "lost" {
			n.Kind = NoteLost
		}
	case "done":
		v, err := ints(strings.Fields(rest), 2)
		if err != nil {
			return bad()
		}
		n = Note{Kind: NoteDone, UserNs: v[0], SysNs: v[1]}
	default:
		return bad()
	}
	return n, nil
}

func ints(f []string, want int) ([]int64, error) {
	if len(f) != want {
		return nil, errors.New("field count")
	}
	out := make([]int64, want)
	for i, s := range f {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// noteWriter writes notes; one goroutine (the process's loop) uses it.
type noteWriter struct{ w *bufio.Writer }

func (nw noteWriter) listening(addr string) {
	fmt.Fprintf(nw.w, "listening %s\n", addr)
	nw.w.Flush()
}

func (nw noteWriter) delivery(when string, d Delivery) {
	fmt.Fprintf(nw.w, "delivery %s %d %d %d %d\n", when, d.Rounds, d.Median, d.Mean, d.Min)
	nw.w.Flush()
}

// event is buffered: a verbose run writes many, and a killed process losing
// its last few is acceptable. The loop flushes the buffer every
// eventFlushEvery, so that the coordinator can show the events as they
// happen.
func (nw noteWriter) event(at int64, e dmutex.Event) {
	fmt.Fprintf(nw.w, "event %d %v %d %d %d %v %d %d %d\n", at, e.Kind, e.Process, e.Peer, e.TS, e.Why, e.Other.TS, e.Other.ID, e.Count)
}

func (nw noteWriter) problem(k NoteKind, at int64, text string) {
	fmt.Fprintf(nw.w, "%v %d %s\n", k, at, oneLine(text))
	nw.w.Flush()
}

func (nw noteWriter) done(userNs, sysNs int64) error {
	fmt.Fprintf(nw.w, "done %d %d\n", userNs, sysNs)
	return nw.w.Flush()
}

// oneLine keeps a text on one printable line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
