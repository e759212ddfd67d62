//go:build !linux

package shm

import "os"

// Create is not supported outside Linux.
func Create(CreateOptions) (*Region, error) { return nil, ErrUnsupported }

// Open is not supported outside Linux.
func Open(*os.File) (*Region, error) { return nil, ErrUnsupported }

// Close releases nothing outside Linux.
func (r *Region) Close() error { return nil }

// NamedPath returns where a named region would live.
func NamedPath(name string) string { return "/dev/shm/" + name }
