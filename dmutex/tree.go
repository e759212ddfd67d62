package dmutex

// Tree is the spanning tree of Raymond's algorithm: the ids as a binary
// heap, so that process i's parent is (i-1)/2 and its children 2i+1 and
// 2i+2. Process 0, the root, holds the token at the start. Its depth is
// floor(log2 N), so a request climbs and the token descends at most
// 2*floor(log2 N) edges.
type Tree struct{ N int }

// NewTree returns the tree of n processes.
func NewTree(n int) Tree { return Tree{N: n} }

// Parent returns id's parent, -1 for the root.
func (t Tree) Parent(id int) int {
	if id == 0 {
		return -1
	}
	return (id - 1) / 2
}

func treeNeighbors(id, n int) []int {
	var out []int
	if id > 0 {
		out = append(out, (id-1)/2)
	}
	for _, c := range []int{2*id + 1, 2*id + 2} {
		if c < n {
			out = append(out, c)
		}
	}
	return out
}

// Depth is the longest path from the root to a leaf, in edges.
func (t Tree) Depth() int { return t.level(t.N - 1) }

func (t Tree) level(id int) int {
	d := 0
	for id > 0 {
		id = (id - 1) / 2
		d++
	}
	return d
}

// Distance is the number of edges between a and b.
func (t Tree) Distance(a, b int) int {
	d := 0
	for a != b {
		if a > b {
			a = (a - 1) / 2
		} else {
			b = (b - 1) / 2
		}
		d++
	}
	return d
}

// Diameter is the longest distance between two processes.
func (t Tree) Diameter() int {
	d := 0
	for a := range t.N {
		for b := a + 1; b < t.N; b++ {
			d = max(d, t.Distance(a, b))
		}
	}
	return d
}

// towards returns the neighbour of from on the path to to (from != to).
func (t Tree) towards(from, to int) int {
	// Climb from to until its parent is from (to is in from's subtree), or
	// until it reaches the root side: then the way is up.
	for x := to; x > 0; x = (x - 1) / 2 {
		if (x-1)/2 == from {
			return x
		}
	}
	return (from - 1) / 2
}
