package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"mplock/dmutex"
	"mplock/dmutex/explore"
)

// ExploreText writes what an exhaustive exploration found: how much it
// searched, the verdict, and on a failure the shortest counterexample as a
// message-sequence chart.
func ExploreText(w io.Writer, res *explore.Result) error {
	c := res.Config
	links := "FIFO links (as sockets keep order)"
	if c.Unordered {
		links = "unordered links (a later message may overtake an earlier one)"
	}
	fmt.Fprintf(w, "mplock mutex --explore: %s, %d processes, %d %s each, %s\n\n", c.Algorithm.Title(), c.N, c.Entries, plural(c.Entries, "entry", "entries"), links)
	fmt.Fprintf(w, "Searched %s states and %s transitions in %s (%s states/s), depth first; the longest path was %s steps.\n",
		count(int64(res.States)), count(int64(res.Transitions)), dur(res.Search), count(int64(res.StatesPerSecond())), count(int64(res.MaxDepth)))
	switch f := res.Failure; {
	case res.Proved():
		fmt.Fprintf(w, "Result: PROVED for this size. In every order of requests, exits and message deliveries, never two processes\n")
		fmt.Fprintf(w, "were inside at once, nothing ever deadlocked, and from every state every request could still be served\n")
		fmt.Fprintf(w, "(%s states in which every process had made its %d %s).\n", count(int64(res.Final)), c.Entries, plural(c.Entries, "entry", "entries"))
	case f == nil:
		fmt.Fprintf(w, "Result: NOT PROVED: the search %s. The states it reached had no failure,\n", res.Stopped)
		fmt.Fprintf(w, "but the rest were never looked at: raise --max-states, or explore fewer processes or entries.\n")
	default:
		fmt.Fprintf(w, "Result: FAILED: %s: %s.\n\n", f.Kind, f.What)
		fmt.Fprintf(w, "The shortest counterexample, %d steps (found breadth first among %s states in %s):\n\n", len(f.Trace), count(int64(res.ShortestStates)), dur(res.Elapsed-res.Search))
		MSCText(w, c.Algorithm, c.N, f)
	}
	return nil
}

// mscLane is the width of one process's column in a text chart.
const mscLane = 20

