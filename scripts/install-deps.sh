#!/usr/bin/env bash
# Installs, with apt, the Debian packages tend builds and tests with that are missing.
# binutils strips the .deb's binary and lintian checks the .deb (make deb); man-db and
# bash-completion are what the package test uses on a test host.
# debootstrap makes the Debian 12 root of `make image` and the provisioning test;
# systemd-journal-remote collects the fleet test's journals (systemd-journal-upload sends them).
# python3-prometheus-client parses the agent's metrics file in the tests (a real Prometheus text parser).
# strace shows the tests which files a fetch made durable (fsync of the Git cache) and how often
# a run reads dpkg's status file.
# age encrypts the secrets the tests decrypt (tend runs Debian's age for its own decryption);
# nginx-light and sudo are what the hooks are tested on in a test host (reload, visudo), kept
# from starting on the machine by the same policy-rc.d.
# openssh-server is only for the tests, which run their own sshd on 127.0.0.1: its own service is
# kept from starting while it installs (policy-rc.d), so no sshd is left listening on the machine.
set -euo pipefail
packages=(pkg-config libyaml-dev libgit2-dev libsystemd-dev systemd dpkg-dev git openssh-client openssh-server gpg gpgv openssl python3 python3-prometheus-client iproute2 binutils lintian man-db bash-completion debootstrap systemd-journal-remote strace age nginx-light sudo)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "Installing missing packages: ${missing[*]}"
    if [ "$(id -u)" != 0 ]; then echo "run as root (apt-get install ${missing[*]})" >&2; exit 1; fi
    policy=/usr/sbin/policy-rc.d
    own_policy=no
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && own_policy=yes
    fi
    trap 'if [ "$own_policy" = yes ]; then rm -f "$policy"; fi' EXIT
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if ! command -v swift >/dev/null; then
    echo "tend needs a Swift 6.1 or newer toolchain on PATH or in /opt/swift; Debian 12 does not package one (https://www.swift.org/install/linux/)" >&2
    exit 1
fi
