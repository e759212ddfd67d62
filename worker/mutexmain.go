package worker

import (
	"context"
	"os"

	"mplock/shm"
)

// MutexMain is the whole of a mutex-run process of the given role: the
// coordinator passes the shared region as fd 3, the report pipe as fd 4, and
// the spec and the others' addresses on stdin (the control stream).
func MutexMain(ctx context.Context, role MutexRole) error {
	region, err := shm.Open(os.NewFile(3, "region"))
	if err != nil {
		return err
	}
	defer region.Close()
	report := os.NewFile(4, "report")
	defer report.Close()
	control, err := OpenControl(0, "control")
	if err != nil {
		return err
	}
	return RunMutex(ctx, role, region, control, report)
}
