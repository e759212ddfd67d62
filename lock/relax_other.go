//go:build !amd64 && !arm64

package lock

func cpuRelax() {}
