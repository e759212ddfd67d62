package cluster

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// TestHealthAndMetrics: /healthz answers while the member serves; /readyz
// only once it knows a leader and has applied up to the commit index, and
// not when the member is cut off from every other; raft's metrics are
// there beside the server's.
func TestHealthAndMetrics(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	f := c.follower()
	mux := http.NewServeMux()
	f.be.Health(mux)
	reg := prometheus.NewRegistry()
	if err := f.be.Register(reg); err != nil {
		t.Fatal(err)
	}
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// Ready once the follower has heard from the leader and applied what
	// it knows committed: soon, not necessarily at once.
	for deadline := time.Now().Add(safety); ; time.Sleep(20 * time.Millisecond) {
		code, body := get("/readyz")
		if code == 200 && strings.HasPrefix(body, "ready: leader n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz of a follower in a healthy cluster: %d %q", code, body)
		}
	}
	_, m := get("/metrics")
	for _, want := range []string{"mplock_raft_term ", `mplock_raft_role{role="follower"} 1`, "mplock_raft_applied_index ", "mplock_raft_leader_changes_total "} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, m := range c.members {
		if m != f {
			c.stopMember(m)
		}
	}
	deadline := time.Now().Add(safety)
	for {
		code, body := get("/readyz")
		if code == http.StatusServiceUnavailable && strings.Contains(body, "no leader") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz of a member alone: %d %q; its status %+v", code, body, f.be.node.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("/healthz: %d", code)
	}
}
