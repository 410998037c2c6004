#!/usr/bin/env bash
# Starts, stops and checks concur workers on other machines over ssh.
#
#   deploy/ssh-workers.sh [OPTIONS] start  HOST...   start one detached worker on each host
#   deploy/ssh-workers.sh [OPTIONS] stop   HOST...   SIGTERM each (drain), wait for them to exit
#   deploy/ssh-workers.sh [OPTIONS] status HOST...   running or not, with the log's last lines
#
# HOST is anything ssh accepts ([user@]name or an alias of your ssh config). On each host the
# worker runs detached (setsid + nohup), its PID in RUN_DIR/HOST/worker.pid, its output in
# RUN_DIR/HOST/worker.log; `stop` signals exactly that PID (after checking it is still the
# worker it started) and never matches processes by name.
#
# Options (environment variable in brackets):
#   -c, --coordinator URL     coordinator the workers dial (start) [CONCUR_COORDINATOR]
#   --token-file FILE         local file with the worker token; its content is sent to each host
#                             over ssh's stdin and written to RUN_DIR/HOST/token (mode 0600)
#                             [CONCUR_WORKER_TOKEN holds the token itself]
#   --remote-token-file PATH  a worker token file already on the hosts
#   --slots N                 shards each worker runs at once (default 1)
#   --worker-arg ARG          one more argument for concur-worker (repeatable), e.g.
#                             --worker-arg=--tls-ca=/etc/concur/ca.crt
#   --bin PATH                concur-worker on the hosts [CONCUR_WORKER_BIN] (default: on PATH)
#   --copy-bin FILE           copy this local binary to RUN_DIR/HOST/concur-worker first and run it
#   --run-dir DIR             directory on the hosts, relative to the login directory unless
#                             absolute [CONCUR_RUN_DIR] (default .concur/ssh-workers)
#   --host-name-from ssh|host report the ssh HOST as the worker's host name (default), or let the
#                             worker use the machine's own host name
#   --stop-timeout SECONDS    how long `stop` waits for a drain (default 45; keep it above the
#                             worker's --drain-timeout, 30 s by default)
#   --force                   `stop`: SIGKILL a worker still running after --stop-timeout
#   -F, --ssh-config FILE     ssh configuration file (ssh -F)
#   -o, --ssh-option OPT      ssh option (ssh -o OPT), repeatable
#
# Needs ssh (key-based, non-interactive: BatchMode is on) and a POSIX sh on each host.
# Exit codes: 0 every host did what was asked, 1 some host did not, 2 usage error.
# The remote scripts are single-quoted on purpose: they expand on the host, not here.
# shellcheck disable=SC2016
set -euo pipefail

PROG=${0##*/}

die() { echo "$PROG: $*" >&2; exit 2; }
usage() { sed -n '2,35p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

# A word quoted for any POSIX shell on the far side of ssh.
sq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

coordinator=${CONCUR_COORDINATOR:-}
token=${CONCUR_WORKER_TOKEN:-}
remote_token_file=
slots=1
bin=${CONCUR_WORKER_BIN:-concur-worker}
copy_bin=
run_dir=${CONCUR_RUN_DIR:-.concur/ssh-workers}
host_name_from=ssh
stop_timeout=45
force=no
worker_args=()
ssh_opts=(-o BatchMode=yes -o ConnectTimeout=10)

# Options may come before or after the command; --opt=value and --opt value both work.
action=
hosts=()
while [ $# -gt 0 ]; do
    arg=$1
    value=
    case "$arg" in
        --*=*) value=${arg#*=}; arg=${arg%%=*} ;;
    esac
    case "$arg" in
        -h|--help) usage ;;
        -c|--coordinator|--token-file|--remote-token-file|--slots|--worker-arg|--bin|--copy-bin|\
        --run-dir|--host-name-from|--stop-timeout|-F|--ssh-config|-o|--ssh-option)
            if [ -z "$value" ]; then
                [ $# -ge 2 ] || die "$arg needs a value"
                value=$2
                shift
            fi
            case "$arg" in
                -c|--coordinator) coordinator=$value ;;
                --token-file)
                    [ -r "$value" ] || die "cannot read token file $value"
                    token=$(tr -d '\r\n' < "$value") ;;
                --remote-token-file) remote_token_file=$value ;;
                --slots) slots=$value ;;
                --worker-arg) worker_args+=("$value") ;;
                --bin) bin=$value ;;
                --copy-bin) copy_bin=$value ;;
                --run-dir) run_dir=$value ;;
                --host-name-from) host_name_from=$value ;;
                --stop-timeout) stop_timeout=$value ;;
                -F|--ssh-config) ssh_opts+=(-F "$value") ;;
                -o|--ssh-option) ssh_opts+=(-o "$value") ;;
            esac ;;
        --force) force=yes ;;
        -*) die "unknown option $arg (try --help)" ;;
        *)
            if [ -z "$action" ]; then action=$arg; else hosts+=("$arg"); fi ;;
    esac
    shift
