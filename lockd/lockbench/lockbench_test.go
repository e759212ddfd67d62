package lockbench

import (
	"context"
	"net"
	"testing"
	"time"

	"mplock/lockd"
)

// TestRunMplock runs every scenario briefly against a real loopback server
// through both mplock drivers. It checks that pairs are counted and that a
// shared name needs no retries; it asserts nothing about speed.
func TestRunMplock(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := lockd.NewServer(lockd.Config{})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, d := range []struct {
		name string
		dial Dialer
	}{{"mplock", Mplock(ln.Addr().String())}, {"mplock-raw", MplockRaw(ln.Addr().String())}} {
		for _, sc := range []Scenario{{Clients: 1}, {Clients: 4}, {Clients: 4, Shared: true}} {
			res, err := Run(ctx, d.name, d.dial, sc, 50*time.Millisecond, "t")
			if err != nil {
				t.Fatalf("%s %s: %v", d.name, sc, err)
			}
			if res.Pairs == 0 || res.PairsPerSec <= 0 || res.Retries != 0 || res.P99 < res.P50 {
				t.Errorf("%s %s: %+v", d.name, sc, res)
			}
		}
	}
	if st := srv.Stats(); st.Holders != 0 || st.Waiters != 0 {
		t.Errorf("after the runs: %+v, want nothing held or queued", st)
	}
}
