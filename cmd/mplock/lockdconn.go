package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"mplock/internal/safefile"
	"mplock/lockd"
)

// defaultServer is where `mplock serve` listens unless told otherwise, and
// where the clients look for it.
const defaultServer = "127.0.0.1:5555"

// serverFlags are shared by client, run and status.
func serverFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "server", Aliases: []string{"s"}, Value: defaultServer, EnvVars: []string{"MPLOCK_SERVER"},
			Usage: "lock server `ADDR` (host:port), a cluster's members ADDR,ADDR,... (tried in turn; the client moves between them), or @FILE to read it from the --addr-file of `mplock serve` (waiting for the file)"},
		&cli.StringFlag{Name: "token-file", EnvVars: []string{"MPLOCK_TOKEN_FILE"}, Usage: "`FILE` holding the server's shared secret, if it has one"},
		&cli.StringFlag{Name: "name", Usage: "client `NAME` this session shows in status (default: the command's)"},
		&cli.GenericFlag{Name: "connect-timeout", Value: seconds(10 * time.Second), Usage: "give up reaching the server after this long (a server that answers ERR busy is tried again until then)"},
	}
}

// dialServer connects to the server the flags name.
func dialServer(c *cli.Context, cmd, defaultName string) (*lockd.Client, string, error) {
	return dialServerResume(c, cmd, defaultName, lockd.SessionCredential{})
}

// dialServerResume connects as dialServer does, taking over the cluster
// session resume if it is set.
func dialServerResume(c *cli.Context, cmd, defaultName string, resume lockd.SessionCredential) (*lockd.Client, string, error) {
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("connect-timeout"))
	defer cancel()
	addr, err := resolveServer(ctx, c.String("server"))
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", cmd, err)
	}
	opts := lockd.Options{Client: defaultName, Resume: resume}
	if c.String("name") != "" {
		if err := lockd.ValidName(c.String("name")); err != nil {
			return nil, "", usageErrorf("%s: --name: %v", cmd, err)
		}
		opts.Client = c.String("name")
	}
	if f := c.String("token-file"); f != "" {
		s, err := readSecret(f)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", cmd, err)
		}
		opts.Secret = s
	}
	cl, err := lockd.Dial(ctx, addr, opts)
	if err != nil {
		if c.Context.Err() != nil {
			return nil, "", withCode(exitInterrupted, nil)
		}
		if errors.Is(err, lockd.ErrAuth) {
			if f := c.String("token-file"); f != "" {
				return nil, "", fmt.Errorf("%s: the lock server at %s refused the secret in --token-file %s: %w", cmd, addr, f, err)
			}
			return nil, "", fmt.Errorf("%s: the lock server at %s wants a secret: give its --token-file (%w)", cmd, addr, err)
		}
		hint := ""
		if errors.Is(err, syscall.ECONNREFUSED) {
			hint = " (is `mplock serve` running there?)"
		}
		if errors.Is(err, lockd.ErrSessionLost) {
			return nil, "", fmt.Errorf("%s: %w", cmd, err)
		}
		return nil, "", fmt.Errorf("%s: cannot reach the lock server at %s: %w%s", cmd, addr, err, hint)
	}
	return cl, cl.Server(), nil
}

// checkTTL refuses a --ttl the server would refuse as ttl=: a lease is 0
// (none) or from lockd.MinTTL to lockd.MaxDuration.
func checkTTL(cmd string, ttl time.Duration) error {
	if lockd.ValidTTL(ttl) != nil {
		return usageErrorf("%s: --ttl %v: want 0 (no lease) or from %v to %v", cmd, ttl, lockd.MinTTL, lockd.MaxDuration)
	}
	return nil
}

// resolveServer turns "@FILE" into the address the file holds, waiting for
// a server that is still starting to write it. The file must be one that
// no other user could have written (safefile.ReadTrusted): a planted
// address would send this client's secret and locks to a fake server.
func resolveServer(ctx context.Context, spec string) (string, error) {
	path, ok := strings.CutPrefix(spec, "@")
	if !ok {
		return spec, nil
	}
	for {
		b, err := safefile.ReadTrusted(path, 4096)
		if err == nil && len(strings.TrimSpace(string(b))) > 0 {
			return strings.TrimSpace(string(b)), nil
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("server address file: %w", err)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no server address in %s (written by `mplock serve --addr-file`)", path)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// readSecret reads a --token-file: its first line, trimmed. The file must
// be this user's (or root's), not a link, and writable by no one else;
// and the secret one that a client can present: one word of printable
// ASCII, at most lockd.MaxSecretLen bytes (AUTH's limit), or a server
// would wait for a secret no client can send, and a client would send
// one no server takes.
func readSecret(path string) (string, error) { return readSecretFile("--token-file", path) }

// readSecretFile is readSecret for a secret file that what names in its
// errors (a flag, such as --peer-token-file).
func readSecretFile(what, path string) (string, error) {
	b, err := safefile.ReadTrusted(path, 4096)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	s, _, _ := strings.Cut(string(b), "\n")
	s = strings.TrimSpace(s)
	if s == "" || strings.ContainsAny(s, " \t") {
		return "", fmt.Errorf("%s %s: want one word on its first line", what, path)
	}
	if len(s) > lockd.MaxSecretLen {
		return "", fmt.Errorf("%s %s: the secret is %d bytes; clients can present at most %d (AUTH's limit)", what, path, len(s), lockd.MaxSecretLen)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' {
			return "", fmt.Errorf("%s %s: the secret has byte %#02x at position %d: want printable ASCII (letters, digits, punctuation), which every client can send", what, path, c, i)
		}
	}
	return s, nil
}

// secretRecipe is the shell command that makes a good secret file at path
// (32 random bytes, base64, readable by its owner only), as serve's
// errors and warnings suggest it.
func secretRecipe(path string) string {
	return "(umask 077; head -c 32 /dev/urandom | base64 > " + path + ")"
}
