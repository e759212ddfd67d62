// Package dmutex provides distributed mutual exclusion algorithms as pure
// state machines: Ricart-Agrawala, a central lock server, and a token ring,
// plus a deliberately broken Ricart-Agrawala that never defers a reply (to
// show that an independent safety check catches it).
//
// A process is driven by one goroutine that calls Request, Release and
// Handle; the process answers by sending messages through a Transport and by
// reporting events (requested, deferred, entered...) to an observer. Nothing
// here reads a clock, sleeps or touches a socket, so the same code runs in a
// real mplock peer process (over Unix or TCP sockets, package worker) and in
// tests over the in-memory network of inmem.go, which delays and reorders
// messages at random. Simulate (sim.go) runs a whole cluster that way and
// checks safety, liveness, message counts and fairness.
//
// Every message carries a Lamport timestamp. On the wire a message is one
// line of ASCII, "KIND FROM NUMBER\n" (message.go), parsed strictly: a peer
// rejects anything else and goes on.
package dmutex
