package lockd

import (
	"mplock/internal/proctest"

	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// TestMutualExclusion200Clients runs 200 clients (8 processes of 25
// sessions each) hammering 4 names in both modes. Each holder appends
// "enter" and "exit" lines to the name's log file while it holds the lock;
// the test then reads the logs, which the server never sees, and checks
// that no writer's interval overlapped any other holder's, and that
// writers' tokens rose in the order they held the lock.
func TestMutualExclusion200Clients(t *testing.T) {
	const procs, perProc, rounds = 8, 25, 10
	_, addr := startServer(t, Config{})
	dir := t.TempDir()
	var hs []*proctest.Helper
	for p := 0; p < procs; p++ {
		hs = append(hs, startHelper(t, "hammer", "LOCKD_ADDR="+addr, "LOCKD_DIR="+dir,
			"LOCKD_CLIENTS="+strconv.Itoa(perProc), "LOCKD_ROUNDS="+strconv.Itoa(rounds), "LOCKD_NAMES=4"))
	}
	for _, h := range hs {
		if got := h.Line(t); got != "DONE" {
			t.Fatalf("hammer process said %q", got)
		}
		if err := h.Cmd.Wait(); err != nil {
			t.Fatalf("hammer process: %v", err)
		}
	}
	total := 0
	for n := 0; n < 4; n++ {
		total += checkLog(t, filepath.Join(dir, fmt.Sprintf("name-%d.log", n)))
	}
	if want := procs * perProc * rounds; total != want {
		t.Fatalf("%d critical sections logged, want %d", total, want)
	}
}

// checkLog checks one name's enter/exit log and returns its number of
// critical sections.
func checkLog(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	inside := map[string]string{} // who -> mode
	var lastWriterToken, maxToken uint64
	n := 0
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		var op, mode, who string
		var token uint64
		if _, err := fmt.Sscan(sc.Text(), &op, &mode, &token, &who); err != nil {
			t.Fatalf("%s:%d: %q: %v", path, line, sc.Text(), err)
		}
		switch op {
		case "enter":
			for other, m := range inside {
				if mode == "WRITE" || m == "WRITE" {
					t.Fatalf("%s:%d: %s %s entered while %s held it %s", path, line, who, mode, other, m)
				}
			}
			if mode == "WRITE" {
				if token <= maxToken || token <= lastWriterToken {
					t.Fatalf("%s:%d: writer token %d not above earlier tokens (max %d)", path, line, token, maxToken)
				}
				lastWriterToken = token
			}
			maxToken = max(maxToken, token)
			inside[who] = mode
			n++
		case "exit":
			if _, ok := inside[who]; !ok {
				t.Fatalf("%s:%d: %s exits without having entered", path, line, who)
			}
			delete(inside, who)
		}
	}
	if len(inside) != 0 {
		t.Fatalf("%s: still inside at the end: %v", path, inside)
	}
	return n
}

// hammer is the helper process of TestMutualExclusion200Clients.
func hammer(ctx context.Context, addr string) int {
	clients, _ := strconv.Atoi(os.Getenv("LOCKD_CLIENTS"))
	rounds, _ := strconv.Atoi(os.Getenv("LOCKD_ROUNDS"))
	names, _ := strconv.Atoi(os.Getenv("LOCKD_NAMES"))
	dir := os.Getenv("LOCKD_DIR")
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			who := fmt.Sprintf("%d-%d", os.Getpid(), i)
			c, err := Dial(ctx, addr, Options{Client: "h" + who})
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for r := 0; r < rounds; r++ {
				n := rand.IntN(names)
				mode := Exclusive
				if rand.IntN(4) == 0 {
					mode = Shared
				}
				l, err := c.Lock(ctx, fmt.Sprintf("name-%d", n), mode)
				if err != nil {
					errs <- err
					return
				}
				f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("name-%d.log", n)), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
				if err != nil {
					errs <- err
					return
				}
				fmt.Fprintf(f, "enter %s %d %s\n", mode, l.Token, who)
				fmt.Fprintf(f, "exit %s %d %s\n", mode, l.Token, who)
				f.Close()
				if err := l.Unlock(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		fmt.Fprintln(os.Stderr, "hammer:", err)
		return 1
	}
	fmt.Println("DONE")
	return 0
}
