#!/usr/bin/env python3
"""Benchmark: the agent against a hostile remote (issue 27), with baselines in the same run.

1. Hung server: an agent keeps FILES files converged from a git:// remote, on a 1-hour interval.
   EVENTS drifts (a managed file overwritten, deleted or chmodded) are repaired while the server
   answers, then the server is replaced by one that accepts and never answers, SIGHUP starts a
   cycle whose fetch hangs (fetch_timeout 10 min), and EVENTS more drifts are repaired during that
   fetch. p50 and p99 of both, from the drift to the declared state back (polled every 0.2 ms).
2. Oversized commits: the same agent, 2-second interval, takes a commit with a SPARSE_GIB GiB
   sparse file, then one without it, then one with BLOBS small files, then one without them. Its
   resident memory is sampled every 20 ms throughout; each oversized commit must be refused with
   a message naming the limit, and each next commit applied.

Usage: bench/trust.py TEND_BINARY
Environment: FILES (1000), EVENTS (100), SPARSE_GIB (3), BLOBS (100000), PARTS (hung,oversized)
"""
import os, random, shutil, signal, socket, subprocess, sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from plan_apply import generate  # noqa: E402
from drift import converged, drift, path_of, percentile  # noqa: E402
from agent import agent_record, rss_mib  # noqa: E402

FILES = int(os.environ.get("FILES", "1000"))
EVENTS = int(os.environ.get("EVENTS", "100"))
SPARSE_GIB = int(os.environ.get("SPARSE_GIB", "3"))
BLOBS = int(os.environ.get("BLOBS", "100000"))
PARTS = os.environ.get("PARTS", "hung,oversized").split(",")
GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(base, port):
    """git-daemon itself (not `git daemon`, whose child would outlive a kill)."""
    process = subprocess.Popen(["/usr/lib/git-core/git-daemon", "--export-all", "--reuseaddr", f"--base-path={base}", "--listen=127.0.0.1",
                                f"--port={port}", base], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.05)
    sys.exit("git-daemon did not start")


