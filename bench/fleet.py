#!/usr/bin/env python3
"""Benchmark: a fleet of HOSTS test hosts (scripts/fleet.sh) pulling one git daemon (issue 13).

Every host runs the agent under systemd (the shipped unit) with INTERVAL and SPLAY, labels and
the fleet's own machine IDs, pulling git://10.231.0.1/fleet.git on the fleet's network. The git
daemon runs with --verbose; each connection and disconnection it logs is timed as it comes, which
gives the number of fetches in flight at every moment.

1. Idle: for IDLE seconds with no new commit, the fetches per second the server sees, its peak
   concurrency, and the server's CPU time per fetch (git-daemon and the upload-pack processes it
   forks, from /proc): the cost of a fleet that polls, and how many hosts one server carries.
2. Push to converged, PUSHES times: main moves to a new commit (one changed file on every host);
   the time until the last host has applied it (its last-run.json names the commit), against the
   goal interval + splay + 2 s, and the server's peak concurrency meanwhile, against a tenth of
   the fleet.
3. Per host, the cost of a check that finds no new commit: `tend validate --repo` inside one host
   (fetch + load), beside the same with --offline (load only), medians of RUNS.

Usage: bench/fleet.py TEND_BINARY   (HOSTS 50, INTERVAL 10, SPLAY 10, IDLE 60, PUSHES 5, RUNS 9)
Run as root; takes a few minutes.
"""
import json, os, re, shutil, statistics, subprocess, sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
HOSTS = int(os.environ.get("HOSTS", "50"))
INTERVAL = int(os.environ.get("INTERVAL", "10"))
SPLAY = int(os.environ.get("SPLAY", "10"))
IDLE = float(os.environ.get("IDLE", "60"))
PUSHES = int(os.environ.get("PUSHES", "5"))
RUNS = int(os.environ.get("RUNS", "9"))
UNIT = os.path.join(ROOT, "examples/systemd/tend.service")


def git(*args, cwd=None):
    return subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", *args],
                          cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def commit(work, version):
    os.makedirs(os.path.join(work, "base/files"), exist_ok=True)
    with open(os.path.join(work, "tend.yaml"), "w") as f:
        f.write("hosts:\n  - apply: [base]\n")
    with open(os.path.join(work, "base/base.yaml"), "w") as f:
        f.write("resources:\n  - file: /etc/fleet/motd\n    template: files/motd.mustache\n")
    with open(os.path.join(work, "base/files/motd.mustache"), "w") as f:
        f.write("{{host.hostname}} %s\n" % version)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", version, cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


class Connections:
    """Follows git daemon --verbose on its stderr: fetches in flight, their peak and count."""

    def __init__(self, process):
        self.lock = threading.Lock()
        self.open = 0
        self.peak = 0
        self.total = 0
        threading.Thread(target=self.follow, args=(process,), daemon=True).start()

    def follow(self, process):
        for line in process.stderr:
            with self.lock:
                if "Connection from" in line:
                    self.open += 1
                    self.total += 1
                    self.peak = max(self.peak, self.open)
                elif "Disconnected" in line:
                    self.open = max(0, self.open - 1)

    def window(self):
        """Starts a window: returns the count so far and resets the peak to what is open now."""
        with self.lock:
            self.peak = self.open
            return self.total

    def read(self):
        with self.lock:
            return self.total, self.peak


