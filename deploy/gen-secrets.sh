#!/usr/bin/env bash
# Writes two random tokens for concur: DIR/client-token (clients: concur-cli --token or
# CONCUR_TOKEN) and DIR/worker-token (workers only). DIR is made mode 0700; the files are 0644 so
# a container's non-root user can read them when compose bind-mounts them as secrets — the
# directory keeps other users of this machine out. Existing tokens are kept unless --force.
#
#   deploy/gen-secrets.sh [--force] DIR
set -euo pipefail

usage() { echo "usage: $0 [--force] DIR" >&2; exit 2; }

force=no
if [ "${1:-}" = "--force" ]; then force=yes; shift; fi
[ $# -eq 1 ] || usage
dir=$1

# 32 random bytes as 64 hex characters (printable ASCII, as a gRPC header needs).
new_token() { head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n'; }

mkdir -p -- "$dir"
chmod 700 -- "$dir"
for name in client-token worker-token; do
    file="$dir/$name"
    if [ -e "$file" ] && [ "$force" = no ]; then
        echo "kept    $file (--force to replace)"
        continue
    fi
    (umask 077; new_token > "$file.tmp")
    chmod 644 -- "$file.tmp"
    mv -f -- "$file.tmp" "$file"
    echo "wrote   $file"
done