// MSCText draws a counterexample as a message-sequence chart in text: a
// column per process, a row per step; a message is an arrow from its
// sender's column to its receiver's in the step that delivers it, and a
// process's column is drawn with '#' while it is in the critical section.
// What the processes said they did is on the right.
func MSCText(w io.Writer, a dmutex.Algorithm, n int, f *explore.Failure) {
	ids := laneIDs(a, n)
	col := func(id int) int {
		for k, x := range ids {
			if x == id {
				return 6 + k*mscLane
			}
		}
		return 6
	}
	width := 6 + len(ids)*mscLane
	head := []rune(strings.Repeat(" ", width))
	copy(head, []rune("step"))
	for _, id := range ids {
		copy(head[col(id):], []rune(dmutex.Name(id)))
	}
	fmt.Fprintln(w, strings.TrimRight(string(head), " "))
	inside := map[int]bool{}
	for i, st := range f.Trace {
		row := []rune(strings.Repeat(" ", width))
		copy(row, []rune(fmt.Sprintf("%4d", i+1)))
		now := map[int]bool{}
		for _, p := range st.Inside {
			now[p] = true
		}
		for _, id := range ids {
			mark := '|'
			if now[id] || inside[id] {
				mark = '#'
			}
			row[col(id)] = mark
		}
		label := func(at int, text string) {
			t := []rune(text)
			if len(t) > mscLane-3 {
				t = t[:mscLane-3]
			}
			copy(row[at+2:], t)
		}
		switch st.Kind {
		case explore.StepRequest:
			label(col(st.Proc), fmt.Sprintf("* request ts %d", requestTS(st)))
		case explore.StepRelease:
			label(col(st.Proc), "* release")
		case explore.StepDeliver:
			arrow(row, col(st.Msg.From), col(st.Msg.To), msgLabel(a, st.Msg))
		}
		var said []string
		for _, e := range st.Events {
			if e.Kind == dmutex.Requested || e.Kind == dmutex.Exited {
				continue
			}
			said = append(said, e.String())
		}
		if st.Err != nil {
			said = append(said, "REFUSED: "+st.Err.Error())
		}
		line := strings.TrimRight(string(row), " ")
		if len(said) > 0 {
			line = fmt.Sprintf("%-*s  %s", width, line, strings.Join(said, "; "))
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
		inside = now
	}
	fmt.Fprintf(w, "\n%s: %s.\n", strings.ToUpper(f.Kind.String()[:1])+f.Kind.String()[1:], f.What)
}

// laneIDs are the chart's columns: the peers, then the server.
func laneIDs(a dmutex.Algorithm, n int) []int {
	var ids []int
	for i := range n {
		ids = append(ids, i)
	}
	if a.HasServer() {
		ids = append(ids, dmutex.ServerID)
	}
	return ids
}

// arrow draws a message from column from to column to, labelled.
func arrow(row []rune, from, to int, text string) {
	a, b := min(from, to), max(from, to)
	for x := a + 1; x < b; x++ {
		row[x] = '-'
	}
	if to > from {
		row[b-1] = '>'
	} else {
		row[a+1] = '<'
	}
	t := []rune(" " + text + " ")
	if span := b - a - 3; len(t) > span {
		t = t[:max(span, 0)]
	}
	copy(row[a+(b-a-len(t))/2+1:], t)
}

// msgLabel names a message in a chart: its kind and, where the algorithm
// decides on it, its number.
func msgLabel(a dmutex.Algorithm, m dmutex.Message) string {
	s := m.Kind.String()
	if a.Clocked() || a == dmutex.SuzukiKasami && m.Kind == dmutex.Request {
		s += fmt.Sprintf(" %d", m.TS)
	}
	if t := m.Carried; t != nil {
		s += fmt.Sprintf(" q%v", t.Queue)
	}
	return s
}

func requestTS(st explore.Step) uint64 {
	for _, e := range st.Events {
		if e.Kind == dmutex.Requested {
			return e.TS
		}
	}
	return 0
}

func enteredProc(st explore.Step) int {
	for _, e := range st.Events {
		if e.Kind == dmutex.Entered {
			return e.Process
		}
	}
	return -1
}

// ExploreDoc is the JSON document of `mplock mutex --explore --json`.
type ExploreDoc struct {
	Algorithm       string      `json:"algorithm"`
	Procs           int         `json:"procs"`
	Entries         int         `json:"entries"`
	Links           string      `json:"links"` // "fifo" or "unordered"
	MaxStates       int         `json:"max_states"`
	States          int         `json:"states"`
	Transitions     int         `json:"transitions"`
	FinalStates     int         `json:"final_states"`
	MaxDepth        int         `json:"max_depth"`
	ElapsedNs       int64       `json:"elapsed_ns"` // the whole exploration
	SearchNs        int64       `json:"search_ns"`  // the depth-first search alone
	StatesPerSecond float64     `json:"states_per_second"`
	Complete        bool        `json:"complete"` // every state searched, or a failure found
	Stopped         string      `json:"stopped"`  // why not complete; "" when complete
	Proved          bool        `json:"proved"`   // complete and no failure
	Failure         *FailureExp `json:"failure"`  // null when none was found
}

// FailureExp is a counterexample in ExploreDoc.
type FailureExp struct {
	Kind    string    `json:"kind"`
	What    string    `json:"what"`
	Waiting []string  `json:"waiting"`
	Trace   []StepDoc `json:"trace"`
}

// StepDoc is one step of a counterexample.
type StepDoc struct {
	Step    int      `json:"step"`
	Kind    string   `json:"kind"` // request, release, deliver
	Process string   `json:"process"`
	Message string   `json:"message,omitempty"` // the delivered message, on the wire
	From    string   `json:"from,omitempty"`
	SentAt  int      `json:"sent_at,omitempty"` // the step that sent it; 0 before the first
	Sent    []string `json:"sent"`
	Events  []string `json:"events"`
	Inside  []string `json:"inside"`
	Refused string   `json:"refused,omitempty"`
}

// ExploreJSON writes the exploration as one JSON document.
func ExploreJSON(w io.Writer, res *explore.Result) error {
	c := res.Config
	doc := ExploreDoc{Algorithm: c.Algorithm.String(), Procs: c.N, Entries: c.Entries, Links: "fifo", MaxStates: c.MaxStates,
		States: res.States, Transitions: res.Transitions, FinalStates: res.Final, MaxDepth: res.MaxDepth,
		ElapsedNs: int64(res.Elapsed), SearchNs: int64(res.Search), StatesPerSecond: res.StatesPerSecond(), Complete: res.Complete, Stopped: res.Stopped, Proved: res.Proved()}
	if c.Unordered {
		doc.Links = "unordered"
	}
	if f := res.Failure; f != nil {
		fd := &FailureExp{Kind: f.Kind.String(), What: f.What, Waiting: []string{}}
		for _, p := range f.Waiting {
			fd.Waiting = append(fd.Waiting, dmutex.Name(p))
		}
		for i, st := range f.Trace {
			sd := StepDoc{Step: i + 1, Kind: st.Kind.String(), Process: dmutex.Name(st.Proc), Sent: []string{}, Events: []string{}, Inside: []string{}}
			if st.Kind == explore.StepDeliver {
				sd.Message = strings.TrimSuffix(string(dmutex.AppendMessage(nil, st.Msg)), "\n")
				sd.From, sd.SentAt = dmutex.Name(st.Msg.From), st.SentAt+1
			}
			for _, m := range st.Sent {
				sd.Sent = append(sd.Sent, fmt.Sprintf("%s to %s", strings.TrimSuffix(string(dmutex.AppendMessage(nil, m)), "\n"), dmutex.Name(m.To)))
			}
			for _, e := range st.Events {
				sd.Events = append(sd.Events, e.String())
			}
			for _, p := range st.Inside {
				sd.Inside = append(sd.Inside, dmutex.Name(p))
			}
			if st.Err != nil {
				sd.Refused = st.Err.Error()
			}
			fd.Trace = append(fd.Trace, sd)
		}
		doc.Failure = fd
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}
