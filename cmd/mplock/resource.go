package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/term"

	"mplock/internal/safefile"
)

// maxResource is the most `mplock client NAME READ` reads of
// <dir>/<name>.txt: the seed's resources are a line of text, and a file
// planted in a shared --dir (a sparse 2 GB one took 4.5 GB and 37 s, all
// with the lock held) must cost little. A larger file is refused, unread.
const maxResource = 1 << 20

// readResource reads <dir>/<name>.txt for `mplock client NAME READ`. A
// symbolic link or anything but a regular file in its place is refused:
// --dir may be shared (/tmp), and a link planted there would have the
// client print whatever file it points to (as root, /etc/shadow). So is a
// file of more than maxResource bytes.
func readResource(path string) ([]byte, error) {
	f, err := safefile.OpenNoFollow(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tooBig := func(size int64) error {
		return fmt.Errorf("%s is %s; READ reads at most %d bytes (1 MiB): not read", path, sizeText(size), maxResource)
	}
	if fi, err := f.Stat(); err == nil && fi.Size() > maxResource {
		return nil, tooBig(fi.Size())
	}
	// The size may have grown since: read one byte past the bound to see.
	b, err := io.ReadAll(io.LimitReader(f, maxResource+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxResource {
		return nil, tooBig(int64(len(b)))
	}
	return b, nil
}

// sizeText says a size the way a person reads it: 2147483648 bytes is
// "2147483648 bytes (2.0 GiB)".
func sizeText(n int64) string {
	s := strconv.FormatInt(n, 10) + " bytes"
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%s (%.1f GiB)", s, float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%s (%.1f MiB)", s, float64(n)/(1<<20))
	}
	return s
}

// writeResource replaces <dir>/<name>.txt for `mplock client NAME WRITE`:
// atomically, replacing a link planted at path rather than writing through
// it, with the permissions the umask gives a new file (0666 less the umask,
// as the shell's > does).
func writeResource(path string, data []byte) error {
	_, err := safefile.WriteAtomic(path, data, 0o666)
	return err
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// escapeControls makes text safe to print on a terminal: the bytes a
// terminal would act on (C0 controls but newline and tab, DEL, C1 controls)
// and bytes that are not UTF-8 are written as Go escapes (\x1b, \u009b),
// so a file planted in a shared --dir cannot move the cursor, retitle the
// window or hide what it says. Everything else, newlines included, is
// left as it is.
func escapeControls(s string) string {
	clean := true
	for _, r := range s {
		if needsEscape(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case needsEscape(r) && r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		case needsEscape(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func needsEscape(r rune) bool {
	return r < 0x20 && r != '\n' && r != '\t' || r == 0x7f || r >= 0x80 && r < 0xa0 || r == utf8.RuneError
}
