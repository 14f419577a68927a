#!/usr/bin/env bash
# A fleet of test hosts on one private network (../shared/TESTING.md, "Fleets of test hosts"), for
# the fleet test and bench/fleet.py. As root:
#   scripts/fleet.sh up DIR N TEND   boots N test hosts (scripts/testhost-boot.sh) named fleet-01,
#                                    fleet-02, …, each with its own machine ID, hostname (own UTS
#                                    namespace) and address 10.231.0.(10+i), joined by veth pairs
#                                    to a bridge at 10.231.0.1 in a network namespace of their own,
#                                    with TEND copied to /usr/local/bin/tend in each.
#                                    DIR/netns names the namespace (where the caller runs its
#                                    servers); DIR/hosts has a line per host: PID ADDRESS HOSTNAME
#                                    MACHINE-ID (PID: its systemd, seen from here).
#   scripts/fleet.sh down DIR        kills every host by its own PID and deletes the namespace.
# Nothing of the machine's own network is touched; fs.inotify.max_user_instances is raised if it
# is too low for that many systemds (see up), until the next reboot.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

up() {
    local dir=$1 count=$2 tend=$3
    [ "$count" -ge 1 ] && [ "$count" -le 200 ] || { echo "fleet.sh: 1 to 200 hosts" >&2; exit 1; }
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    # Each systemd, journald and logind holds inotify instances: at Debian's limit of 128 per
    # user, the 21st host's systemd finds none. Raised for the fleet and the test hosts that run
    # beside it, and left so: lowering it under running systemds would fail their next boots (it
    # is a limit, kept until reboot, not a reservation).
    local instances needed
    instances=$(sysctl -n fs.inotify.max_user_instances)
    needed=$((640 + 16 * count))
    if [ "$instances" -lt "$needed" ]; then
        sysctl -q -w fs.inotify.max_user_instances="$needed"
    fi
    local ns="tend-fleet-$$"
    echo "$ns" > "$dir/netns"
    : > "$dir/hosts"
    : > "$dir/launchers"
    ip netns add "$ns"
    ip -n "$ns" link add br0 type bridge
    ip -n "$ns" addr add 10.231.0.1/24 dev br0
    ip -n "$ns" link set br0 up
    ip -n "$ns" link set lo up
    local launchers=()
    for i in $(seq 1 "$count"); do
        local name machine
        name=$(printf 'fleet-%02d' "$i")
        machine=$(printf '%s' "$name" | md5sum | cut -c1-32)
        mkdir -p "$dir/$name"
        # --kill-child: the host dies with its launcher, which `down` kills even when `up` failed
        # before it knew the host's systemd.
        TESTHOST_MACHINE_ID=$machine TESTHOST_HOSTNAME=$name \
            unshare --kill-child --pid --fork --mount --net --uts --propagation private "$here/testhost-boot.sh" "$dir/$name" \
            > "$dir/$name.log" 2>&1 &
        launchers+=("$!")
        echo "$!" >> "$dir/launchers"
    done
    # Each host's systemd is the child of its unshare.
    local i=0
    for launcher in "${launchers[@]}"; do
        i=$((i + 1))
        local name pid="" machine address
        name=$(printf 'fleet-%02d' "$i")
        for _ in $(seq 1 600); do
            pid=$(cut -d' ' -f1 "/proc/$launcher/task/$launcher/children" 2>/dev/null || true)
            [ -n "$pid" ] && grep -q '^systemd' "/proc/$pid/comm" 2>/dev/null && break
            pid=""
            sleep 0.1
        done
        [ -n "$pid" ] || { echo "fleet.sh: $name did not start systemd (see $dir/$name.log)" >&2; exit 1; }
        machine=$(printf '%s' "$name" | md5sum | cut -c1-32)
        address="10.231.0.$((10 + i))"
        ip -n "$ns" link add "vh$i" type veth peer name eth0 netns "$pid"
        ip -n "$ns" link set "vh$i" master br0 up
        nsenter -t "$pid" -n ip addr add "$address/24" dev eth0
        nsenter -t "$pid" -n ip link set eth0 up
        echo "$pid $address $name $machine" >> "$dir/hosts"
    done
    # Booted: running or degraded, within a minute each.
    while read -r pid address name machine; do
        local state=""
        for _ in $(seq 1 300); do
            state=$(nsenter -t "$pid" -m -p systemctl is-system-running 2>/dev/null || true)
            [ "$state" = running ] || [ "$state" = degraded ] && break
            sleep 0.2
        done
        [ "$state" = running ] || [ "$state" = degraded ] || { echo "fleet.sh: $name did not finish booting ($state)" >&2; exit 1; }
        mkdir -p "/proc/$pid/root/usr/local/bin"
        cp "$tend" "/proc/$pid/root/usr/local/bin/tend"
    done < "$dir/hosts"
}

down() {
    local dir=$1
    local file
    for file in hosts launchers; do
        if [ -f "$dir/$file" ]; then
            while read -r pid _; do kill -9 "$pid" 2>/dev/null || true; done < "$dir/$file"
        fi
    done
    if [ -f "$dir/netns" ]; then ip netns del "$(cat "$dir/netns")" 2>/dev/null || true; fi
}

case "${1:-}" in
    up) up "${2:?DIR}" "${3:?N}" "${4:?TEND}" ;;
    down) down "${2:?DIR}" ;;
    *) echo "usage: fleet.sh up DIR N TEND | down DIR" >&2; exit 64 ;;
esac
