#!/usr/bin/env python3
"""Benchmark: the agent, against baselines measured in the same run.

1. Idle cost: `tend agent` with FILES converged file resources from a local Git repository and a
   1-minute interval, for IDLE_MINUTES: its CPU-seconds per hour (from /proc/PID/stat) and its
   resident memory between cycles, beside a one-shot `tend apply` of the same repository (what a
   timer running tend every minute would cost).
2. Push to converged: with a 10 s interval, the time from `git push` to the change on disk, over
   PUSHES pushes at random moments, beside a one-shot `tend apply` of the same commit.
3. Memory over CYCLES cycles of the agent's own loop (bench/AgentLoop) on a small repository.

Usage: bench/agent.py TEND_BINARY AGENT_LOOP_BINARY
Environment: FILES (10000), IDLE_MINUTES (5), PUSHES (7), CYCLES (10000), RUNS (5),
PARTS (idle,push,loop: which of the three to run)
"""
import json, os, random, signal, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plan_apply import generate  # noqa: E402

FILES = int(os.environ.get("FILES", "10000"))
IDLE_MINUTES = float(os.environ.get("IDLE_MINUTES", "5"))
PUSHES = int(os.environ.get("PUSHES", "7"))
CYCLES = int(os.environ.get("CYCLES", "10000"))
RUNS = int(os.environ.get("RUNS", "5"))
PARTS = os.environ.get("PARTS", "idle,push,loop").split(",")
TICKS = os.sysconf("SC_CLK_TCK")
GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]


def git(work, *args):
    subprocess.run(GIT + list(args), cwd=work, check=True, stdout=subprocess.DEVNULL)


def make_repo(work, name, n):
    """A bare repository and a clone to push from, with n generated files."""
    bare, clone = os.path.join(work, name + ".git"), os.path.join(work, name)
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", bare], check=True)
    generate(clone, n)
    git(clone, "init", "-q", "-b", "main")
    git(clone, "remote", "add", "origin", bare)
    git(clone, "add", "-A")
    git(clone, "commit", "-q", "-m", "generated")
    git(clone, "push", "-q", "origin", "main")
    return bare, clone


def one_shot(argv):
    """Runs argv to its end; returns (wall seconds, CPU seconds, peak RSS MiB)."""
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.execv(argv[0], argv)
    _, status, usage = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(argv)} exited {os.waitstatus_to_exitcode(status)}")
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def agent_record(root):
    try:
        return json.load(open(os.path.join(root, "var/lib/tend/agent.json")))
    except (OSError, ValueError):
        return {}


def start_agent(tend, bare, root, state, interval, work):
    config = os.path.join(work, "agent.yaml")
    open(config, "w").close()
    log = open(os.path.join(work, f"agent-{interval}.log"), "w")
    process = subprocess.Popen([tend, "agent", "--config", config, "--repo", bare, "--root", root, "--state-dir", state,
                                "--interval", interval, "--splay", "0s", "--metrics-file", os.path.join(work, "tend.prom"),
                                "--log", "console"], stdout=log, stderr=log)
    deadline = time.time() + 600
    while "last_cycle" not in agent_record(root):
        if process.poll() is not None or time.time() > deadline:
            sys.exit(f"the agent did not finish its first cycle; see {log.name}")
        time.sleep(0.2)
    return process


def stop_agent(process):
    process.send_signal(signal.SIGTERM)
    if process.wait(timeout=120) != 0:
        sys.exit(f"the agent exited {process.returncode} on SIGTERM")


def idle(tend, work):
    bare, _ = make_repo(work, "idle", FILES)
    root, state = os.path.join(work, "idle-root"), os.path.join(work, "idle-state")
    os.makedirs(root)
    agent = start_agent(tend, bare, root, state, "60s", work)
    baseline = [one_shot([tend, "apply", "--repo", bare, "--root", root, "--state-dir", state]) for _ in range(RUNS)]
    time.sleep(5)
    cycles, samples = set(), []
    cpu0, t0 = cpu_seconds(agent.pid), time.time()
    while time.time() - t0 < IDLE_MINUTES * 60:
        cycles.add(agent_record(root).get("last_cycle"))
        samples.append(rss_mib(agent.pid))
        time.sleep(2)
    cpu1, t1 = cpu_seconds(agent.pid), time.time()
    hwm = next((int(l.split()[1]) / 1024 for l in open(f"/proc/{agent.pid}/status") if l.startswith("VmHWM:")), 0)
    stop_agent(agent)
    per_hour = (cpu1 - cpu0) / (t1 - t0) * 3600
    one_cpu = statistics.median(b[1] for b in baseline)
    print(f"### Idle: {FILES:,} converged files, 1-minute interval, {IDLE_MINUTES:g} minutes ({len(cycles)} cycles)\n")
    print("| | CPU per check | CPU-seconds per hour | share of one core | resident memory |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(f"| tend agent | {(cpu1 - cpu0) / max(len(cycles) - 1, 1) * 1000:.0f} ms | {per_hour:.1f} s | {per_hour / 36:.2f} % | "
          f"median {statistics.median(samples):.1f} MiB, most {max(samples):.1f} MiB (peak {hwm:.1f} MiB, first apply included) |")
    print(f"| one-shot tend apply every minute | {one_cpu * 1000:.0f} ms | {one_cpu * 60:.1f} s | {one_cpu * 60 / 36:.2f} % | "
          f"peak {statistics.median(b[2] for b in baseline):.1f} MiB while it runs |")
    print(f"\nagent ÷ one-shot CPU per hour: {per_hour / (one_cpu * 60):.2f}\n")


