package lockd

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"mplock/internal/safefile"
)

// A TokenStore numbers a server's fencing tokens across its restarts, so
// that the first token after a restart is above every token before it (a
// resource that refuses tokens lower than the highest it has seen then
// accepts the new holders, and still refuses the old ones).
//
// The server calls Start once, before its first grant, and hands out
// tokens above what it returns; it calls Reserve before it hands out a
// token above the last ceiling Reserve returned. A store is used by one
// server at a time; the server serialises its calls.
type TokenStore interface {
	// Start returns the value that every token of this run is above.
	Start() (Token, error)
	// Reserve makes every token up to need (at least) safe to hand out,
	// and returns the ceiling it reserved. A durable store records the
	// ceiling before it returns, so that after a crash Start returns at
	// least that ceiling: a crash skips tokens but never repeats one.
	Reserve(need Token) (Token, error)
	// Kind names the rule, as HELLO reports it: "epoch" or "stored".
	Kind() string
}

// EpochTokens numbers tokens from the time the server starts: this run's
// tokens are above At in microseconds since 1970 (about 1.8e15 in 2027,
// well within the 2^53 that JSON numbers hold exactly). Nothing is
// written. The first token after a restart is above every token of the
// run before unless that run handed out more tokens than microseconds
// passed between the two starts (a million grants a second for its whole
// life: far beyond one server), or the clock was set back between the
// two starts. A zero At means time.Now() when Start is called.
type EpochTokens struct{ At time.Time }

func (e EpochTokens) Start() (Token, error) {
	at := e.At
	if at.IsZero() {
		at = time.Now()
	}
	us := at.UnixMicro()
	if us < 0 {
		return 0, fmt.Errorf("lockd: clock before 1970 (%v): cannot number tokens by it", at)
	}
	return Token(us), nil
}

// Reserve has nothing to record: every token is reserved.
func (EpochTokens) Reserve(Token) (Token, error) { return ^Token(0), nil }

func (EpochTokens) Kind() string { return "epoch" }

// DirTokens keeps the fencing counter in a data directory (mplock serve
// --data-dir): the file "tokens" holds a ceiling that no token handed out
// has passed, written ahead in blocks of TokenBlock tokens (to a new file,
// synced, renamed over the old, the directory synced) before any token
// above the old ceiling is handed out. A restart starts above the stored
// ceiling and above the start time in microseconds (as EpochTokens), so
// tokens rise across restarts however the server stopped and whatever the
// clock did, and across a switch to or from --data-dir. A crash skips at
// most one block of tokens.
type DirTokens struct {
	dir string
	mu  sync.Mutex
	top Token // the ceiling on disk
}

// TokenBlock is how many tokens DirTokens reserves with one write.
const TokenBlock = 1 << 16

const tokensFile = "tokens"

// OpenDirTokens opens the token store in dir, creating dir (mode 0700) if
// it does not exist. It refuses a dir that is a symbolic link, is not
// owned by this user, or is open to group or others, and a tokens file in
// it that is not a private regular file of this user.
func OpenDirTokens(dir string) (*DirTokens, error) {
	if err := safefile.PrivateDir(dir); err != nil {
		return nil, fmt.Errorf("lockd: data dir: %w", err)
	}
	d := &DirTokens{dir: dir}
	b, err := safefile.ReadTrusted(filepath.Join(dir, tokensFile), 64)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return d, nil
	case err != nil:
		return nil, fmt.Errorf("lockd: token store: %w", err)
	}
	n, err := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("lockd: token store %s: not a number: %q", filepath.Join(dir, tokensFile), b)
	}
	d.top = Token(n)
	return d, nil
}

// Start returns the stored ceiling, or the start time in microseconds if
// that is higher (a new store, or a clock far ahead).
func (d *DirTokens) Start() (Token, error) {
	d.mu.Lock()
	top := d.top
	d.mu.Unlock()
	epoch, err := EpochTokens{}.Start()
	if err != nil && top == 0 {
		return 0, err
	}
	return max(top, epoch), nil
}

// Reserve writes a ceiling of need+TokenBlock, unless the stored one is
// already at least need.
func (d *DirTokens) Reserve(need Token) (Token, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if need <= d.top {
		return d.top, nil
	}
	top := need + TokenBlock
	path := filepath.Join(d.dir, tokensFile)
	if _, err := safefile.WriteAtomic(path, strconv.AppendUint(nil, uint64(top), 10), 0o600); err != nil {
		return d.top, fmt.Errorf("lockd: token store: write %s: %w", path, err)
	}
	d.top = top
	return top, nil
}

func (d *DirTokens) Kind() string { return "stored" }

var (
	_ TokenStore = EpochTokens{}
	_ TokenStore = (*DirTokens)(nil)
)