done

case "$action" in
    start|stop|status) ;;
    '') usage ;;
    *) die "unknown command '$action' (start, stop or status)" ;;
esac
[ ${#hosts[@]} -gt 0 ] || die "$action: name at least one host"
[[ "$slots" =~ ^[1-9][0-9]*$ ]] || die "--slots must be a positive integer, got '$slots'"
[[ "$stop_timeout" =~ ^[0-9]+$ ]] || die "--stop-timeout must be whole seconds, got '$stop_timeout'"
case "$host_name_from" in ssh|host) ;; *) die "--host-name-from must be ssh or host" ;; esac
if [ "$action" = start ]; then
    [ -n "$coordinator" ] || die "start: give --coordinator URL (or set CONCUR_COORDINATOR)"
    if [ -n "$token" ] && [ -n "$remote_token_file" ]; then
        die "give either a token (--token-file, CONCUR_WORKER_TOKEN) or --remote-token-file, not both"
    fi
    if [ -n "$copy_bin" ]; then
        if ! [ -f "$copy_bin" ] || ! [ -x "$copy_bin" ]; then
            die "--copy-bin: $copy_bin is not an executable file"
        fi
    fi
fi
for host in "${hosts[@]}"; do
    case "$host" in
        -*|*/*|*' '*|'') die "bad host name '$host'" ;;
    esac
done

# The per-host directory on that host (the ssh HOST without user@, so several hosts reached
# from one machine, or sharing a home directory, never share a PID file).
host_dir() { printf '%s/%s' "$run_dir" "${1#*@}"; }

# Runs the POSIX sh script read from stdin on HOST.
on_host() {
    local host=$1
    ssh "${ssh_opts[@]}" -- "$host" sh -s
}

# Shell lines that set the remote script's variables, every value quoted.
remote_vars() {
    local host=$1
    printf 'dir=%s\n' "$(sq "$(host_dir "$host")")"
    printf 'bin=%s\n' "$(sq "$bin")"
    printf 'stop_timeout=%s\n' "$stop_timeout"
    printf 'force=%s\n' "$force"
}

# Common remote prelude: strict mode, the directory made absolute, the recorded worker's PID if
# it still runs (checked against the command line it was started with).
REMOTE_PRELUDE='
set -eu
mkdir -p "$dir"
chmod 700 "$dir"
dir=$(cd "$dir" && pwd)
running_pid() {
    [ -f "$dir/worker.pid" ] || return 1
    pid=$(cat "$dir/worker.pid")
    case "$pid" in ""|*[!0-9]*) return 1 ;; esac
    kill -0 "$pid" 2>/dev/null || return 1
    if [ -r "/proc/$pid/cmdline" ] && [ -f "$dir/worker.cmd" ]; then
        # argv[0] of the process must be the binary we started (a reused PID is not ours).
        first=$(tr "\000" "\n" < "/proc/$pid/cmdline" | head -n 1)
        [ "$first" = "$(cat "$dir/worker.cmd")" ] || return 1
        # A zombie has exited already.
        case "$(sed -n "s/^State:[[:space:]]*\([A-Z]\).*/\1/p" "/proc/$pid/status" 2>/dev/null)" in
            Z|X) return 1 ;;
        esac
    fi
    echo "$pid"
}
'

REMOTE_START='
if pid=$(running_pid); then
    echo "already running (pid $pid)"
    exit 0
fi
if [ -n "$copy" ]; then
    bin="$dir/concur-worker"