def silent(port):
    """A server that accepts every connection and never answers."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen()
    held = []
    threading.Thread(target=lambda: [held.append(server.accept()) for _ in iter(int, 1)], daemon=True).start()
    return server


def push(clone, message):
    subprocess.run(["git", "add", "-A"], cwd=clone, check=True)
    subprocess.run(GIT + ["commit", "-qm", message], cwd=clone, check=True)
    subprocess.run(["git", "push", "-q", "origin", "main"], cwd=clone, check=True, stderr=subprocess.DEVNULL)


def setup(work, files):
    base = os.path.join(work, "served")
    os.makedirs(base)
    bare, clone = os.path.join(base, "r.git"), os.path.join(work, "clone")
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", bare], check=True)
    generate(clone, files)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=clone, check=True)
    subprocess.run(["git", "remote", "add", "origin", bare], cwd=clone, check=True)
    push(clone, "generated")
    return base, clone


def start_agent(tend, url, work, interval, fetch_timeout):
    root = os.path.join(work, "root")
    os.makedirs(root, exist_ok=True)
    log_path = os.path.join(work, "agent.log")
    config = os.path.join(work, "agent.yaml")
    with open(config, "w") as f:
        f.write(f"repo: {url}\nfetch_timeout: {fetch_timeout}\n")
    process = subprocess.Popen([tend, "agent", "--config", config, "--root", root, "--state-dir", os.path.join(work, "state"),
                                "--interval", interval, "--splay", "0s", "--metrics-file", "", "--log", "console", "-v"],
                               stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
    deadline = time.time() + 600
    while "last_cycle" not in agent_record(root) or "watching " not in open(log_path).read():
        if process.poll() is not None or time.time() > deadline:
            sys.exit(f"the agent did not finish its first cycle; see {log_path}")
        time.sleep(0.1)
    time.sleep(1)
    return process, root, log_path


def repairs(root, log, count):
    kinds = ["overwrite", "delete", "chmod"]
    latencies = []
    for n in range(count):
        i = random.randrange(FILES)
        path = path_of(root, i)
        time.sleep(random.uniform(0.05, 0.15))
        start = time.perf_counter()
        drift(path, kinds[n % 3])
        while not converged(path, i):
            if time.perf_counter() - start > 30:
                sys.exit(f"{path} was not repaired within 30 s; see {log}")
            time.sleep(0.0002)
        latencies.append(time.perf_counter() - start)
    return latencies


def hung(tend, work):
    base, _ = setup(work, FILES)
    port = free_port()
    daemon = serve(base, port)
    agent, root, log = start_agent(tend, f"git://127.0.0.1:{port}/r.git", work, "1h", "10m")
    healthy = repairs(root, log, EVENTS)
    daemon.kill()
    daemon.wait()
    server = silent(port)
    agent.send_signal(signal.SIGHUP)
    time.sleep(2)
    hanging = repairs(root, log, EVENTS)
    still = "fetch failed" not in open(log).read()
    agent.send_signal(signal.SIGTERM)
    agent.wait(timeout=700)
    server.close()
    print(f"### Drift repair while the Git server hangs ({FILES:,} files, {EVENTS} drifts each)\n")
    print("| the server | p50 | p99 | slowest |")
    print("| --- | ---: | ---: | ---: |")
    for name, values in [("answers (baseline)", healthy), ("accepts and never answers, a fetch waiting on it", hanging)]:
        print(f"| {name} | {percentile(values, 50) * 1000:.1f} ms | {percentile(values, 99) * 1000:.1f} ms | {max(values) * 1000:.1f} ms |")
    print(f"\nThe fetch was still waiting when the last drift was repaired: {'yes' if still else 'no (the figures do not show a hung fetch)'}.\n")


def oversized(tend, work):
    base, clone = setup(work, 100)
    port = free_port()
    daemon = serve(base, port)
    agent, root, log = start_agent(tend, f"git://127.0.0.1:{port}/r.git", work, "2s", "10m")
    peak = {"value": 0.0}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                peak["value"] = max(peak["value"], rss_mib(agent.pid))
            except OSError:
                pass
            time.sleep(0.02)
    threading.Thread(target=sample, daemon=True).start()
    rows = []

    def phase(name, change, wait_for):
        peak["value"] = rss_mib(agent.pid)
        start = time.perf_counter()
        change()
        push(clone, name)
        deadline = time.time() + 900
        while not wait_for():
            if agent.poll() is not None or time.time() > deadline:
                sys.exit(f"{name}: not seen in time; see {log}")
            time.sleep(0.1)
        rows.append((name, time.perf_counter() - start, peak["value"]))

    def refused(text):
        return lambda: text in open(log).read()

    def append(text):
        return lambda: open(os.path.join(clone, "site/files.yaml"), "a").write(f"  - file: /srv/extra-{len(rows)}\n    content: \"{text}\\n\"\n")

    sparse = os.path.join(clone, "sparse.img")
    phase(f"a {SPARSE_GIB} GiB sparse file", lambda: os.truncate(open(sparse, "w").name, SPARSE_GIB << 30),
          refused("is refused: 'sparse.img' is"))
    phase("without it", lambda: (os.unlink(sparse), append("next")()), lambda: os.path.exists(os.path.join(root, "srv/extra-1")))

    def many():
        for index in range(BLOBS):
            folder = os.path.join(clone, "many", f"{index % 1000:03d}")
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, str(index)), "w") as f:
                f.write(f"{index}\n")
    phase(f"{BLOBS:,} small files", many, refused("more than 50000 files and folders"))
    phase("without them", lambda: (shutil.rmtree(os.path.join(clone, "many")), append("last")()), lambda: os.path.exists(os.path.join(root, "srv/extra-3")))
    stop.set()
    agent.send_signal(signal.SIGTERM)
    agent.wait(timeout=120)
    daemon.kill()
    print("### Oversized commits (a git:// remote, 2-second interval)\n")
    print("| commit | outcome | from push to outcome | agent RSS, highest |")
    print("| --- | --- | ---: | ---: |")
    outcomes = ["refused, naming the file, its size and the limit", "applied", "refused, naming the limit", "applied"]
    for (name, seconds, rss), outcome in zip(rows, outcomes):
        print(f"| {name} | {outcome} | {seconds:.1f} s | {rss:.1f} MiB |")
    for line in open(log):
        if "is refused" in line:
            print(f"\n`{line.strip()[:300]}`")
    print()


def main():
    tend = os.path.abspath(sys.argv[1])
    for part, run in [("hung", hung), ("oversized", oversized)]:
        if part not in PARTS:
            continue
        work = tempfile.mkdtemp(prefix=f"tend-trust-{part}-")
        try:
            run(tend, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
