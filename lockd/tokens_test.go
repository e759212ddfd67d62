package lockd

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mplock/internal/safefile"
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

// TestDirTokensSurviveACrash: the ceiling is on disk before any token
// under it is handed out, so a store reopened without any shutdown (as
// after SIGKILL) starts above every token handed out.
func TestDirTokensSurviveACrash(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	d, err := OpenDirTokens(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir: %v, mode %v; want created 0700", err, fi.Mode())
	}
	srv, addr := startServer(t, Config{Tokens: d})
	_, above := srv.Tokens()
	c := dialRaw(t, addr)
	var last uint64
	for range TokenBlock/2 + 1000 { // past half a block: the next is reserved ahead
		c.send("LOCK a\nUNLOCK a")
		last = atoi(t, tokenOf(t, c.expect("OK LOCKED a")))
		c.expect("OK UNLOCKED a")
	}
	if last <= uint64(above) {
		t.Fatalf("token %d not above the start %d", last, above)
	}
	fi, err = os.Stat(filepath.Join(dir, tokensFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("tokens file: %v, mode %v; want 0600", err, fi.Mode())
	}
	// "Crash": open the directory again while the server still runs.
	again, err := OpenDirTokens(dir)
	if err != nil {
		t.Fatal(err)
	}
	start, err := again.Start()
	if err != nil {
		t.Fatal(err)
	}
	if uint64(start) < last {
		t.Fatalf("after a crash the store starts above %d, but %d was handed out", start, last)
	}
}

// TestDirTokensAboveAClockSetBack: the stored ceiling wins over the clock.
func TestDirTokensAboveAClockSetBack(t *testing.T) {
	dir := t.TempDir()
	must(t, os.Chmod(dir, 0o700))
	future := Token(time.Now().Add(24 * time.Hour).UnixMicro())
	if err := os.WriteFile(filepath.Join(dir, tokensFile), []byte(strconv.FormatUint(uint64(future), 10)), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := OpenDirTokens(dir)
	if err != nil {
		t.Fatal(err)
	}
	if start, _ := d.Start(); start < future {
		t.Fatalf("Start = %d, below the stored ceiling %d", start, future)
	}
}

// TestDirTokensRefusesWhatOthersCouldChange: the data directory and its
// tokens file must be this user's and private, and not links.
func TestDirTokensRefusesWhatOthersCouldChange(t *testing.T) {
	root := os.Geteuid() == 0
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the --data-dir
		root  bool                                  // needs root (chown)
	}{
		{"dir is a symlink", func(t *testing.T, dir string) string {
			must(t, os.Mkdir(filepath.Join(dir, "real"), 0o700))
			must(t, os.Symlink("real", filepath.Join(dir, "link")))
			return filepath.Join(dir, "link")
		}, false},
		{"dir is a dangling symlink", func(t *testing.T, dir string) string {
			must(t, os.Symlink("nowhere", filepath.Join(dir, "link")))
			return filepath.Join(dir, "link")
		}, false},
		{"dir open to others", func(t *testing.T, dir string) string {
			d := filepath.Join(dir, "d")
			must(t, os.Mkdir(d, 0o700))
			must(t, os.Chmod(d, 0o755))
			return d
		}, false},
		{"dir owned by another user", func(t *testing.T, dir string) string {
			d := filepath.Join(dir, "d")
			must(t, os.Mkdir(d, 0o700))
			must(t, os.Chown(d, 65534, 65534))
			return d
		}, true},
		{"tokens file is a symlink", func(t *testing.T, dir string) string {
			d := filepath.Join(dir, "d")
			must(t, os.Mkdir(d, 0o700))
			must(t, os.WriteFile(filepath.Join(dir, "elsewhere"), []byte("1"), 0o600))
			must(t, os.Symlink(filepath.Join(dir, "elsewhere"), filepath.Join(d, tokensFile)))
			return d
		}, false},
		{"tokens file writable by others", func(t *testing.T, dir string) string {
			d := filepath.Join(dir, "d")
			must(t, os.Mkdir(d, 0o700))
			must(t, os.WriteFile(filepath.Join(d, tokensFile), []byte("1"), 0o600))
			must(t, os.Chmod(filepath.Join(d, tokensFile), 0o666))
			return d
		}, false},
		{"tokens file owned by another user", func(t *testing.T, dir string) string {
			d := filepath.Join(dir, "d")
			must(t, os.Mkdir(d, 0o700))
			must(t, os.WriteFile(filepath.Join(d, tokensFile), []byte("1"), 0o600))
			must(t, os.Chown(filepath.Join(d, tokensFile), 65534, 65534))
			return d
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root && !root {
				t.Skip("needs root to give a file away")
			}
			dir := tc.setup(t, t.TempDir())
			_, err := OpenDirTokens(dir)
			if !errors.Is(err, safefile.ErrUnsafe) {
				t.Fatalf("OpenDirTokens: %v, want it refused as unsafe", err)
			}
		})
	}
	// Not a number: refused too, rather than starting from 0.
	d := t.TempDir()
	must(t, os.Chmod(d, 0o700))
	must(t, os.WriteFile(filepath.Join(d, tokensFile), []byte("twelve"), 0o600))
	if _, err := OpenDirTokens(d); err == nil || !strings.Contains(err.Error(), "not a number") {
		t.Fatalf("a garbled tokens file: %v", err)
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

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
