#!/usr/bin/env python3
"""Benchmark: drift repaired by the agent's watches (issue 9), against baselines in the same run.

1. Files: an agent keeps FILES converged files under a root, on a 1-hour interval (so only its
   watches repair anything). EVENTS times, a random managed file is overwritten, deleted or
   chmodded (in turn), and the time until the declared state is back is measured by polling
   every 0.2 ms: p50 and p99. Baseline: a one-shot `tend apply` of the same repository after the
   same kind of drift, the least a tool that repairs on a timer needs once its timer fires.
2. Units: in a test host (systemd as PID 1, scripts/testhost-boot.sh), an agent keeps services
   running; UNIT_EVENTS times one is stopped by hand (each of UNIT_EVENTS/2 units twice, below the
   contest limit) (`systemctl stop`), and the time from the stop
   returning until systemd reports it active again is measured (polled with systemctl show).
   Baseline: `systemctl start` of the same unit, by hand.
3. Idle: the same agent as in 1, watching FILES files, for IDLE_MINUTES with nothing changing:
   CPU-seconds per hour and resident memory, beside the same agent with --no-watch; the number
   of inotify watches is the agent's own count. Then, with fs.inotify.max_user_watches lowered
   below what the agent needs (restored afterwards), what the agent says and that it still runs.

Usage: bench/drift.py TEND_BINARY
Environment: FILES (10000), EVENTS (200), UNIT_EVENTS (50), IDLE_MINUTES (3), RUNS (5),
PARTS (files,unit,idle)
"""
import os, random, re, shutil, signal, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from plan_apply import DIRS, generate  # noqa: E402
from agent import agent_record, cpu_seconds, one_shot, rss_mib  # noqa: E402

FILES = int(os.environ.get("FILES", "10000"))
EVENTS = int(os.environ.get("EVENTS", "200"))
UNIT_EVENTS = int(os.environ.get("UNIT_EVENTS", "50"))
IDLE_MINUTES = float(os.environ.get("IDLE_MINUTES", "3"))
RUNS = int(os.environ.get("RUNS", "5"))
PARTS = os.environ.get("PARTS", "files,unit,idle").split(",")


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def start_agent(tend, repo, root, work, name, extra=()):
    """An agent on a folder source, 1-hour interval; returns (process, log path) once it watches."""
    log_path = os.path.join(work, f"{name}.log")
    log = open(log_path, "w")
    config = os.path.join(work, "agent.yaml")
    open(config, "w").close()
    try:
        os.unlink(os.path.join(root, "var/lib/tend/agent.json"))
    except OSError:
        pass
    process = subprocess.Popen([tend, "agent", repo, "--config", config, "--root", root, "--state-dir", os.path.join(work, name + "-state"),
                                "--interval", "1h", "--splay", "0s", "--metrics-file", "", "--log", "console", *extra],
                               stdout=log, stderr=log)
    deadline = time.time() + 600
    while "last_cycle" not in agent_record(root) or ("--no-watch" not in extra and "watching " not in open(log_path).read()):
        if process.poll() is not None or time.time() > deadline:
            sys.exit(f"the agent did not finish its first cycle; see {log_path}")
        time.sleep(0.1)
    time.sleep(1)
    return process, log_path


def stop_agent(process):
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=120)


def content(i):
    return f"# generated file {i}\nkey = value-{i}\n".encode()


def path_of(root, i):
    return os.path.join(root, f"srv/data/d{i % DIRS:03d}/f{i:06d}.conf")


def converged(path, i):
    try:
        st = os.lstat(path)
        if (st.st_mode & 0o7777) != 0o644 or not os.path.isfile(path) or os.path.islink(path):
            return False
        with open(path, "rb") as f:
            return f.read() == content(i)
    except OSError:
        return False


def drift(path, kind):
    if kind == "overwrite":
        with open(path, "wb") as f:
            f.write(b"changed by hand\n")
    elif kind == "delete":
        os.unlink(path)
    else:
        os.chmod(path, 0o600)


