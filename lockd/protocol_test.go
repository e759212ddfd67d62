package lockd

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseRequest(t *testing.T) {
	for _, tc := range []struct {
		line string
		want Request
		err  error
	}{
		{"LOCK file_A\n", Request{Verb: VerbLock, Name: "file_A"}, nil},
		{"lock file_A read\r\n", Request{Verb: VerbLock, Name: "file_A", Mode: Shared}, nil},
		{"LOCK db WRITE ttl=30s wait=0", Request{Verb: VerbLock, Name: "db", Mode: Exclusive, TTL: 30 * time.Second, HasTTL: true, HasWait: true}, nil},
		{"LOCK db wait=1.5s", Request{Verb: VerbLock, Name: "db", Wait: 1500 * time.Millisecond, HasWait: true}, nil},
		{"UNLOCK db token=17", Request{Verb: VerbUnlock, Name: "db", Token: 17}, nil},
		{"RENEW db ttl=10s token=3", Request{Verb: VerbRenew, Name: "db", TTL: 10 * time.Second, HasTTL: true, Token: 3}, nil},
		{"CANCEL db", Request{Verb: VerbCancel, Name: "db"}, nil},
		{"STATUS", Request{Verb: VerbStatus}, nil},
		{"STATUS file_A", Request{Verb: VerbStatus, Name: "file_A"}, nil},
		{"STATUS limit=5 after=file_A", Request{Verb: VerbStatus, Limit: 5, After: "file_A"}, nil},
		{"status AFTER=b", Request{Verb: VerbStatus, After: "b"}, nil},
		{"DEBUG", Request{Verb: VerbDebug}, nil},
		{"HELLO P1 pid=4242", Request{Verb: VerbHello, Name: "P1", PID: 4242}, nil},
		{"AUTH s3cr=t", Request{Verb: VerbAuth, Secret: "s3cr=t"}, nil},
		{"  PING  ", Request{Verb: VerbPing}, nil},
		{"QUIT", Request{Verb: VerbQuit}, nil},
		{"LOCK db req=7", Request{Verb: VerbLock, Name: "db", Req: 7}, nil},
		{"UNLOCK db token=3 req=8", Request{Verb: VerbUnlock, Name: "db", Token: 3, Req: 8}, nil},
		{"PREEMPT file_A", Request{Verb: VerbLock, Name: "file_A", Mode: Exclusive, HasWait: true}, nil},
		{"preempt file_A req=2 ttl=5s", Request{Verb: VerbLock, Name: "file_A", Mode: Exclusive, HasWait: true, Req: 2, TTL: 5 * time.Second, HasTTL: true}, nil},
		{"RELEASE file_A", Request{Verb: VerbUnlock, Name: "file_A"}, nil},
		{"CHECK file_A", Request{Verb: VerbCheck, Name: "file_A"}, nil},
		{"CHECK file_A consistency=STALE", Request{Verb: VerbCheck, Name: "file_A", Consistency: ConsistencyStale}, nil},
		{"STATUS consistency=consistent limit=3", Request{Verb: VerbStatus, Consistency: ConsistencyConsistent, Limit: 3}, nil},
		{"RESUME 41 abcdef", Request{Verb: VerbResume, Session: 41, Secret: "abcdef"}, nil},
		{"MEMBERS", Request{Verb: VerbMembers}, nil},
		{"member add n4 127.0.0.1:7558", Request{Verb: VerbMemberAdd, Name: "n4", Addr: "127.0.0.1:7558"}, nil},
		{"MEMBER REMOVE n4", Request{Verb: VerbMemberRemove, Name: "n4"}, nil},

		{"", Request{}, ErrSyntax},
		{"\n", Request{}, ErrSyntax},
		{"FROB x", Request{}, ErrUnknown},
		{"LOCK", Request{}, ErrSyntax},
		{"LOCK ttl=5s", Request{}, ErrSyntax},
		{"LOCK a MAYBE", Request{}, ErrSyntax},
		{"LOCK a READ WRITE", Request{}, ErrSyntax},
		{"LOCK a ttl=5", Request{}, ErrSyntax},
		{"LOCK a ttl=-1s", Request{}, ErrSyntax},
		{"LOCK a ttl=2ns", Request{}, ErrSyntax},
		{"LOCK a ttl=999us", Request{}, ErrSyntax},
		{"RENEW a ttl=2ns", Request{}, ErrSyntax},
		{"LOCK a ttl=25h", Request{}, ErrSyntax},
		{"LOCK db ttl=1ms", Request{Verb: VerbLock, Name: "db", TTL: time.Millisecond, HasTTL: true}, nil},
		{"LOCK db ttl=0 wait=1ns", Request{Verb: VerbLock, Name: "db", HasTTL: true, Wait: 1, HasWait: true}, nil},
		{"LOCK a ttl=1s ttl=2s", Request{}, ErrSyntax},
		{"LOCK a token=3", Request{}, ErrSyntax},
		{"LOCK a wait=48h", Request{}, ErrSyntax},
		{"UNLOCK a token=0", Request{}, ErrSyntax},
		{"UNLOCK a token=x", Request{}, ErrSyntax},
		{"PING now", Request{}, ErrSyntax},
		{"LOCK a\x00b", Request{}, ErrSyntax},
		{"LOCK \xff", Request{}, ErrSyntax},
		{"LOCK ../etc/passwd", Request{}, ErrBadName},
		{"LOCK .hidden", Request{}, ErrBadName},
		{"LOCK a/b", Request{}, ErrBadName},
		{"LOCK " + strings.Repeat("n", MaxNameLen+1), Request{}, ErrBadName},
		{"STATUS a/b", Request{}, ErrBadName},
		{"STATUS a b", Request{}, ErrSyntax},
		{"STATUS a limit=5", Request{}, ErrSyntax},
		{"STATUS limit=0", Request{}, ErrSyntax},
		{"STATUS limit=10001", Request{}, ErrSyntax},
		{"STATUS limit=5 limit=6", Request{}, ErrSyntax},
		{"STATUS after=../x", Request{}, ErrBadName},
		{"STATUS ttl=5s", Request{}, ErrSyntax},
		{"DEBUG heap", Request{}, ErrSyntax},
		{"HELLO " + strings.Repeat("p", MaxClientLen+1), Request{}, ErrBadName},
		{"HELLO P1 pid=-3", Request{}, ErrSyntax},
		{"AUTH", Request{}, ErrSyntax},
		{"LOCK a req=0", Request{}, ErrSyntax},
		{"LOCK a req=x", Request{}, ErrSyntax},
		{"LOCK a req=1 req=2", Request{}, ErrSyntax},
		{"STATUS req=1", Request{}, ErrSyntax},
		{"PREEMPT", Request{}, ErrSyntax},
		{"PREEMPT a READ", Request{}, ErrSyntax},
		{"PREEMPT a wait=5s", Request{}, ErrSyntax},
		{"RELEASE a ttl=5s", Request{}, ErrSyntax},
		{"CHECK", Request{}, ErrSyntax},
		{"CHECK a consistency=eventual", Request{}, ErrSyntax},
		{"CHECK a/b", Request{}, ErrBadName},
		{"STATUS consistency=now", Request{}, ErrSyntax},
		{"LOCK a consistency=stale", Request{}, ErrSyntax},
		{"RESUME 1", Request{}, ErrSyntax},
		{"RESUME x secret", Request{}, ErrSyntax},
		{"RESUME 0 secret", Request{}, ErrSyntax},
		{"MEMBERS all", Request{}, ErrSyntax},
		{"MEMBER", Request{}, ErrSyntax},
		{"MEMBER ADD n4", Request{}, ErrSyntax},
		{"MEMBER ADD n4 nowhere", Request{}, ErrSyntax},
		{"MEMBER ADD ../n4 127.0.0.1:1", Request{}, ErrBadName},
		{"MEMBER KICK n4", Request{}, ErrSyntax},
	} {
		got, err := ParseRequest([]byte(tc.line))
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("ParseRequest(%q) = %+v, %v; want error %v", tc.line, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseRequest(%q) = %+v, %v; want %+v", tc.line, got, err, tc.want)
		}
	}
}

