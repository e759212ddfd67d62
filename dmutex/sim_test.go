package dmutex

import (
	"fmt"
	"testing"
)

// TestSimulateRicartAgrawala runs Ricart-Agrawala over the in-memory network
// with random delays and reordering, for many seeds and sizes, and checks
// what the algorithm promises: never two inside, every request served,
// exactly 2(N-1) messages per entry, entries in timestamp order.
func TestSimulateRicartAgrawala(t *testing.T) {
	seeds := 200
	if testing.Short() {
		seeds = 40
	}
	for _, n := range []int{2, 3, 5, 8, 15} {
		for _, fifo := range []bool{false, true} {
			for seed := range uint64(seeds) {
				cfg := SimConfig{Algorithm: RicartAgrawala, N: n, Entries: 6, Seed: seed, FIFO: fifo,
					MaxDelay: 50, MaxThink: int64(seed%4) * 40, MaxHold: int64(seed%3) * 30}
				res := simulate(t, cfg)
				if res.Violations != 0 {
					t.Errorf("%v: %d violations", cfg, res.Violations)
				}
				if len(res.Unserved) != 0 {
					t.Errorf("%v: processes %v were never served", cfg, res.Unserved)
				}
				if want := n * cfg.Entries; res.Entries != want {
					t.Errorf("%v: %d entries, want %d", cfg, res.Entries, want)
				}
				if want := 2 * (n - 1) * res.Entries; res.Messages != want {
					t.Errorf("%v: %d messages for %d entries, want exactly 2(N-1) per entry = %d", cfg, res.Messages, res.Entries, want)
				}
				if res.Inversions != 0 {
					t.Errorf("%v: %d entries out of timestamp order", cfg, res.Inversions)
				}
			}
		}
	}
}

// TestSimulateBaselines: the central server and the token ring are safe and
// live too; the central server costs exactly 3 messages per entry.
func TestSimulateBaselines(t *testing.T) {
	for _, a := range []Algorithm{Central, TokenRing} {
		for _, n := range []int{2, 5, 15} {
			for seed := range uint64(60) {
				cfg := SimConfig{Algorithm: a, N: n, Entries: 5, Seed: seed, FIFO: a == TokenRing || seed%2 == 0,
					MaxDelay: 50, MaxThink: int64(seed%4) * 100, MaxHold: int64(seed%3) * 30}
				res := simulate(t, cfg)
				if res.Violations != 0 || len(res.Unserved) != 0 || res.Entries != n*cfg.Entries {
					t.Errorf("%v: %d violations, unserved %v, %d entries", cfg, res.Violations, res.Unserved, res.Entries)
				}
				if a == Central && res.Messages != 3*res.Entries {
					t.Errorf("%v: %d messages for %d entries, want 3 per entry", cfg, res.Messages, res.Entries)
				}
				if a == TokenRing && res.Messages < res.Entries-1 {
					t.Errorf("%v: %d messages for %d entries: fewer than one hop per handoff", cfg, res.Messages, res.Entries)
				}
			}
		}
	}
}

// TestSimulateBrokenIsCaught: the simulation's own count of processes inside
// catches the variant that skips deferral, in most seeds.
func TestSimulateBrokenIsCaught(t *testing.T) {
	caught := 0
	const seeds = 50
	for seed := range uint64(seeds) {
		res := simulate(t, SimConfig{Algorithm: Broken, N: 5, Entries: 5, Seed: seed, MaxDelay: 50, MaxHold: 100})
		if res.Violations > 0 {
			caught++
		}
	}
	if caught < seeds/2 {
		t.Fatalf("violations found in %d of %d broken runs; the check misses overlaps", caught, seeds)
	}
}

func simulate(t *testing.T, cfg SimConfig) SimResult {
	t.Helper()
	res, err := Simulate(cfg)
	if err != nil {
		t.Fatalf("%v: %v", cfg, err)
	}
	return res
}

func (c SimConfig) String() string {
	return fmt.Sprintf("%v N=%d seed=%d fifo=%v think=%d hold=%d", c.Algorithm, c.N, c.Seed, c.FIFO, c.MaxThink, c.MaxHold)
}

func ExampleSimulate() {
	res, err := Simulate(SimConfig{Algorithm: RicartAgrawala, N: 5, Entries: 10, Seed: 1, MaxHold: 20})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d entries, %d messages (%.0f per entry), %d violations, %d inversions, unserved %v\n",
		res.Entries, res.Messages, float64(res.Messages)/float64(res.Entries), res.Violations, res.Inversions, res.Unserved)
	// Output: 50 entries, 400 messages (8 per entry), 0 violations, 0 inversions, unserved []
}
