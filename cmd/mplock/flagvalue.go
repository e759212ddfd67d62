package main

import (
	"errors"
	"fmt"
	"math"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// Every duration and number flag of every command reads its value the same
// way, through the values below, declared as
//
//	&cli.GenericFlag{Name: "hold", Value: seconds(time.Microsecond), Usage: "..."}
//	&cli.GenericFlag{Name: "duration", Value: positiveSeconds(10 * time.Second), Usage: "..."}
//	&cli.GenericFlag{Name: "ops", Value: number(0, 100_000), Usage: "..."}
//
// and read as before with c.Duration, c.Int, c.Int64 and c.Uint64, which
// parse the value's String. A bad value is a usage error that names the flag
// as it is spelt in the help (--hold), the value given, and a good one
// (flagError). TestFlagsReadAlike checks that no command declares a
// duration or number flag of urfave/cli's own types, which read each in a
// way of their own.

// durationValue is a duration flag's value: a Go duration (1.5s, 250ms,
// 100us, 1h30m) or a bare number of seconds (5, 0.5), as sleep(1) and
// flock -w take them.
type durationValue struct {
	d        time.Duration
	positive bool // zero and negative durations are refused
}

// seconds returns a duration flag's value, d by default.
func seconds(d time.Duration) *durationValue { return &durationValue{d: d} }

// positiveSeconds returns the value of a duration flag that must be above
// zero (how long a run lasts), d by default. The default itself is not
// checked: 0 can stand for "not given".
func positiveSeconds(d time.Duration) *durationValue {
	return &durationValue{d: d, positive: true}
}

func (v *durationValue) Set(s string) error {
	d, err := parseDuration(s)
	if err == nil && v.positive && d <= 0 {
		err = errors.New(positiveDurationWant)
	}
	if err != nil {
		return err
	}
	v.d = d
	return nil
}

func (v *durationValue) String() string { return v.d.String() }

// What a duration flag wants, with good examples.
const (
	durationWant         = "want a duration such as 1.5s, 250ms or 100us, or a number of seconds such as 0.5"
	positiveDurationWant = "want a duration above zero, such as 1.5s, 250ms or 100us, or a number of seconds such as 0.5"
)

// parseDuration reads a Go duration or a bare number of seconds. NaN,
// infinities and numbers beyond a Duration's range (about 292 years) are
// refused rather than wrapped into nonsense.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.Abs(f*1e9) >= math.MaxInt64 {
		return 0, fmt.Errorf("%s", durationWant)
	}
	return time.Duration(math.Round(f * 1e9)), nil
}

// numberValue is a whole-number flag's value, in decimal, with optional
// underscores between digit groups (100_000) as in Go's literals.
type numberValue struct {
	n       int64
	example int64 // a good value, for the error message
}

// number returns a number flag's value, n by default; example is a good
// value to show in the error for a bad one.
func number(n, example int64) *numberValue { return &numberValue{n: n, example: example} }

var wholeNumber = regexp.MustCompile(`^[+-]?[0-9]+(_[0-9]+)*$`)

func (v *numberValue) Set(s string) error {
	s = strings.TrimSpace(s)
	n, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 64)
	if !wholeNumber.MatchString(s) || err != nil {
		return fmt.Errorf("want a whole number such as %d", v.example)
	}
	v.n = n
	return nil
}

func (v *numberValue) String() string { return strconv.FormatInt(v.n, 10) }

// addrValue is the value of a flag that names a TCP address to listen on:
// HOST:PORT, the port a number from 0 (any free port) to 65535.
type addrValue string

func listenAddr(def string) *addrValue {
	v := addrValue(def)
	return &v
}

func (v *addrValue) Set(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		return fmt.Errorf("want HOST:PORT such as 127.0.0.1:5555 (port 0: a free one)")
	}
	*v = addrValue(s)
	return nil
}

func (v *addrValue) String() string { return string(*v) }

// The errors of Go's flag package, which urfave/cli passes on unchanged.
// They spell every flag with one dash (-ops), whatever the help says.
var (
	flagInvalid   = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for (?:flag )?-(\S+): (.*)$`)
	flagUndefined = regexp.MustCompile(`^flag provided but not defined: -+(\S+)$`)
	flagNoValue   = regexp.MustCompile(`^flag needs an argument: -+(\S+)$`)
)

// flagName spells a flag as the help lists it: --name, or -n for a
// one-letter alias.
func flagName(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// flagError rewrites an error from parsing cmd's flags into mplock's form:
// "bank: --hold "5x": want a duration such as ...". Errors it does not
// recognise are passed on with cmd in front. The result is a usage error.
func flagError(cmd string, err error) error {
	msg := err.Error()
	prefix := ""
	if cmd != "" {
		prefix = cmd + ": "
	}
	if m := flagInvalid.FindStringSubmatch(msg); m != nil {
		why := m[3]
		if why == "parse error" || strings.HasPrefix(why, "strconv.") {
			why = "not a valid value" // a flag of urfave/cli's own type
		}
		if strings.Contains(msg, "boolean") {
			why = "want true or false, or the flag alone"
		}
		return usageErrorf("%s%s %q: %s", prefix, flagName(m[2]), m[1], why)
	}
	if m := flagUndefined.FindStringSubmatch(msg); m != nil {
		return usageErrorf("%sno flag %s", prefix, flagName(m[1]))
	}
	if m := flagNoValue.FindStringSubmatch(msg); m != nil {
		return usageErrorf("%s%s needs a value", prefix, flagName(m[1]))
	}
	return usageErrorf("%s%s", prefix, msg)
}

// commandPath is c's command as typed after mplock: "bank", "bench lockd";
// "" at the top level.
func commandPath(c *cli.Context) string {
	var names []string
	for _, ctx := range c.Lineage() {
		if ctx.Command != nil && ctx.Command.Name != "" && ctx.Command.Name != ctx.App.Name {
			names = append([]string{ctx.Command.Name}, names...)
		}
	}
	return strings.Join(names, " ")
}
