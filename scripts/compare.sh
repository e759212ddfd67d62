#!/usr/bin/env bash
# compare.sh: mplock's lock kinds side by side with what a user would
# otherwise reach for, on this machine, in one run.
#
# The workload is the same for everyone: 2 processes, an empty critical
# section around one shared counter, a fixed duration. The peers:
#   c          scripts/peers/lockpeer.c built with the machine's cc: atomic,
#              futex lock, process-shared pthread mutex, flock, OFD, SysV
#              semop, spinlock (required)
#   python     scripts/peers/seedlock.py: the seed's multiprocessing.Lock
#              guarding a multiprocessing.Value (optional)
#   stress-ng  --sem-sysv and --flock stressors (optional; bogo-ops, see below)
# Each round runs every job once; even rounds run them in reverse order, so
# a slow drift of the machine (thermal, a neighbour) weighs on both sides of
# each ratio alike. Figures are medians over the rounds.
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: scripts/compare.sh [options]

Runs mplock's lock kinds and native peers on the same workload (2 processes,
empty critical section, fixed duration), alternating, and prints one table:
ops/s of each, the ratio mplock/peer per kind against the project's targets,
and what recording acquire latency costs mplock.

Options:
  -d, --duration SEC  length of each run in seconds (default 1)
  -r, --rounds N      rounds; each runs every job once, alternating order (default 3)
  -q, --quick         a smoke test: 0.2 s runs, 1 round (CI)
      --kinds LIST    mplock kinds (default flock,fcntl,sem,sysv,spin,atomic)
      --peers LIST    c,python,stress-ng (default: c and whichever others are installed)
      --csv           print CSV instead of the tables
      --csv-out FILE  also write the CSV into FILE
      --raw FILE      also write every sample as CSV to FILE
      --from-raw FILE run nothing: summarise the samples a --raw FILE kept
      --wait-quiet S  before each run, wait up to S seconds for the rest of the
                      machine to use less than a quarter of a CPU (default 0)
      --drop-busy     leave out of the medians the runs during which other
                      processes kept a quarter of a CPU or more busy
      --pin           bind each process to its own CPU (mplock --pin, lockpeer -a):
                      both sides contend from two CPUs, instead of the scheduler
                      choosing, run by run, between contending and taking turns
  -h, --help          this help

Environment:
  MPLOCK     an mplock binary to use (default: built from this checkout with go)
  GO         the go command (default go)
  CC         the C compiler (default cc)
  PYTHON     the Python interpreter (default python3)
  STRESS_NG  the stress-ng command (default stress-ng)

Exit status: 0 when every run was consistent, 1 when a run failed or lost an
update, 2 for usage errors or a missing required tool (cc; go without MPLOCK).
Targets that are not met are reported in the table, not in the exit status.
EOF
}

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

