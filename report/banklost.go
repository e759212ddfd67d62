package report

import (
	"fmt"
	"strings"
	"time"

	"mplock/coordinator"
	"mplock/worker"
)

// LostUpdateText tells a lost update as it happened, in the order it
// happened:
//
//	W0 (pid 812) read 600 (v41) at 12.301 ms; W1 (pid 813) read 600 (v41) at
//	12.302 ms; W0 wrote 605 (v42) at 12.303 ms; W1 wrote 595 (v42) at
//	12.304 ms: W0's deposit of 5 is lost.
//
// When the overwriting worker read long before (the balance was written
// many times meanwhile), it says so. workers is the run's number of
// workers: with two, every write since the overwriting worker's read was
// the other's, and all of them are lost with the last.
func LostUpdateText(lu *coordinator.LostUpdate, workers int) string {
	x, by := lu.Overwritten, lu.By
	amount := x.WroteBalance - x.ReadBalance
	if amount < 0 {
		amount = -amount
	}
	what := fmt.Sprintf("W%d's %s of %d", x.Slot, change(x.Role), amount)
	if lu.SameRead {
		t := msFormat(x.Read, by.Read, x.Wrote, by.Wrote)
		first, second := x, by
		if by.Read < x.Read {
			first, second = by, x
		}
		return fmt.Sprintf("W%d (pid %d) read %s (v%d) at %s; W%d (pid %d) read %s (v%d) at %s; W%d wrote %s (v%d) at %s; W%d wrote %s (v%d) at %s: %s is lost.",
			first.Slot, first.Pid, count(first.ReadBalance), first.ReadVersion, t(first.Read),
			second.Slot, second.Pid, count(second.ReadBalance), second.ReadVersion, t(second.Read),
			x.Slot, count(x.WroteBalance), x.WroteVersion, t(x.Wrote),
			by.Slot, count(by.WroteBalance), by.WroteVersion, t(by.Wrote), what)
	}
	t := msFormat(by.Read, x.Read, x.Wrote, by.Wrote)
	meanwhile := fmt.Sprintf("W%d (pid %d) then wrote %s (v%d) at %s", x.Slot, x.Pid, count(x.WroteBalance), x.WroteVersion, t(x.Wrote))
	switch {
	case lu.Writes < 1:
		// The overwritten write was a stale one itself: its worker had
		// read before the balance By read.
		meanwhile = fmt.Sprintf("W%d (pid %d), which had read %s (v%d) at %s, then wrote %s (v%d) at %s",
			x.Slot, x.Pid, count(x.ReadBalance), x.ReadVersion, t(x.Read), count(x.WroteBalance), x.WroteVersion, t(x.Wrote))
	case lu.Writes > 1:
		meanwhile = fmt.Sprintf("the balance was then written %s times, last by W%d (pid %d): %s (v%d) at %s",
			count(lu.Writes), x.Slot, x.Pid, count(x.WroteBalance), x.WroteVersion, t(x.Wrote))
	}
	s := fmt.Sprintf("W%d (pid %d) read %s (v%d) at %s; %s; W%d wrote %s (v%d) at %s, over it: %s, which no one had read, is lost",
		by.Slot, by.Pid, count(by.ReadBalance), by.ReadVersion, t(by.Read), meanwhile,
		by.Slot, count(by.WroteBalance), by.WroteVersion, t(by.Wrote), what)
	if lu.Writes > 1 && workers == 2 {
		s += fmt.Sprintf(", and with it every one of the %s updates W%d made since W%d's read", count(lu.Writes), x.Slot, by.Slot)
	}
	return s + "."
}

func change(r worker.Role) string {
	if r == worker.Withdrawer {
		return "withdrawal"
	}
	return "deposit"
}

// msFormat returns a formatter of times in milliseconds with the fewest
// decimals (3 to 6) that keep the given times that differ apart.
func msFormat(ts ...time.Duration) func(time.Duration) string {
	prec := 3
	for ; prec < 6; prec++ {
		ok := true
		for i := range ts {
			for j := range ts {
				if ts[i] != ts[j] && msText(ts[i], prec) == msText(ts[j], prec) {
					ok = false
				}
			}
		}
		if ok {
			break
		}
	}
	return func(d time.Duration) string { return msText(d, prec) + " ms" }
}

func msText(d time.Duration, prec int) string {
	s := fmt.Sprintf("%.*f", prec, float64(d)/1e6)
	whole, frac, _ := strings.Cut(s, ".")
	return count64(whole) + "." + frac
}

// count64 puts thousands separators into a decimal string of digits.
func count64(digits string) string {
	var n int64
	fmt.Sscan(digits, &n)
	return count(n)
}
