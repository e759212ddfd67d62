package dmutex

import (
	"fmt"
	"math"
)

// Grid places Maekawa's quorums: ids 0 to N-1 row by row on a grid of
// Cols = ceil(sqrt(N)) columns and Rows = ceil(N/Cols) rows, the last row
// holding what is left (N need not be a perfect square). Process i's
// quorum is its whole row and its whole column, i included: about
// 2*sqrt(N)-1 processes.
//
// Any two quorums intersect, which is what mutual exclusion rests on. For
// i at (ri, ci) and j at (rj, cj): if the cell (ri, cj) exists it is in
// both (i's row, j's column). It is missing only when ri is the incomplete
// last row and cj lies beyond its end; then i's column ci lies within the
// last row, so column ci is complete and the cell (rj, ci) exists, in both
// (j's row, i's column).
//
// Maekawa's paper builds quorums of K ~ sqrt(N) from finite projective
// planes, which exist only for some N; grid quorums exist for every N, at
// about twice the size (M. Maekawa, ACM TOCS 3(2), 1985, section 3 gives the
// grid as the simple alternative).
type Grid struct{ N, Cols, Rows int }

// NewGrid returns the grid for n processes (n >= 1).
func NewGrid(n int) Grid {
	c := int(math.Ceil(math.Sqrt(float64(n))))
	for c*c < n { // guard against rounding
		c++
	}
	for c > 1 && (c-1)*(c-1) >= n {
		c--
	}
	return Grid{N: n, Cols: c, Rows: (n + c - 1) / c}
}

// Quorum returns process id's quorum, in increasing order, id included.
func (g Grid) Quorum(id int) []int {
	r, c := id/g.Cols, id%g.Cols
	var out []int
	for j := range g.N {
		if j/g.Cols == r || j%g.Cols == c {
			out = append(out, j)
		}
	}
	return out
}

// Others returns the smallest, mean and largest number of other processes
// in a quorum (K-1).
func (g Grid) Others() (lo, mean, hi float64) {
	lo = math.Inf(1)
	var sum float64
	for id := range g.N {
		k := float64(len(g.Quorum(id)) - 1)
		lo, hi = math.Min(lo, k), math.Max(hi, k)
		sum += k
	}
	return lo, sum / float64(g.N), hi
}

// String is "3x3 grid", or "2x2 grid whose last row holds 1" when the last
// row is short.
func (g Grid) String() string {
	s := fmt.Sprintf("%dx%d grid", g.Rows, g.Cols)
	if last := g.N - (g.Rows-1)*g.Cols; last != g.Cols {
		s += fmt.Sprintf(" whose last row holds %d", last)
	}
	return s
}
