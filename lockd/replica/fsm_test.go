package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"mplock/lockd"
)

// stamp0 is the first entry's stamp in the FSM tests: 2025-01-01 UTC.
var stamp0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()

// entry is one log entry for the FSM tests.
type entry struct {
	index uint64
	cmd   Command
	data  []byte
}

// logGen makes a random but valid log: sessions opened and closed, locks
// of every kind on a few names, unlocks, renewals, cancels, advances, lease
// extensions, expiries and node records, stamps that mostly rise but
// sometimes run back (a new leader's clock behind the old one's). With
// noise, it also retries earlier requests, uses request ids out of order,
// names unknown sessions, resumes with wrong secrets and re-opens with a
// used secret.
type logGen struct {
	rng      *rand.Rand
	noise    bool
	index    uint64
	stamp    int64
	open     []lockd.SessionID
	secrets  map[lockd.SessionID]string
	requests map[lockd.SessionID]uint64
	past     []Command // session commands sent, for retries
}

func newLogGen(seed uint64, noise bool) *logGen {
	return &logGen{rng: rand.New(rand.NewPCG(seed, seed+1)), noise: noise, stamp: stamp0,
		secrets: map[lockd.SessionID]string{}, requests: map[lockd.SessionID]uint64{}}
}

func (g *logGen) session() lockd.SessionID {
	if len(g.open) == 0 || g.noise && g.rng.IntN(30) == 0 {
		return 424242
	}
	return g.open[g.rng.IntN(len(g.open))]
}

func (g *logGen) request(id lockd.SessionID) uint64 {
	g.requests[id] += 1 + uint64(g.rng.IntN(2)) // gaps are allowed
	return g.requests[id]
}

func (g *logGen) next() entry {
	g.index++
	if g.rng.IntN(10) == 0 {
		g.stamp -= int64(g.rng.IntN(500)) * int64(time.Millisecond)
	} else {
		g.stamp += int64(g.rng.IntN(400)) * int64(time.Millisecond)
	}
	names := []string{"a", "b", "c"}
	name := names[g.rng.IntN(len(names))]
	var c Command
	switch op := g.rng.IntN(25); {
	case op < 2 || len(g.open) == 0:
		secret := fmt.Sprintf("secret-%d", g.index)
		if g.noise && len(g.open) > 0 && g.rng.IntN(4) == 0 {
			secret = g.secrets[g.open[0]] // a retried open
		}
		c = OpenSession(secret, time.Duration(1+g.rng.IntN(10))*time.Second, fmt.Sprintf("c%d", g.index), int(g.index), "127.0.0.1:1", "n1")
		if _, used := findSecret(g.secrets, secret); !used {
			id := lockd.SessionID(g.index)
			g.open = append(g.open, id)
			g.secrets[id] = secret
		}
	case op < 4:
		i := g.rng.IntN(len(g.open))
		id := g.open[i]
		g.open = append(g.open[:i], g.open[i+1:]...)
		if g.rng.IntN(2) == 0 {
			c = CloseSession(id, g.request(id))
		} else {
			c = Command{Op: OpExpireSession, Session: id}
		}
	case op < 5:
		id := g.session()
		secret := g.secrets[id]
		if g.noise && g.rng.IntN(3) == 0 {
			secret = "wrong"
		}
		c = ResumeSession(id, secret, "n2")
	case op < 12:
		r := lockd.LockRequest{Name: name, Mode: lockd.Exclusive}
		if g.rng.IntN(3) == 0 {
			r.Mode = lockd.Shared
		}
		if g.rng.IntN(3) == 0 {
			r.TTL = time.Duration(1+g.rng.IntN(3)) * time.Second
		}
		switch g.rng.IntN(5) {
		case 0, 1:
			r.Wait = 0
		case 2, 3:
			r.Wait = time.Duration(1+g.rng.IntN(2)) * time.Second
		default:
			r.Wait = -1
		}
		id := g.session()
		c = Lock(id, g.request(id), r)
	case op < 16:
		id := g.session()
		c = Unlock(id, g.request(id), name, 0)
	case op < 18:
		id := g.session()
		c = Renew(id, g.request(id), name, 0, 0)
	case op < 19:
		id := g.session()
		c = Cancel(id, g.request(id), name)
	case op < 22:
		c = Command{Op: OpAdvance}
	case op < 23:
		c = Command{Op: OpExtendLeases}
	case op < 24:
		c = NodeInfoCommand(fmt.Sprintf("n%d", 1+g.rng.IntN(3)), fmt.Sprintf("127.0.0.1:%d", 5000+g.index), "127.0.0.1:7000")
	default:
		if g.noise && len(g.past) > 0 {
			c = g.past[g.rng.IntN(len(g.past))] // a retry, or an old request id
		} else {
			c = Command{Op: OpAdvance}
		}
	}
	if c.Op.sessionOp() {
		g.past = append(g.past, c)
	}
	c.Stamp = g.stamp
	data, err := c.encode()
	if err != nil {
		panic(err)
	}
	return entry{index: g.index, cmd: c, data: data}
}

