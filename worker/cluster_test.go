package worker

import (
	"bufio"
	"context"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"mplock/lockd/cluster/clustertest"
	"mplock/lockd/replica/lincheck"
	"mplock/register"
)

func TestClusterArgsRoundTrip(t *testing.T) {
	spec := ClusterSpec{ID: "3f2a0c1e-0000-4000-8000-000000000001", Servers: []string{"127.0.0.1:1", "127.0.0.1:2"},
		Names: []string{"file_A", "file_B"}, Consistency: Consistent, Registers: "/tmp/r", Think: time.Millisecond,
		Hold: 2 * time.Millisecond, Stall: time.Second, Timeout: 3 * time.Second, Seed: 7, TokenFile: "/tmp/run/secret"}
	got, err := ParseClusterSpec(spec.Args())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, spec) {
		t.Fatalf("round trip: %+v, want %+v", got, spec)
	}
	for _, bad := range [][]string{
		{"--servers", "a", "--names", "x", "--registers", "r"},
		{"--id", "u", "--names", "x", "--registers", "r"},
		{"--id", "u", "--servers", "a", "--names", "x"},
		{"--id", "u", "--servers", "a", "--names", "x", "--registers", "r", "--consistency", "eventual"},
	} {
		if _, err := ParseClusterSpec(bad); err == nil {
			t.Errorf("ParseClusterSpec(%q) accepted", bad)
		}
	}
}

// clusterRun runs clients against dial for d and returns every note.
func clusterRun(t *testing.T, clients int, d time.Duration, dial ClusterDialer, servers []string, reg string) []ClusterNote {
	t.Helper()
	var (
		mu    sync.Mutex
		notes []ClusterNote
		wg    sync.WaitGroup
	)
	var controls []*io.PipeWriter
	ready := make(chan struct{}, clients)
	for i := range clients {
		cr, cw := io.Pipe()
		nr, nw := io.Pipe()
		controls = append(controls, cw)
		spec := ClusterSpec{ID: string(rune('a'+i)) + "-client", Servers: servers, Names: []string{"file_A", "file_B"},
			Consistency: Mixed, Registers: reg, Timeout: 5 * time.Second, Seed: uint64(i + 1)}
		wg.Add(2)
		go func() {
			defer wg.Done()
			defer nw.Close()
			if err := RunCluster(context.Background(), spec, dial, cr, nw); err != nil {
				t.Errorf("client %d: %v", i, err)
			}
		}()
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(nr)
			for sc.Scan() {
				n, err := ParseClusterNote(sc.Text())
				if err != nil {
					t.Error(err)
					continue
				}
				if n.Kind == ClusterNoteReady {
					ready <- struct{}{}
				}
				mu.Lock()
				notes = append(notes, n)
				mu.Unlock()
			}
		}()
	}
	for range clients {
		select {
		case <-ready:
		case <-time.After(10 * time.Second):
			t.Fatal("clients not ready after 10s")
		}
	}
	for _, c := range controls {
		io.WriteString(c, ClusterGo+"\n")
	}
	time.Sleep(d) // the length of the run, not a synchronisation
	for _, c := range controls {
		c.Close()
	}
	wg.Wait()
	return notes
}