duration=1 rounds=3 kinds=flock,fcntl,sem,sysv,spin,atomic peers='' csv=0 raw='' csv_out='' wait_quiet=0 drop_busy=0 from_raw='' pin=0
while [[ $# -gt 0 ]]; do
	case $1 in
	-d | --duration) [[ $# -ge 2 ]] || die "$1 needs a value"; duration=$2; shift 2 ;;
	-r | --rounds) [[ $# -ge 2 ]] || die "$1 needs a value"; rounds=$2; shift 2 ;;
	-q | --quick) duration=0.2 rounds=1; shift ;;
	--kinds) [[ $# -ge 2 ]] || die "$1 needs a value"; kinds=$2; shift 2 ;;
	--peers) [[ $# -ge 2 ]] || die "$1 needs a value"; peers=$2; shift 2 ;;
	--csv) csv=1; shift ;;
	--csv-out) [[ $# -ge 2 ]] || die "$1 needs a value"; csv_out=$2; shift 2 ;;
	--raw) [[ $# -ge 2 ]] || die "$1 needs a value"; raw=$2; shift 2 ;;
	--from-raw) [[ $# -ge 2 ]] || die "$1 needs a value"; from_raw=$2; shift 2 ;;
	--wait-quiet) [[ $# -ge 2 ]] || die "$1 needs a value"; wait_quiet=$2; shift 2 ;;
	--drop-busy) drop_busy=1; shift ;;
	--pin) pin=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown option $1" ;;
	esac
done
if ! [[ $duration =~ ^[0-9]*\.?[0-9]+$ ]] || ! awk "BEGIN{exit !($duration > 0)}"; then
	die "--duration $duration: want seconds, e.g. 1 or 0.5"
fi
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "--rounds $rounds: want a positive count"
[[ $wait_quiet =~ ^[0-9]+$ ]] || die "--wait-quiet $wait_quiet: want whole seconds"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
CC=${CC:-cc} GO=${GO:-go} PYTHON=${PYTHON:-python3} STRESS_NG=${STRESS_NG:-stress-ng}

failed=0
if [[ -n $from_raw ]]; then
	[[ -r $from_raw ]] || die "--from-raw $from_raw: cannot read it"
	head -1 "$from_raw" | grep -q '^job,round,ops_per_sec,' || die "--from-raw $from_raw: not a --raw file"
	samples=$from_raw
	rounds=$(awk -F, 'NR > 1 && $2 > r {r = $2} END {print r + 0}' "$from_raw")
else
	# Which peers: c always; the optional ones when asked for, or when installed.
	want_python=0 want_stress=0
	if [[ -z $peers ]]; then
		command -v "$PYTHON" >/dev/null 2>&1 && want_python=1
		command -v "$STRESS_NG" >/dev/null 2>&1 && want_stress=1
	else
		IFS=, read -ra list <<<"$peers"
		for p in "${list[@]}"; do
			case $p in
			c) ;;
			python) want_python=1; need "$PYTHON" "install python3 or set PYTHON" ;;
			stress-ng) want_stress=1; need "$STRESS_NG" "install stress-ng or set STRESS_NG" ;;
			*) die "--peers: unknown peer $p (c, python, stress-ng)" ;;
			esac
		done
	fi
	need "$CC" "the C reference needs a C compiler: install gcc, or set CC"

	work=$(mktemp -d "${TMPDIR:-/tmp}/mplock-compare.XXXXXX")
	trap 'rm -rf "$work"' EXIT

	mplock_binary "$work"
	"$CC" -O2 -o "$work/lockpeer" "$here/peers/lockpeer.c" || { echo "compare.sh: $CC failed on lockpeer.c" >&2; exit 1; }

	# Jobs: "tool:what". The peers of each mplock kind follow it, so that in
	# every round a kind and its peers run back to back.
	declare -a jobs
	IFS=, read -ra kindlist <<<"$kinds"
	for k in "${kindlist[@]}"; do
		case $k in
		atomic) cpeers=(atomic) ;;
		sem) cpeers=(futex pthread) ;;
		spin) cpeers=(spin) ;;
		flock) cpeers=(flock) ;;
		fcntl) cpeers=(ofd) ;;
		sysv) cpeers=(sysv) ;;
		*) die "--kinds: $k is not one compare.sh pairs with a peer (flock, fcntl, sem, sysv, spin, atomic)" ;;
		esac
		jobs+=("mplock:$k" "mplock-latency:$k")
		for c in "${cpeers[@]}"; do jobs+=("c:$c"); done
		if [[ $want_stress == 1 && $k == sysv ]]; then jobs+=("stress-ng:sem-sysv"); fi
		if [[ $want_stress == 1 && $k == flock ]]; then jobs+=("stress-ng:flock"); fi
	done
	[[ $want_python == 1 ]] && jobs+=("python:mp.Lock")

	# stress-ng runs whole seconds.
	stress_secs=$(awk "BEGIN{s=int($duration); if (s < $duration) s++; print (s < 1 ? 1 : s)}")

	# run_job prints "ops_per_sec handoffs_per_1k cpus" for one job, "-" for
	# what the job does not report; cpus is its CPU time over wall time.
	run_job() {
		local tool=${1%%:*} what=${1#*:} out
		case $tool in
		mplock | mplock-latency)
			local flags=(--kind "$what" --workers 2 --duration "${duration}s" --repeat 1 --csv)
			[[ $tool == mplock ]] && flags+=(--no-latency)
			((pin)) && flags+=(--pin)
			out=$("$mplock" bench "${flags[@]}") || return 1
			awk -F, 'NR==1{for(i=1;i<=NF;i++) c[$i]=i; next}
				{h=$c["handoffs_per_1k_ops"]; if ($c["lock"]=="atomic") h="-"
				 print $c["ops_per_second"], h, $c["cpus_busy"]}' <<<"$out"
			;;
		c)
			local pinflag=()
			((pin)) && pinflag=(-a)
			out=$("$work/lockpeer" -k "$what" -p 2 -d "$duration" "${pinflag[@]}") || return 1
			if [[ $what == atomic ]]; then kv "$out" ops_per_sec - cpus; else kv "$out" ops_per_sec handoffs_per_1k cpus; fi
			;;
		python)
			out=$("$PYTHON" "$here/peers/seedlock.py" -p 2 -d "$duration") || return 1
			kv "$out" ops_per_sec - -
			;;
		stress-ng)
			local opts=(--"$what" 1 --timeout "$stress_secs" --metrics-brief)
			[[ $what == sem-sysv ]] && opts+=(--sem-sysv-procs 2)
			out=$(cd "$work" && "$STRESS_NG" "${opts[@]}" 2>&1) || return 1
			# "... sem-sysv  3000197  2.00  0.45  1.51  1498657.83 ...":
			# bogo ops over real time.
			awk -v s="$what" '{for(i=1;i<NF;i++) if ($i==s && $(i+1) ~ /^[0-9]+$/) {printf "%.0f - -\n", $(i+1)/$(i+2); exit}}' <<<"$out"
			;;
		esac
	}

	# kv LINE KEY... prints the values of keys from a "k=v k=v" line, "-" for
	# a missing one (or the key "-"), after checking the line says consistent=1.
	kv() {
		local line=$1
		shift
		[[ $line == *consistent=1* ]] || { echo "compare.sh: inconsistent run: $line" >&2; return 1; }
		awk -v keys="$*" '{for(i=1;i<=NF;i++){split($i,p,"="); v[p[1]]=p[2]}
			n=split(keys,k," "); out=""; for(j=1;j<=n;j++) out=out (j>1?" ":"") (k[j] in v ? v[k[j]] : "-")
			print out}' <<<"$line"
	}

	# The rest of the machine: /proc/stat counts every CPU's busy time (in
	# 1/100 s), and `times` this shell's reaped children's, so the difference
	# over a job is what other processes did meanwhile. A job run beside a busy
	# neighbour measures the neighbour too.
	# cpu_mark sets mark to "busy own now"; it must run in this shell, not in
	# a $(...) subshell, whose children are not this shell's.
	cpu_mark() {
		local stat now
		mark=''
		stat=$(head -1 /proc/stat 2>/dev/null) || return 0
		times >"$work/times"
		now=${EPOCHREALTIME:-$(date +%s.%N)}
		mark=$(awk -v stat="$stat" -v now="$now" 'NR == 2 {
			split(stat, f, " "); busy = f[2] + f[3] + f[4] + f[7] + f[8]
			own = 0; for (i = 1; i <= 2; i++) { split($i, t, "m"); own += t[1] * 60 + t[2] }
			printf "%s %s %s\n", busy, own, now }' "$work/times")
	}

	# background MARK1 MARK2 prints the CPUs others kept busy between the marks.
	background() {
		[[ -n $1 && -n $2 ]] || { echo -; return; }
		# Clamped to [0, CPUs]: the two clocks tick at different grains.
		awk -v a="$1" -v b="$2" -v n="$ncpu" 'BEGIN { split(a, x, " "); split(b, y, " "); el = y[3] - x[3]
			if (el <= 0) { print "-"; exit }
			bg = ((y[1] - x[1]) / 100 - (y[2] - x[2])) / el
			if (bg < 0) bg = 0
			if (bg > n + 0) bg = n
			printf "%.2f\n", bg }'
	}

	ncpu=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)

	# busy_now prints the CPUs the machine keeps busy over half a second, while
	# nothing of ours runs.
	busy_now() {
		local a
		cpu_mark
		a=$mark
		sleep 0.5
		cpu_mark
		background "$a" "$mark"
	}

	# quiet waits up to --wait-quiet seconds for the machine to calm down.
	quiet() {
		local waited=0 busy
		((wait_quiet > 0)) || return 0
		while busy=$(busy_now) && [[ $busy != - ]] && awk "BEGIN{exit !($busy >= 0.25)}"; do
			if ((waited >= wait_quiet)); then
				echo "compare.sh: the machine stayed busy ($busy CPUs) for ${wait_quiet}s; running anyway" >&2
				return 0
			fi
			((waited == 0)) && echo "compare.sh: waiting for the machine to quiet down ($busy CPUs busy)" >&2
			sleep 1
			waited=$((waited + 1))
		done
	}

	busy=$(busy_now)
	if [[ $busy != - ]] && awk "BEGIN{exit !($busy >= 0.25)}"; then
		echo "compare.sh: warning: the machine is busy before the runs ($busy CPUs in use): figures will be disturbed" >&2
	fi

	samples=$work/samples.csv
	echo "job,round,ops_per_sec,handoffs_per_1k,cpus,background_cpus" >"$samples"
	total=$((rounds * ${#jobs[@]})) n=0
	for ((r = 1; r <= rounds; r++)); do
		order=("${jobs[@]}")
		if ((r % 2 == 0)); then
			order=()
			for ((i = ${#jobs[@]} - 1; i >= 0; i--)); do order+=("${jobs[i]}"); done
		fi
		for job in "${order[@]}"; do
			n=$((n + 1))
			[[ -t 2 ]] && printf '\r\033[Kcompare: run %d of %d: %s (round %d)' "$n" "$total" "$job" "$r" >&2
			quiet
			cpu_mark
			m1=$mark
			if res=$(run_job "$job") && [[ -n $res ]]; then
				cpu_mark
				read -r ops hand cpus <<<"$res"
				echo "$job,$r,$ops,$hand,$cpus,$(background "$m1" "$mark")" >>"$samples"
			else
				[[ -t 2 ]] && printf '\r\033[K' >&2
				echo "compare.sh: $job failed in round $r" >&2
				failed=1
			fi
		done
	done
	[[ -t 2 ]] && printf '\r\033[K' >&2
	[[ -n $raw ]] && cp "$samples" "$raw"
fi

machine() {
	local model gov drv
	model=$(awk -F': ' '/^model name|^Model|^cpu model/{print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
	gov=$(cat /sys/devices/system/cpu/cpuidle/current_governor 2>/dev/null || echo "?")
	drv=$(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || echo "?")
	printf '%s, %s CPUs, %s %s, cpuidle %s (driver %s)' "${model:-$(uname -m)}" "$(nproc)" "$(uname -s)" "$(uname -r)" "$gov" "$drv"
	grep -qw hypervisor /proc/cpuinfo 2>/dev/null && printf ', virtual machine'
	printf '\n'
}

# Medians per job, then the comparison rows. Targets are the project's
# (issue 5): mplock's kind against the C lock of the same kind, and every
# kind but sysv at 3x the seed's Python lock.
mplock_version=-
if [[ -n ${mplock:-} ]]; then mplock_version=$("$mplock" --version 2>/dev/null | sed 's/^mplock version //'); fi

summary() {
	awk -F, -v csv="$1" -v drop="$drop_busy" -v from="$from_raw" -v kinds="$kinds" -v dur="$duration" -v rounds="$rounds" -v version="$mplock_version" -v mach="$(machine)" -v date="$(date -u '+%Y-%m-%d %H:%M UTC')" '
function median(job, col,   n, i, j, t, a) {
	n = 0
	for (i = 1; i <= cnt[job]; i++) {
		if (val[job, i, col] == "-" || val[job, i, col] == "") continue
		if (drop && col != 6 && val[job, i, 6] != "" && val[job, i, 6] + 0 >= 0.25) continue
		a[++n] = val[job, i, col] + 0
	}
	if (n == 0) return "-"
	for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function rate(v) {
	if (v == "-") return "-"
	if (v >= 1e6) return sprintf("%.2fM", v / 1e6)
	if (v >= 1e3) return sprintf("%.0fk", v / 1e3)
	return sprintf("%.0f", v)
}
function num(v, f) { return v == "-" ? "" : sprintf(f, v) }
function pair(a, b, f) { return (a == "-" ? "-" : sprintf(f, a)) "/" (b == "-" ? "-" : sprintf(f, b)) }
function bgmax(a, b) { return a == "-" ? b : (b == "-" || a + 0 >= b + 0) ? a : b }
function row(kind, peer, label, target, unit,   m, p, ratio, met, hm, hp, bg, cm, cp) {
	if (!(("mplock:" kind) in cnt) || !(peer in cnt)) return
	m = median("mplock:" kind, 3); p = median(peer, 3)
	ratio = (m != "-" && p != "-" && p > 0) ? m / p : "-"
	met = (target == "-" || ratio == "-") ? "-" : (ratio >= target ? "yes" : "NO")
	hm = median("mplock:" kind, 4); hp = median(peer, 4)
	bg = bgmax(median("mplock:" kind, 6), median(peer, 6))
	cm = median("mplock:" kind, 5); cp = median(peer, 5)
	if (csv) {
		printf "peer,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n", kind, label, num(m, "%.0f"), num(p, "%.0f"), num(ratio, "%.3f"), (target == "-" ? "" : target), met, num(hm, "%.2f"), num(hp, "%.2f"), num(cm, "%.3f"), num(cp, "%.3f"), unit, num(bg, "%.2f")
		return
	}
	printf "%-7s %9s  %-25s %10s  %7s  %6s  %-4s %11s %11s %5s\n", kind, rate(m), label, rate(p) (unit == "bogo-ops" ? "*" : ""), (ratio == "-" ? "-" : sprintf("%.2fx", ratio)), (target == "-" ? "-" : ">=" target), met, pair(hm, hp, "%.1f"), pair(cm, cp, "%.2f"), (bg == "-" ? "-" : sprintf("%.2f", bg))
}
NR == 1 { next }
{ job = $1; i = ++cnt[job]; for (c = 3; c <= 6; c++) val[job, i, c] = $c; if ($6 != "" && $6 + 0 >= 0.25) busy++ }
END {
	n = split(kinds, ks, ",")
	cpeer["atomic"] = "c:atomic"; clabel["atomic"] = "C atomic add"; ctarget["atomic"] = 0.75
	cpeer["sem"] = "c:futex"; clabel["sem"] = "C futex lock"; ctarget["sem"] = 1.0
	cpeer["spin"] = "c:spin"; clabel["spin"] = "C spinlock"; ctarget["spin"] = 0.8
	cpeer["flock"] = "c:flock"; clabel["flock"] = "C flock"; ctarget["flock"] = 0.8
	cpeer["fcntl"] = "c:ofd"; clabel["fcntl"] = "C OFD lock"; ctarget["fcntl"] = 0.8
	cpeer["sysv"] = "c:sysv"; clabel["sysv"] = "C SysV semop"; ctarget["sysv"] = 1.0
	if (csv) print "comparison,kind,peer,mplock_ops_per_sec,peer_ops_per_sec,ratio,target,met,mplock_handoffs_per_1k,peer_handoffs_per_1k,mplock_cpus,peer_cpus,peer_unit,background_cpus"
	else {
		if (from != "") printf "compare.sh: the samples in %s, median of %d rounds%s\n\n", from, rounds, (drop ? ", runs with a busy neighbour left out" : "")
		else {
			printf "compare.sh: 2 processes, empty critical section, %ss per run, median of %d rounds (alternating order)%s\n", dur, rounds, (drop ? ", runs with a busy neighbour left out" : "")
			printf "Date: %s\nMachine: %s\nmplock: %s (latency recording off for the ratios; its cost is below)\n\n", date, mach, version
		}
		printf "%-7s %9s  %-25s %10s  %7s  %6s  %-4s %11s %11s %5s\n", "KIND", "MPLOCK", "PEER", "PEER OPS/S", "RATIO", "TARGET", "MET", "HANDOFFS", "CPUS", "BUSY"
	}
	for (i = 1; i <= n; i++) {
		k = ks[i]
		row(k, cpeer[k], clabel[k], ctarget[k], "ops")
		if (k == "sem") row(k, "c:pthread", "C pthread mutex (pshared)", "-", "ops")
		if (k == "sysv") row(k, "stress-ng:sem-sysv", "stress-ng --sem-sysv", "-", "bogo-ops")
		if (k == "flock") row(k, "stress-ng:flock", "stress-ng --flock", "-", "bogo-ops")
	}
	for (i = 1; i <= n; i++) row(ks[i], "python:mp.Lock", "Python mp.Lock (seed)", (ks[i] == "sysv" ? "-" : 3), "ops")

	# What recording the acquire latency costs: latency on over off.
	if (!csv) printf "\n%-7s %12s %12s %8s  %7s  %s\n", "KIND", "LATENCY OFF", "LATENCY ON", "COST", "TARGET", "MET"
	for (i = 1; i <= n; i++) {
		k = ks[i]
		if (k == "atomic" || !(("mplock:" k) in cnt) || !(("mplock-latency:" k) in cnt)) continue
		off = median("mplock:" k, 3); on = median("mplock-latency:" k, 3)
		if (off == "-" || on == "-" || off <= 0) continue
		cost = 1 - on / off; met = cost < 0.10 ? "yes" : "NO"
		bg = bgmax(median("mplock:" k, 6), median("mplock-latency:" k, 6))
		if (csv) printf "overhead,%s,latency on,%s,%s,%.3f,0.9,%s,,,,,ops,%s\n", k, num(off, "%.0f"), num(on, "%.0f"), on / off, met, num(bg, "%.2f")
		else printf "%-7s %12s %12s %7.1f%%  %7s  %s\n", k, rate(off), rate(on), 100 * cost, "<10%", met
	}
	bg = "-"
	for (j in cnt) bg = bgmax(bg, median(j, 6))
	if (csv) exit
	print ""
	print "RATIO is mplock over the peer, both medians. HANDOFFS (mplock/peer) counts acquisitions per 1,000"
	print "that changed the holder: near 0, one process kept the lock while the other waited; high, they"
	print "alternated. CPUS (mplock/peer) is CPU time over wall time: near 2, both processes ran at once on"
	print "their own CPUs; near 1, they took turns on one CPU, and nothing contended. A ratio between rows"
	print "in different regimes compares the regimes, not the locks. BUSY is the CPUs other processes kept"
	print "busy meanwhile (median, the busier side)."
	if (("stress-ng:sem-sysv" in cnt) || ("stress-ng:flock" in cnt)) {
		print "* stress-ng counts bogo-ops, not this workload'"'"'s operations. --sem-sysv: one semop down and up per"
		print "  bogo-op by 2 processes (--sem-sysv-procs 2), close to our unit but with no shared counter and a"
		print "  few semctl calls per 1,000. --flock: 4 processes lock one file with exclusive, shared and"
		print "  non-blocking flock calls in turn and count each success; shared locks do not exclude each other,"
		print "  so its rate is not a mutual-exclusion rate. Both are shown for orientation, without a target."
	}
	if (bg != "-") printf "Other processes kept up to %.2f CPUs busy during the runs (median per job)%s\n", bg, (bg >= 0.25 ? ": the machine was NOT quiet; rerun (--wait-quiet, --drop-busy) for clean figures." : ": the machine was quiet.")
	if (busy) printf "%d of %d runs had a busy neighbour (a quarter of a CPU or more)%s.\n", busy, NR - 1, (drop ? " and were left out of the medians" : "")
}' "$samples"
}

summary "$csv"
if [[ -n $csv_out ]]; then summary 1 >"$csv_out"; fi
exit "$failed"
