//go:build amd64 || arm64

package lock

// cpuRelax tells the CPU that this is a spin-wait loop (PAUSE on x86, YIELD
// on arm64): it saves power and lets the sibling hyperthread run.
//
//go:noescape
func cpuRelax()
