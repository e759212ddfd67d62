#!/usr/bin/env bash
# lockd-compare.sh: acquire/release pairs per second through mplock's lock
# server, Redis (SET NX PX + DEL, retrying) and etcd (its lock service,
# concurrency.Mutex on the server), measured by the same harness
# (`mplock bench lockd --target ...`): 1 client, 16 clients on distinct
# names, 16 clients on one name. mplock is measured twice: through its Go
# client, and with a bare protocol client like the Redis one. Redis and etcd come from Debian's packages
# (apt-get install redis-server etcd-server) and are skipped when missing.
# With --cluster 3, a 3-member mplock cluster (mplock serve --initial-cluster,
# raft logs on disk) against a 3-member etcd cluster, requests entering at
# the leader and at a follower of each, then single-node mplock (in memory)
# against Redis.
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
                    columns mplock@b and mplock-raw@b (with --cluster, also
                    a cluster of BIN: mplock@b@leader, mplock@b@follower)
  -c, --cluster N   N-member clusters (N odd, 3 or more): mplock serve
                    --initial-cluster with its data dirs on disk, against etcd
                    members (etcd's defaults: both fsync every commit), each
                    measured with requests entering at its leader and at a
                    follower; then single-node mplock (in memory) against
                    Redis. Without it: single servers of mplock, Redis, etcd
  --no-peers        measure mplock only (with --before: a before/after
                    comparison), without Redis and etcd
  --reads           also measure mplock's read latency (mplock bench lockd
                    --reads: CHECK at each consistency on the cluster, CHECK
                    and STATUS on the single server)
  -h, --help        this help

Environment: OUT (where the raw JSON of every run is kept; default: a
private temporary directory, printed at the end); MPLOCK (an mplock binary
to use instead of building one from this checkout), GO.

Each cell is the median over the repeats, and the largest distance of a
repeat from it as a percentage of it (±). Ratio rows divide mplock's median by
the peer's, beside the aim (5x etcd for the clusters, 1x Redis).

Exit status: 0 on success, 1 when a run failed, 2 for usage errors.
EOF
}

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

duration=2s
repeats=3
before=''
cluster=0
reads=0
peers=1
while [[ $# -gt 0 ]]; do
	case $1 in
	-d | --duration) [[ $# -ge 2 ]] || die "$1 needs a value"; duration=$2; shift 2 ;;
	-r | --repeat) [[ $# -ge 2 ]] || die "$1 needs a value"; repeats=$2; shift 2 ;;
	-b | --before) [[ $# -ge 2 ]] || die "$1 needs a value"; before=$2; shift 2 ;;
	-c | --cluster) [[ $# -ge 2 ]] || die "$1 needs a value"; cluster=$2; shift 2 ;;
	--reads) reads=1; shift ;;
	--no-peers) peers=0; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown option $1" ;;
	esac
done
[[ $repeats =~ ^[1-9][0-9]*$ ]] || die "--repeat $repeats: want a whole number such as 3"
if [[ $cluster != 0 ]]; then
	if ! [[ $cluster =~ ^[1-9][0-9]*$ ]] || ((cluster < 3 || cluster % 2 == 0 || cluster > 9)); then
		die "--cluster $cluster: want an odd number of members from 3 to 9, such as 3"
	fi
fi

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/lockd-compare.XXXXXX")
# The mplock clusters' secret (a cluster member refuses to start without
# one); bench lockd presents it (MPLOCK_TOKEN_FILE), single servers have none
# and ignore it.
(umask 077 && head -c 32 /dev/urandom | base64 >"$work/secret")
export MPLOCK_TOKEN_FILE=$work/secret
secret=$(<"$work/secret")
out=${OUT:-$work}
mkdir -p "$out" || die "OUT=$out: cannot make that directory"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"/etcd-data* "$work"/mplock-data*
}
trap cleanup EXIT

GO=${GO:-go}
[[ -z $before || -x $before ]] || die "--before $before is not an executable"
[[ -n ${MPLOCK:-} ]] || echo "building mplock..." >&2
mplock='' # set by mplock_binary
mplock_binary "$work"

# free_port VAR sets VAR to a loopback TCP port nobody listens on and that
# this script has not handed out already, below the ephemeral range (from
# which the kernel picks the ports of outgoing connections and of
# listeners on port 0, so that one of those could take it before the
# server binds it).
given=" "
ephemeral=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
((ephemeral > 12000)) || ephemeral=32768
free_port() {
	local p
	for _ in $(seq 100); do
		p=$((10000 + RANDOM % (ephemeral - 10000)))
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

# Each column is a label: the driver (--target), the server's address, and
# what else to tell mplock bench lockd. Single servers go in targets,
# cluster columns in ctargets.
targets=()
ctargets=()
declare -A addr driver extra
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
		extra[$d$label]=''
	done
}

# has_leader PORT: the mplock member on PORT names a leader (AUTH, then
# MEMBERS, on a connection without a session).
has_leader() {
	exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
	printf 'AUTH %s\nMEMBERS\n' "$secret" >&3
	local line
	while IFS= read -r -t 5 line <&3; do
		case $line in
		'OK MEMBERS leader='[!-]*) exec 3<&-; return 0 ;;
		'OK AUTH') ;;
		OK* | ERR*) break ;;
		esac
	done
	exec 3<&-
	return 1
}