fi
case "$bin" in
    */*) [ -x "$bin" ] || { echo "no executable $bin" >&2; exit 1; } ;;
    *) command -v "$bin" >/dev/null 2>&1 || { echo "$bin is not on PATH (set CONCUR_WORKER_BIN or --bin, or --copy-bin)" >&2; exit 1; } ;;
esac
command -v setsid >/dev/null 2>&1 || { echo "setsid is missing (util-linux)" >&2; exit 1; }
set -- --coordinator "$coordinator" --slots "$slots"
[ -z "$host_name" ] || set -- "$@" --host-name "$host_name"
if [ -n "$token" ]; then
    (umask 077; printf "%s\n" "$token" > "$dir/token")
    set -- "$@" --token-file "$dir/token"
elif [ -n "$remote_token_file" ]; then
    set -- "$@" --token-file "$remote_token_file"
fi
eval "set -- \"\$@\" $extra"
printf "%s\n" "$bin" > "$dir/worker.cmd"
printf "\n==== %s start: %s %s\n" "$(date "+%Y-%m-%dT%H:%M:%S%z")" "$bin" "$*" >> "$dir/worker.log"
# A new session, no terminal, stdin closed: it outlives this ssh session and its SIGHUP.
# (Without job control the child is no group leader, so setsid execs in place: $! is the worker.)
NO_COLOR=1 setsid nohup "$bin" "$@" < /dev/null >> "$dir/worker.log" 2>&1 &
pid=$!
echo "$pid" > "$dir/worker.pid"
# A worker that cannot start (bad flag, bad token file) exits at once: report it.
sleep 1
if ! running_pid >/dev/null; then
    rm -f "$dir/worker.pid" "$dir/token"
    echo "worker exited at once; last lines of $dir/worker.log:" >&2
    tail -n 5 "$dir/worker.log" >&2
    exit 1
fi
echo "started (pid $pid, log $dir/worker.log)"
'

REMOTE_SIGNAL='
if ! pid=$(running_pid); then
    rm -f "$dir/worker.pid"
    echo "not running"
    exit 0
fi
kill -TERM "$pid"
echo "draining (pid $pid)"
'

REMOTE_WAIT='
pid=$(cat "$dir/worker.pid" 2>/dev/null || true)
if [ -z "$pid" ]; then
    echo "stopped"
    exit 0
fi
waited=0
while running_pid >/dev/null; do
    if [ "$waited" -ge "$stop_timeout" ]; then
        if [ "$force" = yes ]; then
            kill -KILL "$pid" 2>/dev/null || true
            sleep 1
            rm -f "$dir/worker.pid" "$dir/token"
            echo "killed (pid $pid still running after ${stop_timeout}s)"
            exit 0
        fi
        echo "still running after ${stop_timeout}s (pid $pid); --force kills it" >&2
        exit 1
    fi
    sleep 1
    waited=$((waited + 1))
done
rm -f "$dir/worker.pid" "$dir/token"
echo "stopped (pid $pid, drained in about ${waited}s)"
'

REMOTE_STATUS='
if pid=$(running_pid); then
    echo "running (pid $pid)"
    status=0
else
    echo "not running"
    status=3
fi
if [ -f "$dir/worker.log" ]; then tail -n 3 "$dir/worker.log" | sed "s/^/    /"; fi
exit "$status"
'

# Prefixes each line of a host's output with its name.
label() {
    local line
    while IFS= read -r line || [ -n "$line" ]; do printf '%s: %s\n' "$1" "$line"; done
}

copy_binary() {
    local host=$1 dir
    dir=$(host_dir "$host")
    ssh "${ssh_opts[@]}" -- "$host" \
        "mkdir -p $(sq "$dir") && cat > $(sq "$dir/concur-worker.part") && chmod 755 $(sq "$dir/concur-worker.part") && mv -f $(sq "$dir/concur-worker.part") $(sq "$dir/concur-worker")" \
        < "$copy_bin"
}

start_one() {
    local host=$1 name='' extra='' arg
    if [ "$host_name_from" = ssh ]; then name=${host#*@}; fi
    for arg in "${worker_args[@]+"${worker_args[@]}"}"; do extra+=" $(sq "$arg")"; done
    if [ -n "$copy_bin" ]; then copy_binary "$host" || return 1; fi
    {
        remote_vars "$host"
        printf 'coordinator=%s\n' "$(sq "$coordinator")"
        printf 'slots=%s\n' "$slots"
        printf 'host_name=%s\n' "$(sq "$name")"
        printf 'token=%s\n' "$(sq "$token")"
        printf 'remote_token_file=%s\n' "$(sq "$remote_token_file")"
        printf 'copy=%s\n' "$(sq "$copy_bin")"
        printf 'extra=%s\n' "$(sq "$extra")"
        printf '%s\n%s\n' "$REMOTE_PRELUDE" "$REMOTE_START"
    } | on_host "$host"
}

run_script() {
    local host=$1 script=$2
    { remote_vars "$host"; printf '%s\n%s\n' "$REMOTE_PRELUDE" "$script"; } | on_host "$host"
}

failed=0
case "$action" in
    start)
        for host in "${hosts[@]}"; do
            start_one "$host" 2>&1 | label "$host" || failed=1
        done ;;
    status)
        for host in "${hosts[@]}"; do
            run_script "$host" "$REMOTE_STATUS" 2>&1 | label "$host" || failed=1
        done ;;
    stop)
        # Signal every host first, then wait: the drains run side by side.
        for host in "${hosts[@]}"; do
            run_script "$host" "$REMOTE_SIGNAL" 2>&1 | label "$host" || failed=1
        done
        for host in "${hosts[@]}"; do
            run_script "$host" "$REMOTE_WAIT" 2>&1 | label "$host" || failed=1
        done ;;
esac
exit "$failed"
