package lockd

import (
	"github.com/prometheus/client_golang/prometheus"
)

// registerMetrics registers the server's metrics with reg (be is nil with
// a replicated table). Gauges and
// counters are read from the table's totals when scraped, so they cost the
// request path nothing; only the wait-time histogram is observed per grant.
//
//	mplock_lockd_locks_held             holders now (a shared lock held by 3 counts 3)
//	mplock_lockd_waiters                queued requests now
//	mplock_lockd_sessions               connected sessions now
//	mplock_lockd_grants_total{mode}     grants since start, READ or WRITE
//	mplock_lockd_leases_expired_total   locks lost because a lease was not renewed
//	mplock_lockd_wait_timeouts_total    queued requests whose wait= ran out
//	mplock_lockd_wait_seconds           time from LOCK to grant (0 when free)
//	mplock_lockd_stalls_total           times the server found it had not run for over a second
//	mplock_lockd_leases_extended_total  leases extended after such a stall rather than expired
//	mplock_lockd_connections_refused_total  connections refused (too many sessions) or closed to make room (unauthenticated)
//	mplock_lockd_auth_failures_total    wrong secrets
//	mplock_lockd_output_overflows_total sessions closed because their pending output reached its bound
func (s *Server) registerMetrics(reg prometheus.Registerer, be *local) error {
	stat := func(f func(TableStats) float64) func() float64 {
		return func() float64 { return f(s.Stats()) }
	}
	wait := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "mplock_lockd_wait_seconds",
		Help:    "Time from a LOCK request to its grant, 0 when the lock was free.",
		Buckets: prometheus.ExponentialBuckets(1e-5, 4, 12), // 10µs to about 42s
	})
	counter := func(name, help string, f func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f()) })
	}
	var cs []prometheus.Collector
	if be != nil {
		// The local table's own: a replicated table's stalls and waits are
		// its backend's to report.
		be.mu.Lock()
		be.wait = wait
		be.mu.Unlock()
		cs = append(cs, wait,
			counter("mplock_lockd_stalls_total", "Times the server found that it had not run for over a second (stopped, paused, starved).",
				func() uint64 { n, _ := be.stallStats(); return n }),
			counter("mplock_lockd_leases_extended_total", "Leases given a full TTL after a stall of the server rather than expired.",
				func() uint64 { _, n := be.stallStats(); return n }))
	}
	cs = append(cs,
		counter("mplock_lockd_connections_refused_total", "Connections refused for too many sessions, or closed to make room for a newer unauthenticated one.",
			s.refused.Load),
		counter("mplock_lockd_auth_failures_total", "AUTH requests with a wrong secret.", s.authFail.Load),
		counter("mplock_lockd_output_overflows_total", "Sessions closed because the output waiting for them to read reached its bound.", s.overflow.Load),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mplock_lockd_locks_held", Help: "Holders now; a shared lock with 3 holders counts 3."},
			stat(func(t TableStats) float64 { return float64(t.Holders) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mplock_lockd_waiters", Help: "Queued lock requests now."},
			stat(func(t TableStats) float64 { return float64(t.Waiters) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mplock_lockd_sessions", Help: "Connected sessions now."},
			stat(func(t TableStats) float64 { return float64(t.Sessions) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "mplock_lockd_grants_total", Help: "Locks granted since start.",
			ConstLabels: prometheus.Labels{"mode": Shared.String()}},
			stat(func(t TableStats) float64 { return float64(t.Grants[Shared]) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "mplock_lockd_grants_total", Help: "Locks granted since start.",
			ConstLabels: prometheus.Labels{"mode": Exclusive.String()}},
			stat(func(t TableStats) float64 { return float64(t.Grants[Exclusive]) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "mplock_lockd_leases_expired_total", Help: "Locks lost because their lease was not renewed."},
			stat(func(t TableStats) float64 { return float64(t.Expired) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "mplock_lockd_wait_timeouts_total", Help: "Queued requests whose wait= ran out."},
			stat(func(t TableStats) float64 { return float64(t.TimedOut) })),
	)
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
