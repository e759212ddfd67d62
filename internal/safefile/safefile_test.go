package safefile

import (
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// private returns a new directory of this user's, mode 0700.
func private(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	must(t, os.Chmod(d, 0o700))
	return d
}

func TestReadTrusted(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T, dir string) string
		ok     bool
		asRoot bool // needs root to give a file away
	}{
		{"own private file", func(t *testing.T, d string) string {
			must(t, os.WriteFile(filepath.Join(d, "f"), []byte("x"), 0o600))
			return filepath.Join(d, "f")
		}, true, false},
		{"readable by others", func(t *testing.T, d string) string {
			must(t, os.WriteFile(filepath.Join(d, "f"), []byte("x"), 0o644))
			return filepath.Join(d, "f")
		}, true, false},
		{"symlink to own file", func(t *testing.T, d string) string {
			must(t, os.WriteFile(filepath.Join(d, "f"), []byte("x"), 0o600))
			must(t, os.Symlink("f", filepath.Join(d, "l")))
			return filepath.Join(d, "l")
		}, false, false},
		{"dangling symlink", func(t *testing.T, d string) string {
			must(t, os.Symlink("nowhere", filepath.Join(d, "l")))
			return filepath.Join(d, "l")
		}, false, false},
		{"writable by group", func(t *testing.T, d string) string {
			must(t, os.WriteFile(filepath.Join(d, "f"), []byte("x"), 0o600))
			must(t, os.Chmod(filepath.Join(d, "f"), 0o620))
			return filepath.Join(d, "f")
		}, false, false},
		{"a FIFO", func(t *testing.T, d string) string {
			must(t, syscall.Mkfifo(filepath.Join(d, "p"), 0o600))
			return filepath.Join(d, "p")
		}, false, false},
		{"in a directory writable by others, not sticky", func(t *testing.T, d string) string {
			sub := filepath.Join(d, "open")
			must(t, os.Mkdir(sub, 0o700))
			must(t, os.Chmod(sub, 0o777))
			must(t, os.WriteFile(filepath.Join(sub, "f"), []byte("x"), 0o600))
			return filepath.Join(sub, "f")
		}, false, false},
		{"in a sticky directory writable by others", func(t *testing.T, d string) string {
			sub := filepath.Join(d, "tmp")
			must(t, os.Mkdir(sub, 0o700))
			must(t, os.Chmod(sub, 0o777|fs.ModeSticky))
			must(t, os.WriteFile(filepath.Join(sub, "f"), []byte("x"), 0o600))
			return filepath.Join(sub, "f")
		}, true, false},
		{"owned by another user", func(t *testing.T, d string) string {
			must(t, os.WriteFile(filepath.Join(d, "f"), []byte("x"), 0o600))
			must(t, os.Chown(filepath.Join(d, "f"), 65534, 65534))
			return filepath.Join(d, "f")
		}, false, true},
		{"in a directory owned by another user", func(t *testing.T, d string) string {
			sub := filepath.Join(d, "theirs")
			must(t, os.Mkdir(sub, 0o755))
			must(t, os.WriteFile(filepath.Join(sub, "f"), []byte("x"), 0o600))
			must(t, os.Chown(sub, 65534, 65534))
			return filepath.Join(sub, "f")
		}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.asRoot && os.Geteuid() != 0 {
				t.Skip("needs root to give a file away")
			}
			path := tc.setup(t, private(t))
			b, err := ReadTrusted(path, 100)
			switch {
			case tc.ok && (err != nil || string(b) != "x"):
				t.Fatalf("ReadTrusted = %q, %v; want x", b, err)
			case !tc.ok && !errors.Is(err, ErrUnsafe):
				t.Fatalf("ReadTrusted = %q, %v; want it refused as unsafe", b, err)
			}
		})
	}
}

// TestWriteAtomicReplacesLinks: a link planted at the path is replaced,
// never written through, dangling or not; the umask applies.
func TestWriteAtomicReplacesLinks(t *testing.T) {
	d := private(t)
	victim := filepath.Join(d, "victim")
	must(t, os.WriteFile(victim, []byte("precious"), 0o600))
	must(t, os.Symlink(victim, filepath.Join(d, "a")))
	must(t, os.Symlink(filepath.Join(d, "created"), filepath.Join(d, "b")))
	old := syscall.Umask(0o027)
	defer syscall.Umask(old)
	for _, name := range []string{"a", "b"} {
		fi, err := WriteAtomic(filepath.Join(d, name), []byte("new"), 0o666)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o640 {
			t.Errorf("%s written with mode %v, want 0640 (0666 less the umask 027)", name, fi.Mode().Perm())
		}
		st, err := os.Lstat(filepath.Join(d, name))
		if err != nil || !st.Mode().IsRegular() {
			t.Fatalf("%s is not a regular file after the write: %v %v", name, st, err)
		}
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious" {
		t.Fatalf("the link's target was written: %q", b)
	}
	if _, err := os.Lstat(filepath.Join(d, "created")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a dangling link's target was created: %v", err)
	}
	ents, _ := os.ReadDir(d)
	if len(ents) != 3 {
		t.Fatalf("left behind: %v", ents)
	}
}

// TestRemoveIfSame removes a file only while it is the one written.
func TestRemoveIfSame(t *testing.T) {
	d := private(t)
	p := filepath.Join(d, "addr")
	mine, err := WriteAtomic(p, []byte("1"), 0o644)
	must(t, err)
	theirs, err := WriteAtomic(p, []byte("2"), 0o644)
	must(t, err)
	if RemoveIfSame(p, mine) {
		t.Fatal("removed a file another writer replaced")
	}
	if !RemoveIfSame(p, theirs) {
		t.Fatal("did not remove its own file")
	}
	if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
}

func TestPrivateDir(t *testing.T) {
	d := filepath.Join(private(t), "new", "deeper")
	must(t, PrivateDir(d))
	if fi, _ := os.Stat(d); fi.Mode().Perm() != 0o700 {
		t.Fatalf("created %v, want 0700", fi.Mode())
	}
	must(t, PrivateDir(d)) // exists: fine
	must(t, os.Chmod(d, 0o750))
	if err := PrivateDir(d); !errors.Is(err, ErrUnsafe) {
		t.Fatalf("a group-readable dir: %v", err)
	}
}

// TestWriteNewSecret: a new 0600 file holding 32 random bytes in base64,
// a different secret each time; an existing file or a planted link (even
// a dangling one) is refused, not written through.
func TestWriteNewSecret(t *testing.T) {
	dir := t.TempDir()
	a, err := WriteNewSecret(filepath.Join(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := WriteNewSecret(filepath.Join(dir, "b"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(a)
	if err != nil || len(raw) != 32 || a == b {
		t.Fatalf("secrets %q and %q: want two different base64 encodings of 32 bytes (%v)", a, b, err)
	}
	fi, err := os.Stat(filepath.Join(dir, "a"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v, %v; want mode 0600", fi, err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "a")); string(got) != a+"\n" {
		t.Fatalf("file holds %q, want %q", got, a+"\n")
	}
	if _, err := WriteNewSecret(filepath.Join(dir, "a")); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("over an existing file: %v, want fs.ErrExist", err)
	}
	target := filepath.Join(dir, "target")
	if err := os.Symlink(target, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteNewSecret(filepath.Join(dir, "link")); err == nil {
		t.Fatal("wrote through a dangling link")
	}
	if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the link's target was created: %v", err)
	}
}
