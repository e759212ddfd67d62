#!/usr/bin/env bash
# lockd-compare.sh: acquire/release pairs per second through mplock's lock
# server, Redis (SET NX PX + DEL, retrying) and etcd (its lock service,
# concurrency.Mutex on the server), measured by the same harness
# (`mplock bench lockd --target ...`): 1 client, 16 clients on distinct
# names, 16 clients on one name. mplock is measured twice: through its Go
# client, and with a bare protocol client like the Redis one. Redis and etcd come from Debian's packages
# (apt-get install redis-server etcd-server) and are skipped when missing.
#
# Servers are started on free loopback ports in a private directory and
# stopped at exit. Raw JSON of every run is kept in $OUT (default: the
# private directory, printed at the end). MPLOCK names an mplock binary to
# use instead of building one from this checkout.
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: scripts/lockd-compare.sh [options]

Measures acquire/release pairs per second through mplock's lock server (its
Go client, and a bare protocol client), Redis and etcd when installed, with
the same harness (mplock bench lockd), and prints the medians side by side.

Options:
  -d, --duration D  measuring time per scenario (default 2s)
  -r, --repeat N    runs per target, interleaved; the table shows the median
                    (default 3)
  -b, --before BIN  also measure the lock server of another mplock binary BIN
                    (an older build, for a before/after comparison), driven
                    by the same clients, interleaved with the others:
                    columns mplock@b and mplock-raw@b
  -h, --help        this help

Environment: OUT (where the raw JSON of every run is kept; default: a
private temporary directory, printed at the end); MPLOCK (an mplock binary
to use instead of building one from this checkout), GO.

Exit status: 0 on success, 1 when a run failed, 2 for usage errors.
EOF
}

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

duration=2s
repeats=3
before=''
while [[ $# -gt 0 ]]; do
	case $1 in
	-d | --duration) [[ $# -ge 2 ]] || die "$1 needs a value"; duration=$2; shift 2 ;;
	-r | --repeat) [[ $# -ge 2 ]] || die "$1 needs a value"; repeats=$2; shift 2 ;;
	-b | --before) [[ $# -ge 2 ]] || die "$1 needs a value"; before=$2; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown option $1" ;;
	esac
done
[[ $repeats =~ ^[1-9][0-9]*$ ]] || die "--repeat $repeats: want a whole number such as 3"

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/lockd-compare.XXXXXX")
out=${OUT:-$work}
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work/etcd-data"
}
trap cleanup EXIT

GO=${GO:-go}
[[ -z $before || -x $before ]] || die "--before $before is not an executable"
[[ -n ${MPLOCK:-} ]] || echo "building mplock..." >&2
mplock='' # set by mplock_binary
mplock_binary "$work"

# free_port VAR sets VAR to a loopback TCP port nobody listens on and that
# this script has not handed out already.
given=" "
free_port() {
	local p
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 20000))
		if [[ $given != *" $p "* ]] && ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			given+="$p "
			printf -v "$1" '%s' "$p"
			return
		fi
	done
	echo "no free port" >&2
	return 1
}

# wait_for LOG CMD...: retry CMD until it succeeds, for up to 60s; on
# failure show the end of the server's LOG.
wait_for() {
	local log=$1
	shift
	for _ in $(seq 600); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	echo "gave up waiting for: $*; end of $log:" >&2
	tail -20 "$log" >&2
	return 1
}

# Each column is a label: the driver (--target) and the server's address.
# mplock: through the Go client (lockd.Client); mplock-raw: the bare line
# protocol read in the calling goroutine, as the Redis driver reads RESP.
targets=()
declare -A addr driver
port='' cport='' pport='' # set by free_port, through printf -v
# start_mplock LABEL BINARY: serve with BINARY, measured by both drivers.
start_mplock() {
	local label=$1 bin=$2
	free_port port
	"$bin" serve --listen "127.0.0.1:$port" --log-level error >"$work/$label.log" 2>&1 &
	pids+=($!)
	wait_for "$work/$label.log" bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"
	for d in mplock mplock-raw; do
		targets+=("$d$label")
		addr[$d$label]=127.0.0.1:$port
		driver[$d$label]=$d
	done
}
start_mplock '' "$mplock"
if [[ -n $before ]]; then
	start_mplock @b "$before"
	echo "mplock@b: $("$before" --version) from $before" >&2
fi
if command -v redis-server >/dev/null; then
	free_port port
	redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no >"$work/redis.log" 2>&1 &
	pids+=($!)
	addr[redis]=127.0.0.1:$port
	driver[redis]=redis
	wait_for "$work/redis.log" redis-cli -p "$port" ping
	targets+=(redis)
	echo "redis $(redis-server --version | grep -o 'v=[^ ]*') on ${addr[redis]}" >&2
else
	echo "redis-server not installed: skipped (apt-get install redis-server)" >&2
fi
if command -v etcd >/dev/null; then
	free_port cport
	free_port pport
	etcd --name lockd-compare --data-dir "$work/etcd-data" \
		--listen-client-urls "http://127.0.0.1:$cport" --advertise-client-urls "http://127.0.0.1:$cport" \
		--listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
		--initial-cluster "lockd-compare=http://127.0.0.1:$pport" >"$work/etcd.log" 2>&1 &
	pids+=($!)
	addr[etcd]=127.0.0.1:$cport
	driver[etcd]=etcd
	wait_for "$work/etcd.log" curl -fsS "http://${addr[etcd]}/health"
	targets+=(etcd)
	echo "etcd $(etcd --version | head -1 | awk '{print $3}') on ${addr[etcd]}" >&2
else
	echo "etcd not installed: skipped (apt-get install etcd-server)" >&2
fi

for r in $(seq "$repeats"); do
	for t in "${targets[@]}"; do
		echo "run $r/$repeats: $t" >&2
		"$mplock" bench lockd --duration "$duration" --json --target "${driver[$t]}" --addr "${addr[$t]}" >"$out/$t.$r.json"
	done
done

# Median pairs/s per target and scenario, from the JSON documents.
summary() {
	local t=$1 scenario=$2
	for f in "$out/$t".*.json; do
		awk -v want="$scenario" '
			/"scenario":/ { s = $0; sub(/.*"scenario": "/, "", s); sub(/".*/, "", s) }
			/"pairs_per_second":/ { v = $2; sub(/,/, "", v); if (s == want) print v }' "$f"
	done | sort -g | awk '{ a[NR] = $1 } END { if (NR) printf "%.0f", a[int((NR + 1) / 2)]; else printf "-" }'
}

echo
printf '%-28s' "pairs/s (median of $repeats)"
for t in "${targets[@]}"; do printf '%14s' "$t"; done
echo
for s in "1 client" "16 clients, distinct names" "16 clients, one name"; do
	printf '%-28s' "$s"
	for t in "${targets[@]}"; do printf '%14s' "$(summary "$t" "$s")"; done
	echo
done
echo
echo "each: $duration per scenario; one pair = acquire + release, each client its own connection"
"$mplock" --version
uname -sr
echo "$(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "raw results: $out"
