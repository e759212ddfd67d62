package shm

import "fmt"

// ValidName reports whether name can be used as a named region: 1 to 200
// letters, digits, '.', '_' or '-', not starting with '.', so that it is a
// single file directly under /dev/shm.
func ValidName(name string) error {
	if name == "" || len(name) > 200 || name[0] == '.' {
		return fmt.Errorf("shm: invalid region name %q: use 1-200 letters, digits, '.', '_' or '-', not starting with '.'", name)
	}
	for _, c := range []byte(name) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("shm: invalid region name %q: character %q not allowed", name, c)
		}
	}
	return nil
}
