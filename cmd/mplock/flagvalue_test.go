package main

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

func TestParseDuration(t *testing.T) {
	good := map[string]time.Duration{
		"1.5s": 1500 * time.Millisecond, "250ms": 250 * time.Millisecond, "100us": 100 * time.Microsecond,
		"1µs": time.Microsecond, "1h30m": 90 * time.Minute, "0": 0,
		"5": 5 * time.Second, "0.5": 500 * time.Millisecond, "60": time.Minute, ".25": 250 * time.Millisecond,
		"1e-6": time.Microsecond, " 2 ": 2 * time.Second, "-1": -time.Second, "0.0000000004": 0,
	}
	for s, want := range good {
		if got, err := parseDuration(s); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "soon", "5x", "NaN", "Inf", "-Inf", "1e30", "9.3e9", "5 s", "1,5"} {
		if d, err := parseDuration(s); err == nil {
			t.Errorf("parseDuration(%q) = %v, want an error", s, d)
		}
	}
}

func TestNumberValue(t *testing.T) {
	good := map[string]int64{"0": 0, "42": 42, "100_000": 100_000, "-1": -1, "+7": 7, "007": 7}
	for s, want := range good {
		v := number(0, 1)
		if err := v.Set(s); err != nil || v.n != want {
			t.Errorf("Set(%q) = %v, n %d; want %d", s, err, v.n, want)
		}
	}
	for _, s := range []string{"", "x", "1.5", "1e5", "0x10", "1__0", "_1", "1_", "99999999999999999999", "1,000"} {
		if err := number(0, 4).Set(s); err == nil || err.Error() != "want a whole number such as 4" {
			t.Errorf("Set(%q) = %v, want \"want a whole number such as 4\"", s, err)
		}
	}
}

// flagsOf walks every command (hidden ones too) and calls f with the
// command's path after mplock and each of its flags.
func flagsOf(app *cli.App, f func(path []string, cmd *cli.Command, fl cli.Flag)) {
	var walk func(path []string, cmds []*cli.Command)
	walk = func(path []string, cmds []*cli.Command) {
		for _, c := range cmds {
			p := append(append([]string(nil), path...), c.Name)
			for _, fl := range c.Flags {
				f(p, c, fl)
			}
			walk(p, c.Subcommands)
		}
	}
	walk(nil, app.Commands)
}

