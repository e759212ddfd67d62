package worker

import (
	"context"
	"fmt"
	"slices"
	"time"

	"mplock/dmutex"
)

// ping sends an in-run ping unless one is still in flight.
func (p *mutexPeer) ping() {
	if p.pingSentAt != 0 {
		return
	}
	p.pingSeq++
	p.pingSentAt = Now()
	if err := p.mesh.Send(dmutex.Message{Kind: dmutex.Ping, From: p.spec.ID, To: p.pingTarget, TS: p.pingSeq}); err != nil {
		p.pingSentAt = 0
		p.sendFailed(err)
	}
}

// deliveryOf turns round trips into one-way delivery times.
func deliveryOf(rtt []int64) Delivery {
	s := slices.Clone(rtt)
	slices.Sort(s)
	var sum int64
	for _, v := range s {
		sum += v
	}
	n := int64(len(s))
	return Delivery{Rounds: len(s), Median: s[n/2] / 2, Mean: sum / n / 2, Min: s[0] / 2}
}

// measureDelivery times ping round trips to the first neighbour, before the
// run starts (every other process is idle, as a waiting process is), and
// reports half the round trip: one message's delivery time, through the
// same sockets, encoding and wake-ups as the algorithm's messages.
func (p *mutexPeer) measureDelivery(ctx context.Context) error {
	target := p.mesh.neighbors()[0]
	samples := make([]int64, 0, p.spec.Pings)
	timeout := time.NewTimer(p.spec.Timeout)
	defer timeout.Stop()
	for seq := range uint64(warmupPings + p.spec.Pings) {
		t0 := Now()
		if err := p.mesh.Send(dmutex.Message{Kind: dmutex.Ping, From: p.spec.ID, To: target, TS: seq}); err != nil {
			return fmt.Errorf("worker: measure delivery: %w", err)
		}
		for answered := false; !answered; {
			select {
			case in := <-p.mesh.in:
				if in.err == nil && in.down == nil && in.m.Kind == dmutex.Pong && in.m.TS == seq && in.from == target {
					answered = true
					continue
				}
				if in.down != nil && in.from == target {
					return fmt.Errorf("worker: measure delivery: lost the link to %s: %w", dmutex.Name(target), in.down)
				}
				p.receive(in)
			case <-timeout.C:
				return fmt.Errorf("worker: measure delivery: no answer from %s in %v", dmutex.Name(target), p.spec.Timeout)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if seq >= warmupPings {
			samples = append(samples, Now()-t0)
		}
	}
	p.notes.delivery("idle", deliveryOf(samples))
	return nil
}

// garbage is what a process with the garbage fault sends on each link
// before the start: lines every receiver must refuse, none of which could
// pass for a real message.
var garbage = []string{
	"HELLO\n",
	"REQUEST 1\n",
	"REQUEST x 5\n",
	"request 1 5\n",
	"REPLY 1 -5\n",
	"TOKEN 1 007\n",
	"\x00\xff\xfe\n",
	string(make([]byte, 2*readBuffer)) + "\n",
}

// sendGarbage writes the garbage lines on every link, and one well-formed
// message claiming to come from the receiver itself (a forged sender).
func (p *mutexPeer) sendGarbage() {
	for _, j := range p.mesh.neighbors() {
		for _, g := range garbage {
			p.mesh.writeRaw(j, []byte(g))
		}
		p.mesh.writeRaw(j, dmutex.AppendMessage(nil, dmutex.Message{Kind: dmutex.Reply, From: j, TS: 1}))
	}
}
