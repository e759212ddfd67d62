// Package dmutex provides distributed mutual exclusion algorithms as pure
// state machines: Ricart-Agrawala, Lamport, Roucairol-Carvalho, Maekawa
// (grid quorums, with INQUIRE/RELINQUISH/FAILED), Suzuki-Kasami, Raymond's
// tree, a central lock server and a token ring; plus two deliberately wrong
// variants kept to show that the checks catch them: a Ricart-Agrawala that
// never defers a reply, and a Maekawa without INQUIRE, which deadlocks.
// Each algorithm's file cites its paper; Algorithm.Cost states its theory
// (messages per entry at light and heavy load, synchronization delay,
// response time).
//
// A process is driven by one goroutine that calls Request, Release and
// Handle; the process answers by sending messages through a Transport and by
// reporting events (requested, deferred and why, entered...) to an
// observer. Nothing here reads a clock, sleeps or touches a socket, so the
// same code runs in a real mplock peer process (over Unix or TCP sockets,
// package worker), in tests over the in-memory network of inmem.go, which
// delays and reorders messages at random, and in package explore, which
// tries every interleaving of a small run. Simulate (sim.go) runs a whole
// cluster and checks safety, liveness, message counts and fairness.
//
// Every process keeps a logical clock by Lamport's rules applied to
// requests (clock.go). On the wire a message is one line of ASCII, "KIND
// FROM NUMBER\n", Suzuki-Kasami's token adding its LN array and queue
// (message.go), parsed strictly: a peer rejects anything else and goes on.
package dmutex
