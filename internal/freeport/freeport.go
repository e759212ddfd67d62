// Package freeport picks loopback TCP ports for servers that must be told
// their address before they start (a cluster's members are each given
// every other member's raft address), as scripts/lockd-compare.sh does.
//
// A port taken from the kernel with a listen on port 0 and closed again
// is a poor choice on a busy machine: it comes from the ephemeral range,
// from which the kernel also picks the local port of every outgoing
// connection, so a connection anyone makes in the moment before the server
// binds can take it ("address already in use"). Loopback picks ports at
// random below that range instead, where the kernel hands out none on its
// own, and checks that each one can be bound at that moment. It does not
// hand out a port twice in one process (as scripts/lockd-compare.sh's
// free_port does not): a port handed out and not yet bound is free to a
// listen, so two calls (a cluster's client ports, then its raft ports; two
// tests at once) could otherwise get the same one, and the second server
// to bind it would fail. Another program can still bind one first; the
// server then fails to start and says so.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// lowest is the lowest port Loopback picks.
const lowest = 10000

// given is the set of addresses Loopback has handed out in this process.
var given = struct {
	sync.Mutex
	m map[string]bool
}{m: map[string]bool{}}

// Loopback returns n distinct addresses 127.0.0.1:PORT whose ports were
// free a moment ago, below the kernel's ephemeral port range
// (/proc/sys/net/ipv4/ip_local_port_range; 32768 when it cannot be read),
// and that no earlier call in this process has returned (until half the
// range has been handed out: then it starts afresh). It fails when 1,000
// tries find too few.
func Loopback(n int) ([]string, error) {
	given.Lock()
	defer given.Unlock()
	lo, hi := lowest, ephemeralStart()
	if len(given.m)+n > (hi-lo)/2 {
		clear(given.m)
	}
	return pick(n, lo, hi, given.m)
}

// pick returns n distinct loopback addresses with ports in [lo, hi) that
// could be bound a moment ago and are not in skip, and adds them to skip
// (unless it is nil).
func pick(n, lo, hi int, skip map[string]bool) ([]string, error) {
	var out []string
	for tries := 0; len(out) < n; tries++ {
		if tries >= 1000 {
			return nil, fmt.Errorf("freeport: %d free loopback ports between %d and %d not found in 1,000 tries", n, lo, hi)
		}
		a := "127.0.0.1:" + strconv.Itoa(lo+rand.IntN(hi-lo))
		if slices.Contains(out, a) || skip[a] {
			continue
		}
		ln, err := net.Listen("tcp", a)
		if err != nil {
			continue
		}
		ln.Close()
		out = append(out, a)
	}
	if skip != nil {
		for _, a := range out {
			skip[a] = true
		}
	}
	return out, nil
}

// ephemeralStart is the first port of the kernel's ephemeral range, or
// 32768 when it cannot be read or leaves too little room below it.
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if p, err := strconv.Atoi(f[0]); err == nil && p > lowest+2000 && p <= 65535 {
				return p
			}
		}
	}
	return 32768
}