def push_to_converged(tend, work):
    bare, clone = make_repo(work, "push", FILES)
    root, state = os.path.join(work, "push-root"), os.path.join(work, "push-state")
    other_root, other_state = os.path.join(work, "push-other"), os.path.join(work, "push-other-state")
    os.makedirs(root)
    os.makedirs(other_root)
    one_shot([tend, "apply", "--repo", bare, "--root", other_root, "--state-dir", other_state])
    agent = start_agent(tend, bare, root, state, "10s", work)
    target = os.path.join(root, "srv/data/d000/f000000.conf")
    manifest = os.path.join(clone, "site", "files.yaml")
    latencies, baseline = [], []
    for k in range(PUSHES):
        time.sleep(random.uniform(0, 10))
        text = open(manifest).read()
        marker = f"pushed {k}"
        text = text.replace("# generated file 0\\n", f"# generated file 0, {marker}\\n", 1) if k == 0 else \
            text.replace(f"pushed {k - 1}", marker, 1)
        open(manifest, "w").write(text)
        git(clone, "commit", "-q", "-am", marker)
        git(clone, "push", "-q", "origin", "main")
        pushed = time.perf_counter()
        while marker not in open(target).read():
            if time.perf_counter() - pushed > 60:
                sys.exit("the agent did not apply the push within 60 s")
            time.sleep(0.005)
        latencies.append(time.perf_counter() - pushed)
        baseline.append(one_shot([tend, "apply", "--repo", bare, "--root", other_root, "--state-dir", other_state])[0])
    stop_agent(agent)
    print(f"### Push to converged: {FILES:,} files, 10 s interval, {PUSHES} pushes at random moments\n")
    print("| | median | fastest | slowest |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| git push → the change on disk (agent) | {statistics.median(latencies):.2f} s | {min(latencies):.2f} s | {max(latencies):.2f} s |")
    print(f"| one-shot tend apply of that commit | {statistics.median(baseline):.2f} s | {min(baseline):.2f} s | {max(baseline):.2f} s |")
    print(f"\nagent ÷ one-shot: {statistics.median(latencies) / statistics.median(baseline):.1f} (the agent waits for its next check: half the interval on average)\n")


def memory_over_cycles(loop, work):
    bare, _ = make_repo(work, "loop", 100)
    root, state = os.path.join(work, "loop-root"), os.path.join(work, "loop-state")
    os.makedirs(root)
    out = subprocess.run([loop, bare, state, root, str(CYCLES)], check=True, capture_output=True, text=True).stdout
    samples = [int(l.split("RSS ")[1].split()[0]) / 1024 for l in out.splitlines() if l.startswith("after ")]
    last = out.splitlines()[-1]
    print(f"### Memory over {CYCLES:,} cycles of the agent's loop (100 files, no wait between cycles)\n")
    third = max(len(samples) // 3, 1)
    print(f"Resident memory sampled every 2 s ({len(samples)} samples): median of the first third "
          f"{statistics.median(samples[:third]):.1f} MiB, of the last third {statistics.median(samples[-third:]):.1f} MiB, "
          f"most {max(samples):.1f} MiB. {last.split(';')[0]}.\n")


def main():
    sys.stdout.reconfigure(line_buffering=True)
    tend, loop = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    work = tempfile.mkdtemp(prefix="tend-bench-agent.")
    try:
        if "idle" in PARTS:
            idle(tend, work)
        if "push" in PARTS:
            push_to_converged(tend, work)
        if "loop" in PARTS:
            memory_over_cycles(loop, work)
    finally:
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
