package explore

import "mplock/dmutex"

// StepKind is what happens in one step.
type StepKind uint8

// Step kinds.
const (
	StepRequest StepKind = iota + 1 // a process asks for the critical section
	StepRelease                     // a process leaves it
	StepDeliver                     // a message arrives
)

func (k StepKind) String() string {
	switch k {
	case StepRequest:
		return "request"
	case StepRelease:
		return "release"
	case StepDeliver:
		return "deliver"
	}
	return "step(?)"
}

// Step is one step of a counterexample.
type Step struct {
	Kind StepKind
	// Proc is the process that requests or releases, or receives the
	// message (dmutex.ServerID for the lock server).
	Proc   int
	Msg    dmutex.Message   // the message delivered
	SentAt int              // the step that sent Msg; -1 when it was in flight from the start
	Sent   []dmutex.Message // what the step sent
	Events []dmutex.Event   // what the processes say they did
	Inside []int            // who is in the critical section after the step
	Err    error            // the refusal that ends the trace, if it ends so
}
