package replica

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"mplock/lockd"
)

func TestParseInitialCluster(t *testing.T) {
	got, err := ParseInitialCluster("n1=127.0.0.1:7555, n2=127.0.0.1:7556")
	if want := []Peer{{"n1", "127.0.0.1:7555"}, {"n2", "127.0.0.1:7556"}}; err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v %v", got, err)
	}
	for _, bad := range []string{"", "n1", "n1=", "=a:1", "n1=a:1,n1=b:2"} {
		if _, err := ParseInitialCluster(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	if _, err := (Config{NodeID: "../x"}).withDefaults(); err == nil {
		t.Error("a bad node id was accepted")
	}
	if _, err := (Config{NodeID: "n3", InitialCluster: []Peer{{"n1", "a:1"}}}).withDefaults(); err == nil {
		t.Error("an initial cluster without this node was accepted")
	}
	c, err := (Config{NodeID: "n1", HeartbeatTimeout: 100 * time.Millisecond}).withDefaults()
	if err != nil || c.RaftListen != DefaultRaftListen || c.LeaderLeaseTimeout != 100*time.Millisecond ||
		c.ElectionTimeout != DefaultElectionTimeout || c.SessionTTL != DefaultSessionTTL || c.MaxStale != DefaultMaxStale {
		t.Fatalf("defaults: %+v %v", c, err)
	}
}

func TestParseConsistency(t *testing.T) {
	for s, want := range map[string]Consistency{"stale": Stale, "DEFAULT": Default, "": Default, "consistent": Consistent} {
		if got, err := ParseConsistency(s); err != nil || got != want {
			t.Errorf("%q: %v %v", s, got, err)
		}
		if want.String() == "" {
			t.Errorf("%d has no name", want)
		}
	}
	if _, err := ParseConsistency("linear"); err == nil {
		t.Error("accepted linear")
	}
}

// TestCommandEncoding: a command survives encoding, the stamp is where the
// leader writes it, and equal commands give equal bytes.
func TestCommandEncoding(t *testing.T) {
	c := Lock(7, 3, lockd.LockRequest{Name: "x", Mode: lockd.Shared, TTL: time.Second, Wait: -1})
	b1, _ := c.encode()
	b2, _ := c.encode()
	if string(b1) != string(b2) {
		t.Fatal("equal commands, different bytes")
	}
	setStamp(b1, 12345)
	got, err := decodeCommand(b1)
	c.Stamp = 12345
	if err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("round trip: %+v %v, want %+v", got, err, c)
	}
	if err := (&Command{Op: OpOpenSession, Session: 0, SecretHash: "short"}).validate(); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("a short secret hash: %v", err)
	}
	tiny := Lock(1, 1, lockd.LockRequest{Name: "x", TTL: time.Nanosecond})
	if err := tiny.validate(); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("a 1ns lease: %v", err)
	}
}
