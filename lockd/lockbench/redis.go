package lockbench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"time"
)

// Redis dials a Redis server at addr and locks with the usual single-node
// recipe: SET name token NX PX ttl to take, DEL to release, and on a taken
// lock an immediate retry (Redis has no queue to wait in). It speaks RESP
// itself so that the comparison needs no Redis module.
func Redis(addr string, ttl time.Duration) Dialer {
	return func(ctx context.Context, i int) (Locker, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return &redisLocker{c: c, br: bufio.NewReader(c), token: "bench-" + strconv.Itoa(i), ttl: strconv.FormatInt(ttl.Milliseconds(), 10)}, nil
	}
}

type redisLocker struct {
	c     net.Conn
	br    *bufio.Reader
	token string
	ttl   string
	buf   []byte
}

func (r *redisLocker) command(args ...string) (string, error) {
	b := append(r.buf[:0], '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, "\r\n"...)
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, "\r\n"...)
		b = append(b, a...)
		b = append(b, "\r\n"...)
	}
	r.buf = b
	if _, err := r.c.Write(b); err != nil {
		return "", err
	}
	line, err := r.br.ReadString('\n')
	if err != nil {
		return "", err
	}
	if len(line) > 0 && line[0] == '-' {
		return "", fmt.Errorf("redis: %s", line[1:len(line)-2])
	}
	return line[:len(line)-2], nil
}

func (r *redisLocker) Acquire(ctx context.Context, name string) (int, error) {
	for retries := 0; ; retries++ {
		reply, err := r.command("SET", name, r.token, "NX", "PX", r.ttl)
		if err != nil {
			return retries, err
		}
		if reply == "+OK" {
			return retries, nil
		}
		if err := ctx.Err(); err != nil {
			return retries, err
		}
	}
}

func (r *redisLocker) Release(ctx context.Context, name string) error {
	_, err := r.command("DEL", name)
	return err
}

func (r *redisLocker) Close() error { return r.c.Close() }