// newRegisters makes the registers of file_A and file_B in a directory.
func newRegisters(t *testing.T, fencing bool) string {
	dir := t.TempDir()
	for _, name := range []string{"file_A", "file_B"} {
		if err := register.Create(filepath.Join(dir, name), fencing); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func historyOf(notes []ClusterNote) *lincheck.History {
	h := lincheck.NewHistoryAt(time.Unix(0, 0))
	for _, n := range notes {
		if in, out, call, ret, ok := n.HistoryOp(); ok {
			h.Record(in, out, call, ret)
		}
	}
	return h
}

// TestClusterClientsOnAReplicatedService: four clients doing the seed's
// operations at random members of a 3-member cluster, and the register's
// read-modify-write, make a linearizable history and lose no update of
// the register; their requests were answered by followers as well as by
// the leader, and stale checks by followers from their own tables.
func TestClusterClientsOnAReplicatedService(t *testing.T) {
	addrs, bes := clustertest.Start(t, 3, nil)
	reg := newRegisters(t, true)
	notes := clusterRun(t, 4, 1500*time.Millisecond, LockdDialer(""), addrs, reg)
	leader := bes[0].Node().Status().Leader // no fault: the leader all along
	var ops, grants, writes int
	roles := map[string]int{}
	for _, n := range notes {
		switch {
		case n.Kind == ClusterNoteOp:
			ops++
			if n.Op == "preempt" && n.Outcome == OutcomeOK {
				grants++
			}
			if n.Outcome == OutcomeOK || n.Outcome == OutcomeRefused {
				role := n.Reply.Role // a check's answer says it
				if n.Op != "check" {
					role = map[bool]string{true: "leader", false: "follower"}[n.Reply.Node == leader]
				}
				roles[n.Op+" "+string(n.Reply.Consistency)+" "+role]++
			}
		case n.Kind == ClusterNoteRegister && !n.Refused:
			writes++
		case n.Kind == ClusterNoteFailed:
			t.Errorf("a client failed: %s", n.Text)
		}
	}
	t.Logf("answered by: %v", roles)
	if grants == 0 || writes != grants {
		t.Fatalf("%d operations, %d grants, %d register writes: want grants, each with its write", ops, grants, writes)
	}
	for _, want := range []string{"preempt  follower", "preempt  leader", "release  follower", "check stale follower"} {
		if roles[want] == 0 {
			t.Errorf("no %q among the answers %v", want, roles)
		}
	}
	v := lincheck.CheckOperations(historyOf(notes).Operations(), time.Minute)
	if !v.Linearizable() {
		t.Fatalf("history of %d operations not linearizable (%v)", v.Operations, v.Result)
	}
	t.Logf("porcupine: %d operations (of %d noted) checked in %v", v.Operations, ops, v.Took)
	var total uint64
	for _, name := range []string{"file_A", "file_B"} {
		st, err := register.ReadState(filepath.Join(reg, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Lost != 0 || st.Refused != 0 {
			t.Fatalf("register of %s: %+v: want nothing lost or refused", name, st)
		}
		total += st.Value
	}
	if total != uint64(writes) {
		t.Fatalf("registers hold %d after %d writes", total, writes)
	}
}

// TestDialClusterRefusesASingleServer: the cluster's dialer says so when
// it is pointed at a single lock server.
func TestDialClusterRefusesASingleServer(t *testing.T) {
	_, err := DialCluster(context.Background(), []string{startServer(t)}, "u.1", "", nil)
	if err == nil || !strings.Contains(err.Error(), "not a cluster member") {
		t.Fatalf("DialCluster at a single server: %v", err)
	}
}

// localGrants is the broken service of the check's own test: a service
// that grants every other preempt from its own view without asking
// anyone, as a follower granting from its map would.
type localGrants struct {
	ClusterService
	n     int
	token *uint64
	mu    *sync.Mutex
}

func (l *localGrants) Preempt(ctx context.Context, name, at string) (Reply, error) {
	l.n++
	if l.n%2 == 0 {
		l.mu.Lock()
		*l.token += 1000
		tok := *l.token
		l.mu.Unlock()
		return Reply{OK: true, Token: tok, Node: at, Role: "follower"}, nil
	}
	return l.ClusterService.Preempt(ctx, name, at)
}

// TestClusterCheckCatchesLocalGrants: the same run against a service that
// sometimes grants on its own is not linearizable.
func TestClusterCheckCatchesLocalGrants(t *testing.T) {
	addrs, _ := clustertest.Start(t, 3, nil)
	var (
		mu    sync.Mutex
		token uint64 = 1 << 62
	)
	dial := func(ctx context.Context, servers []string, client string, note func(ClusterNote)) (ClusterService, error) {
		s, err := DialCluster(ctx, servers, client, "", note)
		if err != nil {
			return nil, err
		}
		return &localGrants{ClusterService: s, token: &token, mu: &mu}, nil
	}
	notes := clusterRun(t, 4, time.Second, dial, addrs, newRegisters(t, true))
	ops := historyOf(notes).Operations()
	if v := lincheck.CheckOperations(ops, time.Minute); v.Linearizable() {
		t.Fatalf("a history with local grants (%d operations) passed the check", v.Operations)
	}
	if _, ok := lincheck.FailingSlice(ops, time.Minute); !ok {
		t.Fatal("no failing slice")
	}
}
