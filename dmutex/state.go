package dmutex

import (
	"fmt"
	"math/bits"
	"strings"
)

// State is a process's relation to the critical section, in the names of
// Ricart and Agrawala's paper.
type State uint8

// States.
const (
	Released State = iota // not in the critical section and not asking
	Wanted                // asked, waiting for permission
	Held                  // in the critical section
)

func (s State) String() string {
	switch s {
	case Released:
		return "released"
	case Wanted:
		return "wanted"
	case Held:
		return "held"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Set is a set of node ids (0 to MaxIDs-1). The zero value is empty.
type Set struct{ w [2]uint64 }

// SetOf returns the set with the given words, as Words returned them.
func SetOf(words [2]uint64) Set { return Set{w: words} }

// Words returns the set as two bit masks (ids 0-63 and 64-127).
func (s Set) Words() [2]uint64 { return s.w }

// Add puts id in the set.
func (s *Set) Add(id int) { s.w[id>>6] |= 1 << (id & 63) }

// Remove takes id out of the set.
func (s *Set) Remove(id int) { s.w[id>>6] &^= 1 << (id & 63) }

// Has reports whether id is in the set.
func (s Set) Has(id int) bool {
	return id >= 0 && id < 128 && s.w[id>>6]&(1<<(id&63)) != 0
}

// Len is the number of ids in the set.
func (s Set) Len() int { return bits.OnesCount64(s.w[0]) + bits.OnesCount64(s.w[1]) }

// Empty reports whether the set has no ids.
func (s Set) Empty() bool { return s.w[0]|s.w[1] == 0 }

// IDs returns the ids in increasing order.
func (s Set) IDs() []int {
	var out []int
	for i, w := range s.w {
		for w != 0 {
			b := bits.TrailingZeros64(w)
			out = append(out, i*64+b)
			w &^= 1 << b
		}
	}
	return out
}

// String lists the set as "{P0, P3, server}".
func (s Set) String() string {
	var names []string
	for _, id := range s.IDs() {
		names = append(names, Name(id))
	}
	return "{" + strings.Join(names, ", ") + "}"
}

// Name is how reports call node id: "P3", or "server".
func Name(id int) string {
	if id == ServerID {
		return "server"
	}
	return fmt.Sprintf("P%d", id)
}
