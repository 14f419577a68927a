#!/usr/bin/env python3
"""Benchmark: converging N new files from scratch, durably, against what writes them with no
durability at all, in the same run (issue 9).

Each round, in turn and each into a fresh folder:
  - the no-fsync floor (bench/floor.c write-nosync: temporary file, write, rename; no fsync);
  - the fsync-per-file floor (floor.c write: what tend did before, one fsync per file);
  - the batch floor (floor.c write-batch: tend's way on one thread in C: every temporary, one
    syncfs, every rename, one syncfs), the least that way of being durable costs;
  - tend apply (temporary files of a stretch in parts of 1,024, each part's syncfs running while
    the next part is written, then its renames; one more syncfs for the folders);
  - CFEngine's cf-agent with one files promise per file (content and mode), which never fsyncs.
Everything runs on an ext4 filesystem of its own (a loop-mounted image, mkfs defaults): on the
project's shared disk, mounted with online discard, the same no-fsync write of 10,000 files takes
anywhere from 0.7 to 5.8 s, as the discards of earlier deletes land. The page cache is written
back (sync) before each measured run, so that no run pays for the one before it. Prints a
Markdown table of medians over RUNS rounds.

Usage: bench/durable.py TEND_BINARY [N]   (default N: 10000; RUNS from $RUNS, default 5)
"""
import os, shutil, statistics, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from plan_apply import DIRS, generate, run  # noqa: E402

RUNS = int(os.environ.get("RUNS", "5"))


def cfengine_policy(path, root, n):
    """The same files as `generate` declares, as CFEngine promises."""
    with open(path, "w") as f:
        f.write('body common control { bundlesequence => { "converge" }; }\n')
        f.write('body perms m(mode) { mode => "$(mode)"; }\n')
        f.write("bundle agent converge {\n  files:\n")
        for d in range(DIRS):
            f.write(f'    "{root}/srv/data/d{d:03d}/." create => "true", perms => m("0755");\n')
        for i in range(n):
            # A CFEngine string keeps a newline typed inside it; it has no \n escape.
            f.write(f'    "{root}/srv/data/d{i % DIRS:03d}/f{i:06d}.conf" create => "true", '
                    f'content => "# generated file {i}\nkey = value-{i}\n", perms => m("0644");\n')
        f.write("}\n")


def cf_agent():
    path = shutil.which("cf-agent") or "/usr/sbin/cf-agent"
    if not os.path.exists(path):
        subprocess.run(["apt-get", "install", "-y", "-q", "cfengine3"], check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), stdout=subprocess.DEVNULL)
    return path


def fresh(work, name):
    path = os.path.join(work, name)
    os.makedirs(path)
    os.sync()
    return path


def check(root, floor, n):
    subprocess.run([floor, "check", root, str(n), str(DIRS)], check=True, stdout=subprocess.DEVNULL)


def mount_scratch():
    """A fresh ext4 filesystem on a loop device, mounted at a new folder; returns (folder, image)."""
    image = tempfile.mktemp(prefix="tend-bench-durable.", suffix=".img", dir="/var/tmp")
    folder = tempfile.mkdtemp(prefix="tend-bench-durable.")
    subprocess.run(["truncate", "-s", "4G", image], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", image], check=True)
    subprocess.run(["mount", "-o", "loop", image, folder], check=True)
    return folder, image


def main():
    tend = os.path.abspath(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    cfengine = cf_agent()
    work, image = mount_scratch()
    floor = os.path.join(work, "floor")
    subprocess.run(["cc", "-O2", "-o", floor, os.path.join(HERE, "floor.c")], check=True)
    repo = os.path.join(work, "repo")
    generate(repo, n)
    times = {"nosync": [], "fsync": [], "batch": [], "tend": [], "cfengine": []}
    try:
        for r in range(RUNS):
            root = fresh(work, f"nosync-{r}")
            times["nosync"].append(run([floor, "write-nosync", root, str(n), str(DIRS)])[0])
            check(root, floor, n)
            shutil.rmtree(root)
            root = fresh(work, f"fsync-{r}")
            times["fsync"].append(run([floor, "write", root, str(n), str(DIRS)])[0])
            shutil.rmtree(root)
            root = fresh(work, f"batch-{r}")
            times["batch"].append(run([floor, "write-batch", root, str(n), str(DIRS)])[0])
            check(root, floor, n)
            shutil.rmtree(root)
            root = fresh(work, f"tend-{r}")
            times["tend"].append(run([tend, "apply", repo, "--root", root])[0])
            check(root, floor, n)
            shutil.rmtree(root)
            root = fresh(work, f"cfengine-{r}")
            os.makedirs(os.path.join(root, "srv", "data"))
            policy = os.path.join(work, "policy.cf")
            cfengine_policy(policy, root, n)
            os.chmod(policy, 0o600)
            times["cfengine"].append(run([cfengine, "--no-lock", "--inform", "--file", policy])[0])
            check(root, floor, n)
            shutil.rmtree(root)
    finally:
        subprocess.run(["umount", work])
        os.rmdir(work)
        os.unlink(image)
    m = {k: statistics.median(v) for k, v in times.items()}
    print(f"| {n:,} new files | median of {RUNS} | ÷ no-fsync floor |")
    print("| --- | ---: | ---: |")
    for key, label in [("nosync", "floor: write and rename, no fsync"),
                       ("fsync", "floor: write, fsync each, rename"),
                       ("batch", "floor: write all, syncfs, rename all, syncfs (tend's way, in C)"),
                       ("tend", "**tend apply** (durable)"),
                       ("cfengine", "CFEngine cf-agent (no fsync)")]:
        print(f"| {label} | {m[key]*1000:.0f} ms | {m[key]/m['nosync']:.2f}× |")
    print(f"\ntend ÷ CFEngine: {m['tend']/m['cfengine']:.2f}×; tend ÷ batch floor: {m['tend']/m['batch']:.2f}×; every run checked with floor check afterwards.")


if __name__ == "__main__":
    main()
