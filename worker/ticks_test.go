package worker

import (
	"testing"

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

func TestTicksCalibrate(t *testing.T) {
	c := newTicks()
	t0 := c.now()
	for end := nanotime() + 2e6; nanotime() < end; {
	}
	ticks := c.now() - t0
	if ticks <= 0 {
		t.Fatalf("clock did not advance: %d ticks", ticks)
	}
	// 2ms of ticks, converted, is about 2ms: the conversion is right to
	// within the calibration's error, far better than a factor of two.
	if ns := float64(ticks) * c.nanosPerTick(); ns < 1e6 || ns > 4e6 {
		t.Fatalf("2ms measured as %.0fns (tsc %v)", ns, c.tsc)
	}
}
