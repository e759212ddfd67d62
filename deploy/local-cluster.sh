#!/usr/bin/env bash
# local-cluster.sh: a 3-member mplock serve cluster on this machine, in the
# foreground, with one command. It prints the MPLOCK_SERVER and
# MPLOCK_TOKEN_FILE to export, and runs until Ctrl-C (or SIGTERM), when it
# stops the three members (each hands over its leadership and exits) and
# removes nothing but what it made in a temporary directory (unless --dir
# names one to keep).
#
#   deploy/local-cluster.sh [--base-port N] [--dir DIR] [--token-file F] [-- extra mplock serve flags]
#
# Members n1, n2, n3 listen for clients on 127.0.0.1:N..N+2 (default 5555)
# and for raft on 127.0.0.1:N+2000.. (7555...), with data in DIR/n1...
# A cluster needs a secret (--token-file): without F, a fresh one is made
# in DIR/secret (mode 0600). The members get one of their own for raft and
# membership changes, DIR/peer-secret, made likewise (--peer-token-file),
# which no client is given.
set -euo pipefail

base=5555
dir=""
token=()
extra=()
while (($#)); do
	case $1 in
	--base-port) base=$2; shift 2 ;;
	--dir) dir=$2; shift 2 ;;
	--token-file) token=(--token-file "$2"); shift 2 ;;
	--) shift; extra=("$@"); break ;;
	-h | --help) sed -n '2,17p' "$0"; exit 0 ;;
	*) echo "local-cluster.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
command -v mplock >/dev/null || { echo "local-cluster.sh: mplock is not on PATH (go install ./cmd/mplock)" >&2; exit 1; }

keep=1
if [[ -z $dir ]]; then
	dir=$(mktemp -d "${TMPDIR:-/tmp}/mplock-cluster.XXXXXX")
	keep=0
fi
mkdir -p "$dir" && chmod 700 "$dir"
if ((!${#token[@]})); then
	if [[ ! -e $dir/secret ]]; then
		(umask 077 && head -c 32 /dev/urandom | base64 >"$dir/secret")
	fi
	token=(--token-file "$dir/secret")
fi
if [[ ! -e $dir/peer-secret ]]; then
	(umask 077 && head -c 32 /dev/urandom | base64 >"$dir/peer-secret")
fi

initial=""
clients=()
for i in 1 2 3; do
	initial+="${initial:+,}n$i=127.0.0.1:$((base + 2000 + i - 1))"
	clients+=("127.0.0.1:$((base + i - 1))")
done
servers=$(IFS=,; echo "${clients[*]}")

pids=()
# shellcheck disable=SC2317 # run by the EXIT trap
stop() {
	trap - INT TERM EXIT
	if ((${#pids[@]})); then
		kill -TERM "${pids[@]}" 2>/dev/null || true
		wait "${pids[@]}" 2>/dev/null || true
	fi
	if ((!keep)); then rm -rf "$dir"; fi
	echo "local-cluster.sh: stopped" >&2
}
trap stop EXIT
trap 'exit 0' INT TERM

for i in 1 2 3; do
	mplock serve --node "n$i" --listen "${clients[i-1]}" --raft-listen "127.0.0.1:$((base + 2000 + i - 1))" \
		--data-dir "$dir/n$i" --initial-cluster "$initial" "${token[@]}" --peer-token-file "$dir/peer-secret" "${extra[@]}" \
		>"$dir/n$i.out" 2>"$dir/n$i.log" &
	pids+=($!)
done

# Ready when a member names a leader.
for _ in $(seq 100); do
	if MPLOCK_SERVER=$servers mplock member list "${token[@]}" 2>/dev/null | grep -q '^n[0-9] *leader '; then
		echo "export MPLOCK_SERVER=$servers"
		echo "export MPLOCK_TOKEN_FILE=$(realpath "${token[1]}")"
		echo "local-cluster.sh: 3 members up (logs in $dir/n*.log); Ctrl-C stops them" >&2
		# A member that dies (kill one to see a failover) is reported; the
		# others go on until Ctrl-C, or until none is left.
		live=("${pids[@]}")
		while ((${#live[@]})); do
			wait -n "${live[@]}" 2>/dev/null || true # not bash's own "Killed" line: ours follows
			next=()
			for i in 0 1 2; do
				p=${pids[i]}
				if kill -0 "$p" 2>/dev/null; then
					next+=("$p")
				elif [[ " ${live[*]} " == *" $p "* ]]; then
					echo "local-cluster.sh: n$((i + 1)) exited (log: $dir/n$((i + 1)).log); the others go on" >&2
				fi
			done
			live=("${next[@]}")
		done
		exit 1
	fi
	for p in "${pids[@]}"; do
		kill -0 "$p" 2>/dev/null || { echo "local-cluster.sh: a member failed to start:" >&2; cat "$dir"/n*.log >&2; exit 1; }
	done
	sleep 0.1
done
echo "local-cluster.sh: no leader after 10s; see $dir/n*.log" >&2
exit 1
