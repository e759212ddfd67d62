package report

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"mplock/dmutex"
)

// MutexAlgorithms lists the algorithms a user can choose with the theory
// each run is measured against, evaluated for the given numbers of
// processes, then how each works and where it comes from.
func MutexAlgorithms(w io.Writer, sizes []int) error {
	fmt.Fprintln(w, "mplock mutex algorithms, and the theory every run is measured against.")
	fmt.Fprintln(w, "Messages per entry at light load / heavy load; delays in T, one message's delivery time")
	fmt.Fprintln(w, "(the response time leaves out the time spent inside).")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := []string{"ALGORITHM", "MESSAGES/ENTRY"}
	for _, n := range sizes {
		head = append(head, fmt.Sprintf("N=%d", n))
	}
	head = append(head, "SYNC DELAY", "RESPONSE", "LINKS")
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, a := range dmutex.Algorithms() {
		c := a.Cost(4)
		row := []string{a.String(), c.Formula}
		for _, n := range sizes {
			cn := a.Cost(n)
			cell := short(cn.Light)
			if cn.Light != cn.Heavy {
				cell += " / " + short(cn.Heavy)
			}
			row = append(row, cell)
		}
		links := "any order"
		if a.NeedsFIFO() {
			links = "FIFO"
		}
		sync := a.Cost(sizes[len(sizes)-1]).Sync
		syncText := tRange(sync)
		if !sync.Exact() && a == dmutex.TokenRing {
			syncText = "1-(N-1)T"
		}
		if !sync.Exact() && a == dmutex.Raymond {
			syncText = "1-D T"
		}
		resp := c.Response
		respText := tRange(resp)
		switch a {
		case dmutex.TokenRing:
			respText = "0-N T"
		case dmutex.Raymond:
			respText = "0-2D T"
		}
		row = append(row, syncText, respText, links)
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, a := range dmutex.Algorithms() {
		fmt.Fprintf(w, "%s (%s)\n", a, a.Title())
		fmt.Fprintf(w, "  How:    %s.\n", a.Description())
		if b := a.Cost(9).Basis; b != "" {
			fmt.Fprintf(w, "  Theory: at N=9, %s.\n", b)
		}
		fmt.Fprintf(w, "  Source: %s.\n", a.Source())
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Light and heavy load, synchronization delay and response time as compared in M. Singhal and N. G. Shivaratri,")
	fmt.Fprintln(w, "Advanced Concepts in Operating Systems (McGraw-Hill 1994), chapter 6. Check any of them for a small N with")
	fmt.Fprintln(w, "`mplock mutex --explore --algorithm NAME --procs 3 --entries 2`: every interleaving, searched.")
	return nil
}

// short formats a range compactly: "8", "0-16", "1-inf".
func short(r dmutex.Range) string {
	if r.Exact() {
		return num(r.Lo)
	}
	hi := num(r.Hi)
	if math.IsInf(r.Hi, 1) {
		hi = "inf"
	}
	return num(r.Lo) + "-" + hi
}
