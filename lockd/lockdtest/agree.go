// Package lockdtest holds checks that tests of the lock service share.
package lockdtest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"mplock/lockd"
)

// CheckAgreement fails t unless client a and the lock service agree on
// who holds names: every Lease in live (live[i] for names[i], nil where the
// client believes it holds nothing) that is still live is the only holder
// of its name, with its token, as a linearizable CHECK through checker
// sees it; no name is held by a's session without a live Lease that says
// so (a client releases what it did not know of in the background after a
// RESUME, so this is polled for up to wait); and every name a holds no
// Lease on can be locked and unlocked again by a. The calls are bounded
// by ctx.
func CheckAgreement(ctx context.Context, t testing.TB, a, checker *lockd.Client, names []string, live []*lockd.Lease, wait time.Duration) {
	t.Helper()
	holders := func(n string) []lockd.HolderStatus {
		r, err := checker.Check(ctx, n, lockd.ConsistencyConsistent)
		if err != nil {
			t.Fatalf("CHECK %s: %v", n, err)
		}
		return r.Holders
	}
	for i, l := range live {
		if l == nil || l.Err() != nil {
			continue
		}
		if h := holders(names[i]); len(h) != 1 || h[0].Session != a.Session() || h[0].Token != l.Token {
			t.Errorf("the client's Lease on %s (token %d) is live, but the service says its holders are %+v", names[i], l.Token, h)
		}
	}
	var stray []string
	for deadline := time.Now().Add(wait); ; {
		stray = nil
		for i, n := range names {
			for _, h := range holders(n) {
				if h.Session == a.Session() && (live[i] == nil || live[i].Err() != nil || live[i].Token != h.Token) {
					stray = append(stray, fmt.Sprintf("%s (token %d)", n, h.Token))
				}
			}
		}
		if len(stray) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(stray) > 0 {
		t.Fatalf("the session holds %d locks that no goroutine knows of: %s", len(stray), strings.Join(stray, ", "))
	}
	for i, n := range names {
		if live[i] != nil {
			continue
		}
		l, err := a.Lock(ctx, n, lockd.Exclusive)
		if err != nil {
			t.Errorf("Lock %s after the run: %v", n, err)
			continue
		}
		if err := l.Unlock(ctx); err != nil {
			t.Errorf("Unlock %s after the run: %v", n, err)
		}
	}
}