// FuzzParseRequest checks that the parser never panics, that what it
// accepts formats back to a line it parses to the same request, and that
// what it refuses it refuses with a protocol code. Its seed corpus, in
// testdata/fuzz/FuzzParseRequest, runs in every plain `go test`.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"LOCK file_A", "LOCK file_A READ ttl=5s wait=0", "UNLOCK file_A token=3", "HELLO P1 pid=7",
		"STATUS", "RENEW x ttl=1m", "CANCEL y", "AUTH x", "lock a write", "LOCK ../x", "\x00",
		"STATUS limit=3 after=a", "DEBUG", "LOCK a req=3", "PREEMPT a", "RELEASE a token=2", "CHECK a consistency=stale",
		"STATUS consistency=default", "RESUME 7 s", "MEMBERS", "MEMBER ADD n4 127.0.0.1:1", "MEMBER REMOVE n4",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := ParseRequest(line)
		if err != nil {
			var se *syntaxErr
			if !errors.As(err, &se) {
				t.Fatalf("ParseRequest(%q): error %v is not a protocol error", line, err)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("ParseRequest(%q): error text %q would break the reply line", line, err)
			}
			return
		}
		again, err := ParseRequest([]byte(r.String()))
		if err != nil {
			t.Fatalf("ParseRequest(%q) = %+v, but its String %q does not parse: %v", line, r, r.String(), err)
		}
		if again != r {
			t.Fatalf("round trip of %q: %+v then %+v", line, r, again)
		}
	})
}

