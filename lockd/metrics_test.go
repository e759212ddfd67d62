package lockd

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, addr := startServer(t, Config{Registerer: reg})
	a, b := dialRaw(t, addr), dialRaw(t, addr)
	a.send("LOCK m READ")
	a.expect("OK LOCKED")
	b.send("LOCK m WRITE")
	b.expect("OK QUEUED")
	b.send("LOCK n ttl=1ms")
	b.expect("OK LOCKED")
	b.expect("* LOST n")

	got := gather(t, reg)
	for name, want := range map[string]float64{
		"mplock_lockd_locks_held":               1,
		"mplock_lockd_waiters":                  1,
		"mplock_lockd_sessions":                 2,
		"mplock_lockd_grants_total{mode=READ}":  1,
		"mplock_lockd_grants_total{mode=WRITE}": 1,
		"mplock_lockd_leases_expired_total":     1,
		"mplock_lockd_wait_timeouts_total":      0,
		"mplock_lockd_wait_seconds_count":       2,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
	a.send("UNLOCK m")
	a.expect("OK UNLOCKED")
	b.expect("* GRANTED m WRITE")
	if got := gather(t, reg); got["mplock_lockd_wait_seconds_count"] != 3 || got["mplock_lockd_waiters"] != 0 {
		t.Errorf("after the hand-over: %v", got)
	}
}

// gather flattens reg's metrics to "name{label=value}" -> value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			switch mf.GetType() {
			case dto.MetricType_GAUGE:
				out[name] = m.GetGauge().GetValue()
			case dto.MetricType_COUNTER:
				out[name] = m.GetCounter().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[name+"_count"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}
