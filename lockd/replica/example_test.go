package replica_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"mplock/lockd"
	"mplock/lockd/replica"
)

// A one-node cluster (with DataDir set it would keep its log on disk):
// open a session, lock a name, and check its owner with a consistent read.
func Example() {
	n, err := replica.NewNode(replica.Config{
		NodeID:           "n1",
		RaftListen:       "127.0.0.1:0",
		Secret:           "the cluster's secret, from a private file",
		HeartbeatTimeout: 50 * time.Millisecond,
		ElectionTimeout:  50 * time.Millisecond,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer n.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	open, err := n.Apply(ctx, replica.OpenSession("a random secret", 10*time.Second, "backup", 4242, "127.0.0.1:40000", "n1"))
	if err != nil {
		log.Fatal(err)
	}
	s := open.Session
	res, err := n.Apply(ctx, replica.Lock(s, 1, lockd.LockRequest{Name: "file_A", Wait: 0}))
	if err != nil || res.Err != nil {
		log.Fatal(err, res.Err)
	}
	fmt.Println("granted:", res.Lock.Granted)

	// The same request again (a retry after an ambiguous error) changes
	// nothing and returns the same grant.
	again, _ := n.Apply(ctx, replica.Lock(s, 1, lockd.LockRequest{Name: "file_A", Wait: 0}))
	fmt.Println("retry is a duplicate:", again.Duplicate, "same token:", again.Lock.Grant.Token == res.Lock.Grant.Token)

	n.Read(ctx, replica.Consistent, func(v replica.View) error {
		for _, h := range v.Owners("file_A") {
			fmt.Println("owner:", h.Client, h.Mode)
		}
		return nil
	})
	// Output:
	// granted: true
	// retry is a duplicate: true same token: true
	// owner: backup WRITE
}
