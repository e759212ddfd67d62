package lockd

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"sync"
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

// BenchmarkServerRaw measures the server alone: acquire/release pairs from
// bare protocol clients, each reading its replies in its own goroutine (as
// lockbench's mplock-raw driver does), on 1 name by 1 client, 16 distinct
// names by 16 clients, and 1 name shared by 16 clients. The pairs are
// divided among the clients; ns/op is per pair.
func BenchmarkServerRaw(b *testing.B) {
	for _, sc := range []struct {
		name    string
		clients int
		shared  bool
	}{{"1client", 1, false}, {"16distinct", 16, false}, {"16shared", 16, true}} {
		b.Run(sc.name, func(b *testing.B) {
			_, addr := startServer(b, Config{})
			conns := make([]net.Conn, sc.clients)
			for i := range conns {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				conns[i] = c
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for i, c := range conns {
				name := fmt.Sprintf("bench-%d", i)
				if sc.shared {
					name = "bench-shared"
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					br := bufio.NewReader(c)
					lock, unlock := []byte("LOCK "+name+"\n"), []byte("UNLOCK "+name+"\n")
					for next.Add(1) <= int64(b.N) {
						c.Write(lock)
						line, err := br.ReadSlice('\n')
						if err == nil && bytes.HasPrefix(line, []byte("OK QUEUED")) {
							_, err = br.ReadSlice('\n')
						}
						if err == nil {
							c.Write(unlock)
							_, err = br.ReadSlice('\n')
						}
						if err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}