func findSecret(m map[lockd.SessionID]string, secret string) (lockd.SessionID, bool) {
	for id, s := range m {
		if s == secret {
			return id, true
		}
	}
	return 0, false
}

func mustSnapshot(t *testing.T, f *FSM) []byte {
	t.Helper()
	b, err := f.SnapshotBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFSMReplicasAgree: one random log applied to three FSMs gives
// byte-identical snapshots and equal results, entry by entry; a fourth FSM
// restored from a snapshot taken half-way and fed the rest of the log ends
// byte-identical too (the snapshot/restore round trip).
func TestFSMReplicasAgree(t *testing.T) {
	for seed := uint64(1); seed <= 10; seed++ {
		g := newLogGen(seed, true)
		fsms := []*FSM{NewFSM(lockd.TableLimits{MaxLocksPerSession: 3}, nil), NewFSM(lockd.TableLimits{MaxLocksPerSession: 3}, nil),
			NewFSM(lockd.TableLimits{MaxLocksPerSession: 3}, nil)}
		var late *FSM
		const n = 2000
		for i := range n {
			e := g.next()
			var first *Result
			for j, f := range fsms {
				r := f.applyEntry(e.index, e.data)
				if j == 0 {
					first = r
				} else if !reflect.DeepEqual(first, r) {
					t.Fatalf("seed %d entry %d (%s): replicas disagree:\n%+v\n%+v", seed, e.index, e.cmd.Op, first, r)
				}
			}
			if late != nil {
				if r := late.applyEntry(e.index, e.data); !reflect.DeepEqual(first, r) {
					t.Fatalf("seed %d entry %d (%s): the restored replica disagrees:\n%+v\n%+v", seed, e.index, e.cmd.Op, first, r)
				}
			}
			if i == n/2 {
				late = NewFSM(lockd.TableLimits{MaxLocksPerSession: 3}, nil)
				if err := late.restoreBytes(mustSnapshot(t, fsms[0])); err != nil {
					t.Fatalf("seed %d: restore: %v", seed, err)
				}
				if !bytes.Equal(mustSnapshot(t, late), mustSnapshot(t, fsms[0])) {
					t.Fatalf("seed %d: restored snapshot differs", seed)
				}
			}
		}
		want := mustSnapshot(t, fsms[0])
		for j, f := range append(fsms[1:], late) {
			if got := mustSnapshot(t, f); !bytes.Equal(want, got) {
				t.Fatalf("seed %d: replica %d's snapshot differs (%d vs %d bytes)", seed, j+1, len(want), len(got))
			}
		}
		if st := fsms[0].table.Stats(); st.Grants[lockd.Exclusive]+st.Grants[lockd.Shared] < 50 || st.Expired == 0 || st.TimedOut == 0 {
			t.Fatalf("seed %d: the log made few grants, expiries or timeouts (%+v); the test would prove little", seed, st)
		}
	}
}

// TestFSMMatchesTable: the FSM does to its table exactly what the
// single-node server does to a plain lockd.Table given the same requests
// at the same times: the same grants, tokens, positions, refusals and
// events. (The reference applies the FSM's two documented rules itself:
// time never runs back, and the first token follows the first stamp.)
func TestFSMMatchesTable(t *testing.T) {
	for seed := uint64(1); seed <= 10; seed++ {
		g := newLogGen(seed, false)
		f := NewFSM(lockd.TableLimits{MaxLocksPerSession: 3}, nil)
		ref := lockd.NewTable(lockd.TableLimits{MaxLocksPerSession: 3})
		var last int64
		grants := 0
		for range 2000 {
			e := g.next()
			got := f.applyEntry(e.index, e.data)
			last = max(last, e.cmd.Stamp)
			now := time.Unix(0, last).UTC()
			if ref.LastToken() == 0 {
				ref.RaiseLastToken(lockd.Token(last / 1000))
			}
			want := &Result{Index: e.index, Time: now, Op: e.cmd.Op, Session: e.cmd.Session, Request: e.cmd.Request}
			c := e.cmd
			var err error
			switch c.Op {
			case OpOpenSession:
				ref.Open(lockd.SessionID(e.index), lockd.SessionInfo{Client: c.Client, PID: c.PID, Addr: c.Addr, Since: now})
				want.Session = lockd.SessionID(e.index)
			case OpCloseSession, OpExpireSession:
				want.Events = ref.Close(now, c.Session)
			case OpLock:
				want.Lock, err = ref.Lock(now, c.Session, lockd.LockRequest{Name: c.Name, Mode: c.Mode, TTL: c.LockTTL, Wait: c.Wait})
				if want.Lock.Granted {
					grants++
				}
			case OpUnlock:
				g, _ := ref.Holding(c.Session, c.Name)
				if want.Events, err = ref.Unlock(now, c.Session, c.Name, c.Token); err == nil {
					want.Grant = g
				}
			case OpRenew:
				want.Grant, want.Events, err = ref.Renew(now, c.Session, c.Name, c.Token, c.LockTTL)
			case OpCancel:
				want.Events, err = ref.Cancel(now, c.Session, c.Name)
			case OpAdvance:
				want.Events = ref.Advance(now)
			case OpExtendLeases:
				want.Extended = ref.ExtendLeases(now)
			}
			// Compare what the server would send: errors by text (a
			// refused try-lock names its holders, as a single server's
			// reply does: by code), states aside (the table has no
			// sessions' metadata).
			locked := errors.Is(err, lockd.ErrLocked) && errors.Is(got.Err, lockd.ErrLocked)
			if (err == nil) != (got.Err == nil) || err != nil && err.Error() != got.Err.Error() && !locked {
				t.Fatalf("seed %d entry %d %s: error %v, the table's %v", seed, e.index, c.Op, got.Err, err)
			}
			got2 := *got
			got2.Err, got2.State = nil, nil
			if !reflect.DeepEqual(&got2, want) {
				t.Fatalf("seed %d entry %d %s:\n fsm   %+v\n table %+v", seed, e.index, c.Op, &got2, want)
			}
		}
		t.Logf("seed %d: %d grants", seed, grants)
		if grants < 50 {
			t.Fatalf("seed %d: only %d grants; the test would prove little", seed, grants)
		}
		st := f.table.Snapshot()
		if b1, b2 := mustEncodeTable(t, st), mustEncodeTable(t, ref.Snapshot()); !bytes.Equal(b1, b2) {
			t.Fatalf("seed %d: tables differ at the end", seed)
		}
	}
}

func mustEncodeTable(t *testing.T, s lockd.TableSnapshot) []byte {
	t.Helper()
	b, err := lockd.EncodeTableSnapshot(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// apply is a test helper: encode c with stamp and apply it as entry index.
func apply(t *testing.T, f *FSM, index uint64, stamp int64, c Command) *Result {
	t.Helper()
	c.Stamp = stamp
	data, err := c.encode()
	if err != nil {
		t.Fatal(err)
	}
	return f.applyEntry(index, data)
}

// TestFSMDeduplicatesRetries: a retried LOCK returns the first grant and
// grants nothing more; a retried UNLOCK does not release a later grant; a
// retried open returns the same session; an old request id whose result is
// gone is refused.
func TestFSMDeduplicatesRetries(t *testing.T) {
	f := NewFSM(lockd.TableLimits{}, nil)
	ms := int64(time.Millisecond)
	open := apply(t, f, 1, stamp0, OpenSession("s1", 0, "a", 1, "", "n1"))
	a := open.Session
	if a != 1 || open.State == nil || open.State.TTL != DefaultSessionTTL {
		t.Fatalf("open: %+v", open)
	}
	if again := apply(t, f, 2, stamp0, OpenSession("s1", 0, "a", 1, "", "n2")); again.Session != a || !again.Duplicate {
		t.Fatalf("retried open: %+v", again)
	}
	b := apply(t, f, 3, stamp0, OpenSession("s2", 0, "b", 2, "", "n1")).Session

	first := apply(t, f, 4, stamp0+ms, Lock(a, 1, lockd.LockRequest{Name: "x", Wait: -1}))
	if !first.Lock.Granted || first.Err != nil {
		t.Fatalf("first lock: %+v", first)
	}
	retry := apply(t, f, 5, stamp0+2*ms, Lock(a, 1, lockd.LockRequest{Name: "x", Wait: -1}))
	if !retry.Duplicate || !reflect.DeepEqual(retry.Lock, first.Lock) || retry.Err != nil || len(retry.Events) != 0 {
		t.Fatalf("retried lock: %+v, first %+v", retry, first)
	}
	queued := apply(t, f, 6, stamp0+3*ms, Lock(b, 1, lockd.LockRequest{Name: "x", Wait: -1}))
	if queued.Lock.Position != 1 {
		t.Fatalf("b's lock: %+v", queued)
	}
	un := apply(t, f, 7, stamp0+4*ms, Unlock(a, 2, "x", 0))
	if un.Err != nil || un.Grant.Token != first.Lock.Grant.Token || len(un.Events) != 1 || un.Events[0].Session != b {
		t.Fatalf("unlock: %+v", un)
	}
	// a takes x again (queued behind b), then retries its old UNLOCK: it
	// must not release anything.
	apply(t, f, 8, stamp0+5*ms, Lock(a, 3, lockd.LockRequest{Name: "x", Wait: -1}))
	re := apply(t, f, 9, stamp0+6*ms, Unlock(a, 2, "x", 0))
	if !re.Duplicate || re.Err != nil || len(re.Events) != 0 || re.Grant.Token != first.Lock.Grant.Token {
		t.Fatalf("retried unlock: %+v", re)
	}
	if g, ok := f.table.Holding(b, "x"); !ok || g.Token != un.Events[0].Token {
		t.Fatalf("b no longer holds x after a's retried unlock: %+v %v", g, ok)
	}
	// A refusal is recorded too.
	refused := apply(t, f, 10, stamp0+7*ms, Unlock(a, 4, "nothing", 0))
	if !errors.Is(refused.Err, lockd.ErrNotHolder) {
		t.Fatalf("unlock of nothing: %+v", refused)
	}
	if r := apply(t, f, 11, stamp0+7*ms, Unlock(a, 4, "nothing", 0)); !r.Duplicate || !errors.Is(r.Err, lockd.ErrNotHolder) {
		t.Fatalf("retried refusal: %+v", r)
	}
	for req := uint64(5); req < 5+recentReplies; req++ {
		apply(t, f, 11+req, stamp0+8*ms, Renew(a, req, "nothing", 0, 0))
	}
	if r := apply(t, f, 30, stamp0+9*ms, Lock(a, 1, lockd.LockRequest{Name: "y"})); !errors.Is(r.Err, ErrRequestOrder) {
		t.Fatalf("request 1, long forgotten: %+v", r)
	}
	if _, ok := f.table.Holding(a, "y"); ok {
		t.Fatal("a forgotten request was applied")
	}
	if r := apply(t, f, 31, stamp0, Lock(999, 1, lockd.LockRequest{Name: "y"})); !errors.Is(r.Err, ErrNoSession) {
		t.Fatalf("unknown session: %+v", r)
	}
	if r := apply(t, f, 32, stamp0, ResumeSession(a, "wrong", "n3")); !errors.Is(r.Err, lockd.ErrAuth) {
		t.Fatalf("resume with a wrong secret: %+v", r)
	}
	r := apply(t, f, 33, stamp0, ResumeSession(b, "s2", "n3"))
	if r.Err != nil || r.State.Node != "n3" || len(r.State.Held) != 1 || r.State.Held[0].Name != "x" {
		t.Fatalf("resume: %+v %+v", r, r.State)
	}
}

// TestFSMTimeAndTokens: table time never runs back when a stamp does, and
// the first token follows the first stamp in microseconds.
func TestFSMTimeAndTokens(t *testing.T) {
	f := NewFSM(lockd.TableLimits{}, nil)
	a := apply(t, f, 1, stamp0, OpenSession("s", 0, "a", 1, "", "n1")).Session
	r := apply(t, f, 2, stamp0+int64(time.Second), Lock(a, 1, lockd.LockRequest{Name: "x", TTL: 2 * time.Second}))
	if want := lockd.Token(stamp0/1000 + 1); r.Lock.Grant.Token != want {
		t.Fatalf("first token %d, want %d", r.Lock.Grant.Token, want)
	}
	// A leader whose clock is 5 s behind: time stays where it was, so the
	// lease (due at +3 s) does not move and is not expired early or late.
	back := apply(t, f, 3, stamp0-4*int64(time.Second), Command{Op: OpAdvance})
	if !back.Time.Equal(time.Unix(0, stamp0+int64(time.Second))) || len(back.Events) != 0 {
		t.Fatalf("advance with a stamp in the past: time %v events %v", back.Time, back.Events)
	}
	exp := apply(t, f, 4, stamp0+3*int64(time.Second), Command{Op: OpAdvance})
	if len(exp.Events) != 1 || exp.Events[0].Kind != lockd.EventLost {
		t.Fatalf("advance at the expiry: %+v", exp.Events)
	}
}

// TestFSMRefusesUnknownCommands: an unknown type stops the FSM (it would
// diverge), unless the type is flagged ignorable; a version this build does
// not know is unknown too.
func TestFSMRefusesUnknownCommands(t *testing.T) {
	f := NewFSM(lockd.TableLimits{}, nil)
	mustPanic := func(name string, data []byte) {
		t.Helper()
		defer func() {
			if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "cannot apply log entry") {
				t.Errorf("%s: recovered %v, want a panic", name, r)
			}
		}()
		f.applyEntry(7, data)
	}
	ok, _ := (&Command{Op: OpAdvance}).encode()
	unknown := append([]byte{}, ok...)
	unknown[0] = 60
	mustPanic("unknown type", unknown)
	newer := append([]byte{}, ok...)
	newer[1] = commandVersion + 1
	mustPanic("newer version", newer)
	mustPanic("short", []byte{1})
	ignorable := append([]byte{}, unknown...)
	ignorable[0] |= byte(opIgnorable)
	if r := f.applyEntry(8, ignorable); r != nil || f.Applied() != 8 {
		t.Fatalf("ignorable unknown entry: result %+v, applied %d", r, f.Applied())
	}
	if err := (&Command{Op: 60}).validate(); !errors.Is(err, ErrUnknownCommand) {
		t.Fatalf("validate unknown: %v", err)
	}
	if err := (&Command{Op: OpLock}).validate(); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("validate a lock without a session: %v", err)
	}
}

// TestFSMRetriedLockSaysWhereItStands: a retried LOCK returns the recorded
// outcome and, in Current, where the session stands on the name now: the
// wait it recorded as queued may since have been granted, and a grant may
// since have been lost. A resume tells its attempt id back, and lists the
// session's holds as STATUS does.
func TestFSMRetriedLockSaysWhereItStands(t *testing.T) {
	f := NewFSM(lockd.TableLimits{}, nil)
	ms := int64(time.Millisecond)
	a := apply(t, f, 1, stamp0, OpenSession("sa", 0, "a", 1, "", "n1")).Session
	b := apply(t, f, 2, stamp0, OpenSession("sb", 0, "b", 2, "", "n1")).Session
	apply(t, f, 3, stamp0+ms, Lock(a, 1, lockd.LockRequest{Name: "x", Wait: -1}))
	q := apply(t, f, 4, stamp0+ms, Lock(b, 1, lockd.LockRequest{Name: "x", Wait: -1}))
	if q.Lock.Position != 1 || q.Current != nil {
		t.Fatalf("b's lock: %+v", q)
	}
	if r := apply(t, f, 5, stamp0+2*ms, Lock(b, 1, lockd.LockRequest{Name: "x", Wait: -1})); !r.Duplicate ||
		r.Current == nil || r.Current.Held || r.Current.Position != 1 || r.Lock.Position != 1 {
		t.Fatalf("retry while queued: %+v %+v", r, r.Current)
	}
	un := apply(t, f, 6, stamp0+3*ms, Unlock(a, 2, "x", 0))
	r := apply(t, f, 7, stamp0+4*ms, Lock(b, 1, lockd.LockRequest{Name: "x", Wait: -1}))
	if !r.Duplicate || r.Lock.Granted || r.Current == nil || !r.Current.Held || r.Current.Grant.Token != un.Events[0].Token {
		t.Fatalf("retry once granted: %+v %+v; the grant was %+v", r, r.Current, un.Events)
	}
	apply(t, f, 8, stamp0+5*ms, Unlock(b, 2, "x", 0))
	if r := apply(t, f, 9, stamp0+6*ms, Lock(b, 1, lockd.LockRequest{Name: "x", Wait: -1})); r.Current == nil || r.Current.Held || r.Current.Position != 0 {
		t.Fatalf("retry once released: %+v %+v", r, r.Current)
	}
	apply(t, f, 10, stamp0+7*ms, Lock(a, 3, lockd.LockRequest{Name: "y", TTL: time.Minute}))
	res := apply(t, f, 11, stamp0+8*ms, ResumeAttempt(a, "sa", "n2", 77))
	if res.Err != nil || res.Request != 77 || res.State.LastRequest != 3 || len(res.State.Locks) != 1 || res.State.Locks[0].Name != "y" ||
		len(res.State.Locks[0].Holders) != 1 || res.State.Locks[0].Holders[0].Client != "a" ||
		res.State.Locks[0].Holders[0].Since.IsZero() || res.State.Locks[0].Holders[0].TTL != time.Minute {
		t.Fatalf("resume: %+v %+v", res, res.State)
	}
}

// TestFSMRefusesReusedRequestID: a request id that was already applied for
// another request (another op, name, token or wait) is refused, not
// answered with that request's result and not applied; the same request
// again is still answered with its result; an id at which a counter would
// wrap fails validation.
func TestFSMRefusesReusedRequestID(t *testing.T) {
	f := NewFSM(lockd.TableLimits{}, nil)
	ms := int64(time.Millisecond)
	a := apply(t, f, 1, stamp0, OpenSession("s1", 0, "a", 1, "", "n1")).Session
	lock := apply(t, f, 2, stamp0+ms, Lock(a, 5, lockd.LockRequest{Name: "r1", Wait: -1}))
	if !lock.Lock.Granted {
		t.Fatalf("lock: %+v", lock)
	}
	index := uint64(3)
	next := func(c Command) *Result {
		t.Helper()
		index++
		return apply(t, f, index, stamp0+int64(index)*ms, c)
	}
	for _, c := range []Command{
		Unlock(a, 5, "r1", 0),                       // another op
		Lock(a, 5, lockd.LockRequest{Name: "r2"}),   // another name
		Lock(a, 5, lockd.LockRequest{Name: "r1"}),   // another wait (try-lock)
		Renew(a, 5, "r1", lock.Lock.Grant.Token, 0), // another op with the token
		Cancel(a, 5, "r1"),
	} {
		r := next(c)
		if !errors.Is(r.Err, ErrRequestOrder) || r.Duplicate || !strings.Contains(tableError(r.Err).Text, "reused req=") {
			t.Fatalf("%s %s with a reused id: %+v", c.Op, c.Name, r)
		}
	}
	if g, ok := f.table.Holding(a, "r1"); !ok || g.Token != lock.Lock.Grant.Token {
		t.Fatalf("r1 is no longer held after refused reuses of its id: %+v %v", g, ok)
	}
	if _, ok := f.table.Holding(a, "r2"); ok {
		t.Fatal("a LOCK with a reused id was applied")
	}
	if r := next(Lock(a, 5, lockd.LockRequest{Name: "r1", Wait: -1})); !r.Duplicate || r.Err != nil || r.Lock.Grant.Token != lock.Lock.Grant.Token {
		t.Fatalf("the true retry: %+v", r)
	}
	// The attack's second case: an UNLOCK of r2 recorded, then a RENEW of
	// r9 and a CANCEL of r2 under its id.
	next(Lock(a, 6, lockd.LockRequest{Name: "r2", Wait: -1}))
	un := next(Unlock(a, 7, "r2", 0))
	if un.Err != nil {
		t.Fatalf("unlock r2: %+v", un)
	}
	for _, c := range []Command{Renew(a, 7, "r9", 0, 0), Cancel(a, 7, "r2")} {
		if r := next(c); !errors.Is(r.Err, ErrRequestOrder) || r.Duplicate {
			t.Fatalf("%s %s under an UNLOCK's id: %+v", c.Op, c.Name, r)
		}
	}
	if c := Unlock(a, math.MaxUint64, "r1", 0); !errors.Is(c.validate(), ErrBadCommand) {
		t.Fatalf("request id MaxUint64: %v", c.validate())
	}
}

// TestFSMWaitResultWaitsForTheObserver: a caller of waitResult that comes
// in after an entry was applied but while the observer is still being told
// of it waits for the observer (a follower's Apply answered from
// waitResult must not reply before the server has queued the entry's
// events; TestApplyReturnsAfterObserver failed once on this in CI).
func TestFSMWaitResultWaitsForTheObserver(t *testing.T) {
	inObserver, release := make(chan uint64, 1), make(chan struct{})
	f := NewFSM(lockd.TableLimits{}, func(a Applied) {
		if a.Index == 2 {
			inObserver <- a.Index
			<-release
		}
	})
	apply(t, f, 1, stamp0, OpenSession("s1", 0, "a", 1, "", "n1"))
	done := make(chan *Result, 1)
	go func() { done <- apply(t, f, 2, stamp0, Lock(1, 1, lockd.LockRequest{Name: "x", Wait: 0})) }()
	<-inObserver // entry 2 is applied; its observer has not returned
	if applied, _ := f.appliedState(); applied != 2 {
		t.Fatalf("applied %d while the observer is told of entry 2", applied)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	r, err := f.waitResult(ctx, 2)
	cancel()
	if err == nil {
		t.Fatalf("waitResult returned entry 2 (%+v) before its observer did", r)
	}
	got := make(chan *Result, 1)
	go func() {
		r, err := f.waitResult(context.Background(), 2)
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	close(release)
	res := <-done
	if r := <-got; r != res || !r.Lock.Granted {
		t.Fatalf("waitResult after the observer: %+v, Apply's result %+v", r, res)
	}
	if r, err := f.waitResult(context.Background(), 2); err != nil || r != res {
		t.Fatalf("waitResult of an observed entry: %+v, %v", r, err)
	}
}
