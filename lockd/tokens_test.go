package lockd

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestEpochTokens(t *testing.T) {
	at := time.Date(2027, 1, 2, 3, 4, 5, 6000, time.UTC)
	got, err := EpochTokens{At: at}.Start()
	if err != nil || got != Token(at.UnixMicro()) {
		t.Fatalf("Start = %d, %v; want %d", got, err, at.UnixMicro())
	}
	if got >= 1<<53 {
		t.Fatalf("an epoch token of 2027 (%d) does not fit a JSON number exactly", got)
	}
	if c, err := (EpochTokens{}).Reserve(got + 5); err != nil || c != ^Token(0) {
		t.Fatalf("Reserve = %d, %v; an epoch reserves everything", c, err)
	}
}

// failingTokens reserves up to ceiling once, and then fails.
type failingTokens struct {
	mu      sync.Mutex
	ceiling Token
	calls   int
}

func (f *failingTokens) Start() (Token, error) { return 0, nil }
func (f *failingTokens) Kind() string          { return "stored" }
func (f *failingTokens) Reserve(need Token) (Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls++; f.calls == 1 && need <= f.ceiling {
		return f.ceiling, nil
	}
	return 0, errors.New("disk full")
}

// TestTokenStoreFailureGrantsNothingUnreserved: when the store cannot
// reserve, the server hands out no token above what it reserved: it takes
// every lock back, refuses further changes, and says it failed.
func TestTokenStoreFailureGrantsNothingUnreserved(t *testing.T) {
	srv, addr := startServer(t, Config{Tokens: &failingTokens{ceiling: 3}})
	a, b := dialRaw(t, addr), dialRaw(t, addr)
	a.send("LOCK x")
	a.expect("OK LOCKED x WRITE token=1 ")
	a.send("LOCK y")
	a.expect("OK LOCKED y WRITE token=2 ")
	b.send("LOCK x")
	b.expect("OK QUEUED x")
	// Granting x to b would take token 3, within the ceiling; but a
	// change that could hand out more than the ceiling must reserve
	// first, and the store fails: nothing is granted.
	a.send("LOCK z")
	a.expect("* LOST x WRITE token=1 reason=shutdown")
	a.expect("* LOST y WRITE token=2 reason=shutdown")
	a.expect("ERR shutdown ")
	b.expect("* CANCELLED x WRITE reason=shutdown")
	select {
	case <-srv.Failed():
	case <-time.After(safety):
		t.Fatal("Failed not closed after the store failed")
	}
	if err := srv.Err(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Err = %v", err)
	}
	a.send("UNLOCK x")
	a.expect("ERR shutdown ")
	if st := srv.Stats(); st.Holders != 0 || st.Waiters != 0 {
		t.Fatalf("after the failure the table still holds %+v", st)
	}
}
