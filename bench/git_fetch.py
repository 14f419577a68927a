#!/usr/bin/env python3
"""Benchmark: deciding that nothing changed, from a Git source served by git daemon.

A repository of FILES files and COMMITS commits (tend.yaml and one manifest declaring every file
with `source:`) is served by git daemon on 127.0.0.1 and applied once. Then, medians of RUNS runs:
  - tend plan --repo git://…   fetch (no new commits) + load from the object database + no-op plan
  - git fetch                  the git command fetching the same repository into a bare clone
  - tend plan FOLDER           the same no-op plan from a checked-out folder (no Git at all)
and the resident memory of FETCHES consecutive fetches in one process (bench/FetchLoop).
Usage: bench/git_fetch.py TEND_BIN FETCH_LOOP_BIN   (FILES, COMMITS, RUNS, FETCHES from the environment)
"""
import os, shutil, socket, statistics, subprocess, sys, tempfile, time

FILES = int(os.environ.get("FILES", "10000"))
COMMITS = int(os.environ.get("COMMITS", "1000"))
RUNS = int(os.environ.get("RUNS", "5"))
FETCHES = int(os.environ.get("FETCHES", "10000"))


def fast_import(repo):
    """Writes the history with git fast-import: one commit with everything, then small commits."""
    out = []
    def blob(text):
        data = text.encode()
        out.append(b"data %d\n" % len(data) + data + b"\n")
    when = 1700000000
    manifest = ["resources:"]
    for i in range(FILES):
        manifest.append(f"  - file: /srv/data/d{i % 100:03d}/f{i:06d}.conf\n    source: files/f{i:06d}.conf\n    mode: \"0644\"")
    out.append(b"commit refs/heads/main\n")
    out.append(f"committer Bench <bench@example.com> {when} +0000\n".encode())
    blob("Everything\n")
    out.append(b"M 100644 inline tend.yaml\n")
    blob("hosts:\n  - apply: [site]\n")
    out.append(b"M 100644 inline site/files.yaml\n")
    blob("\n".join(manifest) + "\n")
    for i in range(FILES):
        out.append(f"M 100644 inline site/files/f{i:06d}.conf\n".encode())
        blob(f"# generated file {i}\nkey = value-{i}\n")
    for c in range(1, COMMITS):
        out.append(b"commit refs/heads/main\n")
        out.append(f"committer Bench <bench@example.com> {when + c} +0000\n".encode())
        blob(f"Change {c}\n")
        out.append(f"M 100644 inline notes/n{c % 50:02d}.txt\n".encode())
        blob(f"note {c}\n")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=b"".join(out), check=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def timed(argv, cwd=None, expect=(0,)):
    start = time.perf_counter()
    code = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode
    elapsed = time.perf_counter() - start
    if code not in expect:
        sys.exit(f"{' '.join(argv)} exited {code}")
    return elapsed


def main():
    tend, loop = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    work = tempfile.mkdtemp(prefix="tend-gitbench.")
    daemon = None
    try:
        base = os.path.join(work, "served")
        repo = os.path.join(base, "hosts.git")
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", repo], check=True)
        fast_import(repo)
        port = free_port()
        daemon = subprocess.Popen(["/usr/lib/git-core/git-daemon", "--export-all", "--reuseaddr", f"--base-path={base}",
                                   "--listen=127.0.0.1", f"--port={port}", base], stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.05)
        url = f"git://127.0.0.1:{port}/hosts.git"
        state, root = os.path.join(work, "state"), os.path.join(work, "root")
        os.makedirs(root)
        subprocess.run([tend, "apply", "--repo", url, "--state-dir", state, "--root", root], check=True, stdout=subprocess.DEVNULL)
        checkout = os.path.join(work, "checkout")
        subprocess.run(["git", "clone", "-q", repo, checkout], check=True)
        mirror = os.path.join(work, "mirror.git")
        subprocess.run(["git", "clone", "-q", "--bare", url, mirror], check=True)

        tend_git, git_fetch, tend_folder = [], [], []
        for _ in range(RUNS):
            tend_git.append(timed([tend, "plan", "--repo", url, "--state-dir", state, "--root", root, "--detailed-exitcode"]))
            git_fetch.append(timed(["git", "fetch", "-q", "origin", "+refs/heads/*:refs/heads/*"], cwd=mirror))
            tend_folder.append(timed([tend, "plan", checkout, "--root", root, "--detailed-exitcode"]))
        median = statistics.median
        print(f"Repository: {FILES:,} files, {COMMITS:,} commits, served by git daemon on 127.0.0.1. Medians of {RUNS} runs.\n")
        print("| what | time |")
        print("| --- | ---: |")
        print(f"| `git fetch` (no new commits) | {median(git_fetch)*1000:.0f} ms |")
        print(f"| `tend plan --repo git://…`: fetch + read {FILES:,} sources from the object database + no-op plan | {median(tend_git)*1000:.0f} ms |")
        print(f"| `tend plan FOLDER`: the same no-op plan from a checkout | {median(tend_folder)*1000:.0f} ms |")
        print(f"| fetch and Git reading (difference of the two tend runs) | {(median(tend_git) - median(tend_folder))*1000:.0f} ms |")
        fresh = os.path.join(work, "loop-state")
        result = subprocess.run([loop, url, fresh, str(FETCHES)], capture_output=True, text=True, check=True)
        print(f"\nResident memory over {FETCHES:,} consecutive fetches in one process (bench/FetchLoop):\n")
        print("```")
        print(result.stdout.strip())
        print("```")
    finally:
        if daemon:
            daemon.kill()
            daemon.wait()
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
