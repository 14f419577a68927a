#!/usr/bin/env python3
"""Benchmark (issue 22): loading 10,000 resources written as one loop against the same 10,000
written out, the two alternating round by round, so that the ratio is paired.

Both repositories declare the same files, directories and contents. The written-out one is
plan_apply.generate's manifest; the loop one holds a var file with the 10,000 items (each a name,
a folder and a value) and one `for_each:` entry, plus the folders. Each round times `tend
validate` (Load, Expand and Catalog: what a loop adds to) and a no-op `tend plan` of each, in an
order that reverses each round. Prints each median and the median of the paired ratios
loop ÷ written (the target: at most 1.2).

Usage: bench/loop.py ROUNDS TEND   (N from $N, default 10000)
"""
import os, shutil, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from plan_apply import DIRS, generate  # noqa: E402


def generate_loop(repo, n):
    os.makedirs(os.path.join(repo, "site"))
    with open(os.path.join(repo, "tend.yaml"), "w") as f:
        f.write("vars_files: [files.yaml]\nhosts:\n  - apply: [site]\n")
    with open(os.path.join(repo, "files.yaml"), "w") as f:
        f.write("files:\n")
        for i in range(n):
            f.write(f"  - dir: d{i % DIRS:03d}\n    name: f{i:06d}\n    value: {i}\n")
    with open(os.path.join(repo, "site", "files.yaml"), "w") as f:
        f.write("resources:\n  - directory: /srv/data\n")
        for d in range(DIRS):
            f.write(f"  - directory: /srv/data/d{d:03d}\n    mode: \"0755\"\n")
        f.write("  - for_each: files\n    as: f\n"
                "    file: /srv/data/{{f.dir}}/{{f.name}}.conf\n"
                "    content: \"# generated file {{f.value}}\\nkey = value-{{f.value}}\\n\"\n"
                "    mode: \"0644\"\n")


def timed(command):
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main():
    rounds, tend = int(sys.argv[1]), os.path.abspath(sys.argv[2])
    n = int(os.environ.get("N", "10000"))
    work = tempfile.mkdtemp(prefix="tend-bench-loop-")
    try:
        repos = {"written": os.path.join(work, "written"), "loop": os.path.join(work, "loop")}
        generate(repos["written"], n)
        generate_loop(repos["loop"], n)
        roots = {}
        for kind, repo in repos.items():
            roots[kind] = os.path.join(work, f"root-{kind}")
            os.makedirs(roots[kind])
            subprocess.run([tend, "apply", repo, "--root", roots[kind]], check=True, stdout=subprocess.DEVNULL)
        # The two converge the same host: each plans nothing on the other's root.
        for kind, repo in repos.items():
            other = roots["loop" if kind == "written" else "written"]
            subprocess.run([tend, "plan", repo, "--root", other, "--detailed-exitcode"], check=True, stdout=subprocess.DEVNULL)
        times = {(mode, kind): [] for mode in ("validate", "plan") for kind in repos}
        for index in range(rounds):
            for mode in ("validate", "plan"):
                for kind in (["written", "loop"] if index % 2 == 0 else ["loop", "written"]):
                    command = [tend, mode, repos[kind]] + (["--root", roots[kind]] if mode == "plan" else [])
                    times[(mode, kind)].append(timed(command))
        for mode in ("validate", "plan"):
            written, loop = times[(mode, "written")], times[(mode, "loop")]
            ratio = statistics.median(a / b for a, b in zip(loop, written))
            print(f"{mode}: written out median {statistics.median(written) * 1000:.0f} ms, "
                  f"loop median {statistics.median(loop) * 1000:.0f} ms, loop ÷ written (paired) {ratio:.3f}")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
