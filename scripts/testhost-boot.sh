#!/usr/bin/env bash
# Boots a test host: a real systemd as PID 1 over an overlay of / whose writes go to a tmpfs.
# Run inside new PID, mount and network namespaces, as root:
#   unshare --pid --fork --mount --net --propagation private scripts/testhost-boot.sh DIR
# DIR is an empty folder of the caller's, one per test host. Nothing outside it is changed, and
# killing the systemd (the direct child of unshare) ends the whole host. See ../shared/TESTING.md.
# TESTHOST_HIDE: folders of / (space-separated) that the host sees empty, such as /opt/swift for
# a host with no Swift toolchain.
# TESTHOST_LOWER: the folder under the overlay instead of /: an image root (make image) that boots
# with its own systemd. Give it unshare --uts too, so that the image's hostname stays in the host.
# TESTHOST_MACHINE_ID: the host's /etc/machine-id (a fleet's hosts each have their own).
# TESTHOST_HOSTNAME: its /etc/hostname, which systemd sets (with unshare --uts).
set -euo pipefail
base=$1
mount -t tmpfs -o mode=0755 tmpfs "$base"
mkdir -p "$base/upper" "$base/work" "$base/merged"
mount -t overlay overlay -o "lowerdir=${TESTHOST_LOWER:-/},upperdir=$base/upper,workdir=$base/work" "$base/merged"
root=$base/merged
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
# Its own shared memory: services of the image (PostgreSQL) would otherwise leave segments in the machine's.
mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"
mount -t tmpfs -o mode=0755 tmpfs "$root/run"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
for hidden in ${TESTHOST_HIDE:-}; do
    mount -t tmpfs -o mode=0755 tmpfs "$root$hidden"
done
if [ -n "${TESTHOST_MACHINE_ID:-}" ]; then
    rm -f "$root/etc/machine-id"
    echo "$TESTHOST_MACHINE_ID" > "$root/etc/machine-id"
fi
if [ -n "${TESTHOST_HOSTNAME:-}" ]; then
    rm -f "$root/etc/hostname"
    echo "$TESTHOST_HOSTNAME" > "$root/etc/hostname"
fi
# The machine's /dev (its console and its ttys) is every test host's: no getty on any of it.
# Several would fight over one, and one that lost failed the boot of an image ("degraded" by
# console-getty.service, then by getty@tty1.service).
mkdir -p "$root/etc/systemd/system"
ln -sf /dev/null "$root/etc/systemd/system/console-getty.service"
ln -sf /dev/null "$root/etc/systemd/system/getty.target"
ln -sf /dev/null "$root/etc/systemd/system/getty@.service"
mkdir -p "$root/.old-root"
cd "$root"
pivot_root . .old-root
umount -l /.old-root
rmdir /.old-root 2>/dev/null || true
export container=other
exec /usr/lib/systemd/systemd --system --unit=multi-user.target
