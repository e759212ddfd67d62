package dmutex

import (
	"math/rand/v2"
	"testing"
)

func TestInversions(t *testing.T) {
	s := func(ts uint64, id int) Stamp { return Stamp{TS: ts, ID: id} }
	for _, tc := range []struct {
		name  string
		order []Stamp
		want  int64
	}{
		{"empty", nil, 0},
		{"in order", []Stamp{s(1, 0), s(2, 1), s(3, 0)}, 0},
		{"tie broken by id", []Stamp{s(5, 0), s(5, 1)}, 0},
		{"tie out of id order", []Stamp{s(5, 1), s(5, 0)}, 1},
		{"one late", []Stamp{s(2, 0), s(3, 0), s(1, 1)}, 2},
		{"reversed", []Stamp{s(4, 0), s(3, 0), s(2, 0), s(1, 0)}, 6},
	} {
		if got := Inversions(tc.order); got != tc.want {
			t.Errorf("%s: Inversions = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestInversionsQuadratic compares the merge count with the obvious count on
// random orders.
func TestInversionsQuadratic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		order := make([]Stamp, rng.IntN(60))
		for i := range order {
			order[i] = Stamp{TS: rng.Uint64N(20), ID: rng.IntN(4)}
		}
		var want int64
		for i := range order {
			for j := i + 1; j < len(order); j++ {
				if order[j].Less(order[i]) {
					want++
				}
			}
		}
		if got := Inversions(order); got != want {
			t.Fatalf("Inversions(%v) = %d, want %d", order, got, want)
		}
	}
}
