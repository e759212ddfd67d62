package replica

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// logCacheSize is how many recent log entries the LogCache keeps in
// memory in front of bolt: followers catching up and the read path (which
// looks at the entries between the applied and the commit index) read
// them from memory.
const logCacheSize = 1024

// stores are a node's raft log, stable store and snapshots.
type stores struct {
	logs   raft.LogStore
	stable raft.StableStore
	snaps  raft.SnapshotStore
	close  func() error
}

// ErrDataDir wraps every refusal of a data directory.
var ErrDataDir = errors.New("replica: data dir")

// openDiskStores opens (creating if needed) the stores in dir: raft.db
// (bolt, for the log and the stable store, behind a LogCache) and
// snapshots/ (raft's FileSnapshotStore, keeping DefaultRetainSnapshots).
// dir must be private (checkPrivateDir). Another process holding raft.db
// makes it fail within a second instead of waiting.
func openDiskStores(dir string, logger hclog.Logger) (*stores, error) {
	if err := checkPrivateDir(dir); err != nil {
		return nil, err
	}
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db"),
		BoltOptions: &bbolt.Options{Timeout: time.Second}})
	if err != nil {
		if errors.Is(err, bbolt.ErrTimeout) {
			return nil, fmt.Errorf("%w %s: raft.db is in use by another process", ErrDataDir, dir)
		}
		return nil, fmt.Errorf("%w %s: open raft.db: %w", ErrDataDir, dir, err)
	}
	cache, err := raft.NewLogCache(logCacheSize, bolt)
	if err != nil {
		bolt.Close()
		return nil, err
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, DefaultRetainSnapshots, logger)
	if err != nil {
		bolt.Close()
		return nil, fmt.Errorf("%w %s: snapshots: %w", ErrDataDir, dir, err)
	}
	// raft makes it 0755; inside a private dir, but private itself too.
	if err := os.Chmod(filepath.Join(dir, "snapshots"), 0o700); err != nil {
		bolt.Close()
		return nil, fmt.Errorf("%w %s: snapshots: %w", ErrDataDir, dir, err)
	}
	return &stores{logs: cache, stable: bolt, snaps: snaps, close: bolt.Close}, nil
}

// memStores are stores that keep nothing on disk.
func memStores() *stores {
	mem := raft.NewInmemStore()
	return &stores{logs: mem, stable: mem, snaps: raft.NewInmemSnapshotStore(), close: func() error { return nil }}
}

// checkPrivateDir creates dir (mode 0700) if it does not exist, and
// refuses it unless it is a directory, not a symlink, owned by the
// effective uid, with no permission for group or others: the log holds
// every session's secret hash and every lock, and a node must not trust a
// log someone else could have written.
func checkPrivateDir(dir string) error {
	if dir == "" {
		return fmt.Errorf("%w: empty path", ErrDataDir)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w %s: %w", ErrDataDir, dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("%w %s: %w", ErrDataDir, dir, err)
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%w %s: is a symlink; give the directory itself", ErrDataDir, dir)
	case !fi.IsDir():
		return fmt.Errorf("%w %s: not a directory", ErrDataDir, dir)
	case fi.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("%w %s: mode %04o lets others in; want 0700 (chmod 700 %s)", ErrDataDir, dir, fi.Mode().Perm(), dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%w %s: owned by uid %d, not by this user (%d)", ErrDataDir, dir, st.Uid, os.Geteuid())
	}
	return nil
}
