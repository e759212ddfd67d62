package lockdtest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"mplock/lockd"
)

// Churn is goroutines of one client each locking and unlocking a name of
// its own in a loop until Stop: the load under which tests make a fault
// (a member killed, replies withheld) and then check with CheckAgreement
// that the client and the service agree on who holds what.
type Churn struct {
	names  []string
	rounds atomic.Int64
	stop   chan struct{}
	wg     sync.WaitGroup
	live   []*lockd.Lease // live[i]: a Lease goroutine i kept (its Unlock failed, the Lease not ended)
	mu     sync.Mutex
	errs   map[string]int
}

// StartChurn starts n goroutines on a, goroutine i on the name
// prefix-i, each Lock and Unlock bounded by timeout. A goroutine stops
// when Stop is called or a ends, and also when an Unlock fails while its
// Lease has not ended: the client still believes it holds that name, and
// Stop returns that Lease.
func StartChurn(a *lockd.Client, n int, prefix string, timeout time.Duration) *Churn {
	ch := &Churn{stop: make(chan struct{}), live: make([]*lockd.Lease, n), errs: map[string]int{}}
	for i := range n {
		ch.names = append(ch.names, fmt.Sprintf("%s-%d", prefix, i))
	}
	for i, name := range ch.names {
		ch.wg.Add(1)
		go func() {
			defer ch.wg.Done()
			for {
				select {
				case <-ch.stop:
					return
				case <-a.Done():
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				l, err := a.Lock(ctx, name, lockd.Exclusive)
				cancel()
				if err != nil {
					ch.count("lock: " + err.Error())
					continue
				}
				ctx, cancel = context.WithTimeout(context.Background(), timeout)
				err = l.Unlock(ctx)
				cancel()
				if err != nil {
					ch.count("unlock: " + err.Error())
					if l.Err() == nil {
						ch.live[i] = l
						return
					}
				}
				ch.rounds.Add(1)
			}
		}()
	}
	return ch
}

func (ch *Churn) count(e string) {
	ch.mu.Lock()
	ch.errs[e]++
	ch.mu.Unlock()
}

// Names returns the names locked, goroutine i's at i.
func (ch *Churn) Names() []string { return ch.names }

// Rounds returns how many lock-and-unlock rounds have succeeded so far.
func (ch *Churn) Rounds() int64 { return ch.rounds.Load() }

// Stop ends the goroutines and waits for them. It returns the Leases
// kept (live[i] for Names()[i], nil where none; for CheckAgreement) and
// the errors seen, counted by their text.
func (ch *Churn) Stop() (live []*lockd.Lease, errs map[string]int) {
	close(ch.stop)
	ch.wg.Wait()
	return ch.live, ch.errs
}