func TestParseReply(t *testing.T) {
	r := parseReply("OK LOCKED file_A WRITE token=17 ttl=0s\n")
	if r.kind != replyOK || r.word != "LOCKED" || r.arg(0) != "file_A" || r.mode() != Exclusive || r.uint("token") != 17 {
		t.Fatalf("parsed %+v", r)
	}
	e := parseReply("ERR locked file_A is locked by session 3 (P1) WRITE\n")
	if !errors.Is(e.err(), ErrLocked) || e.text != "file_A is locked by session 3 (P1) WRITE" {
		t.Fatalf("parsed %+v: %v", e, e.err())
	}
	ev := parseReply("* LOST job WRITE token=4 reason=expired")
	if ev.kind != replyEvent || ev.word != "LOST" || ev.get("reason") != "expired" {
		t.Fatalf("parsed %+v", ev)
	}
}

func TestStatusRoundTrip(t *testing.T) {
	tb := newTestTable(t, 1, 2, 3)
	tb.Open(1, SessionInfo{Client: "P1", PID: 11, Addr: "127.0.0.1:1", Since: t0})
	mustLock(t, tb, at(time.Second), 1, LockRequest{Name: "file_A", Mode: Shared, TTL: time.Minute})
	mustLock(t, tb, at(2*time.Second), 2, LockRequest{Name: "file_A", Mode: Exclusive})
	mustLock(t, tb, at(3*time.Second), 3, LockRequest{Name: "file_A", Mode: Shared, Wait: time.Hour})
	want := tb.Status(at(4*time.Second), "")
	text := string(appendStatus(nil, want))
	lines := strings.SplitAfter(strings.TrimSuffix(text, "\n"), "\n")
	got, err := parseStatus(lines[:len(lines)-1], parseReply(lines[len(lines)-1]))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Locks) != 1 || len(got.Locks[0].Holders) != 1 || len(got.Locks[0].Waiters) != 2 || len(got.Sessions) != 3 {
		t.Fatalf("status %q parsed to %+v", text, got)
	}
	h, w := got.Locks[0].Holders[0], got.Locks[0].Waiters[1]
	if h != want.Locks[0].Holders[0] || w != want.Locks[0].Waiters[1] || got.Sessions[0] != want.Sessions[0] || !got.Now.Equal(want.Now) {
		t.Fatalf("round trip of\n%s\ngave %+v\nwant %+v", text, got, want)
	}
}
