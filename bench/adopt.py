#!/usr/bin/env python3
"""Benchmark (issue 25): `tend adopt --dry-run` of a root with PACKAGES packages and FILES files
under /etc, against `dpkg --verify` of the same root, alternating round by round (paired).

The root is generated: a dpkg database of PACKAGES packages (Priority optional, installed, none
automatic), each owning FILES/PACKAGES files under /etc/pkgN/ (one of them a conffile, changed in
one package of ten) and one under /usr/share/pkgN/, with their md5sums; plus one unowned file per
package under /etc/local/. Both tools then read every package's lists and the files they name
(dpkg --verify hashes each packaged file; adopt walks /etc, hashes the conffiles and reads what
no package owns). Prints each median and the median of the paired ratios adopt ÷ dpkg --verify
(the target: at most 2).

Usage: bench/adopt.py ROUNDS TEND   (PACKAGES from $PACKAGES, default 2000; FILES from $FILES, default 20000)
"""
import hashlib, os, shutil, statistics, subprocess, sys, tempfile, time


def generate(root, packages, files):
    per = max(1, files // packages)
    info = os.path.join(root, "var/lib/dpkg/info")
    os.makedirs(info)
    os.makedirs(os.path.join(root, "var/lib/dpkg/updates"))
    open(os.path.join(root, "var/lib/dpkg/available"), "w").close()
    os.makedirs(os.path.join(root, "etc/local"))
    with open(os.path.join(root, "var/lib/dpkg/status"), "w") as status:
        for p in range(packages):
            name = f"pkg{p:05d}"
            paths, sums = [], []
            for k in range(per):
                path = f"/etc/{name}/file{k:03d}.conf"
                text = f"# {name} file {k}\nsetting = {k}\n".encode()
                full = root + path
                os.makedirs(os.path.dirname(full), exist_ok=True)
                with open(full, "wb") as f:
                    f.write(text + (b"changed\n" if k == 0 and p % 10 == 0 else b""))
                paths.append(path)
                sums.append((hashlib.md5(text).hexdigest(), path))
            doc = f"/usr/share/{name}/README"
            os.makedirs(os.path.dirname(root + doc), exist_ok=True)
            with open(root + doc, "wb") as f:
                f.write(f"{name}\n".encode())
            sums.append((hashlib.md5(f"{name}\n".encode()).hexdigest(), doc))
            with open(os.path.join(root, "etc/local", f"{name}.conf"), "w") as f:
                f.write(f"local {name}\n")
            with open(os.path.join(info, f"{name}.list"), "w") as f:
                f.write("\n".join(sorted(set(["/etc", f"/etc/{name}", "/usr", "/usr/share", f"/usr/share/{name}"] + paths + [doc]))) + "\n")
            with open(os.path.join(info, f"{name}.md5sums"), "w") as f:
                f.write("".join(f"{digest}  {path[1:]}\n" for digest, path in sums if not path.endswith("file000.conf")))
            with open(os.path.join(info, f"{name}.conffiles"), "w") as f:
                f.write(paths[0] + "\n")
            status.write(f"Package: {name}\nStatus: install ok installed\nPriority: optional\nSection: misc\n"
                         f"Installed-Size: 1\nMaintainer: bench <bench@example.com>\nArchitecture: all\nVersion: 1.0-1\n"
                         f"Conffiles:\n {paths[0]} {sums[0][0]}\nDescription: {name}\n\n")


def main():
    rounds, tend = int(sys.argv[1]), os.path.abspath(sys.argv[2])
    packages = int(os.environ.get("PACKAGES", "2000"))
    files = int(os.environ.get("FILES", "20000"))
    work = tempfile.mkdtemp(prefix="tend-bench-adopt-")
    try:
        root = os.path.join(work, "root")
        generate(root, packages, files)
        count = sum(len(f) for _, _, f in os.walk(os.path.join(root, "etc")))
        print(f"root: {packages} packages, {count} files under /etc")
        verify = ["dpkg", f"--root={root}", "--verify"]
        adopt = [tend, "adopt", "--root", root, "--hostname", "bench", "--dry-run"]
        # dpkg --verify exits 1 when it finds changed files: that is its answer, not a failure.
        subprocess.run(verify, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times = {"dpkg --verify": [], "tend adopt": []}

        def run(name, command):
            start = time.perf_counter()
            subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - start)

        for index in range(rounds):
            order = [("dpkg --verify", verify), ("tend adopt", adopt)]
            for name, command in (order if index % 2 == 0 else order[::-1]):
                run(name, command)
        for name, values in times.items():
            print(f"{name}: median {statistics.median(values) * 1000:.0f} ms")
        ratio = statistics.median(a / b for a, b in zip(times["tend adopt"], times["dpkg --verify"]))
        print(f"tend adopt ÷ dpkg --verify (paired): {ratio:.3f}")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
