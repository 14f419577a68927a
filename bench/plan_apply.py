#!/usr/bin/env python3
"""Benchmark: tend plan (no changes) and tend apply (from scratch) on N generated file resources,
beside the floors measured in the same run (bench/floor.c: lstat, open, read and compare each file;
and write each file safely with fsync and rename).

Prints a Markdown table of medians over RUNS runs, and peak resident memory of tend.
Usage: bench/plan_apply.py TEND_BINARY [N ...]   (default N: 1000 10000; RUNS from $RUNS, default 5)
"""
import os, resource, shutil, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
DIRS = 100
RUNS = int(os.environ.get("RUNS", "5"))


def generate(repo, n):
    os.makedirs(os.path.join(repo, "site"))
    with open(os.path.join(repo, "tend.yaml"), "w") as f:
        f.write("hosts:\n  - apply: [site]\n")
    with open(os.path.join(repo, "site", "files.yaml"), "w") as f:
        f.write("resources:\n  - directory: /srv/data\n")
        for d in range(DIRS):
            f.write(f"  - directory: /srv/data/d{d:03d}\n    mode: \"0755\"\n")
        for i in range(n):
            f.write(f"  - file: /srv/data/d{i % DIRS:03d}/f{i:06d}.conf\n"
                    f"    content: \"# generated file {i}\\nkey = value-{i}\\n\"\n"
                    f"    mode: \"0644\"\n")


def run(argv, expect=(0,), quiet=False):
    """Runs argv in a fresh child (its stdout, and with quiet its stderr too, thrown away);
    returns (seconds, peak RSS in MiB of that child)."""
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 1)
        if quiet:
            os.dup2(fd, 2)
        os.execv(argv[0], argv)
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in expect:
        sys.exit(f"{' '.join(argv)} exited {code}")
    return elapsed, usage.ru_maxrss / 1024


def median(values):
    return statistics.median(values)


def main():
    tend = os.path.abspath(sys.argv[1])
    sizes = [int(a) for a in sys.argv[2:]] or [1000, 10000]
    work = tempfile.mkdtemp(prefix="tend-bench.")
    floor = os.path.join(work, "floor")
    subprocess.run(["cc", "-O2", "-o", floor, os.path.join(HERE, "floor.c")], check=True)
    rows = []
    try:
        for n in sizes:
            repo = os.path.join(work, f"repo-{n}")
            generate(repo, n)
            root = os.path.join(work, f"root-{n}")
            os.makedirs(root)
            run([tend, "apply", repo, "--root", root])
            # The 10,000 files just written are still being written back (and, on a disk mounted
            # with discard, trimmed): let that end, or the first pairs measure the disk's queue.
            os.sync()
            time.sleep(3)
            floor_times, plan_times, plan_rss = [], [], []
            for _ in range(RUNS):
                floor_times.append(run([floor, "check", root, str(n), str(DIRS)])[0])
                seconds, rss = run([tend, "plan", repo, "--root", root, "--detailed-exitcode"])
                plan_times.append(seconds)
                plan_rss.append(rss)
            apply_times, apply_rss, write_times = [], [], []
            for r in range(RUNS):
                fresh = os.path.join(work, f"floor-{n}-{r}")
                os.makedirs(fresh)
                write_times.append(run([floor, "write", fresh, str(n), str(DIRS)])[0])
                shutil.rmtree(fresh)
                fresh = os.path.join(work, f"fresh-{n}-{r}")
                os.makedirs(fresh)
                seconds, rss = run([tend, "apply", repo, "--root", fresh])
                apply_times.append(seconds)
                apply_rss.append(rss)
                shutil.rmtree(fresh)
            f, p, a, w = median(floor_times), median(plan_times), median(apply_times), median(write_times)
            # Each tend run is paired with the floor run just before it: the ratio is the median
            # of the pairs' ratios, which a machine that speeds up or slows down moves less.
            plan_ratio = median([t / fl for t, fl in zip(plan_times, floor_times)])
            apply_ratio = median([t / fl for t, fl in zip(apply_times, write_times)])
            rows.append((n, f, p, plan_ratio, max(plan_rss), w, a, apply_ratio, max(apply_rss)))
    finally:
        shutil.rmtree(work)
    print("| files | check floor | tend plan, no changes | plan ÷ floor | plan peak RSS | write floor | tend apply from scratch | apply ÷ floor | apply peak RSS |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n, f, p, ratio, prss, w, a, aratio, arss in rows:
        print(f"| {n:,} | {f*1000:.1f} ms | {p*1000:.1f} ms | {ratio:.2f}× | {prss:.1f} MiB | {w*1000:.0f} ms | {a*1000:.0f} ms | {aratio:.2f}× | {arss:.1f} MiB |")
    print(f"\nMedians of {RUNS} runs, floor and tend alternating; the ratios are medians of each pair's ratio. Each tend run is a new process (start-up, YAML of the whole repository, catalog, observe, plan).")


if __name__ == "__main__":
    main()
