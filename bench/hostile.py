#!/usr/bin/env python3
"""Benchmark: what `tend validate` costs on hostile manifests, beside a valid one of 10,000 file
resources (the baseline, measured in the same run).

Each hostile manifest stays under the 8 MiB limit and is as dense as YAML allows in one shape:
empty mappings and one-key mappings (both stop at the limit of 1,000,000 nodes), one long
sequence of scalars (just under that limit), and undefined aliases (three bytes a problem;
stops at 100 problems). Two more are valid YAML that made the catalog quadratic: 3,000
`requires:` of undeclared resources (each got a "did you mean" against every id), and 5,000
packages beside 5,000 files (each package looked through every path for apt's folders).
Prints a Markdown table of medians over RUNS runs (default 5): wall time and peak resident memory
of the tend process, and each as a multiple of the valid manifest's.

Usage: bench/hostile.py TEND_BINARY
"""
import os, shutil, statistics, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import plan_apply  # noqa: E402  (its generator makes the valid baseline)

RUNS = int(os.environ.get("RUNS", "5"))

# Each shape and the exit code `tend validate` must give it (3: invalid).
SHAPES = {
    "`- {}` x 1,000,000 (5 MB)": ("resources:\n" + "- {}\n" * 1_000_000, 3),
    "`- {a: 1}` x 340,000 (3 MB)": ("resources:\n" + "- {a: 1}\n" * 340_000, 3),
    "`[x, x, ...]` 999,990 items (3 MB)": ("resources:\n- [" + "x, " * 999_990 + "]\n", 3),
    "`*a,` x 1,000,000 (3 MB)": ("resources: [" + "*a, " * 1_000_000 + "]\n", 3),
    "3,000 `requires:` of undeclared files (0.2 MB)": ("resources:\n" + "".join(
        f"  - file: /srv/f{i}\n    content: x\n    requires: [file:/srv/g{i}]\n" for i in range(3_000)), 3),
    "5,000 packages beside 5,000 files in /srv (0.3 MB; valid)": ("resources:\n" + "".join(f"  - package: p{i}\n" for i in range(5_000))
        + "".join(f"  - file: /srv/f{i}\n    content: x\n" for i in range(5_000)), 0),
}


def repository(root, name, manifest):
    repo = os.path.join(root, name)
    os.makedirs(os.path.join(repo, "site"))
    with open(os.path.join(repo, "tend.yaml"), "w") as f:
        f.write("hosts:\n  - apply: [site]\n")
    with open(os.path.join(repo, "site", "a.yaml"), "w") as f:
        f.write(manifest)
    return repo


def measure(tend, repo, code):
    """Median seconds and peak MiB of `tend validate repo`, which must exit `code`, over RUNS runs."""
    runs = [plan_apply.run([tend, "validate", repo, "--hostname", "h"], expect=(code,), quiet=True) for _ in range(RUNS)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    tend = os.path.abspath(sys.argv[1])
    root = tempfile.mkdtemp(prefix="tend-hostile-")
    try:
        valid = os.path.join(root, "valid")
        plan_apply.generate(valid, 10_000)
        base_time, base_peak = measure(tend, valid, 0)
        print(f"| manifest | wall (median of {RUNS}) | × valid | peak RSS | × valid |")
        print("| --- | ---: | ---: | ---: | ---: |")
        print(f"| valid: 10,000 file resources (1.1 MB) | {base_time * 1000:.0f} ms | 1.00× | {base_peak:.0f} MiB | 1.00× |")
        for index, (name, (manifest, code)) in enumerate(SHAPES.items()):
            seconds, peak = measure(tend, repository(root, f"hostile{index}", manifest), code)
            print(f"| {name} | {seconds * 1000:.0f} ms | {seconds / base_time:.2f}× | {peak:.0f} MiB | {peak / base_peak:.2f}× |")
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
