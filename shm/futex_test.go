package shm

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestFutexWaitReturnsWhenValueDiffers(t *testing.T) {
	var w atomic.Uint32
	w.Store(1)
	if err := Wait(&w, 0, time.Second); err != nil {
		t.Fatalf("Wait on a changed word = %v, want nil at once", err)
	}
}

func TestFutexWaitTimesOut(t *testing.T) {
	var w atomic.Uint32
	if err := Wait(&w, 0, time.Millisecond); err != ErrTimeout {
		t.Fatalf("Wait = %v, want ErrTimeout", err)
	}
}

// TestFutexWakeAcrossMappings puts a waiter to sleep on one mapping and wakes
// it through another mapping of the same memory, as processes do. A private
// futex (keyed by virtual address) would never deliver this wake-up.
func TestFutexWakeAcrossMappings(t *testing.T) {
	r, b := newBankRegion(t, 1)
	b2, err := OpenBank(reopen(t, r))
	if err != nil {
		t.Fatal(err)
	}
	tids := make(chan int, 1)
	woke := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tids <- unix.Gettid()
		woke <- Wait(&b2.Control.Start, 0, 0) // no timeout
	}()
	tid := <-tids
	// Wait until the waiter's thread sleeps in the kernel's futex wait, so
	// that only our wake can end its wait.
	wchan := "/proc/self/task/" + strconv.Itoa(tid) + "/wchan"
	for deadline := time.Now().Add(10 * time.Second); ; {
		w, err := os.ReadFile(wchan)
		if err != nil || strings.Contains(string(w), "futex") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiter never went to sleep (wchan %q)", w)
		}
		runtime.Gosched()
	}
	b.Control.Start.Store(1)
	n, err := Wake(&b.Control.Start, 1)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("Wake woke %d waiters, want 1: the two mappings do not share a futex", n)
	}
	select {
	case err := <-woke:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiter not woken")
	}
}
