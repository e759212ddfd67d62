package cluster

import (
	"strings"
	"testing"
	"time"
)

// TestProtocolAcrossMembers: HELLO says it is a cluster; a lock taken at a
// follower queues a LOCK at the leader, whose GRANTED comes when the
// holder releases; a retried LOCK (same req=) gets the same grant, never a
// second; CHECK answers at every consistency; a session resumed at another
// member keeps its lock and token, and the connection it left is dropped.
func TestProtocolAcrossMembers(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	l, f := c.leader(), c.follower()
	c.settled()
	a := dialLine(t, f.addr)
	a.send("HELLO alice pid=7")
	hello := a.expect("OK HELLO session=")
	for _, want := range []string{" tokens=raft ", " session-ttl=5s ", " node=" + f.id + " ", " leader=" + l.id + " ", " secret="} {
		if !strings.Contains(hello, want) {
			t.Fatalf("HELLO %q lacks %q", hello, want)
		}
	}
	if m := field(t, hello, "members"); strings.Count(m, "@") != 3 || !strings.Contains(m, f.id+"@"+f.addr) {
		t.Fatalf("HELLO's members=%s", m)
	}
	session, secret := field(t, hello, "session"), field(t, hello, "secret")
	a.send("LOCK x req=1")
	tok := field(t, a.expect("OK LOCKED x WRITE token="), "token")
	a.send("LOCK x req=1") // a retry: the same grant
	if again := field(t, a.expect("OK LOCKED x WRITE token="), "token"); again != tok {
		t.Fatalf("retried LOCK got token %s, first %s", again, tok)
	}

	b := dialLine(t, l.addr)
	b.send("LOCK x") // nc style: no HELLO, no req=
	b.expect("OK QUEUED x WRITE position=1")
	for _, cons := range []string{"stale", "default", "consistent"} {
		b.send("CHECK x consistency=" + cons)
		b.expect("HOLDER x WRITE token=" + tok + " session=" + session + " client=alice pid=7 ")
		end := b.expect("OK CHECK x held=true index=")
		if !strings.Contains(end, "consistency="+cons+" node="+l.id+" leader="+l.id) || strings.Contains(end, "contact=") != (cons == "stale") {
			t.Fatalf("CHECK %s: %q", cons, end)
		}
	}

	// alice resumes at a third member: same lock, same token; her old
	// connection is dropped.
	var third *member
	for _, m := range c.members {
		if m != l && m != f {
			third = m
		}
	}
	r := dialLine(t, third.addr)
	r.send("RESUME " + session + " " + secret)
	r.expect("HOLDER x WRITE token=" + tok + " session=" + session + " client=alice ")
	res := r.expect("OK RESUMED session=" + session + " held=1 waiting=0 node=" + third.id)
	if field(t, res, "last-req") != "1" {
		t.Fatalf("RESUME: %q", res)
	}
	a.expect("* BYE reason=resumed")
	r.send("RESUME " + session + " " + secret)
	r.expect("ERR session ")
	bad := dialLine(t, l.addr)
	bad.send("RESUME " + session + " 0000")
	bad.expect("ERR session ")

	r.send("UNLOCK x req=2")
	r.expect("OK UNLOCKED x token=" + tok)
	g := b.expect("* GRANTED x WRITE token=")
	if field(t, g, "token") <= tok {
		t.Fatalf("the next grant %q is not above %s", g, tok)
	}
	b.send("UNLOCK x")
	b.expect("OK UNLOCKED x")

	// A retried LOCK of a wait since granted says so.
	b.send("LOCK y req=10")
	b.expect("OK LOCKED y")
	r.send("LOCK y req=3")
	r.expect("OK QUEUED y WRITE position=1")
	b.send("UNLOCK y req=11")
	b.expect("OK UNLOCKED y")
	g = r.expect("* GRANTED y WRITE token=")
	r.send("LOCK y req=3")
	if got := r.expect("OK LOCKED y WRITE token="); field(t, got, "token") != field(t, g, "token") {
		t.Fatalf("retried LOCK after its grant: %q; the grant was %q", got, g)
	}

	r.send("PING")
	r.expect("OK PONG")
	r.send("MEMBERS")
	for range 3 {
		m := r.expect("MEMBER n")
		if !strings.Contains(m, " voter=true ") || strings.Contains(m, "role=down") {
			t.Fatalf("MEMBERS: %q", m)
		}
	}
	r.expect("OK MEMBERS leader=" + l.id + " term=")
	r.send("QUIT")
	r.expect("OK BYE")
	b.send("CHECK y consistency=consistent")
	b.expect("OK CHECK y held=false ") // QUIT released it
}

