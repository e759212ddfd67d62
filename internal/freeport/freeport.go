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
// own, and checks that each one can be bound at that moment. Another
// program can still bind one first; the server then fails to start and
// says so.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
)

// lowest is the lowest port Loopback picks.
const lowest = 10000

// Loopback returns n distinct addresses 127.0.0.1:PORT whose ports were
// free a moment ago, below the kernel's ephemeral port range
// (/proc/sys/net/ipv4/ip_local_port_range; 32768 when it cannot be read).
// It fails when 1,000 tries find too few.
func Loopback(n int) ([]string, error) {
	return pick(n, lowest, ephemeralStart())
}

// pick returns n distinct loopback addresses with ports in [lo, hi) that
// could be bound a moment ago.
func pick(n, lo, hi int) ([]string, error) {
	var out []string
	for tries := 0; len(out) < n; tries++ {
		if tries >= 1000 {
			return nil, fmt.Errorf("freeport: %d free loopback ports between %d and %d not found in 1,000 tries", n, lo, hi)
		}
		a := "127.0.0.1:" + strconv.Itoa(lo+rand.IntN(hi-lo))
		if slices.Contains(out, a) {
			continue
		}
		ln, err := net.Listen("tcp", a)
		if err != nil {
			continue
		}
		ln.Close()
		out = append(out, a)
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
