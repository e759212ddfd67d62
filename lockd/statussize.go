package lockd

// What a STATUS page costs on the wire, counted as StatusPage walks the
// names, so that a page can end at MaxStatusPageBytes without encoding it
// twice. Each count is at least what appendStatus (reply.go) and
// appendHolder/appendWaiter (wire.go) write for the same value: strings
// and numbers are counted exactly; a time at its longest RFC 3339 form
// with nanoseconds (maxTimeLen, for years 0 to 9999: any the server's
// clock gives) and a lease at the longest Duration.String (maxDurationLen,
// 25 bytes where "30s" takes 3), so an everyday HOLDER line is counted
// about a tenth above its size. A change to those encoders must keep these
// counts at or above them (TestStatusBytesCoverTheEncoding checks).
const (
	maxTimeLen     = len("2006-01-02T15:04:05.999999999Z")
	maxDurationLen = len("-2562047h47m16.854775808s")
	maxUintLen     = len("18446744073709551615")

	// statusFinalMax is the final line, "OK STATUS now=... next=", less
	// the name after next=.
	statusFinalMax = len("OK STATUS now=") + maxTimeLen + len(" locks= holders= waiters= sessions= next=\n") + 4*maxUintLen
)

// uintLen is how many decimal digits strconv.AppendUint writes for v.
func uintLen(v uint64) int {
	n := 1
	for v >= 10 {
		v /= 10
		n++
	}
	return n
}

// clientLen is the length of clientOrDash(s).
func clientLen(s string) int { return max(len(s), 1) }

// lockStatusBytes is at least the length of the HOLDER and WAITER lines
// appendStatus writes for ls.
func lockStatusBytes(ls LockStatus) int {
	n := 0
	for _, h := range ls.Holders {
		n += len("HOLDER "+" "+" token="+" session="+" client="+" pid="+" since="+" ttl="+"\n") + len(ls.Name) + len(h.Mode.String()) +
			uintLen(uint64(h.Token)) + uintLen(uint64(h.Session)) + clientLen(h.Client) + uintLen(uint64(h.PID)) +
			maxTimeLen + maxDurationLen
		if !h.Expires.IsZero() {
			n += len(" expires=") + maxTimeLen
		}
	}
	for _, w := range ls.Waiters {
		n += len("WAITER "+" "+" position="+" session="+" client="+" pid="+" since="+"\n") + len(ls.Name) + len(w.Mode.String()) +
			uintLen(uint64(w.Position)) + uintLen(uint64(w.Session)) + clientLen(w.Client) + uintLen(uint64(w.PID)) +
			maxTimeLen
		if !w.Deadline.IsZero() {
			n += len(" deadline=") + maxTimeLen
		}
	}
	return n
}

// sessionStatusBytes is at least the length of the SESSION lines
// appendStatus writes for ss.
func sessionStatusBytes(ss []SessionStatus) int {
	n := 0
	for _, s := range ss {
		n += len("SESSION "+" client="+" pid="+" addr="+" since="+" held="+" waiting="+"\n") + uintLen(uint64(s.ID)) + clientLen(s.Client) +
			uintLen(uint64(s.PID)) + len(s.Addr) + maxTimeLen + uintLen(uint64(s.Held)) + uintLen(uint64(s.Waiting))
	}
	return n
}
