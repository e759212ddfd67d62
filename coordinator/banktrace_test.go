package coordinator

import (
	"testing"
	"time"

	"mplock/shm"
	"mplock/worker"
)

// op is a traced operation of worker slot that read version v with net
// count net, at read and wrote at wrote (µs), seeing the word seen (0:
// what it read).
func op(slot int, v uint32, net int32, read, wrote int, seen uint64) TraceOp {
	role := worker.RoleOf(slot)
	delta := shm.Deposit
	if role == worker.Withdrawer {
		delta = shm.Withdraw
	}
	r := shm.PackAccount(v, net)
	if seen == 0 {
		seen = r
	}
	o := TraceOp{Slot: slot, Role: role, read: r, wrote: r + delta, seen: seen, Overwrote: seen != r,
		Read: time.Duration(read) * time.Microsecond, Wrote: time.Duration(wrote) * time.Microsecond}
	o.ReadVersion, _ = shm.UnpackAccount(o.read)
	o.WroteVersion, _ = shm.UnpackAccount(o.wrote)
	return o
}

func TestFindLost(t *testing.T) {
	full := []span{{never, always}, {never, always}}
	v41 := shm.PackAccount(41, 0)
	w0wrote := v41 + shm.Deposit // W0's write: v42, net +1
	w1wrote := v41 + shm.Withdraw

	t.Run("textbook", func(t *testing.T) {
		// W0 and W1 read v41; W0 writes v42; W1 writes v42 over it.
		w := [][]TraceOp{{op(0, 41, 0, 1, 3, 0)}, {op(1, 41, 0, 2, 4, w0wrote)}}
		lu := findLost(w, full)
		if lu == nil || !lu.SameRead || lu.Overwritten.Slot != 0 || lu.By.Slot != 1 || lu.Writes != 1 {
			t.Fatalf("%+v; want W0's write overwritten by W1's, same read", lu)
		}
	})
	t.Run("carried", func(t *testing.T) {
		// As above, but W0's next operation read its write before W1's
		// landed: W0's update lives on; W1's write is the one overwritten,
		// by W0's second write, and nobody read it.
		w := [][]TraceOp{
			{op(0, 41, 0, 1, 3, 0), op(0, 42, 1, 3, 6, w1wrote)},
			{op(1, 41, 0, 2, 4, w0wrote)},
		}
		lu := findLost(w, full)
		if lu == nil || lu.Overwritten.Slot != 1 || lu.By.Slot != 0 || lu.SameRead {
			t.Fatalf("%+v; want W1's write overwritten by W0's second", lu)
		}
	})
	t.Run("both carried", func(t *testing.T) {
		// Ping-pong: each worker reads its own write next, so every
		// overwritten write was read, and the traces stop there (W0's
		// next operation, which would read its v43, is not in it):
		// nothing is lost for certain.
		w := [][]TraceOp{
			{op(0, 41, 0, 1, 3, 0), op(0, 42, 1, 3, 6, w1wrote)},
			{op(1, 41, 0, 2, 4, w0wrote), op(1, 42, -1, 4, 7, w0wrote+shm.Deposit)},
		}
		spans := []span{{never, 6 * time.Microsecond}, {never, 7 * time.Microsecond}}
		if lu := findLost(w, spans); lu != nil {
			t.Fatalf("%+v; want none", lu)
		}
		// Had the run ended there, W0's v43, overwritten by W1's last
		// write and read by no one, would be lost.
		lu := findLost(w, full)
		if lu == nil || lu.Overwritten.Slot != 0 || lu.Overwritten.WroteVersion != 43 || lu.By.Slot != 1 {
			t.Fatalf("%+v; want W0's v43 lost to W1's last write", lu)
		}
	})
	t.Run("crossed", func(t *testing.T) {
		// W1 reads v41; meanwhile W0 writes v42..v45; W0 reads its v45;
		// W1's stale write of v42 lands over v45 (carried on by W0, so not
		// lost); W0 writes v46 over W1's v42: W1's update is lost, by a
		// write whose read came after W1's read (the versions cross).
		v45 := shm.PackAccount(45, 4)
		w := [][]TraceOp{
			{op(0, 41, 0, 1, 2, 0), op(0, 42, 1, 3, 4, 0), op(0, 43, 2, 5, 6, 0), op(0, 44, 3, 7, 8, 0),
				op(0, 45, 4, 11, 13, w1wrote)},
			{op(1, 41, 0, 1, 12, v45)},
		}
		lu := findLost(w, full)
		if lu == nil || lu.Overwritten.Slot != 1 || lu.By.Slot != 0 || lu.Writes >= 1 {
			t.Fatalf("%+v; want W1's stale write overwritten by W0's last, Writes below 1", lu)
		}
	})
	t.Run("not covered", func(t *testing.T) {
		// The textbook case, but W1's trace stopped before its write: a
		// read of W0's write by W1 in between would not be in it.
		w := [][]TraceOp{{op(0, 41, 0, 1, 3, 0)}, {op(1, 41, 0, 2, 4, w0wrote)}}
		if lu := findLost(w, []span{{never, always}, {never, 3 * time.Microsecond}}); lu != nil {
			t.Fatalf("%+v; want none", lu)
		}
		if lu := findLost(w, []span{{2 * time.Microsecond, always}, {never, always}}); lu != nil {
			t.Fatalf("%+v; want none: W0's trace starts after its read", lu)
		}
	})
}
