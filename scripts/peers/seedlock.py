#!/usr/bin/env python3
"""seedlock: the seed's Python approach, as a benchmark peer for mplock.

The seed (a multiprocessing tutorial) has a deposit process and a withdraw
process change a shared balance, `multiprocessing.Value('i', 600)`, under a
`multiprocessing.Lock`:

    lock.acquire()
    balance.value += amount
    lock.release()

This peer keeps exactly that: the same Value (with its default internal
lock, as in the seed), the same Lock, the same amount (5) and initial
balance (600), depositors and withdrawers alternating. What changes is only
what makes it a benchmark: no sleep and no print in the loop (an empty
critical section, like mplock's), a fixed duration instead of 100
iterations, and a start event so the processes begin together.

At the end the balance must equal 600 + 5 * (deposits - withdrawals).

Output: one line of key=value pairs, for scripts:
  peer=python kind=mp.Lock procs=2 seconds=1.001 ops=655000 ops_per_sec=654000 consistent=1

Usage: seedlock.py [-p PROCS] [-d SECONDS]
"""

import argparse
import multiprocessing
import sys
import time

AMOUNT = 5
INITIAL = 600


def deposit_with_lock(balance, amount, lock, start, stop, slot, ops, ends):
    start.wait()
    n = 0
    while not stop.value:
        lock.acquire()
        balance.value += amount
        lock.release()
        n += 1
    ops[slot] = n
    ends[slot] = time.monotonic_ns()


def withdraw_with_lock(balance, amount, lock, start, stop, slot, ops, ends):
    start.wait()
    n = 0
    while not stop.value:
        lock.acquire()
        balance.value -= amount
        lock.release()
        n += 1
    ops[slot] = n
    ends[slot] = time.monotonic_ns()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-p", "--procs", type=int, default=2, help="processes (even: deposit, odd: withdraw)")
    ap.add_argument("-d", "--duration", type=float, default=1.0, help="seconds to run")
    args = ap.parse_args()
    if args.procs < 1 or args.duration <= 0:
        ap.error("--procs must be at least 1 and --duration positive")

    balance = multiprocessing.Value("i", INITIAL)  # as in the seed: with its own lock
    lock = multiprocessing.Lock()
    start = multiprocessing.Event()
    stop = multiprocessing.RawValue("b", 0)
    ops = multiprocessing.RawArray("q", args.procs)
    ends = multiprocessing.RawArray("q", args.procs)

    procs = []
    for i in range(args.procs):
        target = deposit_with_lock if i % 2 == 0 else withdraw_with_lock
        p = multiprocessing.Process(target=target, args=(balance, AMOUNT, lock, start, stop, i, ops, ends))
        p.start()
        procs.append(p)

    t0 = time.monotonic_ns()
    start.set()
    time.sleep(args.duration)
    stop.value = 1
    for p in procs:
        p.join()
    if any(p.exitcode != 0 for p in procs):
        print("seedlock: a worker process failed", file=sys.stderr)
        return 2

    total = sum(ops)
    deposits = sum(ops[i] for i in range(0, args.procs, 2))
    withdrawals = total - deposits
    wall = (max(ends) - t0) / 1e9
    expected = INITIAL + AMOUNT * (deposits - withdrawals)
    consistent = int(balance.value == expected)
    print(
        f"peer=python kind=mp.Lock procs={args.procs} seconds={wall:.3f} ops={total} "
        f"ops_per_sec={total / wall:.0f} consistent={consistent}"
    )
    if not consistent:
        print(f"seedlock: balance {balance.value}, expected {expected}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
