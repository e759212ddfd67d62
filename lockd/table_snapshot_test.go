package lockd

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// randomOps drives a table with n random operations from a seeded source:
// opens, closes, locks (shared and exclusive, with and without leases and
// wait bounds), unlocks, renewals, cancels, advances and lease extensions, on
// a few names so that queues form. The clock moves forward by random steps.
// It returns a transcript of every result and event, to compare two tables
// driven alike.
type randomOps struct {
	rng *rand.Rand
	now time.Time
	ids []SessionID
	max SessionID
}

func newRandomOps(seed uint64) *randomOps {
	return &randomOps{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), now: t0}
}

func (r *randomOps) step(tb *Table) string {
	names := []string{"a", "b", "c", "d"}
	name := names[r.rng.IntN(len(names))]
	r.now = r.now.Add(time.Duration(r.rng.IntN(300)) * time.Millisecond)
	pick := func() SessionID {
		if len(r.ids) == 0 {
			return 999
		}
		return r.ids[r.rng.IntN(len(r.ids))]
	}
	switch op := r.rng.IntN(20); {
	case op < 2 || len(r.ids) == 0:
		r.max++
		r.ids = append(r.ids, r.max)
		tb.Open(r.max, SessionInfo{Client: fmt.Sprintf("c%d", r.max), PID: int(r.max), Since: r.now})
		return fmt.Sprintf("open %d", r.max)
	case op < 3:
		i := r.rng.IntN(len(r.ids))
		id := r.ids[i]
		r.ids = append(r.ids[:i], r.ids[i+1:]...)
		return fmt.Sprintf("close %d %v", id, tb.Close(r.now, id))
	case op < 10:
		req := LockRequest{Name: name, Mode: Exclusive}
		if r.rng.IntN(3) == 0 {
			req.Mode = Shared
		}
		switch r.rng.IntN(3) {
		case 0:
			req.TTL = time.Duration(1+r.rng.IntN(3)) * time.Second
		}
		switch r.rng.IntN(3) {
		case 0:
			req.Wait = 0
		case 1:
			req.Wait = time.Duration(1+r.rng.IntN(2)) * time.Second
		default:
			req.Wait = -1
		}
		id := pick()
		res, err := tb.Lock(r.now, id, req)
		return fmt.Sprintf("lock %d %+v: %+v %v", id, req, res, err)
	case op < 14:
		id := pick()
		evs, err := tb.Unlock(r.now, id, name, 0)
		return fmt.Sprintf("unlock %d %s: %v %v", id, name, evs, err)
	case op < 16:
		id := pick()
		g, evs, err := tb.Renew(r.now, id, name, 0, 0)
		return fmt.Sprintf("renew %d %s: %+v %v %v", id, name, g, evs, err)
	case op < 17:
		id := pick()
		evs, err := tb.Cancel(r.now, id, name)
		return fmt.Sprintf("cancel %d %s: %v %v", id, name, evs, err)
	case op < 19:
		return fmt.Sprintf("advance %v", tb.Advance(r.now))
	default:
		return fmt.Sprintf("extend %d", tb.ExtendLeases(r.now))
	}
}

