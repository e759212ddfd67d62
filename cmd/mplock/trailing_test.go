package main

import (
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

func TestTrailingFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		command bool // as mplock run: the second argument starts a command
		pos     []string
		hold    time.Duration
		json    bool
		dir     string
		err     string
	}{
		{name: "flags after the arguments", args: []string{"file_A", "WRITE", "v", "--hold", "5s", "--json"},
			pos: []string{"file_A", "WRITE", "v"}, hold: 5 * time.Second, json: true},
		{name: "bare seconds", args: []string{"x", "--hold", "0.5"}, pos: []string{"x"}, hold: 500 * time.Millisecond},
		{name: "flag=value", args: []string{"file_A", "--hold=5s", "READ"}, pos: []string{"file_A", "READ"}, hold: 5 * time.Second},
		{name: "alias", args: []string{"file_A", "-d", "data"}, pos: []string{"file_A"}, dir: "data"},
		{name: "bool set false", args: []string{"x", "--json=false"}, pos: []string{"x"}},
		{name: "negative numbers are arguments", args: []string{"15", "-1", "-.5", "-1s"}, pos: []string{"15", "-1", "-.5", "-1s"}},
		{name: "a negative value", args: []string{"x", "WRITE", "-5", "--json"}, pos: []string{"x", "WRITE", "-5"}, json: true},
		{name: "a flag's value may look like a flag", args: []string{"x", "--dir", "-1"}, pos: []string{"x"}, dir: "-1"},
		{name: "dash alone is an argument", args: []string{"x", "-"}, pos: []string{"x", "-"}},
		{name: "double dash ends the flags", args: []string{"x", "--json", "--", "--hold", "-d"},
			pos: []string{"x", "--hold", "-d"}, json: true},
		{name: "command left alone", args: []string{"job", "ls", "-l", "--json"}, command: true,
			pos: []string{"job", "ls", "-l", "--json"}},
		{name: "command after flags and double dash", args: []string{"job", "--json", "--", "ls", "-l"}, command: true,
			pos: []string{"job", "ls", "-l"}, json: true},
		{name: "command that is a negative number", args: []string{"job", "-5", "--json"}, command: true,
			pos: []string{"job", "-5", "--json"}},
		{name: "without command, flags anywhere", args: []string{"job", "ls", "--json"}, pos: []string{"job", "ls"}, json: true},
		{name: "undefined flag", args: []string{"x", "--nope"}, err: "t: no flag --nope"},
		{name: "undefined single-dash flag", args: []string{"x", "-q"}, err: "t: no flag -q"},
		{name: "missing value", args: []string{"x", "--hold"}, err: "t: --hold needs a value"},
		{name: "bad value", args: []string{"x", "--hold", "soon"}, err: `t: --hold "soon": want a duration such as 1.5s`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				pos  []string
				err  error
				hold time.Duration
				json bool
				dir  string
			)
			app := &cli.App{
				Writer: io.Discard, ErrWriter: io.Discard,
				ExitErrHandler: func(*cli.Context, error) {},
				Commands: []*cli.Command{{
					Name: "t",
					Flags: []cli.Flag{
						&cli.GenericFlag{Name: "hold", Value: seconds(0)},
						&cli.BoolFlag{Name: "json"},
						&cli.StringFlag{Name: "dir", Aliases: []string{"d"}},
					},
					Action: func(c *cli.Context) error {
						pos, err = trailingFlags(c, tt.command)
						hold, json, dir = c.Duration("hold"), c.Bool("json"), c.String("dir")
						return nil
					},
				}},
			}
			if runErr := app.Run(append([]string{"mplock", "t"}, tt.args...)); runErr != nil {
				t.Fatalf("the app itself failed: %v", runErr)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				if code := exitCode(err, io.Discard); code != exitUsage {
					t.Fatalf("exit code %d, want %d (usage)", code, exitUsage)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(pos, tt.pos) {
				t.Errorf("arguments %q, want %q", pos, tt.pos)
			}
			if hold != tt.hold || json != tt.json || dir != tt.dir {
				t.Errorf("flags hold=%v json=%v dir=%q, want hold=%v json=%v dir=%q", hold, json, dir, tt.hold, tt.json, tt.dir)
			}
		})
	}
}