# start_mplock_cluster LABEL BINARY: $cluster members of BINARY's mplock
# serve, each with its raft log in a data dir of the private directory
# (fsynced, mplock's default); columns mplock$LABEL@leader and
# mplock$LABEL@follower (mplock bench lockd finds the leader itself at
# each run).
start_mplock_cluster() {
	local label=$1 bin=$2 initial='' clients=() rafts=() i
	for ((i = 1; i <= cluster; i++)); do
		free_port cport
		free_port pport
		clients+=("127.0.0.1:$cport")
		rafts+=("127.0.0.1:$pport")
		initial+="${initial:+,}n$i=127.0.0.1:$pport"
	done
	local mine=()
	for ((i = 1; i <= cluster; i++)); do
		"$bin" serve --node "n$i" --listen "${clients[i-1]}" --raft-listen "${rafts[i-1]}" \
			--data-dir "$work/mplock-data$label-n$i" --initial-cluster "$initial" --token-file "$work/secret" --log-level error >"$work/mplock$label-n$i.log" 2>&1 &
		pids+=($!)
		mine+=($!)
	done
	# Until every member names a leader; a member that exits ends the wait.
	local up=0 j
	for _ in $(seq 600); do
		for ((j = 1; j <= cluster; j++)); do
			kill -0 "${mine[j-1]}" 2>/dev/null && continue
			echo "mplock$label: member n$j exited; end of its log:" >&2
			tail -5 "$work/mplock$label-n$j.log" >&2
			exit 1
		done
		up=0
		for ((j = 1; j <= cluster; j++)); do
			if has_leader "${clients[j-1]#127.0.0.1:}" 2>/dev/null; then up=$((up + 1)); fi
		done
		((up < cluster)) || break
		sleep 0.1
	done
	if ((up < cluster)); then
		echo "mplock$label: no leader named by every member within 60s; ends of their logs:" >&2
		tail -n 5 "$work"/mplock"$label"-n*.log >&2
		exit 1
	fi
	local list
	list=$(IFS=,; echo "${clients[*]}")
	for e in leader follower; do
		ctargets+=("mplock$label@$e")
		addr[mplock$label@$e]=$list
		driver[mplock$label@$e]=mplock
		extra[mplock$label@$e]="--entry $e"
	done
	echo "mplock$label: $cluster members on $list" >&2
}

# start_etcd_cluster: $cluster etcd members, each with its own data dir
# (etcd's defaults: its WAL is fsynced at every commit); columns
# etcd@leader and etcd@follower.
etcd_clients=()
start_etcd_cluster() {
	local initial='' peers=() i
	for ((i = 1; i <= cluster; i++)); do
		free_port cport
		free_port pport
		etcd_clients+=("127.0.0.1:$cport")
		peers+=("127.0.0.1:$pport")
		initial+="${initial:+,}e$i=http://127.0.0.1:$pport"
	done
	for ((i = 1; i <= cluster; i++)); do
		etcd --name "e$i" --data-dir "$work/etcd-data-e$i" \
			--listen-client-urls "http://${etcd_clients[i-1]}" --advertise-client-urls "http://${etcd_clients[i-1]}" \
			--listen-peer-urls "http://${peers[i-1]}" --initial-advertise-peer-urls "http://${peers[i-1]}" \
			--initial-cluster "$initial" --initial-cluster-state new --initial-cluster-token "lockd-compare-$$" \
			>"$work/etcd-e$i.log" 2>&1 &
		pids+=($!)
	done
	for ((i = 1; i <= cluster; i++)); do
		wait_for "$work/etcd-e$i.log" curl -fsS "http://${etcd_clients[i-1]}/health"
	done
	for e in leader follower; do
		ctargets+=("etcd@$e")
		driver[etcd@$e]=etcd
		extra[etcd@$e]=''
	done
	echo "etcd $(etcd --version | head -1 | awk '{print $3}'): $cluster members on $(IFS=,; echo "${etcd_clients[*]}")" >&2
}

