package machine

import (
	"testing"
	"time"
)

func TestParseCPULine(t *testing.T) {
	at := time.Unix(1000, 0)
	s, err := parseCPULine("cpu  300 10 90 5000 7 0 100 50 0 0", at)
	if err != nil {
		t.Fatal(err)
	}
	// busy = user+nice+system+irq+softirq = 300+10+90+0+100 ticks of 10ms.
	if s.Busy != 5*time.Second || s.Steal != 500*time.Millisecond {
		t.Errorf("busy %v steal %v, want 5s and 500ms", s.Busy, s.Steal)
	}
	later := CPUSample{At: at.Add(2 * time.Second), Busy: s.Busy + 3*time.Second, Steal: s.Steal + time.Second}
	a := later.Since(s)
	if a.Busy != 1.5 || a.Steal != 0.5 || a.Elapsed != 2*time.Second {
		t.Errorf("activity %+v, want 1.5 CPUs busy and 0.5 stolen over 2s", a)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5 6 7 8", "cpu 1 2 3", "cpu 1 2 x 4 5 6 7 8"} {
		if _, err := parseCPULine(bad, at); err == nil {
			t.Errorf("parseCPULine(%q) succeeded", bad)
		}
	}
}

func TestSampleCPU(t *testing.T) {
	a, err := SampleCPU()
	if err != nil {
		t.Skipf("no /proc/stat: %v", err)
	}
	// Burn some CPU so that the machine's busy time must grow.
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) {
	}
	b, err := SampleCPU()
	if err != nil {
		t.Fatal(err)
	}
	if b.Busy <= a.Busy {
		t.Errorf("busy time did not grow while this test spun: %v then %v", a.Busy, b.Busy)
	}
}
