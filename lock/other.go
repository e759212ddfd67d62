//go:build !linux

package lock

import (
	"errors"
)

// CreateSysV is not supported outside Linux.
func CreateSysV() (int, error) { return 0, errors.ErrUnsupported }

// RemoveSysV is not supported outside Linux.
func RemoveSysV(int) error { return errors.ErrUnsupported }

// SysVExists is always false outside Linux.
func SysVExists(int) bool { return false }

// SysVOwner is not supported outside Linux.
func SysVOwner(int) (int, int, error) { return 0, 0, errors.ErrUnsupported }

func openFcntl(Config) (Locker, error) { return nil, errors.ErrUnsupported }
func openFlock(Config) (Locker, error) { return nil, errors.ErrUnsupported }
func openSysV(Config) (Locker, error)  { return nil, errors.ErrUnsupported }
func alive(int) bool                   { return true }
func yield()                           {}
