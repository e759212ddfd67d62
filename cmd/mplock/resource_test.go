package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEscapeControls: what a terminal would act on is escaped, the rest
// (text, newlines, tabs, any script) is left as it is.
func TestEscapeControls(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Hello Distributed World", "Hello Distributed World"},
		{"two\nlines\tand a tab, ünïcødé, 漢字", "two\nlines\tand a tab, ünïcødé, 漢字"},
		{"\x1b]0;pwned\x07title", `\x1b]0;pwned\x07title`},
		{"\x1b[2J\x1b[Hcleared", `\x1b[2J\x1b[Hcleared`},
		{"back\rspace\b del\x7f", `back\x0dspace\x08 del\x7f`},
		{"c1 csi \u009b31m", `c1 csi \u009b31m`},
		{"bad \xff\xfe utf-8", `bad \xff\xfe utf-8`},
	} {
		if got := escapeControls(tc.in); got != tc.want {
			t.Errorf("escapeControls(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestClientReadEscapesOnTerminal is the attack report's M4, second half:
// `mplock client NAME READ` of a file planted with terminal escape
// sequences shows them escaped when its stdout is a terminal, and passes
// the bytes through unchanged to a pipe (a script gets the content).
func TestClientReadEscapesOnTerminal(t *testing.T) {
	srv := startServe(t)
	dir := t.TempDir()
	planted := "innocent\x1b]0;pwned\x07\x1b[2Jtext"
	if err := os.WriteFile(filepath.Join(dir, "file_A.txt"), []byte(planted), 0o600); err != nil {
		t.Fatal(err)
	}
	ptm, pts := openPTY(t)
	cmd := mplockCommand(t, "client", "file_A", "READ", "--dir", dir, "--server", srv.addr)
	cmd.Stdout, cmd.Stderr = pts, pts
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pts.Close()
	var got bytes.Buffer
	io.Copy(&got, ptm) // ends (EIO) when the client exits and the terminal side closes
	if err := cmd.Wait(); err != nil {
		t.Fatalf("mplock client READ on a terminal: %v\n%s", err, got.String())
	}
	if want := `READ from file_A: innocent\x1b]0;pwned\x07\x1b[2Jtext`; !strings.Contains(got.String(), want) {
		t.Fatalf("on a terminal the client printed %q, want it to contain %q", got.String(), want)
	}
	if strings.ContainsRune(got.String(), 0x1b) {
		t.Fatalf("on a terminal the client printed a raw escape: %q", got.String())
	}

	out, err := mplockCommand(t, "client", "file_A", "READ", "--dir", dir, "--server", srv.addr).Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "READ from file_A: "+planted+"\n") {
		t.Fatalf("to a pipe the client printed %q, want the content unchanged", out)
	}
}
