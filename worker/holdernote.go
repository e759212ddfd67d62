package worker

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A deadlock holder tells its coordinator what it does in lines on its
// report pipe (fd 3), one note per line:
//
//	ready                                 connected to every lock server it needs
//	got AT LOCK TOKEN WAITED_NS           granted LOCK (fencing token TOKEN) after queueing WAITED_NS
//	waiting AT LOCK POS HOLDER HOLDER_PID queued for LOCK at position POS; HOLDER holds it ("-" 0 if none)
//	gaveup AT LOCK WAITED_NS              a timed acquire of LOCK ran out; it withdrew
//	backoff AT NS                         released everything; waits NS before starting over
//	released AT LOCK                      unlocked LOCK
//	done AT RETRIES                       took and released every lock; started over RETRIES times
//	stopped AT TEXT                       told to stop (TEXT: what it was doing)
//	failed AT TEXT                        an error ended it
//
// AT is the wall clock in Unix nanoseconds, the clock the lock servers use
// for their holders' and waiters' since= times, so that the coordinator can
// put both on one timeline.

// HolderNoteKind is the type of a holder note.
type HolderNoteKind uint8

// Holder note kinds.
const (
	HolderReady HolderNoteKind = iota + 1
	HolderGot
	HolderWaiting
	HolderGaveUp
	HolderBackoff
	HolderReleased
	HolderDone
	HolderStopped
	HolderFailed
)

var holderNoteNames = [...]string{
	HolderReady: "ready", HolderGot: "got", HolderWaiting: "waiting", HolderGaveUp: "gaveup",
	HolderBackoff: "backoff", HolderReleased: "released", HolderDone: "done", HolderStopped: "stopped",
	HolderFailed: "failed",
}

func (k HolderNoteKind) String() string {
	if int(k) < len(holderNoteNames) && k > 0 {
		return holderNoteNames[k]
	}
	return fmt.Sprintf("holdernote(%d)", uint8(k))
}

// HolderNote is one line of a holder's report.
type HolderNote struct {
	Kind      HolderNoteKind
	At        int64 // wall clock, Unix ns
	Lock      string
	Token     uint64
	Waited    time.Duration // got, gaveup
	Position  int           // waiting
	Holder    string        // waiting: who holds the lock ("" if nobody)
	HolderPID int
	Backoff   time.Duration
	Retries   int
	Text      string // stopped, failed
}

// Time is the note's wall-clock time.
func (n HolderNote) Time() time.Time { return time.Unix(0, n.At) }

// String formats the note as its report line, without the newline.
func (n HolderNote) String() string {
	at := strconv.FormatInt(n.At, 10)
	switch n.Kind {
	case HolderReady:
		return "ready"
	case HolderGot:
		return fmt.Sprintf("got %s %s %d %d", at, n.Lock, n.Token, n.Waited)
	case HolderWaiting:
		holder := n.Holder
		if holder == "" {
			holder = "-"
		}
		return fmt.Sprintf("waiting %s %s %d %s %d", at, n.Lock, n.Position, holder, n.HolderPID)
	case HolderGaveUp:
		return fmt.Sprintf("gaveup %s %s %d", at, n.Lock, n.Waited)
	case HolderBackoff:
		return fmt.Sprintf("backoff %s %d", at, n.Backoff)
	case HolderReleased:
		return fmt.Sprintf("released %s %s", at, n.Lock)
	case HolderDone:
		return fmt.Sprintf("done %s %d", at, n.Retries)
	case HolderStopped, HolderFailed:
		return n.Kind.String() + " " + at + " " + oneLine(n.Text)
	}
	return n.Kind.String()
}

// ParseHolderNote parses one report line (without its newline).
func ParseHolderNote(line string) (HolderNote, error) {
	f := strings.Fields(line)
	bad := func() (HolderNote, error) { return HolderNote{}, fmt.Errorf("worker: bad holder note %q", line) }
	if len(f) == 0 {
		return bad()
	}
	var n HolderNote
	for k, name := range holderNoteNames {
		if name != "" && name == f[0] {
			n.Kind = HolderNoteKind(k)
		}
	}
	if n.Kind == 0 {
		return bad()
	}
	if n.Kind == HolderReady {
		if len(f) != 1 {
			return bad()
		}
		return n, nil
	}
	if len(f) < 2 {
		return bad()
	}
	var err error
	if n.At, err = strconv.ParseInt(f[1], 10, 64); err != nil {
		return bad()
	}
	num := func(s string) int64 {
		v, e := strconv.ParseInt(s, 10, 64)
		if e != nil {
			err = e
		}
		return v
	}
	want := map[HolderNoteKind]int{HolderGot: 5, HolderWaiting: 6, HolderGaveUp: 4, HolderBackoff: 3, HolderReleased: 3, HolderDone: 3}
	if w, ok := want[n.Kind]; ok && len(f) != w {
		return bad()
	}
	switch n.Kind {
	case HolderGot:
		n.Lock, n.Token, n.Waited = f[2], uint64(num(f[3])), time.Duration(num(f[4]))
	case HolderWaiting:
		n.Lock, n.Position, n.Holder, n.HolderPID = f[2], int(num(f[3])), f[4], int(num(f[5]))
		if n.Holder == "-" {
			n.Holder = ""
		}
	case HolderGaveUp:
		n.Lock, n.Waited = f[2], time.Duration(num(f[3]))
	case HolderBackoff:
		n.Backoff = time.Duration(num(f[2]))
	case HolderReleased:
		n.Lock = f[2]
	case HolderDone:
		n.Retries = int(num(f[2]))
	case HolderStopped, HolderFailed:
		_, rest, _ := strings.Cut(line, " ")
		_, n.Text, _ = strings.Cut(rest, " ")
	}
	if err != nil {
		return bad()
	}
	return n, nil
}

// holderNotes writes notes from several goroutines, one whole line at a time.
type holderNotes struct {
	mu sync.Mutex
	w  io.Writer
}

func (nw *holderNotes) write(n HolderNote) {
	if n.At == 0 && n.Kind != HolderReady {
		n.At = time.Now().UnixNano()
	}
	nw.mu.Lock()
	defer nw.mu.Unlock()
	// A failed write means the coordinator is gone; the holder learns it
	// from its control pipe's end, so the error is not needed here.
	io.WriteString(nw.w, n.String()+"\n")
}
