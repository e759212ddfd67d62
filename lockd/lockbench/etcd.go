package lockbench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Etcd locks through etcd's lock service (v3lock: concurrency.Mutex run in
// the server, on a lease) via its JSON gateway at http://addr/v3/. Each
// client has its own lease and its own HTTP connection. Going through JSON
// costs etcd a little against its gRPC clients; the figures say so.
func Etcd(addr string, ttl time.Duration) Dialer {
	return func(ctx context.Context, i int) (Locker, error) {
		e := &etcdLocker{base: "http://" + addr + "/v3/", hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}}
		var grant struct {
			ID string `json:"ID"`
		}
		if err := e.post(ctx, "lease/grant", map[string]any{"TTL": int64(ttl.Seconds())}, &grant); err != nil {
			return nil, err
		}
		if grant.ID == "" {
			return nil, fmt.Errorf("etcd: lease grant returned no ID")
		}
		e.lease = grant.ID
		return e, nil
	}
}

type etcdLocker struct {
	base  string
	hc    *http.Client
	lease string
	key   string
}

func (e *etcdLocker) post(ctx context.Context, path string, in, out any) error {
	body, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, "POST", e.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var msg bytes.Buffer
		msg.ReadFrom(resp.Body)
		return fmt.Errorf("etcd: %s: %s: %s", path, resp.Status, bytes.TrimSpace(msg.Bytes()))
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (e *etcdLocker) Acquire(ctx context.Context, name string) (int, error) {
	var out struct {
		Key string `json:"key"`
	}
	err := e.post(ctx, "lock/lock", map[string]any{"name": base64.StdEncoding.EncodeToString([]byte(name)), "lease": e.lease}, &out)
	e.key = out.Key
	return 0, err
}

func (e *etcdLocker) Release(ctx context.Context, name string) error {
	var out map[string]any
	return e.post(ctx, "lock/unlock", map[string]any{"key": e.key}, &out)
}

func (e *etcdLocker) Close() error {
	var out map[string]any
	e.post(context.Background(), "lease/revoke", map[string]any{"ID": e.lease}, &out)
	e.hc.CloseIdleConnections()
	return nil
}