func mustEncode(t *testing.T, tb *Table) []byte {
	t.Helper()
	b, err := EncodeTableSnapshot(tb.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTableSnapshotRoundTrip: a table rebuilt from its snapshot has the same
// snapshot, and from then on behaves exactly as the original: the same
// results, grants, tokens and events for the same operations, deadlines
// included (simultaneous ones in the same order).
func TestTableSnapshotRoundTrip(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		ops := newRandomOps(seed)
		orig := NewTable(TableLimits{MaxLocksPerSession: 3})
		for range 300 {
			ops.step(orig)
		}
		b := mustEncode(t, orig)
		snap, err := DecodeTableSnapshot(b)
		if err != nil {
			t.Fatalf("seed %d: decode: %v", seed, err)
		}
		restored, err := RestoreTable(snap)
		if err != nil {
			t.Fatalf("seed %d: restore: %v", seed, err)
		}
		if b2 := mustEncode(t, restored); !bytes.Equal(b, b2) {
			t.Fatalf("seed %d: snapshot of the restored table differs:\n%s\n%s", seed, b, b2)
		}
		if !reflect.DeepEqual(orig.Status(ops.now, ""), restored.Status(ops.now, "")) {
			t.Fatalf("seed %d: status differs after restore", seed)
		}
		// Drive both alike from here: a second driver in the same state.
		ops2 := *ops
		ops2.ids = append([]SessionID(nil), ops.ids...)
		seed2 := seed * 7919
		ops.rng = rand.New(rand.NewPCG(seed2, seed2))
		ops2.rng = rand.New(rand.NewPCG(seed2, seed2))
		for i := range 300 {
			a, b := ops.step(orig), ops2.step(restored)
			if a != b {
				t.Fatalf("seed %d, step %d after restore:\n original: %s\n restored: %s", seed, i, a, b)
			}
		}
		if !bytes.Equal(mustEncode(t, orig), mustEncode(t, restored)) {
			t.Fatalf("seed %d: snapshots differ at the end", seed)
		}
	}
}

// TestTableSnapshotCanonical: two tables that reach one state by different
// paths (sessions opened in another order, a lock taken and given back)
// give the same bytes.
func TestTableSnapshotCanonical(t *testing.T) {
	a := NewTable(TableLimits{})
	b := NewTable(TableLimits{})
	a.Open(1, SessionInfo{Client: "x", Since: t0})
	a.Open(2, SessionInfo{Client: "y", Since: t0})
	b.Open(2, SessionInfo{Client: "y", Since: t0})
	b.Open(1, SessionInfo{Client: "x", Since: t0})
	// Token 1 goes to "z" in both, so the counters and stats agree.
	mustLock(t, a, t0, 1, LockRequest{Name: "z", TTL: time.Second})
	mustLock(t, b, t0, 1, LockRequest{Name: "z", TTL: time.Second})
	mustLock(t, a, t0, 2, LockRequest{Name: "z", Wait: 3 * time.Second})
	mustLock(t, b, t0, 2, LockRequest{Name: "z", Wait: 3 * time.Second})
	if !bytes.Equal(mustEncode(t, a), mustEncode(t, b)) {
		t.Fatalf("different bytes for one state:\n%s\n%s", mustEncode(t, a), mustEncode(t, b))
	}
	a.Unlock(at(time.Millisecond), 1, "z", 0)
	if bytes.Equal(mustEncode(t, a), mustEncode(t, b)) {
		t.Fatal("same bytes for different states")
	}
}

func TestRestoreTableRefusesBadSnapshots(t *testing.T) {
	base := func() TableSnapshot {
		tb := newTestTable(t, 1, 2)
		mustLock(t, tb, t0, 1, LockRequest{Name: "a", TTL: time.Second})
		mustLock(t, tb, t0, 2, LockRequest{Name: "a", Wait: time.Second})
		return tb.Snapshot()
	}
	if _, err := RestoreTable(base()); err != nil {
		t.Fatalf("the unbroken snapshot: %v", err)
	}
	cases := map[string]func(*TableSnapshot){
		"version":         func(s *TableSnapshot) { s.Version = 99 },
		"session order":   func(s *TableSnapshot) { s.Sessions[0], s.Sessions[1] = s.Sessions[1], s.Sessions[0] },
		"unknown holder":  func(s *TableSnapshot) { s.Locks[0].Holders[0].Session = 7 },
		"unknown waiter":  func(s *TableSnapshot) { s.Locks[0].Queue[0].Session = 7 },
		"token above":     func(s *TableSnapshot) { s.Locks[0].Holders[0].Token = s.LastToken + 1 },
		"lease no expiry": func(s *TableSnapshot) { s.Locks[0].Holders[0].Expires = 0 },
		"bad name":        func(s *TableSnapshot) { s.Locks[0].Name = "../x" },
		"holds and waits": func(s *TableSnapshot) { s.Locks[0].Queue[0].Session = 1 },
		"stats":           func(s *TableSnapshot) { s.Stats.Holders = 5 },
		"two writers": func(s *TableSnapshot) {
			s.Locks[0].Holders = append(s.Locks[0].Holders, HolderSnapshot{Session: 2, Mode: Exclusive, Token: 1})
			s.Locks[0].Queue = nil
		},
		"empty lock": func(s *TableSnapshot) { s.Locks[0].Holders, s.Locks[0].Queue = nil, nil },
	}
	for name, breakIt := range cases {
		s := base()
		breakIt(&s)
		if _, err := RestoreTable(s); !errors.Is(err, ErrBadSnapshot) {
			t.Errorf("%s: got %v, want ErrBadSnapshot", name, err)
		}
	}
	if _, err := DecodeTableSnapshot([]byte(`{"version":1,"surprise":2}`)); !errors.Is(err, ErrBadSnapshot) {
		t.Errorf("unknown field: got %v", err)
	}
}

func TestTableTokenFloorAndSessionLocks(t *testing.T) {
	tb := newTestTable(t, 1, 2)
	if !tb.RaiseLastToken(1000) || tb.RaiseLastToken(10) {
		t.Fatal("RaiseLastToken must raise once and never lower")
	}
	r := mustLock(t, tb, t0, 1, LockRequest{Name: "a"})
	if r.Grant.Token != 1001 {
		t.Fatalf("first token after the floor: %d, want 1001", r.Grant.Token)
	}
	mustLock(t, tb, t0, 2, LockRequest{Name: "a", Mode: Shared, Wait: time.Second})
	held, waiting, ok := tb.SessionLocks(2)
	if !ok || len(held) != 0 || len(waiting) != 1 || waiting[0].Position != 1 || waiting[0].Mode != Shared ||
		!waiting[0].Deadline.Equal(at(time.Second)) {
		t.Fatalf("session 2: held %v waiting %+v ok %v", held, waiting, ok)
	}
	held, _, _ = tb.SessionLocks(1)
	if len(held) != 1 || held[0].Token != 1001 {
		t.Fatalf("session 1 holds %+v", held)
	}
	if o := tb.Owners("a"); len(o) != 1 || o[0].Session != 1 || o[0].Client != "P1" {
		t.Fatalf("owners %+v", o)
	}
	if _, _, ok := tb.SessionLocks(9); ok {
		t.Fatal("unknown session reported")
	}
}
