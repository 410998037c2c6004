#!/usr/bin/env bash
# A multi-host lab on one machine: N hosts made of network namespaces, each with its own address
# on one bridge (itself inside a "switch" namespace, so the machine's own network is untouched).
# Host 0 runs the coordinator, hosts 1..N-1 a worker each. Needs root (ip netns).
#
#   deploy/lab.sh up N        hosts + coordinator on host 0 + one worker per other host
#   deploy/lab.sh net N       hosts only (the tests start their own processes on them)
#   deploy/lab.sh cut I       cut host I off the bridge (its cable pulled: silent to both ends)
#   deploy/lab.sh restore I   plug host I back in
#   deploy/lab.sh exec I CMD  run CMD on host I
#   deploy/lab.sh status      namespaces, addresses and the lab's processes
#   deploy/lab.sh down        stop the lab's processes (by their PIDs) and remove everything
#
# Environment: LAB_NAME (default clab, at most 8 characters), LAB_SUBNET (first three octets,
# default 10.77.0; host I gets .I+1), CONCUR_BIN_DIR (default target/release),
# LAB_PORT (coordinator port, default 7070).
set -euo pipefail

NAME=${LAB_NAME:-clab}
SUBNET=${LAB_SUBNET:-10.77.0}
PORT=${LAB_PORT:-7070}
BIN_DIR=${CONCUR_BIN_DIR:-target/release}
RUN_DIR=/tmp/concur-lab-$NAME
SWITCH="$NAME-sw"

die() { echo "lab.sh: $*" >&2; exit 2; }
host_ns() { echo "$NAME-h$1"; }
host_addr() { echo "$SUBNET.$(( $1 + 1 ))"; }
switch_port() { echo "${NAME}h$1b"; }

[ ${#NAME} -le 8 ] || die "LAB_NAME must be at most 8 characters (interface names are short)"

need_root() {
    [ "$(id -u)" = 0 ] || die "needs root to create network namespaces"
    command -v ip >/dev/null || die "needs iproute2 (ip)"
}

net_up() {
    local n=$1
    if ! [[ "$n" =~ ^[0-9]+$ ]] || [ "$n" -lt 2 ] || [ "$n" -gt 200 ]; then
        die "N must be 2..200, got '$n'"
    fi
    need_root
    ip netns list | grep -q "^$SWITCH\b" && die "lab '$NAME' exists already; run: LAB_NAME=$NAME $0 down"
    mkdir -p "$RUN_DIR"
    ip netns add "$SWITCH"
    ip -n "$SWITCH" link set lo up
    ip -n "$SWITCH" link add br0 type bridge
    ip -n "$SWITCH" link set br0 up
    for i in $(seq 0 $(( n - 1 ))); do
        local ns; ns=$(host_ns "$i")
        ip netns add "$ns"
        ip link add "${NAME}h${i}a" type veth peer name "$(switch_port "$i")"
        ip link set "${NAME}h${i}a" netns "$ns"
        ip link set "$(switch_port "$i")" netns "$SWITCH"
        ip -n "$ns" link set "${NAME}h${i}a" name eth0
        ip -n "$ns" addr add "$(host_addr "$i")/24" dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "$ns" link set lo up
        ip -n "$SWITCH" link set "$(switch_port "$i")" master br0
        ip -n "$SWITCH" link set "$(switch_port "$i")" up
    done
    echo "$n" > "$RUN_DIR/hosts"
    echo "lab '$NAME': $n hosts, $(host_addr 0) .. $(host_addr $(( n - 1 )))"
}

start() {
    local i=$1; shift
    local ns; ns=$(host_ns "$i")
    ip netns exec "$ns" "$@" >"$RUN_DIR/h$i.log" 2>&1 &
    echo $! >> "$RUN_DIR/pids"
}

up() {
    local n=$1
    [ -x "$BIN_DIR/concur-coordinator" ] || die "no $BIN_DIR/concur-coordinator: run cargo build --release first (or set CONCUR_BIN_DIR)"
    net_up "$n"
    local url
    url="http://$(host_addr 0):$PORT"
    # --insecure: the bridge reaches only the lab's own namespaces, nothing else.
    start 0 "$BIN_DIR/concur-coordinator" --listen "$(host_addr 0):$PORT" --state-dir "$RUN_DIR/state" --insecure
    for i in $(seq 1 $(( n - 1 ))); do
        start "$i" "$BIN_DIR/concur-worker" --coordinator "$url" --host-name "$(host_ns "$i")"
    done
    echo "coordinator $url on $(host_ns 0); workers on hosts 1..$(( n - 1 ))"
    echo "try: $0 exec 0 $BIN_DIR/concur-cli --coordinator $url workers"
}

down() {
    if [ -f "$RUN_DIR/pids" ]; then
        while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done < "$RUN_DIR/pids"
    fi
    local ns
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$NAME-(sw|h[0-9]+)$" || true); do
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -rf "$RUN_DIR"
}

case "${1:-}" in
    up) up "${2:?usage: lab.sh up N}" ;;
    net) net_up "${2:?usage: lab.sh net N}" ;;
    cut) need_root; ip -n "$SWITCH" link set "$(switch_port "${2:?usage: lab.sh cut I}")" down ;;
    restore) need_root; ip -n "$SWITCH" link set "$(switch_port "${2:?usage: lab.sh restore I}")" up ;;
    exec) i=${2:?usage: lab.sh exec I CMD}; shift 2; exec ip netns exec "$(host_ns "$i")" "$@" ;;
    status)
        ip netns list | grep -E "^$NAME-" || echo "no lab '$NAME'"
        if [ -f "$RUN_DIR/pids" ]; then ps -o pid,args -p "$(paste -sd, "$RUN_DIR/pids")" || true; fi ;;
    down) down ;;
    *) sed -n '2,19p' "$0"; exit 2 ;;
esac