# etcd_member ROLE: the client address of etcd's leader, or of a follower
# (the first member that is not the leader), asked at each run.
etcd_member() {
	local a
	for a in "${etcd_clients[@]}"; do
		# maintenance/status: this member's id and the leader's.
		local st
		st=$(curl -fsS -X POST -d '{}' "http://$a/v3/maintenance/status") || continue
		local me leader
		me=$(grep -o '"member_id":"[0-9]*"' <<<"$st" | grep -o '[0-9]\+')
		leader=$(grep -o '"leader":"[0-9]*"' <<<"$st" | grep -o '[0-9]\+')
		if [[ $1 == leader && $me == "$leader" || $1 == follower && $me != "$leader" ]]; then
			echo "$a"
			return 0
		fi
	done
	echo "etcd: no $1 among ${etcd_clients[*]}" >&2
	return 1
}

if ((cluster)); then
	start_mplock_cluster '' "$mplock"
	if [[ -n $before ]]; then start_mplock_cluster @b "$before"; fi
	if ((!peers)); then
		:
	elif command -v etcd >/dev/null; then
		start_etcd_cluster
	else
		echo "etcd not installed: skipped (apt-get install etcd-server)" >&2
	fi
fi
start_mplock '' "$mplock"
if [[ -n $before ]]; then
	start_mplock @b "$before"
	echo "mplock@b: $("$before" --version) from $before" >&2
fi
if ((!peers)); then
	:
elif command -v redis-server >/dev/null; then
	free_port port
	redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no >"$work/redis.log" 2>&1 &
	pids+=($!)
	addr[redis]=127.0.0.1:$port
	driver[redis]=redis
	extra[redis]=''
	wait_for "$work/redis.log" redis-cli -p "$port" ping
	targets+=(redis)
	echo "redis $(redis-server --version | grep -o 'v=[^ ]*') on ${addr[redis]}" >&2
else
	echo "redis-server not installed: skipped (apt-get install redis-server)" >&2
fi
if ((!cluster && peers)) && command -v etcd >/dev/null; then
	free_port cport
	free_port pport
	etcd --name lockd-compare --data-dir "$work/etcd-data" \
		--listen-client-urls "http://127.0.0.1:$cport" --advertise-client-urls "http://127.0.0.1:$cport" \
		--listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
		--initial-cluster "lockd-compare=http://127.0.0.1:$pport" >"$work/etcd.log" 2>&1 &
	pids+=($!)
	addr[etcd]=127.0.0.1:$cport
	driver[etcd]=etcd
	extra[etcd]=''
	wait_for "$work/etcd.log" curl -fsS "http://${addr[etcd]}/health"
	targets+=(etcd)
	echo "etcd $(etcd --version | head -1 | awk '{print $3}') on ${addr[etcd]}" >&2
elif ((!cluster && peers)); then
	echo "etcd not installed: skipped (apt-get install etcd-server)" >&2
fi

# Interleaved: every column once per round, so that drift on the shared
# machine spreads over all of them.
for r in $(seq "$repeats"); do
	for t in "${ctargets[@]}" "${targets[@]}"; do
		echo "run $r/$repeats: $t ($(cut -d' ' -f1-3 /proc/loadavg) load)" >&2
		a=${addr[$t]:-}
		case $t in etcd@*) a=$(etcd_member "${t#etcd@}") ;; esac
		args=(--duration "$duration" --json --target "${driver[$t]}" --addr "$a")
		# shellcheck disable=SC2206 # extra holds whole flags, split on purpose
		args+=(${extra[$t]})
		if ((reads)) && [[ ${driver[$t]} == mplock ]]; then args+=(--reads); fi
		"$mplock" bench lockd "${args[@]}" >"$out/$t.$r.json"
	done
done

# values T SCENARIO: the pairs/s of target T in SCENARIO, one per repeat.
values() {
	local t=$1 scenario=$2
	for f in "$out/$t".*.json; do
		awk -v want="$scenario" '
			/"scenario":/ { s = $0; sub(/.*"scenario": "/, "", s); sub(/".*/, "", s) }
			/"pairs_per_second":/ { v = $2; sub(/,/, "", v); if (s == want) print v }' "$f"
	done
}

# median: the median of the numbers on stdin ("-" for none); with -s, also
# the largest distance of one from it, as "median ±N%".
median() {
	sort -g | awk -v spread="${1:-}" '{ a[NR] = $1 }
		END {
			if (!NR) { printf "-"; exit }
			m = a[int((NR + 1) / 2)]
			if (spread == "") { printf "%.0f", m; exit }
			d = 0
			for (i = 1; i <= NR; i++) { x = a[i] - m; if (x < 0) x = -x; if (x > d) d = x }
			printf "%.0f ±%.0f%%", m, (m > 0 ? 100 * d / m : 0)
		}'
}

