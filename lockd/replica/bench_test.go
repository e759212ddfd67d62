package replica

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"mplock/lockd"
)

// BenchmarkApply measures Apply throughput on a real 3-node cluster in
// this process (TCP on loopback, bolt on disk with fsync, the default raft
// timeouts), with requests entering at the leader or at a follower (which
// forwards to the leader and answers once it has applied the entry
// itself), from 1 or 16 concurrent appliers, each locking and unlocking its
// own name. One op is one Apply (a LOCK or an UNLOCK).
//
//	go test -run '^$' -bench Apply -benchtime 3s ./lockd/replica/
func BenchmarkApply(b *testing.B) {
	for _, at := range []string{"leader", "follower"} {
		for _, appliers := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/appliers=%d", at, appliers), func(b *testing.B) {
				c := newTCPCluster(b, 3, Config{CommitTimeout: benchCommitTimeout()})
				l := c.leader()
				n := c.nodes[l]
				if at == "follower" {
					n = c.nodes[c.other(l)]
				}
				clients := make([]*client, appliers)
				for i := range clients {
					clients[i] = openSession(b, n, fmt.Sprintf("bench%d", i), time.Minute)
				}
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				start := time.Now()
				for i, cl := range clients {
					wg.Add(1)
					go func() {
						defer wg.Done()
						name := fmt.Sprintf("bench-%d", i)
						for k := 0; next.Add(1) <= int64(b.N); k++ {
							cmd := Lock(cl.id, cl.next(), lockd.LockRequest{Name: name})
							if k%2 == 1 {
								cmd = Unlock(cl.id, cl.next(), name, 0)
							}
							res, err := n.Apply(context.Background(), cmd)
							if err != nil || res.Err != nil {
								b.Errorf("apply: %v %v", err, res)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "applies/s")
			})
		}
	}
}

var failoverKills = flag.Int("failover.kills", 30, "leader kills (and shutdowns) measured by BenchmarkFailover")

// BenchmarkFailover measures the time from the leader's death to the first
// successful Apply (a LOCK entered at a surviving node), on a real 3-node
// cluster in this process with the default timeouts, over -failover.kills
// leader deaths of each kind: "kill" cuts the leader's connections and
// stops it without a word (what its peers see of a SIGKILL or a power
// loss); "shutdown" is Node.Shutdown, which hands leadership over first.
// The dead node is restarted from its data dir and catches up before the
// next death. Reports p50, p99 and max in ms.
//
//	go test -run '^$' -bench Failover -benchtime 1x ./lockd/replica/ -failover.kills=60
func BenchmarkFailover(b *testing.B) {
	for _, how := range []string{"kill", "shutdown"} {
		b.Run(how, func(b *testing.B) {
			c := newTCPCluster(b, 3, Config{})
			l := c.leader()
			a := openSession(b, c.nodes[l], "a", time.Hour)
			var times []time.Duration
			for range *failoverKills {
				l = c.leader()
				w := c.other(l)
				start := time.Now()
				if how == "kill" {
					c.kill(l)
				} else {
					c.shutdown(l)
				}
				cmd := Lock(a.id, a.next(), lockd.LockRequest{Name: "x"})
				for {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					res, err := c.nodes[w].Apply(ctx, cmd)
					cancel()
					if err == nil && res.Lock.Granted {
						break
					}
					if err == nil || !errors.Is(err, ErrAmbiguous) && !errors.Is(err, ErrNotApplied) {
						b.Fatalf("lock after the leader's death: %v %+v", err, res)
					}
				}
				times = append(times, time.Since(start))
				mustApply(b, c.nodes[w], Unlock(a.id, a.next(), "x", 0))
				c.start(l)
				deadline := time.Now().Add(testTimeout)
				for !c.nodes[l].Status().Ready {
					if time.Now().After(deadline) {
						b.Fatal("the restarted node did not catch up")
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
			b.Logf("%s: %v", how, times)
			q := func(p float64) float64 {
				return float64(times[min(len(times)-1, int(p*float64(len(times))))].Microseconds()) / 1000
			}
			b.ReportMetric(q(0.5), "p50-ms")
			b.ReportMetric(q(0.99), "p99-ms")
			b.ReportMetric(float64(times[len(times)-1].Microseconds())/1000, "max-ms")
			b.ReportMetric(float64(len(times)), "deaths")
		})
	}
}

// BenchmarkLinearizabilityCheck measures porcupine's check of histories
// recorded from the in-memory cluster under leader kills (the test's
// workload), per history size.
//
//	go test -run '^$' -bench LinearizabilityCheck -benchtime 1x ./lockd/replica/
func BenchmarkLinearizabilityCheck(b *testing.B) {
	for _, d := range []time.Duration{time.Second, 4 * time.Second, 10 * time.Second} {
		b.Run(d.String(), func(b *testing.B) {
			c := NewCluster(b, 3, Config{})
			v, _ := runWorkload(b, c, 6, d, 400*time.Millisecond)
			if !v.Linearizable() {
				b.Fatalf("not linearizable: %v", v.Result)
			}
			b.ReportMetric(float64(v.Operations), "ops")
			b.ReportMetric(v.Took.Seconds()*1000, "check-ms")
		})
	}
}

var benchCommitTimeoutFlag = flag.Duration("bench.commit-timeout", 0, "raft CommitTimeout for BenchmarkApply (0: the default)")

func benchCommitTimeout() time.Duration { return *benchCommitTimeoutFlag }

// BenchmarkStoreLogs measures what one raft commit costs each member's
// disk: the log store of a data dir (bolt behind the LogCache, as a node
// opens it) storing one 256-byte entry, and, for scale, one 4 KiB write
// and fdatasync of a plain file in the same directory. A bolt commit
// syncs twice (its pages, then its meta page); hashicorp/raft stores an
// entry at the leader before it sends it to the followers, which store it
// in turn, so one commit waits for two of these in sequence.
//
//	go test -run '^$' -bench StoreLogs ./lockd/replica/
func BenchmarkStoreLogs(b *testing.B) {
	b.Run("bolt", func(b *testing.B) {
		st, err := openDiskStores(filepath.Join(b.TempDir(), "data"), hclog.NewNullLogger())
		if err != nil {
			b.Fatal(err)
		}
		defer st.close()
		data := make([]byte, 256)
		b.ResetTimer()
		for i := range b.N {
			if err := st.logs.StoreLogs([]*raft.Log{{Index: uint64(i + 1), Term: 1, Type: raft.LogCommand, Data: data}}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fdatasync", func(b *testing.B) {
		f, err := os.Create(filepath.Join(b.TempDir(), "f"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		page := make([]byte, 4096)
		b.ResetTimer()
		for i := range b.N {
			if _, err := f.WriteAt(page, int64(i%256)*4096); err != nil {
				b.Fatal(err)
			}
			if err := syscall.Fdatasync(int(f.Fd())); err != nil {
				b.Fatal(err)
			}
		}
	})
}
