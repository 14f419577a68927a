#!/usr/bin/env bash
# Builds a Debian 12 root that boots into a tend-managed machine (`make image IMAGE=DIR`), as
# examples/provisioning/README.md describes:
#   scripts/make-image.sh IMAGE DEB...
# 1. a minimal Debian 12 tree (debootstrap --variant=minbase), made once and kept as a tarball in
#    the cache, so the next image starts from a copy;
# 2. tend's .deb (and any other given) and their index in IMAGE/var/local/tend-apt, where the
#    image's apt source finds them;
# 3. the deploy key in IMAGE/etc/tend/id_ed25519 (DEPLOY_KEY=file, or a new one whose public half
#    is printed for the Git server);
# 4. `tend apply REPO --root IMAGE --label stage=image`: packages from Debian's mirror and the
#    .deb, files, users, enabled units, tend.service; then a plan that must have nothing to do.
# Run as root. Settings (environment): TEND (the tend binary, default tend on PATH), REPO (default
# examples/provisioning), IMAGE_HOSTNAME (web-07), IMAGE_ROLE (web), MIRROR (Debian's),
# IMAGE_CACHE (/var/cache/tend-image: the base tarball and the .debs apt fetched; delete it to
# start over).
set -euo pipefail
image=${1:?usage: make-image.sh IMAGE DEB...}
shift
[ $# -gt 0 ] || { echo "usage: make-image.sh IMAGE DEB..." >&2; exit 1; }
tend=${TEND:-tend}
repo=${REPO:-examples/provisioning}
hostname=${IMAGE_HOSTNAME:-web-07}
role=${IMAGE_ROLE:-web}
mirror=${MIRROR:-http://deb.debian.org/debian}
cache=${IMAGE_CACHE:-/var/cache/tend-image}

if [ "$(id -u)" != 0 ]; then echo "make-image.sh: run as root (debootstrap and chroot need it)" >&2; exit 1; fi
for tool in debootstrap dpkg-scanpackages; do
    command -v "$tool" >/dev/null || { echo "make-image.sh: $tool is missing (apt-get install debootstrap dpkg-dev)" >&2; exit 1; }
done
if [ -e "$image" ] && [ -n "$(ls -A "$image")" ]; then
    echo "make-image.sh: $image is not empty; give a new or empty folder" >&2; exit 1
fi
mkdir -p "$image" "$cache/debs" "$cache/archives/partial"
image=$(cd "$image" && pwd)

# 1. The base tree, from the cache or made now (about a minute the first time, from the mirror).
base=$cache/bookworm-minbase.tar
if [ ! -f "$base" ]; then
    echo "Making the Debian 12 base tree (debootstrap; kept in $base)"
    work=$(mktemp -d "$cache/debootstrap.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    debootstrap --variant=minbase --cache-dir="$cache/debs" bookworm "$work/root" "$mirror" > "$work/log" \
        || { tail -20 "$work/log" >&2; exit 1; }
    tar --numeric-owner --xattrs -C "$work/root" -cf "$base.new" .
    mv "$base.new" "$base"
    rm -rf "$work"
    trap - EXIT
fi
tar --numeric-owner --xattrs -C "$image" -xf "$base"

# 2. tend's package, in a folder only root writes; image/ declares the apt source that reads it.
install -d -m 0755 "$image/var/local/tend-apt"
install -m 0644 "$@" "$image/var/local/tend-apt/"
(cd "$image/var/local/tend-apt" && dpkg-scanpackages --multiversion . /dev/null 2>/dev/null > Packages)

# 3. The deploy key is never in the repository.
install -d -m 0755 "$image/etc/tend"
if [ -n "${DEPLOY_KEY:-}" ]; then
    install -m 0600 "$DEPLOY_KEY" "$image/etc/tend/id_ed25519"
else
    ssh-keygen -q -t ed25519 -N '' -C "tend@$hostname" -f "$image/etc/tend/id_ed25519"
    echo "A new deploy key was made; give the Git server its public half (read-only):"
    cat "$image/etc/tend/id_ed25519.pub"
    rm "$image/etc/tend/id_ed25519.pub"
fi

# 4. The apply. apt's downloads go to the cache (bound over the image's own archive folder for
# the length of the apply), so the next image fetches nothing it already has. tend keeps the
# packages' services from starting on this machine (policy-rc.d, while apt runs).
mount --bind "$cache/archives" "$image/var/cache/apt/archives"
trap 'umount "$image/var/cache/apt/archives"' EXIT
# The example declares /etc/tend and tend.service, tend's own control: this build opts in
# (--self-manage), and the agent.yaml it writes opts the booted host in.
host=(--root "$image" --hostname "$hostname" --label stage=image --label role="$role" --self-manage)
"$tend" apply "$repo" "${host[@]}"
umount "$image/var/cache/apt/archives"
trap - EXIT
echo
echo "\$ tend plan $repo ${host[*]} --detailed-exitcode"
"$tend" plan "$repo" "${host[@]}" --detailed-exitcode
echo "The image is in $image: it boots with its own /lib/systemd/systemd, and its agent (tend.service) pulls $repo's vars.repo_url."
