package lockd

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
)

// BenchmarkLockUnlock measures acquire/release pairs through a real
// loopback server: one client, and one client per goroutine on distinct
// names (b.RunParallel). `mplock bench lockd` measures the same against a
// separate server process.
func BenchmarkLockUnlock(b *testing.B) {
	_, addr := startServer(b, Config{})
	ctx := context.Background()
	b.Run("1client", func(b *testing.B) {
		c, err := Dial(ctx, addr, Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		for b.Loop() {
			l, err := c.Lock(ctx, "bench", Exclusive)
			if err != nil {
				b.Fatal(err)
			}
			if err := l.Unlock(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		var n atomic.Int64
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			c, err := Dial(ctx, addr, Options{})
			if err != nil {
				b.Error(err)
				return
			}
			defer c.Close()
			name := fmt.Sprintf("bench-%d", n.Add(1))
			for pb.Next() {
				l, err := c.Lock(ctx, name, Exclusive)
				if err != nil {
					b.Error(err)
					return
				}
				l.Unlock(ctx)
			}
		})
	})
}