def cpu_seconds(pid):
    """The CPU time of `pid` and of its reaped children (git-daemon's upload-pack processes)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / os.sysconf("SC_CLK_TCK")


def nsenter(pid, *command, net=False):
    flags = ["-m", "-p"] + (["-n"] if net else [])
    return subprocess.run(["nsenter", "-t", str(pid), *flags, "--", *command], capture_output=True, text=True)


def last_commit(pid):
    try:
        with open(f"/proc/{pid}/root/var/lib/tend/last-run.json") as f:
            return json.load(f).get("source", {}).get("commit")
    except (OSError, ValueError):
        return None


def main():
    tend = sys.argv[1]
    work = tempfile.mkdtemp(prefix="tend-bench-fleet.")
    fleet = os.path.join(work, "fleet")
    served = os.path.join(work, "git/fleet.git")
    daemon = None
    try:
        repo = os.path.join(work, "repo")
        os.makedirs(repo)
        git("init", "-q", "-b", "main", cwd=repo)
        first = commit(repo, "v0")
        git("clone", "-q", "--bare", repo, served)

        started = time.time()
        subprocess.run(["bash", os.path.join(ROOT, "scripts/fleet.sh"), "up", fleet, str(HOSTS), tend], check=True)
        print(f"{HOSTS} hosts booted in {time.time() - started:.1f} s")
        hosts = [line.split() for line in open(os.path.join(fleet, "hosts"))]
        netns = open(os.path.join(fleet, "netns")).read().strip()
        daemon = subprocess.Popen(["ip", "netns", "exec", netns, "/usr/lib/git-core/git-daemon", "--verbose", "--export-all", "--reuseaddr",
                                   f"--base-path={work}/git", "--listen=10.231.0.1"], stderr=subprocess.PIPE, text=True)
        connections = Connections(daemon)
        time.sleep(1)

        unit = open(UNIT).read()
        for pid, _, name, _ in hosts:
            rootfs = f"/proc/{pid}/root"
            os.makedirs(rootfs + "/etc/systemd/system/tend.service.d", exist_ok=True)
            os.makedirs(rootfs + "/etc/tend", exist_ok=True)
            open(rootfs + "/etc/systemd/system/tend.service", "w").write(unit)
            open(rootfs + "/etc/systemd/system/tend.service.d/bench.conf", "w").write("[Service]\nExecStart=\nExecStart=/usr/local/bin/tend agent\n")
            open(rootfs + "/etc/tend/agent.yaml", "w").write(
                f"repo: git://10.231.0.1/fleet.git\nref: main\ninterval: {INTERVAL}s\nsplay: {SPLAY}s\nmetrics_file: null\n")
        starters = [subprocess.Popen(["nsenter", "-t", pid, "-m", "-p", "--", "sh", "-c", "systemctl daemon-reload && systemctl start tend.service"])
                    for pid, *_ in hosts]
        for starter in starters:
            starter.wait()
        deadline = time.time() + 120
        while any(last_commit(pid) != first for pid, *_ in hosts):
            if time.time() > deadline:
                sys.exit("not every host applied the first commit")
            time.sleep(0.5)

        # 1. Idle polling.
        before = connections.window()
        cpu_before = cpu_seconds(daemon.pid)
        time.sleep(IDLE)
        total, idle_peak = connections.read()
        fetches = total - before
        per_fetch = (cpu_seconds(daemon.pid) - cpu_before) / max(1, fetches)
        print(f"\nidle, {IDLE:.0f} s: {fetches} fetches, {fetches / IDLE:.2f} per second "
              f"(expected {HOSTS / INTERVAL:.2f}: {HOSTS} hosts every {INTERVAL} s); peak {idle_peak} in flight; "
              f"server CPU {per_fetch * 1000:.1f} ms per fetch, so one core serves {1 / max(per_fetch, 1e-6):.0f} fetches per second")

        # 2. Push to converged.
        rows = []
        for push in range(1, PUSHES + 1):
            time.sleep((push * 3.7) % INTERVAL)   # pushes at different moments of the interval
            new = commit(repo, f"v{push}")
            git("fetch", "-q", repo, "main:main", cwd=served)
            pushed = time.time()
            connections.window()
            done = {}
            while len(done) < len(hosts):
                for pid, _, name, _ in hosts:
                    if name not in done and last_commit(pid) == new:
                        done[name] = time.time() - pushed
                if time.time() - pushed > 120:
                    sys.exit(f"push {push}: hosts never converged: {sorted(set(h[2] for h in hosts) - set(done))}")
                time.sleep(0.05)
            _, peak = connections.read()
            times = sorted(done.values())
            rows.append((push, times[0], statistics.median(times), times[-1], peak))
        goal = INTERVAL + SPLAY + 2
        print(f"\npush to converged, {HOSTS} hosts, interval {INTERVAL} s, splay {SPLAY} s (goal: last host within {goal} s; peak at most a tenth of the fleet, {HOSTS / 10:g}):\n")
        print("| push | first host | median host | last host | peak fetches in flight |")
        print("| ---: | ---: | ---: | ---: | ---: |")
        for push, first_host, median_host, last_host, peak in rows:
            print(f"| {push} | {first_host:.2f} s | {median_host:.2f} s | {last_host:.2f} s | {peak} |")
        print(f"\nslowest last host {max(r[3] for r in rows):.2f} s (goal {goal} s); highest peak {max(r[4] for r in rows)} (goal at most {HOSTS / 10:g})")

        # 3. One host's check with no new commit: fetch + load, and load alone.
        pid = hosts[0][0]
        def timed(*extra):
            values = []
            for _ in range(RUNS):
                began = time.time()
                run = nsenter(pid, "/usr/local/bin/tend", "validate", "--repo", "git://10.231.0.1/fleet.git", "--ref", "main",
                              "--state-dir", "/var/lib/tend", *extra, net=True)
                values.append(time.time() - began)
                if run.returncode != 0:
                    sys.exit(f"tend validate failed: {run.stderr}")
            return statistics.median(values)
        fetched, offline = timed(), timed("--offline")
        print(f"\none host's check with no new commit, medians of {RUNS}: tend validate --repo {fetched * 1000:.1f} ms "
              f"(fetch and load), --offline {offline * 1000:.1f} ms (load alone)")
    finally:
        if daemon:
            daemon.kill()
        subprocess.run(["bash", os.path.join(ROOT, "scripts/fleet.sh"), "down", fleet])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
