#!/usr/bin/env bash
# compare.sh: the native C reference figures for mplock's lock kinds.
# (First step: C peers only; mplock, Python and stress-ng columns follow.)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
duration=${1:-1}
cc=${CC:-cc}
command -v "$cc" >/dev/null || { echo "compare.sh: no C compiler: install gcc or set CC" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/mplock-compare.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$cc" -O2 -o "$work/lockpeer" "$here/peers/lockpeer.c"
for k in atomic futex pthread flock ofd sysv spin; do
	"$work/lockpeer" -k "$k" -p 2 -d "$duration"
done