# ratio A B: A / B to two figures, "-" when either is missing.
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) printf "-"; else printf "%.2fx", a / b }'
}

scenarios=("1 client" "16 clients, distinct names" "16 clients, one name")

# table TITLE COLUMNS...: one row per scenario, a cell per column.
table() {
	local title=$1 t s
	shift
	echo
	echo "$title"
	printf '%-28s' "pairs/s (median of $repeats)"
	for t in "$@"; do printf '%18s' "$t"; done
	echo
	for s in "${scenarios[@]}"; do
		printf '%-28s' "$s"
		for t in "$@"; do printf '%18s' "$(values "$t" "$s" | median -s)"; done
		echo
	done
}

# ratios TITLE AIM MINE PEER [MINE PEER...]: a row per scenario, the
# ratio of the medians of each pair of columns, beside the aim.
ratios() {
	local title=$1 aim=$2 s i
	shift 2
	local pairs=("$@")
	printf '%-28s' "$title"
	local a b
	for ((i = 0; i < ${#pairs[@]}; i += 2)); do
		# mplock@leader etcd@leader: "mplock/etcd@leader"
		a=${pairs[i]} b=${pairs[i+1]}
		if [[ $a == *@* && ${a##*@} == "${b##*@}" ]]; then
			printf '%26s' "${a%@*}/${b%@*}@${a##*@}"
		else
			printf '%26s' "$a/$b"
		fi
	done
	printf '%8s\n' aim
	for s in "${scenarios[@]}"; do
		printf '%-28s' "$s"
		for ((i = 0; i < ${#pairs[@]}; i += 2)); do
			printf '%26s' "$(ratio "$(values "${pairs[i]}" "$s" | median)" "$(values "${pairs[i+1]}" "$s" | median)")"
		done
		printf '%8s\n' "$aim"
	done
}

if ((cluster)); then
	table "$cluster-member clusters (raft logs fsynced; each client its own connection to the member named)" "${ctargets[@]}"
	if [[ -n ${driver[etcd@leader]:-} ]]; then
		echo
		ratios "mplock over etcd" ">=5x" mplock@leader etcd@leader mplock@follower etcd@follower
	fi
	if [[ -n $before ]]; then
		echo
		ratios "this build over --before" "-" mplock@leader mplock@b@leader mplock@follower mplock@b@follower
	fi
fi
table "single servers (mplock in memory)" "${targets[@]}"
if [[ -n ${driver[redis]:-} ]]; then
	echo
	ratios "mplock over Redis" ">=1x" mplock redis mplock-raw redis
fi

# Reads: the median over the repeats of each read's p50 and p99.
if ((reads)); then
	echo
	echo "read latency, one client (median over $repeats runs of each run's p50 / p99, in microseconds)"
	for t in "${ctargets[@]}" "${targets[@]}"; do
		[[ ${driver[$t]} == mplock ]] || continue
		for f in "$out/$t".*.json; do
			awk '/^ *\{/ { rd = ""; en = "" }
				/"read":/ { rd = $0; sub(/.*"read": "/, "", rd); sub(/".*/, "", rd) }
				/"entry":/ { en = $0; sub(/.*"entry": "/, "", en); sub(/".*/, "", en) }
				/"p50_ns":/ { p50 = $2; sub(/,/, "", p50) }
				/"p99_ns":/ { p99 = $2; sub(/,/, "", p99); if (rd != "") print rd "|" en "|" p50 "|" p99 }' "$f"
		done | sort -t'|' -k1,2 -s | awk -F'|' -v t="$t" '
			# med: the median of a[1..n] (sorted in place).
			function med(a, n,   i, j, x) {
				for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j > 0 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
				return a[int((n + 1) / 2)]
			}
			function flush() {
				if (n) printf "  %-18s %-30s %-9s %8.0f / %-8.0f\n", t, r, e, med(a50, n) / 1000, med(a99, n) / 1000
				n = 0
			}
			{ k = $1 "|" $2; if (k != key) { flush(); key = k; r = $1; e = ($2 == "" ? "-" : $2) } n++; a50[n] = $3 + 0; a99[n] = $4 + 0 }
			END { flush() }'
	done
fi
echo
echo "each: $duration per scenario; one pair = acquire + release, each client its own connection"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
"$mplock" --version
uname -sr
echo "$(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "raw results: $out"
