package lockd_test

import (
	"context"
	"fmt"
	"log"
	"net"

	"mplock/lockd"
)

// A server on a free loopback port, and two clients: the second sees the
// name taken, then gets it with a larger fencing token once it is released.
func Example() {
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv, err := lockd.NewServer(lockd.Config{})
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Shutdown(ctx)

	p1, err := lockd.Dial(ctx, ln.Addr().String(), lockd.Options{Client: "P1"})
	if err != nil {
		log.Fatal(err)
	}
	defer p1.Close()
	p2, err := lockd.Dial(ctx, ln.Addr().String(), lockd.Options{Client: "P2"})
	if err != nil {
		log.Fatal(err)
	}
	defer p2.Close()

	first, err := p1.Lock(ctx, "file_A", lockd.Exclusive)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("P1 holds", first.Name, first.Mode)

	_, err = p2.TryLock(ctx, "file_A", lockd.Shared)
	fmt.Println("P2 try:", err)

	st, _ := p2.Status(ctx, "file_A")
	fmt.Println("held by", st.Locks[0].Holders[0].Client)

	first.Unlock(ctx)
	<-first.Done() // closed on Unlock, or when the lock is lost
	second, err := p2.Lock(ctx, "file_A", lockd.Shared)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("P2 holds", second.Name, second.Mode, "with a larger token:", second.Token > first.Token)
	// Output:
	// P1 holds file_A WRITE
	// P2 try: lockd: server: locked: file_A is locked by session 1 (P1) WRITE
	// held by P1
	// P2 holds file_A READ with a larger token: true
}
