package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"
)

// statusLine draws one line of progress on a terminal's stderr, redrawn in
// place at most ten times a second, and nothing when stderr is not a
// terminal, so that piped and scripted runs stay clean.
type statusLine struct {
	w     io.Writer
	on    bool
	drawn bool
	last  time.Time
}

func newStatusLine(w io.Writer) *statusLine {
	f, ok := w.(*os.File)
	return &statusLine{w: w, on: ok && term.IsTerminal(int(f.Fd()))}
}

// draw replaces the line with text(), unless the last draw was less than
// 100ms ago and force is false. text is only called when the line is drawn.
func (s *statusLine) draw(force bool, text func() string) {
	if !s.on {
		return
	}
	now := time.Now()
	if !force && now.Sub(s.last) < 100*time.Millisecond {
		return
	}
	s.last = now
	fmt.Fprintf(s.w, "\r\033[K%s", text())
	s.drawn = true
}

// clear erases the line, so that what follows starts at the left margin.
func (s *statusLine) clear() {
	if s.drawn {
		fmt.Fprint(s.w, "\r\033[K")
		s.drawn = false
	}
}
