package shm

import (
	"errors"
	"testing"
)

func newMutexRegion(t *testing.T, slots, logCap int) (*Region, *Mutex) {
	t.Helper()
	r, err := Create(CreateOptions{Size: MutexSize(slots, logCap)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	m, err := NewMutex(r, slots, logCap)
	if err != nil {
		t.Fatal(err)
	}
	return r, m
}

func TestMutexOpenChecksHeader(t *testing.T) {
	r, m := newMutexRegion(t, 3, 10)
	if _, err := OpenMutex(r); err != nil {
		t.Fatalf("OpenMutex of a fresh region: %v", err)
	}
	if _, err := OpenBank(r); !errors.Is(err, ErrLayout) {
		t.Errorf("OpenBank of a mutex region: %v, want ErrLayout", err)
	}
	for _, tc := range []struct {
		name  string
		spoil func(h *Header)
	}{
		{"magic", func(h *Header) { h.Magic = 0x12345678 }},
		{"version", func(h *Header) { h.Version = MutexVersion + 1 }},
		{"layout", func(h *Header) { h.Layout = LayoutBank }},
		{"size", func(h *Header) { h.Size += 48 }},
		{"slots", func(h *Header) { h.Workers = 0 }},
	} {
		saved := *m.Header
		tc.spoil(m.Header)
		if _, err := OpenMutex(r); !errors.Is(err, ErrLayout) {
			t.Errorf("%s spoiled: OpenMutex = %v, want ErrLayout", tc.name, err)
		}
		*m.Header = saved
	}
}

func TestMutexOccupancyAndLog(t *testing.T) {
	_, m := newMutexRegion(t, 2, 2)
	a, alone := m.Enter(0, 1, 10, 20)
	if !alone {
		t.Fatal("first entry found someone inside")
	}
	b, alone := m.Enter(1, 1, 15, 25) // the second process gets in too: a violation
	if alone {
		t.Fatal("second entry while the first is inside was not seen")
	}
	m.Exit(a, 30)
	m.Exit(b, 35)
	c, alone := m.Enter(0, 4, 40, 50) // the log is full: counted, not logged
	if !alone {
		t.Fatal("entry after both left found someone inside")
	}
	m.Exit(c, 60)

	ctl := m.Control
	if ctl.Overlaps.Load() != 1 || ctl.MaxInside.Load() != 2 || ctl.Inside.Load() != 0 {
		t.Errorf("overlaps %d, max inside %d, inside %d; want 1, 2, 0", ctl.Overlaps.Load(), ctl.MaxInside.Load(), ctl.Inside.Load())
	}
	got := m.Intervals()
	want := []MutexInterval{
		{Proc: 0, TS: 1, Requested: 10, Entered: 20, Exited: 30},
		{Proc: 1, TS: 1, Requested: 15, Entered: 25, Exited: 35},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("intervals %+v, want %+v", got, want)
	}
	if m.Dropped() != 1 {
		t.Errorf("dropped %d, want 1", m.Dropped())
	}
}
