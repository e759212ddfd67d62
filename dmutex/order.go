package dmutex

// Stamp is a request's place in Lamport's total order: its timestamp, then
// the requester's id.
type Stamp struct {
	TS uint64
	ID int
}

// Less reports whether s precedes t.
func (s Stamp) Less(t Stamp) bool { return before(s.TS, s.ID, t.TS, t.ID) }

// Inversions counts the pairs of entries granted out of timestamp order:
// pairs i < j (in the order the entries happened) whose stamps say j's
// request came first. Ricart-Agrawala grants in stamp order, so it has none.
// O(n log n); order is not modified.
func Inversions(order []Stamp) int64 {
	a := append([]Stamp(nil), order...)
	tmp := make([]Stamp, len(a))
	return mergeCount(a, tmp)
}

func mergeCount(a, tmp []Stamp) int64 {
	if len(a) < 2 {
		return 0
	}
	mid := len(a) / 2
	n := mergeCount(a[:mid], tmp[:mid]) + mergeCount(a[mid:], tmp[mid:])
	i, j, k := 0, mid, 0
	for i < mid && j < len(a) {
		if a[j].Less(a[i]) {
			n += int64(mid - i) // a[j] precedes every one left in the first half
			tmp[k] = a[j]
			j++
		} else {
			tmp[k] = a[i]
			i++
		}
		k++
	}
	k += copy(tmp[k:], a[i:mid])
	copy(tmp[k:], a[j:])
	copy(a, tmp[:len(a)])
	return n
}
