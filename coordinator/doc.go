// Package coordinator plans and supervises mplock's runs of real processes:
// it creates what the processes share, starts them through a start barrier,
// watches the deadline, Ctrl-C and the death of any of them, collects what
// they did, and releases every resource on every exit path.
//
// One file set per run kind, each a plan (validated, with defaults in one
// place), a run, and a result that package report renders:
//
//	bank*.go      mplock bank: workers on one shared balance, one lock kind
//	bench*.go     mplock bench: a matrix of bank runs, repeated
//	mutex*.go     mplock mutex: distributed mutual exclusion among peers,
//	              checked independently through shared memory
//	deadlock*.go  mplock deadlock: lock servers, reverse-order holders, and
//	              the detector that finds their cycle (package waitfor)
//	cluster*.go   mplock cluster: a raft cluster of mplock serve nodes behind
//	              per-link proxies, clients with UUIDs, faults on a schedule,
//	              and the analysis of what the clients saw (package lincheck)
//
// Shared machinery: children.go (starting, describing and reaping child
// processes) and resources.go (the private run directory, its manifest, and
// the janitor that cleans up after a SIGKILL).
package coordinator
