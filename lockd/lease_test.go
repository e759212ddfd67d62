package lockd

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestClientSurvivesTinyServerTTL: the lease's TTL comes from the server's
// reply, and a server (misconfigured, or hostile) may grant ttl=2ns, which
// runs out before the reply arrives and a third of which is zero. The
// client must neither panic (time.NewTicker(0)) nor spin renewing: Lock
// fails with ErrLeaseExpired, the client releases that grant, and the
// session goes on.
func TestClientSurvivesTinyServerTTL(t *testing.T) {
	unlocked := make(chan string, 1)
	addr := startFakeServer(t, tinyTTL(unlocked))

	c := dial(t, addr, "tiny")
	l, err := c.Lock(testCtx(t), "job", Exclusive, WithTTL(0))
	if !errors.Is(err, ErrLeaseExpired) {
		t.Fatalf("Lock of a 2ns lease: %v, %v; want ErrLeaseExpired", l, err)
	}
	select {
	case line := <-unlocked:
		if line != "UNLOCK job token=1" {
			t.Fatalf("client released the grant with %q, want UNLOCK job token=1", line)
		}
	case <-testCtx(t).Done():
		t.Fatal("the client never released the expired grant")
	}
	if err := c.Ping(testCtx(t)); err != nil {
		t.Fatalf("the session did not survive: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestNewServerRefusesTinyTTL: a server must not grant leases that no
// client can renew in time; ValidTTL is the rule ttl= follows too.
func TestNewServerRefusesTinyTTL(t *testing.T) {
	for _, ttl := range []time.Duration{2, MinTTL - 1, -time.Second, MaxDuration + 1} {
		if srv, err := NewServer(Config{DefaultTTL: ttl}); err == nil {
			srv.Shutdown(context.Background())
			t.Errorf("NewServer with DefaultTTL %v: no error", ttl)
		}
	}
}

// tinyTTL answers as a server that grants every lock with ttl=2ns, and
// sends the first UNLOCK line it gets on unlocked.
func tinyTTL(unlocked chan string) func(Request, string) (string, error) {
	return func(req Request, line string) (string, error) {
		switch req.Verb {
		case VerbHello:
			return "OK HELLO session=1 idle=0s ttl=2ns max-locks=256 max-line=1024 auth=false server=mplock/hostile", nil
		case VerbLock:
			return "OK LOCKED " + req.Name + " WRITE token=1 ttl=2ns", nil
		case VerbRenew:
			return "OK RENEWED " + req.Name + " WRITE token=1 ttl=2ns", nil
		case VerbUnlock:
			select {
			case unlocked <- line:
			default:
			}
			return "OK UNLOCKED " + req.Name + " token=1", nil
		case VerbPing:
			return "OK PONG", nil
		}
		return "", fmt.Errorf("unexpected request %q", line)
	}
}
