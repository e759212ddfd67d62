package worker

import "fmt"

// Role is what a bank worker does to the balance.
type Role uint8

// Bank roles. Workers alternate: even slots deposit, odd slots withdraw.
const (
	Depositor Role = iota
	Withdrawer
)

// RoleOf returns the role of the worker in slot i.
func RoleOf(slot int) Role { return Role(slot % 2) }

func (r Role) String() string {
	switch r {
	case Depositor:
		return "deposit"
	case Withdrawer:
		return "withdraw"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// Sign is +1 for a depositor and -1 for a withdrawer.
func (r Role) Sign() int64 {
	if r == Withdrawer {
		return -1
	}
	return 1
}

// MarshalText implements encoding.TextMarshaler.
func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Role) UnmarshalText(b []byte) error {
	switch string(b) {
	case "deposit":
		*r = Depositor
	case "withdraw":
		*r = Withdrawer
	default:
		return fmt.Errorf("worker: unknown role %q", b)
	}
	return nil
}
