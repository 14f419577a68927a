#!/usr/bin/env python3
"""Benchmark: what the agent keeps over a long life with pushes (issue 27, "slow growth").

The agent's own loop (bench/AgentLoop: one Agent, Agent.run with its records, metrics, lock and
Git cache) runs CYCLES cycles against a Git repository of FILES files; every PUSH_EVERY cycles a
commit that rewrites one line of one file is pushed. After each round it prints its resident memory, open
descriptors and threads; the Git cache's size is read here after each round.

The goals: RSS within 10% of cycle 100's, the Git cache within 2x its size after the first
repack, descriptors and threads flat.

With REPO_KIB, the repository also holds that many KiB of text files that no manifest names (a
configuration repository's templates, sources and notes), so that its history is not most of it.

Usage: bench/growth.py AGENT_LOOP_BINARY
Environment: CYCLES (3000), PUSH_EVERY (10), FILES (100), REPO_KIB (0)
"""
import os, random, re, shutil, statistics, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agent import make_repo  # noqa: E402

CYCLES = int(os.environ.get("CYCLES", "3000"))
PUSH_EVERY = int(os.environ.get("PUSH_EVERY", "10"))
FILES = int(os.environ.get("FILES", "100"))
REPO_KIB = int(os.environ.get("REPO_KIB", "0"))


def du(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def main():
    loop = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="tend-growth-")
    try:
        bare, clone = make_repo(work, "growth", FILES)
        if REPO_KIB:
            # Text that compresses as prose does (about 3:1), 4 KiB a file.
            words = [f"{w}{random.randrange(1000)}" for w in ["alpha", "delta", "nginx", "worker", "upstream", "timeout", "listen", "server"] for _ in range(50)]
            os.makedirs(os.path.join(clone, "notes"))
            for index in range(REPO_KIB // 4):
                with open(os.path.join(clone, "notes", f"{index}.txt"), "w") as f:
                    f.write(" ".join(random.choice(words) for _ in range(600))[:4096])
            subprocess.run(["git", "add", "-A"], cwd=clone, check=True)
            subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-qm", "notes"], cwd=clone, check=True)
            subprocess.run(["git", "push", "-q", "origin", "main"], cwd=clone, check=True, stderr=subprocess.DEVNULL)
        root, state = os.path.join(work, "root"), os.path.join(work, "state")
        os.makedirs(root)
        sizes = os.path.join(work, "sizes")
        # The push: one line more in one file, then the cache's size, for this script to read.
        # A push changes one line: what the repository holds stays the size it is, its history grows.
        push = (f"cd {clone} && date +%s%N > pushed.txt && git add -A && git -c user.name=bench -c user.email=bench@example.com "
                f"commit -qm push && git push -q origin main && du -sb {state}/cache | cut -f1 >> {sizes}")
        out = subprocess.run([loop, bare, state, root, str(CYCLES), str(PUSH_EVERY), push], check=True, capture_output=True, text=True).stdout
        rounds = [tuple(map(int, m)) for m in re.findall(r"cycle (\d+): RSS (\d+) KiB, fds (\d+), threads (\d+)", out)]
        cache = [int(line) for line in open(sizes)]
        at100 = next(r for r in rounds if r[0] >= 100)
        last = rounds[-1]
        tail = [r[1] for r in rounds[-len(rounds) // 10:]]
        print(f"### {CYCLES:,} cycles, a push every {PUSH_EVERY} ({FILES} files{f', {REPO_KIB:,} KiB of other files' if REPO_KIB else ''})\n")
        print("| measure | at cycle 100 | at the end | highest | ratio (end / 100) |")
        print("| --- | ---: | ---: | ---: | ---: |")
        print(f"| RSS (KiB) | {at100[1]:,} | {last[1]:,} | {max(r[1] for r in rounds):,} | {last[1] / at100[1]:.3f} |")
        print(f"| RSS, median of the last tenth (KiB) | | {statistics.median(tail):,.0f} | | {statistics.median(tail) / at100[1]:.3f} |")
        print(f"| open descriptors | {at100[2]} | {last[2]} | {max(r[2] for r in rounds)} | |")
        print(f"| threads | {at100[3]} | {last[3]} | {max(r[3] for r in rounds)} | |")
        # The size after the cache first shrank is the size "after the first repack".
        first_repack = next((i for i in range(1, len(cache)) if cache[i] < cache[i - 1]), None)
        if first_repack is None:
            print(f"| Git cache (bytes) | | {cache[-1]:,} | {max(cache):,} | never packed |")
        else:
            print(f"| Git cache (bytes) | after the first repack: {cache[first_repack]:,} | {cache[-1]:,} | {max(cache):,} | "
                  f"{cache[-1] / cache[first_repack]:.2f} of the first repack's, highest {max(cache[first_repack:]) / cache[first_repack]:.2f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
