package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"mplock/lockd"
)

// TestStatusListsEveryPageByBytes: names long enough that a STATUS page
// ends by its size (lockd.MaxStatusPageBytes), not by its 10,000 names;
// `mplock status --json` follows next= and lists every name once.
func TestStatusListsEveryPageByBytes(t *testing.T) {
	const n = 3000 // 128-byte names: about 750 KB of HOLDER lines, three pages
	srv := startServe(t, "--max-locks", "5000")
	holder := dialLines(t, srv.addr)
	prefix := strings.Repeat("s", lockd.MaxNameLen-5)
	holder.pipeline(n, func(i int) string { return fmt.Sprintf("LOCK %s%05d\n", prefix, i) },
		func(int) string { return "OK LOCKED " + prefix })

	holder.send("STATUS limit=10000\n")
	size, names := 0, 0
	for {
		line := holder.expect("")
		size += len(line) + 1
		if strings.HasPrefix(line, "HOLDER ") {
			names++
		}
		if strings.HasPrefix(line, "OK STATUS ") {
			if names >= n || size > lockd.MaxStatusPageBytes || !strings.Contains(line, " next=") {
				t.Fatalf("STATUS limit=10000 of %d names: %d names in %d bytes, ending %q; want a page of at most %d bytes, with next=",
					n, names, size, line, lockd.MaxStatusPageBytes)
			}
			break
		}
	}
	t.Logf("a page of %d names ended at %d names, %d bytes", n, names, size)

	out, errs, code := runMplock(t, "status", "--json", "--server", srv.addr)
	if code != 0 {
		t.Fatalf("mplock status exited %d: %s", code, errs)
	}
	var st lockd.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("mplock status --json: %v", err)
	}
	seen := map[string]bool{}
	for i, l := range st.Locks {
		if want := fmt.Sprintf("%s%05d", prefix, i); l.Name != want || len(l.Holders) != 1 {
			t.Fatalf("mplock status --json: lock %d is %q with %d holders, want %q held once", i, l.Name, len(l.Holders), want)
		}
		seen[l.Name] = true
	}
	if len(st.Locks) != n || len(seen) != n {
		t.Fatalf("mplock status --json listed %d names (%d different), want %d", len(st.Locks), len(seen), n)
	}
}