// TestFlagsReadAlike holds every command to one way of reading durations
// and numbers: no flag of urfave/cli's own numeric types (each reads its
// value its own way and answers a bad one with "parse error"), every
// duration flag takes bare seconds, every number flag underscores, and a
// bad value of any of them is answered with the flag as --flag, the value,
// and a good one, exit 2.
func TestFlagsReadAlike(t *testing.T) {
	type flagCase struct {
		path []string
		name string
		kind string // "duration" or "number"
	}
	var cases []flagCase
	flagsOf(newApp(io.Discard, io.Discard), func(path []string, _ *cli.Command, fl cli.Flag) {
		name := fl.Names()[0]
		switch fl := fl.(type) {
		case *cli.IntFlag, *cli.Int64Flag, *cli.UintFlag, *cli.Uint64Flag, *cli.Float64Flag, *cli.DurationFlag:
			t.Errorf("mplock %s --%s is a %T: declare it as a cli.GenericFlag with Value seconds(...) or number(...) (flagvalue.go)",
				strings.Join(path, " "), name, fl)
		case *cli.GenericFlag:
			switch fl.Value.(type) {
			case *durationValue:
				cases = append(cases, flagCase{path, name, "duration"})
			case *numberValue:
				cases = append(cases, flagCase{path, name, "number"})
			}
		}
	})
	if len(cases) < 30 {
		t.Fatalf("found only %d duration and number flags; the walk is broken", len(cases))
	}
	for _, fc := range cases {
		t.Run(strings.Join(fc.path, "_")+"_"+fc.name, func(t *testing.T) {
			cmdline := strings.Join(fc.path, " ")
			// A bad value: exit 2 and the one form of message.
			var stderr bytes.Buffer
			args := append(append([]string{"mplock"}, fc.path...), "--"+fc.name, "bogus")
			if code := runRecording(t, args, &stderr, nil); code != exitUsage {
				t.Fatalf("mplock %s --%s bogus: exit %d, want %d; stderr %q", cmdline, fc.name, code, exitUsage, stderr.String())
			}
			want := fmt.Sprintf(`mplock: %s: --%s "bogus": want a `, cmdline, fc.name)
			if !strings.HasPrefix(stderr.String(), want) || !regexp.MustCompile(`such as [0-9]`).MatchString(stderr.String()) {
				t.Errorf("mplock %s --%s bogus said %q, want %q and an example", cmdline, fc.name, stderr.String(), want+"...such as N")
			}
			// A good value reaches the command as c.Duration and c.Int64 read it.
			value, check := "0.25", func(c *cli.Context) error {
				if got := c.Duration(fc.name); got != 250*time.Millisecond {
					return fmt.Errorf("c.Duration(%q) = %v, want 250ms", fc.name, got)
				}
				return nil
			}
			if fc.kind == "number" {
				value, check = "1_234", func(c *cli.Context) error {
					if got, got64 := c.Int(fc.name), c.Int64(fc.name); got != 1234 || got64 != 1234 || c.Uint64(fc.name) != 1234 {
						return fmt.Errorf("c.Int(%q) = %d, c.Int64 %d, want 1234", fc.name, got, got64)
					}
					return nil
				}
			}
			args = append(append([]string{"mplock"}, fc.path...), "--"+fc.name, value)
			stderr.Reset()
			if code := runRecording(t, args, &stderr, check); code != 0 {
				t.Errorf("mplock %s --%s %s: exit %d: %s", cmdline, fc.name, value, code, stderr.String())
			}
		})
	}
}

// runRecording runs the app in-process with every command's action
// replaced by check (nothing is started), and returns the exit code.
func runRecording(t *testing.T, args []string, stderr io.Writer, check func(*cli.Context) error) int {
	t.Helper()
	app := newApp(io.Discard, stderr)
	called := false
	var replace func(cmds []*cli.Command)
	replace = func(cmds []*cli.Command) {
		for _, c := range cmds {
			c.Action = func(c *cli.Context) error {
				called = true
				if check == nil {
					return fmt.Errorf("the command ran, but its flags should have been refused")
				}
				return check(c)
			}
			replace(c.Subcommands)
		}
	}
	replace(app.Commands)
	code := exitCode(app.Run(helpArgs(args)), stderr)
	if check != nil && !called && code == 0 {
		t.Errorf("%q: the command's action was not called", args)
	}
	return code
}

// defaultText is how a help line states a default: "(default: 2s)", "(default
// 100000 unless --duration)", "..., default flock,sem".
var defaultText = regexp.MustCompile(`[(,] ?default\b`)

// TestHelpShowsOneDefault: a flag's help line names its default once
// (--ops said "(default 100000 unless --duration) (default: 0)").
func TestHelpShowsOneDefault(t *testing.T) {
	seen := map[string]bool{}
	flagsOf(newApp(io.Discard, io.Discard), func(path []string, cmd *cli.Command, _ cli.Flag) {
		key := strings.Join(path, " ")
		if seen[key] || cmd.Hidden {
			return
		}
		seen[key] = true
		var out bytes.Buffer
		if code := run(append(append([]string{"mplock"}, path...), "--help"), &out, io.Discard); code != 0 {
			t.Fatalf("mplock %s --help: exit %d", key, code)
		}
		for _, line := range strings.Split(out.String(), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "-") && len(defaultText.FindAllString(line, -1)) > 1 {
				t.Errorf("mplock %s --help: %q names its default twice", key, strings.TrimSpace(line))
			}
		}
	})
	if len(seen) < 8 {
		t.Fatalf("checked the help of only %d commands", len(seen))
	}
}
