package main

import (
	"os"
	"strconv"

	"github.com/urfave/cli/v2"

	"mplock/janitor"
	"mplock/lock"
	"mplock/shm"
	"mplock/worker"
)

// workerBankCommand runs one bank worker. The coordinator passes the shared
// region as fd 3 and the report pipe as fd 4.
func workerBankCommand() *cli.Command {
	return &cli.Command{
		Name:   "bank",
		Usage:  "(internal) one bank worker; fd 3 is the region, fd 4 the report pipe",
		Hidden: true,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "slot", Required: true},
			&cli.StringFlag{Name: "kind", Required: true},
			&cli.Int64Flag{Name: "ops"},
			&cli.DurationFlag{Name: "think"},
			&cli.DurationFlag{Name: "hold"},
			&cli.StringFlag{Name: "lock-file"},
			&cli.IntFlag{Name: "sem-id"},
			&cli.BoolFlag{Name: "no-latency"},
			&cli.Int64Flag{Name: "kill-at"},
		},
		Action: func(c *cli.Context) error {
			kind, err := lock.ParseKind(c.String("kind"))
			if err != nil {
				return usageErrorf("%v", err)
			}
			spec := worker.BankSpec{
				Slot: c.Int("slot"), Kind: kind, Ops: c.Int64("ops"),
				Think: c.Duration("think"), Hold: c.Duration("hold"),
				LockFile: c.String("lock-file"), SemID: c.Int("sem-id"),
				NoLatency: c.Bool("no-latency"), KillAt: c.Int64("kill-at"),
			}
			region, err := shm.Open(os.NewFile(3, "region"))
			if err != nil {
				return err
			}
			defer region.Close()
			report := os.NewFile(4, "report")
			defer report.Close()
			return worker.RunBank(c.Context, region, spec, report)
		},
	}
}

// workerJanitorCommand runs the janitor sidecar: it reads the manifest on
// stdin and cleans up if the coordinator dies (see package janitor).
func workerJanitorCommand() *cli.Command {
	return &cli.Command{
		Name:   "janitor",
		Usage:  "(internal) remove a run's resources if its coordinator dies",
		Hidden: true,
		Action: func(c *cli.Context) error {
			return janitor.Serve(os.Stdin, c.App.ErrWriter, removeResource)
		},
	}
}

func removeResource(r janitor.Resource) error {
	if r.Kind == janitor.SysVSem {
		id, err := strconv.Atoi(r.ID)
		if err != nil {
			return err
		}
		return lock.RemoveSysV(id)
	}
	return janitor.RemoveFileOrDir(r)
}