// TestStaleReadRefused: a member cut off from every other refuses a stale
// CHECK once it has not heard from a leader for longer than MaxStale, and
// a default or consistent one for want of a leader.
func TestStaleReadRefused(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) {
		cfg.Replica.MaxStale = 300 * time.Millisecond
		cfg.RequestTimeout = 500 * time.Millisecond
	})
	f := c.follower()
	x := dialLine(t, f.addr)
	x.send("CHECK x consistency=stale")
	x.expect("OK CHECK x held=false ")
	for _, m := range c.members {
		if m != f {
			c.stopMember(m)
		}
	}
	deadline := time.Now().Add(safety)
	for {
		x.send("CHECK x consistency=stale")
		got := x.expect("")
		if strings.HasPrefix(got, "ERR stale ") {
			break
		}
		if !strings.HasPrefix(got, "OK CHECK") || time.Now().After(deadline) {
			t.Fatalf("a member cut off: %q", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	x.send("CHECK x")
	x.expect("ERR unavailable ")
	x.send("LOCK x")
	x.expect("ERR unavailable ")
}

// TestReusedRequestIDRefused: the attack's lines. A req= reused for
// another request is refused (ERR syntax), not answered with the first
// one's result: the lock stays held, as a consistent CHECK shows. A req=
// at which the connection's counter would wrap is refused, and the
// session goes on numbering and unlocking; one below the window of kept
// results is refused.
func TestReusedRequestIDRefused(t *testing.T) {
	c := newTestCluster(t, 1, nil)
	c.leader()
	a := dialLine(t, c.members[0].addr)
	a.send("HELLO liar")
	a.expect("OK HELLO ")
	a.send("LOCK r1 req=5")
	tok := field(t, a.expect("OK LOCKED r1 WRITE token="), "token")
	a.send("UNLOCK r1 req=5")
	a.expect("ERR syntax ")
	a.send("CHECK r1 consistency=consistent")
	a.expect("HOLDER r1 WRITE token=" + tok + " ")
	a.expect("OK CHECK r1 held=true ")
	a.send("LOCK r1 req=5") // the true retry
	a.expect("OK LOCKED r1 WRITE token=" + tok)

	a.send("LOCK r2 req=6")
	a.expect("OK LOCKED r2 ")
	a.send("UNLOCK r2 req=7")
	a.expect("OK UNLOCKED r2 ")
	a.send("RENEW r9 req=7")
	a.expect("ERR syntax ")
	a.send("CANCEL r2 req=7")
	a.expect("ERR syntax ")

	a.send("LOCK r3 req=18446744073709551615")
	a.expect("ERR syntax ")
	a.send("LOCK r3") // numbered by the connection: 8
	a.expect("OK LOCKED r3 ")
	a.send("UNLOCK r3")
	a.expect("OK UNLOCKED r3 ")
	a.send("CHECK r3 consistency=consistent")
	a.expect("OK CHECK r3 held=false ")

	a.send("LOCK r4 req=30")
	a.expect("OK LOCKED r4 ")
	a.send("LOCK r5 req=22")
	a.expect("ERR syntax req=22: not among the session's last 8 request ids")
}

// TestMemberChangesNeedAUTH: a member whose clients need not AUTH (no
// --token-file) refuses MEMBER ADD and REMOVE: three voters added at
// addresses nobody serves would leave the cluster without a majority.
func TestMemberChangesNeedAUTH(t *testing.T) {
	c := newTestCluster(t, 1, nil)
	c.leader()
	a := dialLine(t, c.members[0].addr)
	a.send("MEMBER ADD evil4 127.0.0.1:1")
	a.expect("ERR auth MEMBER ADD needs AUTH with the server's secret")
	a.send("MEMBER REMOVE n1")
	a.expect("ERR auth MEMBER REMOVE needs AUTH")
	a.send("MEMBERS")
	a.expect("MEMBER n1 ")
	a.expect("OK MEMBERS leader=n1 ")
}
