package cluster

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mplock/lockd/replica"
)

// metrics are raft's, beside lockd's (registered by Register):
//
//	mplock_raft_leader_changes_total  leader changes this node has seen (including to none)
//	mplock_raft_commit_seconds        time from a change's proposal here to its apply here
//	mplock_raft_role                  1 for this node's role{role="leader|follower|candidate"}, 0 for the others
//	mplock_raft_term                  the current term
//	mplock_raft_commit_index          the commit index this node knows
//	mplock_raft_applied_index         the last entry this node's table applied
//	mplock_raft_apply_lag             commit index minus applied index (entries)
//	mplock_raft_ready                 1 when /readyz says ready
type metrics struct {
	node    *replica.Node
	commit  prometheus.Histogram
	changes prometheus.Counter

	mu         sync.Mutex
	lastLeader string
}

func newMetrics() *metrics {
	return &metrics{
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "mplock_raft_commit_seconds",
			Help:    "Time from a change's proposal at this node to its apply here (a majority stored it).",
			Buckets: prometheus.ExponentialBuckets(1e-4, 2, 16)}), // 100µs to about 3s
		changes: prometheus.NewCounter(prometheus.CounterOpts{Name: "mplock_raft_leader_changes_total",
			Help: "Leader changes this node has seen, including to no leader."}),
	}
}

// onState is the node's OnState: it counts leader changes.
func (m *metrics) onState(st replica.Status) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st.Leader != m.lastLeader {
		m.lastLeader = st.Leader
		m.changes.Inc()
	}
}

// status is the node's status now.
func (m *metrics) status() replica.Status { return m.node.Status() }

// Register registers raft's metrics with reg.
func (b *Backend) Register(reg prometheus.Registerer) error {
	m := b.metrics
	gauge := func(name, help string, f func(replica.Status) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(m.status()) })
	}
	cs := []prometheus.Collector{m.commit, m.changes,
		gauge("mplock_raft_term", "The current raft term.", func(s replica.Status) float64 { return float64(s.Term) }),
		gauge("mplock_raft_commit_index", "The commit index this node knows.", func(s replica.Status) float64 { return float64(s.CommitIndex) }),
		gauge("mplock_raft_applied_index", "The last entry this node's table applied.", func(s replica.Status) float64 { return float64(s.AppliedIndex) }),
		gauge("mplock_raft_apply_lag", "Commit index minus applied index, in entries.", func(s replica.Status) float64 {
			if s.CommitIndex > s.AppliedIndex {
				return float64(s.CommitIndex - s.AppliedIndex)
			}
			return 0
		}),
		gauge("mplock_raft_ready", "1 when this node knows a leader and has applied every entry it knows committed (/readyz).",
			func(s replica.Status) float64 { return b2f(s.Ready) }),
	}
	for _, role := range []string{"Leader", "Follower", "Candidate"} {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mplock_raft_role", Help: "1 for this node's raft role.",
			ConstLabels: prometheus.Labels{"role": lower(role)}}, func() float64 { return b2f(m.status().State == role) }))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func lower(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]+'a'-'A') + s[1:]
}

// Health serves /healthz (200 while the process serves) and /readyz (200
// when replica.Status says Ready: this node leads, or follows a leader it
// heard from within two heartbeat timeouts, and has applied up to the
// commit index it knows; 503 otherwise, with the reason), on mux.
func (b *Backend) Health(mux *http.ServeMux) {
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		st := b.node.Status()
		switch {
		case st.Ready:
			w.Write([]byte("ready: leader " + st.Leader + "\n"))
		case st.Leader == "":
			http.Error(w, "not ready: no leader known", http.StatusServiceUnavailable)
		case st.State != "Leader" && st.State != "Follower":
			http.Error(w, "not ready: no leader: this member is a "+strings.ToLower(st.State)+heardText(st), http.StatusServiceUnavailable)
		case st.State == "Follower" && st.AppliedIndex >= st.CommitIndex:
			http.Error(w, "not ready: no leader"+heardText(st), http.StatusServiceUnavailable)
		default:
			http.Error(w, "not ready: applying the log up to the commit index", http.StatusServiceUnavailable)
		}
	})
}

// heardText says when a member last heard from the leader it names, for
// /readyz: " (last heard from n3 1.2s ago)", or " (never heard from n3)".
func heardText(st replica.Status) string {
	if st.LastContact < 0 {
		return " (never heard from " + st.Leader + ")"
	}
	return " (last heard from " + st.Leader + " " + st.LastContact.Round(time.Millisecond).String() + " ago)"
}
