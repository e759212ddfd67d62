package replica

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mplock/lockd"
)

// testTimeout is the safety net of every wait in these tests: generous,
// never an assertion of speed.
const testTimeout = 20 * time.Second

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// client is a session as a server would hold it: an id, a secret and a
// request counter.
type client struct {
	id     lockd.SessionID
	secret string
	req    atomic.Uint64
}

var secretSeq atomic.Uint64

// openSession opens a session at n.
func openSession(t testing.TB, n *Node, name string, ttl time.Duration) *client {
	t.Helper()
	secret := fmt.Sprintf("secret-%s-%d", name, secretSeq.Add(1))
	res, err := n.Apply(testCtx(t), OpenSession(secret, ttl, name, 1, "127.0.0.1:1", n.cfg.NodeID))
	if err != nil || res.Err != nil {
		t.Fatalf("open session %s at %s: %v %v", name, n.cfg.NodeID, err, res)
	}
	return &client{id: res.Session, secret: secret}
}

func (c *client) next() uint64 { return c.req.Add(1) }

// mustApply applies cmd at n, retrying an ambiguous outcome unchanged, and
// fails the test on any other error.
func mustApply(t testing.TB, n *Node, cmd Command) *Result {
	t.Helper()
	ctx := testCtx(t)
	for {
		res, err := n.Apply(ctx, cmd)
		if err == nil {
			return res
		}
		if !errors.Is(err, ErrAmbiguous) || ctx.Err() != nil {
			t.Fatalf("%s at %s: %v", cmd.Op, n.cfg.NodeID, err)
		}
	}
}

// recorder collects what the observer of one node saw.
type recorder struct {
	mu      sync.Mutex
	applied []Applied
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{}, 1)} }

func (r *recorder) observe(a Applied) {
	r.mu.Lock()
	r.applied = append(r.applied, a)
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// waitFor waits until pred holds for some applied entry, and returns it.
func (r *recorder) waitFor(t testing.TB, what string, pred func(Applied) bool) Applied {
	t.Helper()
	deadline := time.After(testTimeout)
	for {
		r.mu.Lock()
		for _, a := range r.applied {
			if pred(a) {
				r.mu.Unlock()
				return a
			}
		}
		r.mu.Unlock()
		select {
		case <-r.changed:
		case <-deadline:
			t.Fatalf("no applied entry where %s within %v", what, testTimeout)
		}
	}
}

func (r *recorder) all() []Applied {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Applied(nil), r.applied...)
}

// owners reads name's holders at n with consistency c.
func owners(t testing.TB, n *Node, c Consistency, name string) []lockd.HolderStatus {
	t.Helper()
	var out []lockd.HolderStatus
	if _, err := n.Read(testCtx(t), c, func(v View) error {
		out = v.Owners(name)
		return nil
	}); err != nil {
		t.Fatalf("read %s at %s (%s): %v", name, n.cfg.NodeID, c, err)
	}
	return out
}

// status reads name's status at n with consistency c.
func lockStatus(t testing.TB, n *Node, c Consistency, name string) lockd.LockStatus {
	t.Helper()
	var st lockd.Status
	if _, err := n.Read(testCtx(t), c, func(v View) error {
		st = v.Status(name)
		return nil
	}); err != nil {
		t.Fatalf("read %s at %s (%s): %v", name, n.cfg.NodeID, c, err)
	}
	if len(st.Locks) == 0 {
		return lockd.LockStatus{Name: name}
	}
	return st.Locks[0]
}

// follower returns the index of a live node other than the leader.
func follower(c *Cluster, leader int) int {
	for i := range c.Len() {
		if i != leader && c.Node(i) != nil {
			return i
		}
	}
	return -1
}
