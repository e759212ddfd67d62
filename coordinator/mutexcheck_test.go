package coordinator

import (
	"slices"
	"strings"
	"testing"

	"mplock/dmutex"
	"mplock/shm"
)

func TestCheckIntervals(t *testing.T) {
	iv := func(proc int, ts uint64, req, in, out int64) shm.MutexInterval {
		return shm.MutexInterval{Proc: uint32(proc), TS: ts, Requested: req, Entered: in, Exited: out}
	}
	for _, tc := range []struct {
		name       string
		log        []shm.MutexInterval
		violations int64
		inversions int64
		open       int
		sync       []int64
	}{
		{
			name: "handoffs in order",
			// P1 waits from 5 while P0 is inside until 20, enters at 23:
			// a 3 ns handoff. P2 asks only after P1 left: no handoff.
			log:  []shm.MutexInterval{iv(0, 1, 0, 10, 20), iv(1, 2, 5, 23, 30), iv(2, 9, 40, 41, 50)},
			sync: []int64{3},
		},
		{
			name:       "overlap",
			log:        []shm.MutexInterval{iv(0, 1, 0, 10, 20), iv(1, 1, 0, 15, 25), iv(2, 3, 0, 30, 40)},
			violations: 1,
			sync:       []int64{5}, // the overlap itself is no handoff
		},
		{
			name:       "inside an earlier long stay",
			log:        []shm.MutexInterval{iv(0, 1, 0, 10, 100), iv(1, 2, 0, 20, 30), iv(2, 3, 0, 40, 50)},
			violations: 2,
		},
		{
			name:       "out of timestamp order",
			log:        []shm.MutexInterval{iv(1, 7, 0, 10, 20), iv(0, 3, 0, 30, 40), iv(2, 5, 0, 50, 60)},
			inversions: 2,
			sync:       []int64{10, 10},
		},
		{
			name:       "died inside",
			log:        []shm.MutexInterval{iv(0, 1, 0, 10, 0), iv(1, 2, 5, 50, 60)},
			violations: 1, // open until the end: whoever entered after it overlapped
			open:       1,
		},
		{
			name: "log order is not entry order",
			log:  []shm.MutexInterval{iv(1, 2, 5, 23, 30), iv(0, 1, 0, 10, 20)},
			sync: []int64{3},
		},
	} {
		c := checkIntervals(tc.log, 3, 1000)
		if c.violations != tc.violations || c.inversions != tc.inversions || c.open != tc.open {
			t.Errorf("%s: violations %d, inversions %d, open %d; want %d, %d, %d",
				tc.name, c.violations, c.inversions, c.open, tc.violations, tc.inversions, tc.open)
		}
		if !slices.Equal(c.sync, tc.sync) {
			t.Errorf("%s: handoffs %v, want %v", tc.name, c.sync, tc.sync)
		}
		if len(c.waits) != len(tc.log) {
			t.Errorf("%s: %d waits for %d intervals", tc.name, len(c.waits), len(tc.log))
		}
	}
}

func TestSummarize(t *testing.T) {
	ns := make([]int64, 100)
	for i := range ns {
		ns[i] = int64(100 - i) // 100 .. 1, unsorted
	}
	got := summarize(ns)
	want := Durations{Count: 100, Mean: 50, P50: 50, P99: 99, Max: 100}
	if got != want {
		t.Errorf("summarize = %+v, want %+v", got, want)
	}
	if (summarize(nil) != Durations{}) {
		t.Errorf("summarize(nil) is not zero")
	}
}

func TestBlame(t *testing.T) {
	ra, ring, central := dmutex.RicartAgrawala, dmutex.TokenRing, dmutex.Central
	set := func(ids ...int) dmutex.Set {
		var s dmutex.Set
		for _, id := range ids {
			s.Add(id)
		}
		return s
	}
	wanted := func(id int, awaiting ...int) slotView {
		return slotView{id: id, state: dmutex.Wanted, awaiting: set(awaiting...), os: 'S'}
	}
	idle := func(id int) slotView { return slotView{id: id, os: 'S'} }
	for _, tc := range []struct {
		name    string
		a       dmutex.Algorithm
		views   []slotView
		dead    int
		culprit int
		waiters []int
	}{
		{
			name: "ra: dead peer, one waiting through another",
			// P1 (earliest) waits for dead P3; P0 waits for P1's deferred reply.
			a:     ra,
			views: []slotView{wanted(0, 1), wanted(1, 3), idle(2), {id: 3}},
			dead:  3, culprit: 3, waiters: []int{0, 1},
		},
		{
			name:  "ra: stopped peer found from /proc",
			a:     ra,
			views: []slotView{wanted(0, 2), wanted(1, 0, 2), {id: 2, os: 'T'}},
			dead:  -1, culprit: 2, waiters: []int{0, 1},
		},
		{
			name:  "ra: no dead or stopped: the most waited for",
			a:     ra,
			views: []slotView{wanted(0, 2), wanted(1, 2), idle(2)},
			dead:  -1, culprit: 2, waiters: []int{0, 1},
		},
		{
			name: "central: the holder, through the server",
			a:    central,
			views: []slotView{wanted(0, dmutex.ServerID), {id: 1, state: dmutex.Held, os: 'T'}, wanted(2, dmutex.ServerID),
				{id: dmutex.ServerID, awaiting: set(1), os: 'S'}},
			dead: -1, culprit: 1, waiters: []int{0, 2, dmutex.ServerID},
		},
		{
			name:  "central: a dead client that held nothing",
			a:     central,
			views: []slotView{idle(0), {id: 1}, wanted(2, dmutex.ServerID), {id: dmutex.ServerID, awaiting: set(0), os: 'S'}},
			dead:  1, culprit: 1, waiters: nil,
		},
		{
			name:  "token ring: every requester waits for the lost token",
			a:     ring,
			views: []slotView{wanted(0, 3), wanted(1, 0), idle(2), {id: 3}},
			dead:  3, culprit: 3, waiters: []int{0, 1},
		},
		{
			name:  "token ring: stuck at the holder",
			a:     ring,
			views: []slotView{wanted(0, 2), wanted(1, 0), {id: 2, token: true, os: 'T'}},
			dead:  -1, culprit: 2, waiters: []int{0, 1},
		},
	} {
		culprit, waiters := blame(tc.a, tc.views, tc.dead)
		if culprit != tc.culprit || !slices.Equal(waiters, tc.waiters) {
			t.Errorf("%s: blame = %s waited for by %v; want %s waited for by %v",
				tc.name, dmutex.Name(culprit), waiters, dmutex.Name(tc.culprit), tc.waiters)
		}
	}
}

func TestWhy(t *testing.T) {
	server := slotView{id: dmutex.ServerID, awaiting: func() dmutex.Set { var s dmutex.Set; s.Add(1); return s }()}
	for _, tc := range []struct {
		a       dmutex.Algorithm
		culprit int
		want    string
	}{
		{dmutex.RicartAgrawala, 2, "reply from every other process"},
		{dmutex.Central, dmutex.ServerID, "every request goes through the lock server"},
		{dmutex.Central, 1, "the server granted the lock to P1"},
		{dmutex.Central, 2, "P2 held nothing"},
		{dmutex.TokenRing, 2, "the token cannot get past P2"},
	} {
		if got := why(tc.a, tc.culprit, []slotView{server}); !strings.Contains(got, tc.want) {
			t.Errorf("why(%v, %s) = %q, want it to say %q", tc.a, dmutex.Name(tc.culprit), got, tc.want)
		}
	}
}
