package explore_test

import (
	"context"
	"fmt"

	"mplock/dmutex"
	"mplock/dmutex/explore"
)

func ExampleExplore() {
	for _, a := range []dmutex.Algorithm{dmutex.RicartAgrawala, dmutex.Broken} {
		res, err := explore.Explore(context.Background(), explore.Config{Algorithm: a, N: 2, Entries: 1})
		if err != nil {
			fmt.Println(err)
			return
		}
		if res.Proved() {
			fmt.Printf("%v: proved, %d states\n", a, res.States)
			continue
		}
		f := res.Failure
		fmt.Printf("%v: %v after %d steps: %s\n", a, f.Kind, len(f.Trace), f.What)
	}
	// Output:
	// ricart-agrawala: proved, 31 states
	// broken: mutual exclusion violated after 6 steps: P0 and P1 are in the critical section at once
}
