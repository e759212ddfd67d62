package register

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"
)

func newRegister(t *testing.T, fencing bool) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "register")
	if err := Create(path, fencing); err != nil {
		t.Fatal(err)
	}
	return path
}

func open(t *testing.T, path string) *Register {
	t.Helper()
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// pausedClient is the story of `mplock cluster`'s paused client: A holds
// the lock with token 1 and reads; it is paused, its lock expires and B
// takes it with token 2, reads and writes; A wakes up and writes what it
// computed before the pause.
func pausedClient(t *testing.T, fencing bool) (aErr error, st State) {
	path := newRegister(t, fencing)
	a, b := open(t, path), open(t, path)
	sa, err := a.Read(1)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.Read(2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Write(2, sb, sb.Value+1); err != nil {
		t.Fatal(err)
	}
	_, aErr = a.Write(1, sa, sa.Value+1)
	st, err = ReadState(path)
	if err != nil {
		t.Fatal(err)
	}
	return aErr, st
}

func TestFencingRefusesTheLateWrite(t *testing.T) {
	err, st := pausedClient(t, true)
	var stale *StaleError
	if !errors.As(err, &stale) || !errors.Is(err, ErrStaleToken) || stale.Token != 1 || stale.Highest != 2 {
		t.Fatalf("late write: %v; want token 1 refused, highest 2", err)
	}
	want := State{Fencing: true, Value: 1, Version: 1, Highest: 2, Accepted: 1, Refused: 1}
	if st != want {
		t.Fatalf("state %+v, want %+v", st, want)
	}
}

func TestWithoutFencingTheUpdateIsLost(t *testing.T) {
	err, st := pausedClient(t, false)
	if err != nil {
		t.Fatalf("late write: %v; want it accepted without fencing", err)
	}
	want := State{Value: 1, Version: 2, Highest: 2, Accepted: 2, Lost: 1}
	if st != want {
		t.Fatalf("state %+v, want %+v (two increments, one lost)", st, want)
	}
}

// TestReadIsFenced: a read with a stale token is refused too, so that a
// client cannot compute from a value it was not entitled to read.
func TestReadIsFenced(t *testing.T) {
	path := newRegister(t, true)
	r := open(t, path)
	if _, err := r.Read(5); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(4); !errors.Is(err, ErrStaleToken) {
		t.Fatalf("read with token 4 after 5: %v; want ErrStaleToken", err)
	}
}

// TestIncrementsSerialised: writers on their own open files (their own
// flock, as separate processes have) doing read-modify-write under a lock
// with rising tokens lose nothing.
func TestIncrementsSerialised(t *testing.T) {
	path := newRegister(t, true)
	var (
		mu    sync.Mutex // stands for the lock service
		token uint64
		wg    sync.WaitGroup
	)
	const writers, each = 4, 50
	for range writers {
		r := open(t, path)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				mu.Lock()
				token++
				snap, err := r.Read(token)
				if err == nil {
					_, err = r.Write(token, snap, snap.Value+1)
				}
				mu.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	st, err := ReadState(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Value != writers*each || st.Lost != 0 || st.Refused != 0 {
		t.Fatalf("state %+v; want value %d, nothing lost or refused", st, writers*each)
	}
}

func TestRefusesWhatIsNotARegister(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x")
	if err := Create(path, true); err != nil {
		t.Fatal(err)
	}
	if err := Create(path, true); err == nil {
		t.Fatal("Create over an existing file succeeded")
	}
	if _, err := parse("something else"); err == nil {
		t.Fatal("parse accepted garbage")
	}
}
