package lockd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestUnlockWithoutACleanAnswerEndsTheLease: once an UNLOCK is sent, the
// Lease ends whatever comes back. A fake server (the only way to make a
// server hold an answer back, or refuse an UNLOCK with an error other than
// notheld, on cue) swallows the first UNLOCK and refuses the second with
// ERR syntax: Unlock returns the ctx's error, then the refusal, and each
// Lease is over (Done closed, Err says why); the refused one's grant is
// released again by its token.
func TestUnlockWithoutACleanAnswerEndsTheLease(t *testing.T) {
	unlocks := make(chan string, 4)
	addr := startFakeServer(t, unlockTrouble(unlocks))
	c := dial(t, addr, "doubt")

	a, err := c.Lock(testCtx(t), "a", Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testCtx(t))
	go func() { <-unlocks; cancel() }() // the UNLOCK reached the server, which says nothing
	if err := a.Unlock(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Unlock without an answer: %v", err)
	}
	select {
	case <-a.Done():
	default:
		t.Fatal("the Lease is live after an UNLOCK whose outcome is unknown")
	}
	if err := a.Err(); !errors.Is(err, ErrLeaseExpired) || !strings.Contains(err.Error(), "may or may not be released") {
		t.Fatalf("Err after an unknown UNLOCK: %v", err)
	}

	b, err := c.Lock(testCtx(t), "b", Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Unlock(testCtx(t)); !errors.Is(err, ErrSyntax) {
		t.Fatalf("Unlock refused: %v", err)
	}
	<-unlocks // the refused one
	if got := <-unlocks; got != fmt.Sprintf("UNLOCK b token=%d", b.Token) {
		t.Fatalf("after the refusal the client sent %q; want the grant released by its token", got)
	}
	if err := b.Err(); !errors.Is(err, ErrLeaseExpired) || !errors.Is(err, ErrSyntax) {
		t.Fatalf("Err after a refused UNLOCK: %v", err)
	}
	c.Close()
}

// unlockTrouble answers as a server that grants every LOCK, answers the
// first UNLOCK only with its reply to the next request (late), refuses the
// second with ERR syntax, and accepts the rest; every UNLOCK line goes to
// unlocks.
func unlockTrouble(unlocks chan string) func(Request, string) (string, error) {
	token, n := 0, 0
	late := ""
	return func(req Request, line string) (string, error) {
		var reply string
		switch req.Verb {
		case VerbHello:
			reply = "OK HELLO session=1 idle=0s ttl=0s max-locks=256 max-line=1024 auth=false server=mplock/fake"
		case VerbLock:
			token++
			reply = fmt.Sprintf("OK LOCKED %s WRITE token=%d", req.Name, token)
		case VerbUnlock:
			unlocks <- line
			n++
			switch n {
			case 1:
				late = fmt.Sprintf("OK UNLOCKED %s token=%d\n", req.Name, req.Token)
				return "", nil // held back until the next request
			case 2:
				reply = "ERR syntax refused for this test"
			default:
				reply = fmt.Sprintf("OK UNLOCKED %s token=%d", req.Name, req.Token)
			}
		case VerbPing:
			reply = "OK PONG"
		case VerbQuit:
			reply = "OK BYE"
		default:
			return "", fmt.Errorf("unexpected request %q", line)
		}
		reply, late = late+reply, ""
		return reply, nil
	}
}
