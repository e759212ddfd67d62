package lock

import (
	"context"
	"testing"
)

// BenchmarkLockUnlock measures one uncontended Lock and Unlock of each kind
// in one process: the fast path's cost, system calls included for the kernel
// kinds. Contended figures come from `mplock bench` and scripts/compare.sh,
// which run real worker processes.
//
//	go test -run '^$' -bench LockUnlock ./lock
func BenchmarkLockUnlock(b *testing.B) {
	for _, kind := range []Kind{Flock, Fcntl, Sem, SysV, Spin} {
		b.Run("kind="+kind.String(), func(b *testing.B) {
			l, err := Open(kind, newShared(b, kind).config())
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				if err := l.Lock(ctx); err != nil {
					b.Fatal(err)
				}
				if err := l.Unlock(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTryLockBusy measures a failed TryLock: what a waiter pays per look
// at a held lock before it blocks.
func BenchmarkTryLockBusy(b *testing.B) {
	for _, kind := range []Kind{Flock, Fcntl, Sem, SysV, Spin} {
		b.Run("kind="+kind.String(), func(b *testing.B) {
			s := newShared(b, kind).config()
			holder, err := Open(kind, s)
			if err != nil {
				b.Fatal(err)
			}
			defer holder.Close()
			if err := holder.Lock(context.Background()); err != nil {
				b.Fatal(err)
			}
			s.Pid = 1 // another identity for the word kinds
			l, err := Open(kind, s)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			b.ResetTimer()
			for b.Loop() {
				if ok, err := l.TryLock(); ok || err != nil {
					b.Fatalf("TryLock of a held lock = %v, %v", ok, err)
				}
			}
		})
	}
}
