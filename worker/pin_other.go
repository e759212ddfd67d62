//go:build !linux

package worker

import "errors"

func pinThread(int) (int, error) { return -1, errors.ErrUnsupported }

// AllowedCPUs is not supported outside Linux.
func AllowedCPUs() ([]int, error) { return nil, errors.ErrUnsupported }
