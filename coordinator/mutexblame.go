package coordinator

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"mplock/dmutex"
	"mplock/shm"
)

// slotView is a snapshot of one process's slot and of its OS process.
type slotView struct {
	id       int
	pid      int
	state    dmutex.State
	awaiting dmutex.Set
	token    bool
	done     bool
	os       byte // the process's state letter in /proc (R, S, T, Z...); 0 when gone
}

// waitGraph says who waits for whom: the edges of a Wanted process go to the
// processes it needs a message from; in the token ring and Suzuki-Kasami,
// to the process holding the token, because that is the only one that can
// let it in (Raymond's processes know the neighbour towards the token, and
// that chain leads to the holder).
func waitGraph(a dmutex.Algorithm, views []slotView) map[int][]int {
	holder := -1
	for _, v := range views {
		if v.token {
			holder = v.id
		}
	}
	g := map[int][]int{}
	for _, v := range views {
		switch {
		case v.id == dmutex.ServerID:
			// The server waits for its holder's release, which matters
			// only to the clients waiting for the server.
			g[v.id] = v.awaiting.IDs()
		case v.state != dmutex.Wanted:
		case (a == dmutex.TokenRing || a == dmutex.SuzukiKasami) && holder >= 0 && holder != v.id:
			g[v.id] = []int{holder}
		default:
			g[v.id] = v.awaiting.IDs()
		}
	}
	return g
}

// waitersOf returns the processes waiting for culprit, directly or through
// another waiter, in id order.
func waitersOf(g map[int][]int, culprit int) []int {
	reach := map[int]bool{culprit: true}
	for changed := true; changed; {
		changed = false
		for w, targets := range g {
			if reach[w] {
				continue
			}
			for _, t := range targets {
				if reach[t] {
					reach[w], changed = true, true
					break
				}
			}
		}
	}
	var out []int
	for id := range dmutex.MaxIDs {
		if reach[id] && id != culprit {
			out = append(out, id)
		}
	}
	return out
}

// blame names the process everyone waits for: the dead one when one died;
// else one the OS says is stopped or gone; else the one with the most
// waiters. It returns -1 when nobody waits for anybody.
func blame(a dmutex.Algorithm, views []slotView, dead int) (culprit int, waiters []int) {
	g := waitGraph(a, views)
	if a.TokenBased() && dead >= 0 {
		// The token is lost with the dead process, or will be when it
		// gets there (the ring's next hop, the queue's next holder, the
		// tree path through it): every requester waits for it.
		for _, v := range views {
			if v.state == dmutex.Wanted && v.id != dead {
				g[v.id] = []int{dead}
			}
		}
	}
	if dead >= 0 {
		return dead, waitersOf(g, dead)
	}
	for _, v := range views {
		if v.os == 'T' || v.os == 't' || v.os == 'Z' || v.os == 0 {
			return v.id, waitersOf(g, v.id)
		}
	}
	culprit = -1
	for _, v := range views {
		if w := waitersOf(g, v.id); len(w) > len(waiters) {
			culprit, waiters = v.id, w
		}
	}
	return culprit, waiters
}

// osState returns the state letter of process pid from /proc, 0 if it is
// gone.
func osState(pid int) byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0
	}
	return s[i+2]
}

// osStateWords says what a /proc state letter means.
func osStateWords(c byte) string {
	switch c {
	case 'T':
		return "stopped (SIGSTOP)"
	case 't':
		return "stopped by a debugger"
	case 'Z':
		return "dead, not yet reaped"
	case 'R':
		return "running"
	case 'S', 'D':
		return "asleep"
	case 0:
		return "gone"
	}
	return "state " + string(c)
}

// why explains, per algorithm, why the waiters cannot go on without the
// culprit.
func why(a dmutex.Algorithm, culprit int, views []slotView) string {
	switch a {
	case dmutex.RicartAgrawala, dmutex.Broken:
		return "Ricart-Agrawala lets a process in only with a reply from every other process, so one silent process blocks every request"
	case dmutex.Lamport:
		return "Lamport's algorithm lets a process in only with a reply from every other process, and after the release of every request ahead of it, so one silent process blocks every request"
	case dmutex.RoucairolCarvalho:
		return fmt.Sprintf("a Roucairol-Carvalho process needs the permission of every process it gave its own to since its last entry; %s keeps the permissions it holds forever", dmutex.Name(culprit))
	case dmutex.Maekawa, dmutex.MaekawaNaive:
		return fmt.Sprintf("Maekawa lets a process in only with the vote of every member of its quorum; %s's vote, and every vote locked for %s's request, never comes back", dmutex.Name(culprit), dmutex.Name(culprit))
	case dmutex.SuzukiKasami:
		return fmt.Sprintf("nobody enters without the token, and the token is lost if %s held it or was next in its queue", dmutex.Name(culprit))
	case dmutex.Raymond:
		return fmt.Sprintf("the token and the requests travel along the tree, and cannot get past %s", dmutex.Name(culprit))
	case dmutex.Central:
		if culprit == dmutex.ServerID {
			return "every request goes through the lock server"
		}
		for _, v := range views {
			if v.id == dmutex.ServerID && v.awaiting.Has(culprit) {
				return fmt.Sprintf("the server granted the lock to %s and grants it to nobody else until %s releases it", dmutex.Name(culprit), dmutex.Name(culprit))
			}
		}
		return fmt.Sprintf("%s held nothing, so the central algorithm needs nothing from it", dmutex.Name(culprit))
	case dmutex.TokenRing:
		return fmt.Sprintf("the token cannot get past %s, and nobody enters without the token", dmutex.Name(culprit))
	}
	return ""
}

func names(ids []int) string {
	var s []string
	for _, id := range ids {
		s = append(s, dmutex.Name(id))
	}
	switch len(s) {
	case 0:
		return "nobody"
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

func snapshotSlot(mx *shm.Mutex, slot, id, pid int) slotView {
	s := mx.Slot(slot)
	return slotView{
		id:       id,
		pid:      pid,
		state:    dmutex.State(s.Proc.Load()),
		awaiting: dmutex.SetOf([2]uint64{s.Awaiting[0].Load(), s.Awaiting[1].Load()}),
		token:    s.Token.Load() == 1,
		done:     shm.SlotState(s.State.Load()) == shm.SlotDone,
		os:       osState(pid),
	}
}
