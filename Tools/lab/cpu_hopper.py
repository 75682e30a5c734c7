#!/usr/bin/env python3
"""Moves every thread of a process to the next of some CPUs every interval, until the process
exits or the time is up, and prints how many moves it made (the CPU steering test's migrating
sender: Tests/IntegrationTests/SteeringTests.swift).

    cpu_hopper.py --pid PID --cpus 0,1 [--interval-ms 1] [--seconds 10]
"""
import argparse
import os
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--cpus", required=True, help="comma-separated CPU numbers")
    parser.add_argument("--interval-ms", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    cpus = [int(c) for c in args.cpus.split(",")]
    moves = 0
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        try:
            threads = [int(t) for t in os.listdir(f"/proc/{args.pid}/task")]
        except FileNotFoundError:
            break
        cpu = cpus[moves % len(cpus)]
        moved = False
        for tid in threads:
            try:
                os.sched_setaffinity(tid, {cpu})
                moved = True
            except (ProcessLookupError, OSError):
                pass
        if not moved:
            break
        moves += 1
        time.sleep(args.interval_ms / 1000)
    print(moves)


if __name__ == "__main__":
    main()
