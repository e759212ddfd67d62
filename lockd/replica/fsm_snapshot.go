package replica

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/hashicorp/raft"

	"mplock/lockd"
)

// snapshotVersion is the version of the FSM snapshot this build writes and
// reads.
const snapshotVersion = 1

// fsmState is the FSM's whole state in canonical form: the table's
// snapshot (lockd.TableSnapshot) plus what the FSM keeps itself, with every
// list sorted. Replicas that applied one log encode it to equal bytes.
type fsmState struct {
	Version   int                 `json:"version"`
	Applied   uint64              `json:"applied"`
	LastStamp int64               `json:"last_stamp"`
	Sessions  []sessionRec        `json:"sessions"`
	Nodes     []NodeInfo          `json:"nodes"`
	Table     lockd.TableSnapshot `json:"table"`
}

type sessionRec struct {
	ID          lockd.SessionID `json:"id"`
	SecretHash  string          `json:"secret_hash"`
	TTL         time.Duration   `json:"ttl"` // ns
	Node        string          `json:"node"`
	Opened      int64           `json:"opened"` // Unix ns
	LastRequest uint64          `json:"last_request"`
	Recent      []reply         `json:"recent"`
}

// state captures the FSM's state; f.mu is held (read or write). The result
// shares nothing with the FSM, so it may be encoded while applies go on.
func (f *FSM) state() fsmState {
	st := fsmState{Version: snapshotVersion, Applied: f.applied, LastStamp: f.lastStamp,
		Sessions: make([]sessionRec, 0, len(f.sessions)), Nodes: make([]NodeInfo, 0, len(f.nodes)),
		Table: f.table.Snapshot()}
	for id, m := range f.sessions {
		st.Sessions = append(st.Sessions, sessionRec{ID: id, SecretHash: m.secretHash, TTL: m.ttl, Node: m.node,
			Opened: m.opened, LastRequest: m.lastRequest, Recent: append([]reply{}, m.recent...)})
	}
	sort.Slice(st.Sessions, func(i, j int) bool { return st.Sessions[i].ID < st.Sessions[j].ID })
	for _, n := range f.nodes {
		st.Nodes = append(st.Nodes, n)
	}
	sort.Slice(st.Nodes, func(i, j int) bool { return st.Nodes[i].ID < st.Nodes[j].ID })
	return st
}

// SnapshotBytes returns the FSM's state as its snapshot's bytes.
func (f *FSM) SnapshotBytes() ([]byte, error) {
	f.mu.RLock()
	st := f.state()
	f.mu.RUnlock()
	return json.Marshal(st)
}

// Snapshot captures the state (raft calls it; applies wait meanwhile); the
// encoding happens in Persist, concurrently with later applies.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return &fsmSnapshot{state: f.state()}, nil
}

type fsmSnapshot struct{ state fsmState }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	b, err := json.Marshal(s.state)
	if err == nil {
		_, err = sink.Write(b)
	}
	if err != nil {
		sink.Cancel()
		return fmt.Errorf("replica: persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}

// Restore replaces the state with a snapshot's (raft calls it, with no
// apply running). A snapshot that does not decode or whose table breaks an
// invariant is refused, and the FSM keeps its state.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("replica: read snapshot: %w", err)
	}
	return f.restoreBytes(b)
}

func (f *FSM) restoreBytes(b []byte) error {
	var st fsmState
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return fmt.Errorf("replica: decode snapshot: %w", err)
	}
	if st.Version != snapshotVersion {
		return fmt.Errorf("replica: snapshot version %d, this build reads %d", st.Version, snapshotVersion)
	}
	table, err := lockd.RestoreTable(st.Table)
	if err != nil {
		return fmt.Errorf("replica: restore snapshot: %w", err)
	}
	sessions := make(map[lockd.SessionID]*sessionMeta, len(st.Sessions))
	bySecret := make(map[string]lockd.SessionID, len(st.Sessions))
	for _, s := range st.Sessions {
		sessions[s.ID] = &sessionMeta{secretHash: s.SecretHash, ttl: s.TTL, node: s.Node, opened: s.Opened,
			lastRequest: s.LastRequest, recent: s.Recent}
		bySecret[s.SecretHash] = s.ID
	}
	if len(sessions) != st.Table.Stats.Sessions {
		return fmt.Errorf("replica: restore snapshot: %d sessions, the table has %d", len(sessions), st.Table.Stats.Sessions)
	}
	nodes := make(map[string]NodeInfo, len(st.Nodes))
	for _, n := range st.Nodes {
		nodes[n.ID] = n
	}

	f.mu.Lock()
	f.reset()
	f.table, f.sessions, f.bySecret, f.nodes = table, sessions, bySecret, nodes
	f.lastStamp, f.applied, f.observed = st.LastStamp, st.Applied, st.Applied
	f.appliedIdx.Store(st.Applied)
	for i, ws := range f.waiters {
		if i <= st.Applied {
			for _, w := range ws {
				w <- nil
			}
			delete(f.waiters, i)
		}
	}
	if nd, ok := f.table.NextDeadline(); ok {
		f.next.Store(nd.UnixNano())
	} else {
		f.next.Store(0)
	}
	if f.watcher != nil {
		f.watcher.restored()
	}
	changed := f.changed
	f.changed = make(chan struct{})
	f.mu.Unlock()
	close(changed)
	if f.observer != nil {
		f.observer(Applied{Index: st.Applied, Restored: true})
	}
	return nil
}
