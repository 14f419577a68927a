#!/usr/bin/env python3
"""Crash injection: kill -9 tend at random moments of applies, and count what a crash broke.

A Git repository alternates between two configurations of N files (A: one size of content and
mode 0644; B: another size and mode 0600). Each round commits the other configuration, starts
`tend apply --repo` into one root, kills it with SIGKILL after a random delay (up to the time a
whole apply takes), and then checks the root:

  torn       a managed file whose bytes are neither A's nor B's
  missing    a managed file that is gone (every file exists after the first apply)
  wrongmode  a file whose mode does not go with its content (A: 0644, B: 0600)
  state      the applied-commit record (var/lib/tend/applied.json in the root) is not whole JSON
             naming a whole commit id
Then it applies again without a kill, which must converge:
  unconverged  that apply failed, or left a file or the record unlike the commit
  leftovers    temporary files (.NAME.tend-PID-N) still there after it

Usage: torture.py TEND [--files N] [--kills K] [--seed S] [--json]
`make torture` runs 1,000 kills; `make test` runs a few through Tests/…/CrashInjectionTests.
"""
import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

FOLDERS = 20


def content(tag, index):
    # Sizes differ between A and B and between files, so that a torn write shows.
    size = (index % 7 + 1) * (300 if tag == "A" else 700)
    line = f"{tag} file {index} "
    return (line * (size // len(line) + 1))[:size] + "\n"


MODES = {"A": 0o644, "B": 0o600}


def manifest(tag, files):
    out = ["resources:"]
    for folder in range(FOLDERS):
        out.append(f"  - directory: /srv/t/d{folder}")
    for index in range(files):
        out.append(f"  - file: /srv/t/d{index % FOLDERS}/f{index}")
        out.append(f"    content: {json.dumps(content(tag, index))}")
        out.append(f'    mode: "{MODES[tag]:04o}"')
    return "\n".join(out) + "\n"


def git(repo, *args):
    subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True)


def commit(repo, tag, files, round_number):
    with open(os.path.join(repo, "site", "files.yaml"), "w") as handle:
        handle.write(manifest(tag, files))
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=torture", "-c", "user.email=t@example.com", "commit", "-qm", f"round {round_number}: {tag}")
    return subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()


def expected(files):
    return {tag: [content(tag, index) for index in range(files)] for tag in "AB"}


def inspect(root, files, wanted):
    """Counts torn, missing and wrong-mode files; returns them and which tags the files hold."""
    torn = missing = wrongmode = 0
    tags = set()
    for index in range(files):
        path = f"{root}/srv/t/d{index % FOLDERS}/f{index}"
        try:
            info = os.lstat(path)
            with open(path) as handle:
                data = handle.read()
        except FileNotFoundError:
            missing += 1
            continue
        tag = "A" if data == wanted["A"][index] else "B" if data == wanted["B"][index] else None
        if tag is None:
            torn += 1
            continue
        tags.add(tag)
        if info.st_mode & 0o7777 != MODES[tag]:
            wrongmode += 1
    return torn, missing, wrongmode, tags


def leftovers(*folders):
    count = 0
    for top in folders:
        for folder, _, names in os.walk(top):
            count += sum(1 for name in names if ".tend-" in name)
    return count


def record(root):
    """The commit of the root's applied-commit record; None when there is none yet, "" when it is
    torn (not whole JSON, or no whole commit id)."""
    try:
        with open(os.path.join(root, "var", "lib", "tend", "applied.json")) as handle:
            text = handle.read()
    except FileNotFoundError:
        return None
    try:
        commit = json.loads(text).get("commit") or ""
    except ValueError:
        return ""
    return commit if len(commit) == 40 else ""


def apply(tend, repo, root, state):
    return subprocess.Popen([tend, "apply", "--repo", repo, "--root", root, "--state-dir", state, "--no-color"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("tend")
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    # A kill -9 tests what a process leaves, not what a power cut does, so a tmpfs (where fsync
    # costs nothing) gives the same answers many times faster than a disk.
    parser.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    args = parser.parse_args()
    random.seed(args.seed)
    work = tempfile.mkdtemp(prefix="tend-torture.", dir=args.dir)
    repo, root, state = (os.path.join(work, name) for name in ("repo", "root", "state"))
    os.makedirs(os.path.join(repo, "site"))
    os.makedirs(os.path.join(root, "etc"))
    with open(os.path.join(root, "etc", "passwd"), "w") as handle:
        handle.write("root:x:0:0::/root:/bin/sh\n")
    with open(os.path.join(root, "etc", "group"), "w") as handle:
        handle.write("root:x:0:\n")
    git(repo, "init", "-q", "-b", "main")
    with open(os.path.join(repo, "tend.yaml"), "w") as handle:
        handle.write("hosts:\n  - apply: [site]\n")
    wanted = expected(args.files)
    counts = dict(torn=0, missing=0, wrongmode=0, state=0, unconverged=0, leftovers=0)
    mixed = 0
    killed_with_leftovers = 0
    started = time.monotonic()
    try:
        # The first apply, timed, so that kills spread over a whole apply.
        durations = []
        tag = "A"
        commit(repo, tag, args.files, 0)
        for _ in range(3):
            begin = time.monotonic()
            run = apply(args.tend, repo, root, state)
            out, err = run.communicate()
            if run.returncode != 0:
                sys.exit(f"the first apply failed: {out}{err}")
            durations.append(time.monotonic() - begin)
        # An apply that changes every file takes longer than a no-op one: time one of those too.
        commit(repo, "B", args.files, 0)
        begin = time.monotonic()
        run = apply(args.tend, repo, root, state)
        run.communicate()
        full = time.monotonic() - begin
        tag = "B"
        for round_number in range(1, args.kills + 1):
            tag = "A" if tag == "B" else "B"
            head = commit(repo, tag, args.files, round_number)
            run = apply(args.tend, repo, root, state)
            time.sleep(random.uniform(0, full * 1.1))
            run.send_signal(signal.SIGKILL)
            run.communicate()
            torn, missing, wrongmode, tags = inspect(root, args.files, wanted)
            counts["torn"] += torn
            counts["missing"] += missing
            counts["wrongmode"] += wrongmode
            mixed += len(tags) > 1
            killed_with_leftovers += leftovers(f"{root}/srv", f"{root}/var/lib/tend") > 0
            if record(root) == "":
                counts["state"] += 1
            run = apply(args.tend, repo, root, state)
            out, err = run.communicate()
            torn, missing, wrongmode, tags = inspect(root, args.files, wanted)
            if run.returncode != 0 or torn or missing or wrongmode or tags != {tag} or record(root) != head:
                counts["unconverged"] += 1
                print(f"round {round_number}: did not converge (exit {run.returncode}; torn {torn}, missing {missing}, wrong mode {wrongmode}, contents {sorted(tags)} for {tag}, record {record(root)} for {head}): {err.strip()[:300]}", file=sys.stderr)
            counts["leftovers"] += leftovers(f"{root}/srv", f"{root}/var/lib/tend")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = dict(files=args.files, kills=args.kills, apply_seconds=round(full, 3), noop_apply_seconds=round(statistics.median(durations), 3),
                  killed_mid_write=mixed, kills_that_left_temporaries=killed_with_leftovers,
                  minutes=round((time.monotonic() - started) / 60, 1), **counts)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"| files | kills | killed mid-write | kills leaving temporaries | torn | missing | wrong mode | torn state | unconverged | leftovers after next run |")
        print(f"| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        print(f"| {args.files} | {args.kills} | {mixed} | {killed_with_leftovers} | {counts['torn']} | {counts['missing']} | {counts['wrongmode']} | {counts['state']} | {counts['unconverged']} | {counts['leftovers']} |")
        print(f"\nA whole apply of {args.files} files took {full:.2f} s; {result['minutes']} minutes in all.")
    sys.exit(1 if any(counts.values()) else 0)


if __name__ == "__main__":
    main()