def files(tend, work):
    repo = os.path.join(work, "repo")
    generate(repo, FILES)
    root = os.path.join(work, "root")
    os.makedirs(root)
    agent, log = start_agent(tend, repo, root, work, "files")
    kinds = ["overwrite", "delete", "chmod"]
    latencies = {k: [] for k in kinds}
    for n in range(EVENTS):
        kind = kinds[n % 3]
        i = random.randrange(FILES)
        path = path_of(root, i)
        time.sleep(random.uniform(0.05, 0.15))
        start = time.perf_counter()
        drift(path, kind)
        while not converged(path, i):
            if time.perf_counter() - start > 30:
                sys.exit(f"{path} was not repaired within 30 s ({kind}); see {log}")
            time.sleep(0.0002)
        latencies[kind].append(time.perf_counter() - start)
    stop_agent(agent)
    baseline = []
    for r in range(RUNS):
        i = random.randrange(FILES)
        drift(path_of(root, i), "overwrite")
        baseline.append(one_shot([tend, "apply", repo, "--root", root, "--state-dir", os.path.join(work, "files-state")])[0])
    every = [x for v in latencies.values() for x in v]
    print(f"### Files: {FILES:,} converged files, {EVENTS} drifts, 1-hour interval\n")
    print("| drift | events | p50 | p99 | slowest |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for kind in kinds:
        v = latencies[kind]
        print(f"| {kind} | {len(v)} | {percentile(v, 50)*1000:.1f} ms | {percentile(v, 99)*1000:.1f} ms | {max(v)*1000:.1f} ms |")
    print(f"| **all** | {len(every)} | **{percentile(every, 50)*1000:.1f} ms** | **{percentile(every, 99)*1000:.1f} ms** | {max(every)*1000:.1f} ms |")
    print(f"\nBaseline: a one-shot `tend apply` of the same {FILES:,} files after an overwrite, median of {RUNS}: "
          f"{statistics.median(baseline)*1000:.0f} ms (the repair alone, once a timer fires; the agent's p50 is "
          f"{statistics.median(baseline)/percentile(every, 50):.0f}× faster, and needs no timer).\n")
    return repo, root


def boot_host(work):
    base = os.path.join(work, "host")
    os.makedirs(base)
    unshare = subprocess.Popen(["unshare", "--pid", "--fork", "--mount", "--net", "--propagation", "private",
                                os.path.join(HERE, "..", "scripts", "testhost-boot.sh"), base],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    pid = None
    while pid is None and time.time() < deadline:
        try:
            children = open(f"/proc/{unshare.pid}/task/{unshare.pid}/children").read().split()
            if children and open(f"/proc/{children[0]}/comm").read().startswith("systemd"):
                pid = int(children[0])
        except OSError:
            pass
        time.sleep(0.05)
    if pid is None:
        sys.exit("the test host did not boot")
    while time.time() < deadline:
        state = inside(pid, ["systemctl", "is-system-running"]).stdout.strip()
        if state in ("running", "degraded"):
            return pid
        time.sleep(0.2)
    sys.exit("the test host did not finish booting")


def inside(pid, argv, check=False):
    return subprocess.run(["nsenter", "-t", str(pid), "-m", "-p", "--"] + argv, capture_output=True, text=True, check=check)


UNIT_LOOP = r"""
import subprocess, sys, time
events = int(sys.argv[1])
units = int(sys.argv[2])
def active(unit="bench-0.service"):
    return subprocess.run(["systemctl", "show", "-p", "ActiveState", "--value", unit], capture_output=True, text=True).stdout.strip() == "active"
repairs, starts = [], []
for n in range(events):
    unit = f"bench-{n % units}.service"
    time.sleep(0.3)
    subprocess.run(["systemctl", "stop", unit], check=True)
    start = time.perf_counter()
    while not active(unit):
        if time.perf_counter() - start > 30: sys.exit("not restarted within 30 s")
    repairs.append(time.perf_counter() - start)
subprocess.run(["systemctl", "stop", "tend-bench.service"], check=True)
for n in range(min(events, 20)):
    subprocess.run(["systemctl", "stop", "bench-0.service"], check=True)
    start = time.perf_counter()
    subprocess.run(["systemctl", "start", "bench-0.service"], check=True)
    while not active(): pass
    starts.append(time.perf_counter() - start)
print(" ".join(f"{x:.6f}" for x in repairs))
print(" ".join(f"{x:.6f}" for x in starts))
"""


def unit(tend, work):
    pid = boot_host(work)
    try:
        host = f"/proc/{pid}/root"
        os.makedirs(f"{host}/usr/local/bin", exist_ok=True)
        shutil.copy(tend, f"{host}/usr/local/bin/tend")
        os.makedirs(f"{host}/srv/config/site", exist_ok=True)
        open(f"{host}/srv/config/tend.yaml", "w").write("hosts:\n  - apply: [site]\n")
        # One unit per two stops: a unit stopped 5 times within 10 minutes would become contested.
        units = max(1, (UNIT_EVENTS + 1) // 2)
        open(f"{host}/srv/config/site/unit.yaml", "w").write("resources:\n" + "".join(
            f"  - unit: bench-{k}.service\n    content: |\n      [Service]\n      ExecStart=/bin/sleep infinity\n    state: running\n"
            for k in range(units)))
        inside(pid, ["systemd-run", "--unit=tend-bench", "/usr/local/bin/tend", "agent", "/srv/config", "--interval", "1h",
                     "--metrics-file", ""], check=True)
        deadline = time.time() + 60
        while "watching" not in inside(pid, ["journalctl", "-u", "tend-bench", "--no-pager", "-o", "cat"]).stdout:
            if time.time() > deadline:
                sys.exit("the agent in the test host did not start watching")
            time.sleep(0.2)
        run = inside(pid, ["/usr/bin/python3", "-c", UNIT_LOOP, str(UNIT_EVENTS), str(units)])
        if run.returncode != 0:
            journal = inside(pid, ["journalctl", "-u", "tend-bench", "--no-pager", "-o", "cat"]).stdout
            sys.exit(f"the unit loop failed: {run.stderr}\n{journal[-3000:]}")
        out = run.stdout.splitlines()
        repairs = [float(x) for x in out[0].split()]
        starts = [float(x) for x in out[1].split()]
    finally:
        os.kill(pid, signal.SIGKILL)
    print(f"### A unit stopped by hand: {UNIT_EVENTS} stops, in a test host (systemd as PID 1)\n")
    print("| | p50 | p99 | slowest |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| stopped → active again (the agent's watch) | **{percentile(repairs, 50)*1000:.0f} ms** | **{percentile(repairs, 99)*1000:.0f} ms** | {max(repairs)*1000:.0f} ms |")
    print(f"| baseline: `systemctl start` by hand, to active | {percentile(starts, 50)*1000:.0f} ms | {percentile(starts, 99)*1000:.0f} ms | {max(starts)*1000:.0f} ms |")
    print("\nEach time is polled with `systemctl show` (a few ms per poll), so it is an upper bound.\n")


def idle(tend, work, repo, root):
    rows = []
    for name, extra in [("watching", ()), ("--no-watch", ("--no-watch",))]:
        agent, log = start_agent(tend, repo, root, work, "idle-" + name.strip("-"), extra)
        time.sleep(5)
        cpu0, t0 = cpu_seconds(agent.pid), time.time()
        samples = []
        while time.time() - t0 < IDLE_MINUTES * 60:
            samples.append(rss_mib(agent.pid))
            time.sleep(2)
        cpu1, t1 = cpu_seconds(agent.pid), time.time()
        watches = re.findall(r"watching (\d+) paths with (\d+) inotify watches", open(log).read())
        stop_agent(agent)
        rows.append((name, (cpu1 - cpu0) / (t1 - t0) * 3600, statistics.median(samples), watches[-1] if watches else None))
    print(f"### Idle: {FILES:,} converged files, {IDLE_MINUTES:g} minutes with nothing changing\n")
    print("| agent | CPU-seconds per hour | resident memory (median) | inotify watches |")
    print("| --- | ---: | ---: | ---: |")
    for name, per_hour, rss, watches in rows:
        print(f"| {name} | {per_hour:.2f} s | {rss:.1f} MiB | {watches[1] + ' for ' + watches[0] + ' paths' if watches else 'none'} |")
    limit_file = "/proc/sys/fs/inotify/max_user_watches"
    old = open(limit_file).read().strip()
    try:
        open(limit_file, "w").write(str(FILES // 2))
        agent, log = start_agent(tend, repo, root, work, "idle-limited")
        said = [l for l in open(log).read().splitlines() if "max_user_watches" in l]
        alive = agent.poll() is None
        stop_agent(agent)
    finally:
        open(limit_file, "w").write(old)
    print(f"\nWith fs.inotify.max_user_watches at {FILES // 2:,} (below the {FILES + DIRS + 1:,} needed; {old} before, restored): "
          f"the agent {'keeps running' if alive else 'STOPPED'} and says, once: “{said[0].split(': ', 1)[-1] if said else 'NOTHING'}”\n")


def main():
    sys.stdout.reconfigure(line_buffering=True)
    tend = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="tend-bench-drift.")
    try:
        repo = root = None
        if "files" in PARTS or "idle" in PARTS:
            repo, root = files(tend, work) if "files" in PARTS else (None, None)
        if "unit" in PARTS:
            unit(tend, work)
        if "idle" in PARTS:
            if repo is None:
                repo = os.path.join(work, "repo")
                generate(repo, FILES)
                root = os.path.join(work, "root")
                os.makedirs(root)
            idle(tend, work, repo, root)
    finally:
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
