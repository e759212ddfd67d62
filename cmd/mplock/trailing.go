package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// trailingFlags applies the flags given after c's positional arguments and
// returns the positional arguments. urfave/cli v2 stops parsing flags at the
// first positional argument and leaves the rest in Args, but the commands'
// documented forms put flags last: `mplock client file_A WRITE v --hold 5s`,
// `mplock mutex 15 10 --json`.
//
// A word that starts with "-" is a flag, except "-" itself and a negative
// number ("-1", "-.5", "-1s"), which are arguments: so that `mplock mutex 15
// -1` is reported as a bad duration and `mplock client x WRITE -5` writes
// "-5". "--" ends the flags: every word after it is an argument.
//
// With command set, the second argument starts a command line that is left
// alone, flags and all (`mplock run job ls -l`).
func trailingFlags(c *cli.Context, command bool) ([]string, error) {
	var pos []string
	args := c.Args().Slice()
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(pos, args[i+1:]...), nil
		}
		if !isFlagWord(a) {
			pos = append(pos, a)
			if command && len(pos) > 1 {
				return append(pos, args[i+1:]...), nil
			}
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := commandFlag(c.Command.Flags, name)
		if f == nil {
			return nil, usageErrorf("%s: no flag %s", c.Command.Name, flagName(name))
		}
		if _, isBool := f.(*cli.BoolFlag); isBool && !hasValue {
			value = "true"
		} else if !hasValue {
			if i+1 >= len(args) {
				return nil, usageErrorf("%s: %s needs a value", c.Command.Name, flagName(name))
			}
			i++
			value = args[i]
		}
		if err := c.Set(f.Names()[0], value); err != nil {
			return nil, usageErrorf("%s: %s %q: %v", c.Command.Name, flagName(name), value, err)
		}
	}
	return pos, nil
}

// isFlagWord reports whether a names a flag rather than being an argument.
func isFlagWord(a string) bool {
	if len(a) < 2 || a[0] != '-' {
		return false
	}
	negative := a[1] >= '0' && a[1] <= '9' || a[1] == '.'
	return !negative
}

// commandFlag returns the flag among flags that has name or alias name.
func commandFlag(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}
