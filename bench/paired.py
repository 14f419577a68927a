#!/usr/bin/env python3
"""Benchmark: two or more builds of tend converging N new files durably, alternating round by round
(issue 9), for changes smaller than this machine's noise (±10 % on a single run).

Each round runs the no-fsync floor (bench/floor.c write-nosync) and then every build, in an order
that reverses each round, each into a fresh folder of one loop-mounted ext4 (as bench/durable.py).
Prints each build's median, its median ratio to the floor of the same round, and each build's
median ratio to the first build of the same round: the ratios bench/RESULTS.md calls paired.

With MODE=plan (or validate), each round instead times a no-op `tend plan` (or `tend validate`)
of the same N files, converged once beforehand by each build in a root of its own, against `true`
as the floor: what a check of a converged host costs.

Usage: bench/paired.py ROUNDS TEND_A TEND_B [TEND_C ...]   (N from $N, default 10000; MODE apply)
"""
import os, shutil, statistics, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from durable import check, mount_scratch  # noqa: E402
from plan_apply import DIRS, generate  # noqa: E402


def main():
    rounds, builds = int(sys.argv[1]), [os.path.abspath(b) for b in sys.argv[2:]]
    n = int(os.environ.get("N", "10000"))
    work, image = mount_scratch()
    times = {key: [] for key in ["floor"] + builds}
    try:
        floor = os.path.join(work, "floor")
        subprocess.run(["cc", "-O2", "-o", floor, os.path.join(HERE, "floor.c")], check=True)
        repo = os.path.join(work, "repo")
        generate(repo, n)

        def one(key, command):
            root = os.path.join(work, "root")
            os.makedirs(root)
            os.sync()
            start = time.perf_counter()
            subprocess.run([root if part == "ROOT" else part for part in command], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[key].append(time.perf_counter() - start)
            check(root, floor, n)
            shutil.rmtree(root)

        mode = os.environ.get("MODE", "apply")
        if mode != "apply":
            roots = {build: os.path.join(work, f"root-{index}") for index, build in enumerate(builds)}
            for build, root in roots.items():
                os.makedirs(root)
                subprocess.run([build, "apply", repo, "--root", root], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

            def timed(key, command):
                start = time.perf_counter()
                subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                times[key].append(time.perf_counter() - start)

            for index in range(rounds):
                timed("floor", ["true"])
                for build in (builds if index % 2 == 0 else builds[::-1]):
                    timed(build, [build, mode, repo] + (["--root", roots[build]] if mode == "plan" else []))
        for index in range(rounds if mode == "apply" else 0):
            one("floor", [floor, "write-nosync", "ROOT", str(n), str(DIRS)])
            for build in (builds if index % 2 == 0 else builds[::-1]):
                one(build, [build, "apply", repo, "--root", "ROOT"])
    finally:
        subprocess.run(["umount", work])
        os.rmdir(work)
        os.unlink(image)
    for key, values in times.items():
        ratio = statistics.median(a / b for a, b in zip(values, times["floor"]))
        print(f"{key}: median {statistics.median(values) * 1000:.0f} ms, ÷ floor (paired) {ratio:.2f}")
    for build in builds[1:]:
        ratio = statistics.median(a / b for a, b in zip(times[build], times[builds[0]]))
        print(f"{build} ÷ {builds[0]} (paired): {ratio:.3f}")


if __name__ == "__main__":
    main()
