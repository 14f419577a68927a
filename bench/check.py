#!/usr/bin/env python3
"""Benchmark: the agent's periodic no-op check of N converged files with its stat cache, against
the C lstat floor, in pairs (floor, check, floor, check, ...) in one run (issue 9).

The check runs in bench/CheckLoop (tend-check-loop): the agent's own Reconciler with its catalog
cache and stat cache, the commit pinned as after a fetch that found nothing new, timed in-process;
the floor (bench/floor.c lstat) lstat()s each file and times only its loop. Both are what an
already running agent pays per check. The same check without the stat cache (it reads every file)
is measured the same way, beside the read-and-compare floor (floor.c check, its whole process).

Given two builds of tend-check-loop, each pair is a floor and one check of each build, in an order
that reverses each run, and the second build's median ratio to the first in the same runs is
printed too: what a change costs the agent when idle.

Usage: bench/check.py TEND_CHECK_LOOP [TEND_CHECK_LOOP_B] [N]   (default N: 10000; RUNS from $RUNS, default 9)
"""
import os, shutil, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from plan_apply import DIRS, generate, run  # noqa: E402
from agent import make_repo  # noqa: E402

RUNS = int(os.environ.get("RUNS", "9"))


def floor_lstat(floor, root, n):
    out = subprocess.run([floor, "lstat", root, str(n), str(DIRS)], check=True, capture_output=True, text=True).stdout
    return int(out.rsplit("; ", 1)[1].split()[0]) / 1e6


class Loop:
    def __init__(self, loop, bare, state, root, extra=()):
        self.process = subprocess.Popen([loop, bare, state, root, *extra], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.ready = self.process.stdout.readline().strip()
        if not self.ready.startswith("ready"):
            sys.exit(f"tend-check-loop: {self.ready}")

    def check(self):
        self.process.stdin.write("check\n")
        self.process.stdin.flush()
        micros, steps = self.process.stdout.readline().split()
        if steps != "0":
            sys.exit(f"a no-op check planned {steps} steps")
        return int(micros) / 1e6

    def close(self):
        self.process.stdin.close()
        self.process.wait()


def main():
    loops = [os.path.abspath(argument) for argument in sys.argv[1:] if not argument.isdigit()]
    numbers = [int(argument) for argument in sys.argv[1:] if argument.isdigit()]
    n = numbers[0] if numbers else 10000
    work = tempfile.mkdtemp(prefix="tend-bench-check.")
    try:
        floor = os.path.join(work, "floor")
        subprocess.run(["cc", "-O2", "-o", floor, os.path.join(HERE, "floor.c")], check=True)
        bare, _ = make_repo(work, "repo", n)
        rows = []
        for label, extra, floor_kind in [("with the stat cache", (), "lstat"), ("without it (every file read)", ("--no-stat-cache",), "check")]:
            tag = "cached" if floor_kind == "lstat" else "reading"
            agents = []
            for index, loop in enumerate(loops):
                root, state = os.path.join(work, f"root-{tag}-{index}"), os.path.join(work, f"state-{tag}-{index}")
                os.makedirs(root)
                agents.append((root, Loop(loop, bare, state, root, extra)))
            floors, checks = [], [[] for _ in agents]
            for number in range(RUNS):
                root = agents[0][0]
                floors.append(floor_lstat(floor, root, n) if floor_kind == "lstat" else run([floor, "check", root, str(n), str(DIRS)])[0])
                order = list(range(len(agents)))
                for index in order if number % 2 == 0 else reversed(order):
                    checks[index].append(agents[index][1].check())
            for _, agent in agents:
                agent.close()
            ratios = [c / f for c, f in zip(checks[0], floors)]
            between = statistics.median([b / a for a, b in zip(checks[0], checks[-1])]) if len(agents) > 1 else None
            rows.append((label, agents[0][1].ready, floor_kind, statistics.median(floors), statistics.median(checks[0]), statistics.median(ratios), between))
    finally:
        shutil.rmtree(work)
    print(f"| {n:,} converged files, {RUNS} pairs | floor | floor time | agent's check | check ÷ floor (median of pairs) |")
    print("| --- | --- | ---: | ---: | ---: |")
    for label, ready, kind, f, c, ratio, _ in rows:
        floor_name = "lstat each file (its loop)" if kind == "lstat" else "lstat, read, compare (its process)"
        print(f"| {label} | {floor_name} | {f*1000:.1f} ms | {c*1000:.1f} ms | **{ratio:.1f}×** |")
    print(f"\n{rows[0][1]}.")
    for label, _, _, _, _, _, between in rows:
        if between is not None:
            print(f"{loops[-1]} ÷ {loops[0]} (paired), {label}: {between:.3f}")


if __name__ == "__main__":
    main()
