package report

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestDistribute checks the nearest-rank percentiles: the p-th is the
// smallest value with at least p% of the sample at or below it.
func TestDistribute(t *testing.T) {
	seq := func(n int) []time.Duration {
		var xs []time.Duration
		for i := n; i >= 1; i-- { // unsorted on purpose
			xs = append(xs, time.Duration(i)*time.Millisecond)
		}
		return xs
	}
	for _, c := range []struct {
		n                  int
		p50, p90, p99, max time.Duration
	}{
		{1, 1, 1, 1, 1},
		{30, 15, 27, 30, 30},
		{100, 50, 90, 99, 100},
		{200, 100, 180, 198, 200},
	} {
		d := Distribute(seq(c.n))
		ms := time.Millisecond
		if d.N != c.n || d.Min != ms || d.P50 != c.p50*ms || d.P90 != c.p90*ms || d.P99 != c.p99*ms || d.Max != c.max*ms {
			t.Errorf("n=%d: %+v", c.n, d)
		}
	}
	if d := Distribute(nil); d.N != 0 {
		t.Errorf("empty: %+v", d)
	}
}

// TestWriteLockdFailover: a kill that failed is listed with its reason and
// left out of the percentiles.
func TestWriteLockdFailover(t *testing.T) {
	f := LockdFailover{Where: "here", Kills: []FailoverKill{
		{Leader: "n1", Follower: "n2", Election: 600 * time.Millisecond, AtKilled: 700 * time.Millisecond, Elsewhere: 650 * time.Millisecond},
		{Leader: "n2", Err: "no LOCK granted"},
		{Leader: "n3", Follower: "n1", Election: 800 * time.Millisecond, AtKilled: 900 * time.Millisecond, Elsewhere: 850 * time.Millisecond},
	}}
	var b bytes.Buffer
	if err := WriteLockdFailover(&b, f, true); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"2     n2      failed: no LOCK granted", "first LOCK, client of the killed leader      2  700ms  700ms  900ms  900ms  900ms",
		"1 of 3 kills have no figures"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
