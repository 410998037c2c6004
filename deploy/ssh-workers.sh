#!/usr/bin/env bash
# Starts, stops and checks concur workers on other machines over ssh: a thin wrapper around
# `concur-cli cluster`, kept for existing users and scripts (the one implementation is there).
#
#   deploy/ssh-workers.sh [OPTIONS] start  HOST...   concur-cli cluster up --no-wait
#   deploy/ssh-workers.sh [OPTIONS] stop   HOST...   concur-cli cluster down
#   deploy/ssh-workers.sh [OPTIONS] status HOST...   concur-cli cluster status
#
# Options may come before or after the command, as before; they are passed on unchanged, and
# those a command does not take are dropped (e.g. --token-file for stop, --force for start):
#   -c, --coordinator URL, --token-file FILE, --remote-token-file PATH, --slots N,
#   --worker-arg ARG, --bin PATH, --copy-bin FILE, --host-name-from ssh|host   (start)
#   --stop-timeout SECONDS, --force                                            (stop)
#   --run-dir DIR, -F/--ssh-config FILE, -o/--ssh-option OPT, --hosts-file FILE (all)
# See `concur-cli cluster up --help` and docs/cluster.md.
#
# Changed from the script's earlier versions: without --bin (or CONCUR_WORKER_BIN), start copies
# the local concur-worker to RUN_DIR/concur-worker on hosts where it is missing or differs;
# `--bin concur-worker` keeps using the one on the hosts' PATH. `start` still does not wait for
# the workers to attach (`concur-cli cluster up` does).
#
# concur-cli is taken from CONCUR_CLI, else from this checkout's target/release, else PATH.
# Exit codes: 0 every host did what was asked, 1 some host did not, 2 usage error.
set -euo pipefail

PROG=${0##*/}
HERE=$(cd "$(dirname "$0")" && pwd)

die() { echo "$PROG: $*" >&2; exit 2; }
usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

cli=${CONCUR_CLI:-}
if [ -z "$cli" ]; then
    if [ -x "$HERE/../target/release/concur-cli" ]; then
        cli=$HERE/../target/release/concur-cli
    else
        cli=concur-cli
    fi
fi

action=
args=()        # for every command
start_args=()  # for start only
stop_args=()   # for stop only
status_args=() # for status only
while [ $# -gt 0 ]; do
    arg=$1
    name=${arg%%=*}
    case "$name" in
        -h|--help) usage ;;
        # Options with a value: which commands take them.
        -c|--coordinator|--token-file|--remote-token-file|--slots|--worker-arg|--bin|--copy-bin|\
        --host-name-from) for=start ;;
        --stop-timeout) for=stop ;;
        --run-dir|-F|--ssh-config|-o|--ssh-option|--hosts-file) for=all ;;
        --force) for=stop-flag ;;
        -*) args+=("$arg"); shift; continue ;;
        *)
            if [ -z "$action" ]; then action=$arg; else args+=("$arg"); fi
            shift
            continue ;;
    esac
    words=("$arg")
    if [ "$for" != stop-flag ] && [ "$name" = "$arg" ]; then
        [ $# -ge 2 ] || die "$arg needs a value"
        words+=("$2")
        shift
    fi
    shift
    case "$for" in
        all) args+=("${words[@]}") ;;
        start)
            start_args+=("${words[@]}")
            # status takes the coordinator too (to say whether the workers are attached).
            case "$name" in -c|--coordinator) status_args+=("${words[@]}") ;; esac ;;
        stop|stop-flag) stop_args+=("${words[@]}") ;;
    esac
done

case "$action" in
    start) exec "$cli" cluster up --no-wait "${start_args[@]+"${start_args[@]}"}" "${args[@]+"${args[@]}"}" ;;
    stop) exec "$cli" cluster down "${stop_args[@]+"${stop_args[@]}"}" "${args[@]+"${args[@]}"}" ;;
    status) exec "$cli" cluster status "${status_args[@]+"${status_args[@]}"}" "${args[@]+"${args[@]}"}" ;;
    '') usage ;;
    *) die "unknown command '$action' (start, stop or status)" ;;
esac
