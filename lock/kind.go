package lock

import (
	"fmt"
	"strings"
)

// Kind names a lock kind.
type Kind uint8

// The lock kinds, in the order they are listed.
const (
	None Kind = iota
	Flock
	Fcntl
	Sem
	SysV
	Spin
	Atomic
	numKinds
)

type kindInfo struct {
	name, desc string
}

var kindInfos = [numKinds]kindInfo{
	None:   {"none", "no lock: workers read, modify and write the balance unprotected (the lost-update race)"},
	Flock:  {"flock", "BSD flock(2) on a lock file; excludes and is excluded by util-linux flock(1)"},
	Fcntl:  {"fcntl", "open-file-description record lock (F_OFD_SETLKW); conflicts with POSIX lockf/fcntl locks"},
	Sem:    {"sem", "binary semaphore on a futex word in the shared region; recovers when its holder dies"},
	SysV:   {"sysv", "System V semaphore (semget/semop with SEM_UNDO, so the kernel releases a dead holder's)"},
	Spin:   {"spin", "compare-and-swap spinlock in the shared region: bounded spinning, then sched_yield"},
	Atomic: {"atomic", "no lock: one atomic add updates the balance (the lock-free upper bound)"},
}

// Kinds returns every kind, in listing order.
func Kinds() []Kind {
	ks := make([]Kind, numKinds)
	for i := range ks {
		ks[i] = Kind(i)
	}
	return ks
}

// String returns the kind's name as used on the command line.
func (k Kind) String() string {
	if k < numKinds {
		return kindInfos[k].name
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Description returns a one-line description of the kind.
func (k Kind) Description() string {
	if k < numKinds {
		return kindInfos[k].desc
	}
	return ""
}

// Excludes reports whether the kind makes the read-modify-write of the
// balance correct: every kind but none. (atomic does so without a lock.)
func (k Kind) Excludes() bool { return k != None && k < numKinds }

// LockFree reports whether the kind updates without taking any lock.
func (k Kind) LockFree() bool { return k == Atomic || k == None }

// NeedsFile reports whether the kind locks a file (flock, fcntl).
func (k Kind) NeedsFile() bool { return k == Flock || k == Fcntl }

// MarshalText implements encoding.TextMarshaler (JSON, CSV).
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *Kind) UnmarshalText(b []byte) error {
	v, err := ParseKind(string(b))
	if err == nil {
		*k = v
	}
	return err
}

// ParseKind returns the kind with the given name. Its error lists the kinds
// that exist.
func ParseKind(name string) (Kind, error) {
	for i, info := range kindInfos {
		if info.name == name {
			return Kind(i), nil
		}
	}
	return 0, fmt.Errorf("unknown lock kind %q (kinds: %s)", name, strings.Join(kindNames(), ", "))
}

// ParseKinds parses a comma-separated list of kinds ("flock,sem"); "all" means
// every kind. Duplicates are removed, order is kept.
func ParseKinds(list string) ([]Kind, error) {
	var out []Kind
	seen := map[Kind]bool{}
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if f == "all" {
			for _, k := range Kinds() {
				if !seen[k] {
					seen[k] = true
					out = append(out, k)
				}
			}
			continue
		}
		k, err := ParseKind(f)
		if err != nil {
			return nil, err
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no lock kind given (kinds: %s)", strings.Join(kindNames(), ", "))
	}
	return out, nil
}

func kindNames() []string {
	names := make([]string, numKinds)
	for i, info := range kindInfos {
		names[i] = info.name
	}
	return names
}
