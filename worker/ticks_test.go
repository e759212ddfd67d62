package worker

import (
	"math"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

func TestScaleHistogramKeepsCountsAndScalesValues(t *testing.T) {
	h := hdrhistogram.New(1, 1e12, 3)
	h.RecordValues(100, 5)
	h.RecordValues(3000, 1)
	out := scaleHistogram(h, 0.5)
	if out.TotalCount() != 6 {
		t.Fatalf("count %d, want 6", out.TotalCount())
	}
	if p50 := out.ValueAtQuantile(50); p50 < 49 || p50 > 51 {
		t.Errorf("p50 %d, want about 50", p50)
	}
	if m := out.Max(); m < 1495 || m > 1505 {
		t.Errorf("max %d, want about 1500", m)
	}
}

// TestTicksCalibrate converts a stretch of ticks to nanoseconds and compares
// it with the monotonic clock read around the same stretch. A preemption
// between the paired reads can skew one attempt, so the best of five must
// agree within 10%: a wrong conversion (a factor, a unit) is off by far more.
func TestTicksCalibrate(t *testing.T) {
	c := newTicks()
	best := 1e9
	for range 5 {
		n0, t0 := nanotime(), c.now()
		for end := n0 + 2e6; nanotime() < end; {
		}
		t1, n1 := c.now(), nanotime()
		if t1 <= t0 {
			t.Fatalf("clock did not advance: %d ticks", t1-t0)
		}
		got, want := float64(t1-t0)*c.nanosPerTick(), float64(n1-n0)
		best = min(best, math.Abs(got-want)/want)
	}
	if best > 0.1 {
		t.Fatalf("ticks converted to nanoseconds differ from the monotonic clock by %.0f%% (tsc %v)", 100*best, c.tsc)
	}
}

// TestMeasureClock: the resolution and read cost are measured, not assumed:
// positive, and below what a sleep of a millisecond shows (a bound on
// nonsense, such as a unit error, not a speed claim).
func TestMeasureClock(t *testing.T) {
	c := MeasureClock()
	if c.Step <= 0 || c.ReadCost <= 0 || c.Resolution != max(c.Step, c.ReadCost) || c.Resolution > time.Millisecond {
		t.Fatalf("%+v", c)
	}
	if c.Source != "tsc" && c.Source != "monotonic" {
		t.Fatalf("source %q", c.Source)
	}
	t.Logf("clock %s: resolution %v, step %v, a read costs %v", c.Source, c.Resolution, c.Step, c.ReadCost)
}
