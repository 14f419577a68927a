#!/usr/bin/env python3
"""Benchmark: packages.

1. Observing 50 declared packages on this machine's normal Debian package set (all installed, so
   the plan is empty): `tend plan` (one read of the dpkg status file, one apt-cache policy) beside
   50 `dpkg-query -W` calls, one per package, in the same run.
2. Applying 20 packages inside a test host (scripts/testhost-boot.sh) from a local repository of
   generated .deb packages: `tend apply` (one apt transaction) beside 20 separate
   `apt-get install` calls, the packages removed again between runs.
Medians of RUNS runs (default 5). Usage: bench/packages.py TEND_BIN
"""
import os, shutil, statistics, subprocess, sys, tempfile, time

RUNS = int(os.environ.get("RUNS", "5"))
HERE = os.path.dirname(os.path.abspath(__file__))


def timed(argv, **kw):
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    return time.perf_counter() - start


def observe(tend, work):
    names = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Status}\\n"], capture_output=True, text=True, check=True).stdout
    installed = [line.split()[0] for line in names.splitlines() if line.endswith("ok installed")][:50]
    repo = os.path.join(work, "observe")
    os.makedirs(os.path.join(repo, "site"))
    open(os.path.join(repo, "tend.yaml"), "w").write("hosts:\n  - apply: [site]\n")
    open(os.path.join(repo, "site", "packages.yaml"), "w").write("resources:\n" + "".join(f"  - package: {n}\n" for n in installed))
    tend_times, query_times = [], []
    for _ in range(RUNS):
        tend_times.append(timed([tend, "plan", repo, "--detailed-exitcode"]))
        start = time.perf_counter()
        for name in installed:
            subprocess.run(["dpkg-query", "-W", name], check=True, stdout=subprocess.DEVNULL)
        query_times.append(time.perf_counter() - start)
    return len(installed), statistics.median(tend_times), statistics.median(query_times)


def build_debs(folder, count):
    os.makedirs(os.path.join(folder, "repo"))
    for i in range(count):
        build = os.path.join(folder, "build", f"bench-{i:02d}")
        os.makedirs(os.path.join(build, "DEBIAN"))
        os.makedirs(os.path.join(build, "usr", "share", "bench"))
        open(os.path.join(build, "DEBIAN", "control"), "w").write(
            f"Package: tend-bench-{i:02d}\nVersion: 1.0-1\nArchitecture: all\nMaintainer: bench <b@example.com>\nDescription: bench\n")
        open(os.path.join(build, "usr", "share", "bench", f"{i}"), "w").write("x\n")
        subprocess.run(["dpkg-deb", "--build", "--root-owner-group", build, os.path.join(folder, "repo", f"tend-bench-{i:02d}_1.0-1_all.deb")],
                       check=True, stdout=subprocess.DEVNULL)
    index = subprocess.run(["dpkg-scanpackages", "-m", ".", "/dev/null"], cwd=os.path.join(folder, "repo"), capture_output=True, check=True).stdout
    open(os.path.join(folder, "repo", "Packages"), "wb").write(index)


def apply_twenty(tend, work):
    folder = os.path.join(work, "debs")
    build_debs(folder, 20)
    base = tempfile.mkdtemp(prefix="tend-bench-host.")
    boot = subprocess.Popen(["unshare", "--pid", "--fork", "--mount", "--net", "--propagation", "private",
                             os.path.join(HERE, "..", "scripts", "testhost-boot.sh"), base],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid = None
    try:
        for _ in range(200):
            children = open(f"/proc/{boot.pid}/task/{boot.pid}/children").read().split()
            if children:
                pid = int(children[0])
                break
            time.sleep(0.05)
        inside = lambda *cmd, check=True: subprocess.run(["nsenter", "-t", str(pid), "-m", "-p", "--", *cmd], check=check,
                                                         capture_output=True, text=True)
        for _ in range(200):
            if inside("systemctl", "is-system-running", check=False).stdout.strip() in ("running", "degraded"):
                break
            time.sleep(0.1)
        shutil.copytree(os.path.join(folder, "repo"), f"/proc/{pid}/root/srv/debs")
        shutil.copy(tend, f"/proc/{pid}/root/usr/local/bin/tend")
        inside("sh", "-c", "rm -f /etc/apt/sources.list /etc/apt/sources.list.d/* && echo 'deb [trusted=yes] file:/srv/debs ./' > "
               "/etc/apt/sources.list.d/bench.list && apt-get update -q")
        os.makedirs(f"/proc/{pid}/root/srv/config/site")
        open(f"/proc/{pid}/root/srv/config/tend.yaml", "w").write("hosts:\n  - apply: [site]\n")
        open(f"/proc/{pid}/root/srv/config/site/p.yaml", "w").write("resources:\n" + "".join(f"  - package: tend-bench-{i:02d}\n" for i in range(20)))
        names = [f"tend-bench-{i:02d}" for i in range(20)]
        remove = lambda: inside("apt-get", "remove", "-y", "-q", *names)
        tend_times, apt_times = [], []
        for _ in range(RUNS):
            start = time.perf_counter()
            inside("/usr/local/bin/tend", "apply", "/srv/config", "--apt-max-age", "86400")
            tend_times.append(time.perf_counter() - start)
            remove()
            start = time.perf_counter()
            for name in names:
                inside("apt-get", "install", "-y", "-q", name)
            apt_times.append(time.perf_counter() - start)
            remove()
        return statistics.median(tend_times), statistics.median(apt_times)
    finally:
        if pid:
            os.kill(pid, 9)
        boot.wait()
        shutil.rmtree(base, ignore_errors=True)


def main():
    tend = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="tend-pkgbench.")
    try:
        count, tend_observe, queries = observe(tend, work)
        print(f"Medians of {RUNS} runs.\n")
        print("| what | tend | baseline | ratio |")
        print("| --- | ---: | ---: | ---: |")
        print(f"| observe {count} installed packages: `tend plan` (whole run) vs {count} × `dpkg-query -W` | {tend_observe*1000:.0f} ms | {queries*1000:.0f} ms | {queries/tend_observe:.1f}× faster |")
        if os.geteuid() == 0:
            one, many = apply_twenty(tend, work)
            print(f"| install 20 packages in a test host: `tend apply` (one transaction) vs 20 × `apt-get install` | {one*1000:.0f} ms | {many*1000:.0f} ms | {many/one:.1f}× faster |")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
