// Package safefile opens the files mplock trusts (a server's address file,
// a shared secret, a data directory) only when no other user could have
// planted or changed them, and writes files without following a link that
// someone else left in their place.
//
// The rules, as OpenSSH applies them to its keys and its
// authorized_keys: a trusted file is a regular file, not a symbolic link,
// owned by this user (or root), and not writable by its group or by others;
// a directory that holds one is owned by this user or root and is not
// writable by others unless it is sticky (like /tmp, where no one may
// replace another user's file). Errors are *fs.PathError wrapping ErrUnsafe
// for a file or directory that breaks a rule, and the system error
// otherwise.
package safefile

import (
	crand "crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// ErrUnsafe is wrapped by every refusal of a file another user could have
// planted or changed.
var ErrUnsafe = errors.New("not safe to trust")

func unsafeErr(op, path, why string) error {
	return &fs.PathError{Op: op, Path: path, Err: fmt.Errorf("%w: %s", ErrUnsafe, why)}
}

// trustedOwner reports whether uid may own a file this process trusts.
func trustedOwner(uid uint32) bool {
	return uid == uint32(os.Geteuid()) || uid == 0
}

// ReadTrusted reads the file at path if it is a regular file (not a
// symbolic link), owned by this user or root, not writable by group or
// others, in a directory that passes CheckDir. At most max bytes are read.
func ReadTrusted(path string, max int64) ([]byte, error) {
	if err := CheckDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, linkErr("open", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	st := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.Mode().IsRegular():
		return nil, unsafeErr("open", path, "not a regular file")
	case !trustedOwner(st.Uid):
		return nil, unsafeErr("open", path, fmt.Sprintf("owned by uid %d, not by this user (uid %d)", st.Uid, os.Geteuid()))
	case fi.Mode().Perm()&0o022 != 0:
		return nil, unsafeErr("open", path, fmt.Sprintf("writable by other users (mode %04o); chmod go-w it", fi.Mode().Perm()))
	}
	return io.ReadAll(io.LimitReader(f, max))
}

// linkErr explains the ELOOP that O_NOFOLLOW gives for a symbolic link.
func linkErr(op, path string, err error) error {
	if errors.Is(err, syscall.ELOOP) {
		return unsafeErr(op, path, "a symbolic link; give the file it points to")
	}
	return err
}

// CheckDir checks that files in dir cannot be replaced by other users:
// dir is owned by this user or root, and not writable by group or others
// unless it has the sticky bit.
func CheckDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	st := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.IsDir():
		return unsafeErr("stat", dir, "not a directory")
	case !trustedOwner(st.Uid):
		return unsafeErr("stat", dir, fmt.Sprintf("directory owned by uid %d, not by this user (uid %d)", st.Uid, os.Geteuid()))
	case fi.Mode().Perm()&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0:
		return unsafeErr("stat", dir, fmt.Sprintf("directory writable by other users and not sticky (mode %04o)", fi.Mode().Perm()))
	}
	return nil
}

// PrivateDir makes sure dir is a private directory of this user: created
// with mode 0700 when it does not exist (with any missing parents, 0700
// too, as mkdir -p -m 700 would), and otherwise a directory (not a
// symbolic link) owned by this user with no permission for group or
// others.
func PrivateDir(dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	st := fi.Sys().(*syscall.Stat_t)
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return unsafeErr("lstat", dir, "a symbolic link; give the directory it points to")
	case !fi.IsDir():
		return unsafeErr("lstat", dir, "not a directory")
	case st.Uid != uint32(os.Geteuid()):
		return unsafeErr("lstat", dir, fmt.Sprintf("owned by uid %d, not by this user (uid %d)", st.Uid, os.Geteuid()))
	case fi.Mode().Perm()&0o077 != 0:
		return unsafeErr("lstat", dir, fmt.Sprintf("open to other users (mode %04o); chmod 700 it", fi.Mode().Perm()))
	}
	return nil
}

// WriteAtomic replaces path with data: written to a new file in the same
// directory (created exclusively, so no link planted there is followed,
// with mode perm less the umask), synced, and renamed over path, which
// replaces a symbolic link at path rather than writing where it points. A
// reader sees the old content or the new, never a part. It returns the
// written file's identity, for Same.
func WriteAtomic(path string, data []byte, perm fs.FileMode) (fs.FileInfo, error) {
	dir := filepath.Dir(path)
	var f *os.File
	var err error
	for range 100 {
		tmp := filepath.Join(dir, "."+filepath.Base(path)+"."+strconv.FormatUint(rand.Uint64(), 36)+".tmp")
		f, err = os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, perm)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	var fi fs.FileInfo
	if err == nil {
		fi, err = f.Stat()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return nil, err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return fi, nil
}

// RemoveIfSame removes path only if it is still the file fi describes (the
// same inode on the same device), so that a file another process wrote in
// its place since is left alone. It reports whether it removed it.
func RemoveIfSame(path string, fi fs.FileInfo) bool {
	now, err := os.Lstat(path)
	if err != nil || !os.SameFile(now, fi) {
		return false
	}
	return os.Remove(path) == nil
}

// OpenNoFollow opens path with flag, refusing a symbolic link in its last
// component (the directories before it may be links: the caller named
// them). For reading, it refuses anything but a regular file, so that a
// FIFO or a device planted there cannot hang or feed the caller.
func OpenNoFollow(path string, flag int, perm fs.FileMode) (*os.File, error) {
	f, err := os.OpenFile(path, flag|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, perm)
	if err != nil {
		return nil, linkErr("open", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, unsafeErr("open", path, "not a regular file")
	}
	return f, nil
}

// WriteNewSecret makes a fresh random secret (32 bytes from crypto/rand,
// base64: 44 characters) and writes it, with a newline, to a new file at
// path, mode 0600, never through a symbolic link; it returns the secret.
// The file must not exist (fs.ErrExist otherwise).
func WriteNewSecret(path string) (string, error) {
	var b [32]byte
	if _, err := crand.Read(b[:]); err != nil {
		return "", err
	}
	secret := base64.StdEncoding.EncodeToString(b[:])
	f, err := OpenNoFollow(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	_, err = f.WriteString(secret + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return secret, err
}
