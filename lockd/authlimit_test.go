package lockd

import (
	"testing"
	"time"
)

// TestAuthLimiter: a burst at once, then one turn per 1/rate; turns
// queue; a turn that would come after the deadline is refused and taken
// from no one; a right secret's turn is given back.
func TestAuthLimiter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	far := t0.Add(time.Hour)
	l := newAuthLimiter(2, 3, t0) // 2 a second, 3 at once
	for i := range 3 {
		if w, ok := l.take(t0, far); !ok || w != 0 {
			t.Fatalf("turn %d of the burst: wait %v, %v", i, w, ok)
		}
	}
	if w, ok := l.take(t0, far); !ok || w != 500*time.Millisecond {
		t.Fatalf("the first turn past the burst: wait %v, %v; want 500ms", w, ok)
	}
	if w, ok := l.take(t0, far); !ok || w != time.Second {
		t.Fatalf("the next: wait %v, %v; want 1s", w, ok)
	}
	if _, ok := l.take(t0, t0.Add(time.Second)); ok {
		t.Fatal("a turn that comes after its deadline was given")
	}
	if w, ok := l.take(t0, t0.Add(2*time.Second)); !ok || w != 1500*time.Millisecond {
		t.Fatalf("after a refused turn: wait %v, %v; want 1.5s (the refused one took nothing)", w, ok)
	}
	// Three seconds later the queue is served and one turn is free again;
	// a right secret gives its turn back, so any number of them pass.
	t3 := t0.Add(3 * time.Second)
	for i := range 10 {
		if w, ok := l.take(t3, far); !ok || w != 0 {
			t.Fatalf("right secret %d: wait %v, %v", i, w, ok)
		}
		l.giveBack(t3)
	}
	// Given back beyond the burst: still a burst of 3 at most.
	l.giveBack(t3.Add(time.Hour))
	for i := range 4 {
		w, ok := l.take(t3.Add(time.Hour), far.Add(2*time.Hour))
		if want := time.Duration(0); i == 3 {
			want = 500 * time.Millisecond
			if w != want {
				t.Fatalf("turn %d an hour later: wait %v, want %v", i, w, want)
			}
		} else if !ok || w != want {
			t.Fatalf("turn %d an hour later: wait %v, %v", i, w, ok)
		}
	}
}

// TestNilAuthLimiterLimitsNothing: a server whose secrets are strong has
// no limiter; every AUTH is compared at once.
func TestNilAuthLimiterLimitsNothing(t *testing.T) {
	var l *authLimiter
	t0 := time.Unix(1000, 0)
	for i := range 100 {
		if w, ok := l.take(t0, t0); !ok || w != 0 {
			t.Fatalf("AUTH %d: wait %v, %v; want at once", i, w, ok)
		}
		l.giveBack(t0)
	}
}
