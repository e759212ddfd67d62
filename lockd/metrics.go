package lockd

import (
	"github.com/prometheus/client_golang/prometheus"
)

// registerMetrics registers the server's metrics with reg. Gauges and
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
func (s *Server) registerMetrics(reg prometheus.Registerer) error {
	stat := func(f func(TableStats) float64) func() float64 {
		return func() float64 { return f(s.Stats()) }
	}
	s.wait = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "mplock_lockd_wait_seconds",
		Help:    "Time from a LOCK request to its grant, 0 when the lock was free.",
		Buckets: prometheus.ExponentialBuckets(1e-5, 4, 12), // 10µs to about 42s
	})
	cs := []prometheus.Collector{
		s.wait,
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
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
