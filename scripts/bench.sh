#!/usr/bin/env bash
# bench.sh: the full benchmark of mplock's lock kinds on this machine, kept
# together in one directory: the matrix (mplock bench) in every format with
# its charts, the comparison with native peers (scripts/compare.sh), and a
# description of the machine.
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: scripts/bench.sh [options] [-- MPLOCK_BENCH_FLAGS...]

Runs the full matrix with `mplock bench` and the peer comparison with
scripts/compare.sh, and keeps everything in one directory:

  results/<date>-<host>/
    bench.txt bench.csv bench.json bench.gobench.txt   the matrix, every format
    bench.svg bench.png                                its charts
    compare.txt compare.csv compare-samples.csv        mplock vs C, Python, stress-ng
    machine.txt                                        CPU, kernel, idle states, tools
    command.txt                                        how this run was made

The default matrix is every kind but none, 1 to 2xCPUs workers, hold 0, 1us
and 10us, 1s runs, 5 repeats after 1 warm-up: several minutes. Works from any
directory; results/ lies beside scripts/ and is ignored by git.

Options:
  -o, --out DIR     results directory (default: <checkout>/results/<date>-<host>)
  -q, --quick       a smoke test: a tiny matrix and compare.sh --quick
      --no-compare  skip scripts/compare.sh (no C compiler needed)
      --wait-quiet S  before each run, wait up to S seconds for other
                    processes to use under a quarter of a CPU (shared machines)
  -h, --help        this help
  -- FLAGS          further flags for mplock bench; they override the matrix,
                    e.g. -- --kind sem,flock --repeat 3

Environment: MPLOCK (an mplock binary; default: built from this checkout
with go), GO, CC, PYTHON, STRESS_NG (passed on to compare.sh).

Exit status: 0 on success, 1 when a run failed, 2 for usage errors or a
missing tool.
EOF
}

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

args=("$@")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
out='' quick=0 compare=1 wait_quiet=0
extra=()
while [[ $# -gt 0 ]]; do
	case $1 in
	-o | --out) [[ $# -ge 2 ]] || die "$1 needs a value"; out=$2; shift 2 ;;
	-q | --quick) quick=1; shift ;;
	--no-compare) compare=0; shift ;;
	--wait-quiet) [[ $# -ge 2 ]] || die "$1 needs a value"; wait_quiet=$2; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	--) shift; extra=("$@"); break ;;
	*) usage >&2; die "unknown option $1" ;;
	esac
done

[[ $wait_quiet =~ ^[0-9]+$ ]] || die "--wait-quiet $wait_quiet: want whole seconds"
for tool in awk date uname; do need "$tool" "bench.sh needs it"; done
GO=${GO:-go}
if [[ $compare == 1 ]]; then need "${CC:-cc}" "compare.sh needs a C compiler: install gcc, set CC, or use --no-compare"; fi

host=$(uname -n)
stamp=$(date -u '+%Y-%m-%dT%H%MZ')
[[ -n $out ]] || out=$root/results/$stamp-${host%%.*}
mkdir -p "$out" || die "cannot create $out"
out=$(cd "$out" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/mplock-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
mplock_binary "$work"

if [[ $quick == 1 ]]; then
	matrix=(--kind "sem,flock,atomic" --workers "1,2" --duration 100ms --repeat 2)
	compare_flags=(--quick)
else
	matrix=(--hold "0,1us,10us" --duration 1s --repeat 5 --warmup 1)
	compare_flags=()
fi
if ((wait_quiet > 0)); then
	matrix+=(--wait-quiet "${wait_quiet}s")
	compare_flags+=(--wait-quiet "$wait_quiet")
fi

describe_machine() {
	echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "host: $host"
	echo "kernel: $(uname -srvm)"
	echo "cpu: $(awk -F': ' '/^model name|^Model|^cpu model/{print $2; exit}' /proc/cpuinfo 2>/dev/null || true)"
	echo "cpus: $(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc)"
	echo "cpuidle governor: $(cat /sys/devices/system/cpu/cpuidle/current_governor 2>/dev/null || echo none)"
	echo "cpuidle driver: $(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || echo none)"
	echo "cpufreq governor: $(cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor 2>/dev/null || echo none)"
	if grep -qw hypervisor /proc/cpuinfo 2>/dev/null; then echo "virtual machine: yes"; else echo "virtual machine: no"; fi
	echo "load average: $(cat /proc/loadavg 2>/dev/null || echo unknown)"
	echo "mplock: $("$mplock" --version 2>/dev/null | sed 's/^mplock version //')"
	echo "go: $("$GO" version 2>/dev/null || echo none)"
	echo "cc: $("${CC:-cc}" --version 2>/dev/null | head -1 || echo none)"
	echo "python: $("${PYTHON:-python3}" --version 2>&1 | head -1 || echo none)"
	echo "stress-ng: $("${STRESS_NG:-stress-ng}" --version 2>/dev/null | head -1 || echo none)"
	if command -v lscpu >/dev/null 2>&1; then echo; lscpu; fi
}
describe_machine >"$out/machine.txt"
{
	echo "scripts/bench.sh ${args[*]}"
	echo "mplock bench ${matrix[*]} ${extra[*]} --out $out"
	[[ $compare == 1 ]] && echo "scripts/compare.sh ${compare_flags[*]} --csv-out $out/compare.csv --raw $out/compare-samples.csv"
} >"$out/command.txt"

status=0
echo "bench.sh: the matrix, into $out" >&2
"$mplock" bench "${matrix[@]}" "${extra[@]}" --out "$out" || status=$?
if [[ $status == 2 ]]; then exit 2; fi
if [[ $compare == 1 && $status != 130 ]]; then
	echo "bench.sh: compare.sh" >&2
	MPLOCK=$mplock "$here/compare.sh" "${compare_flags[@]}" --csv-out "$out/compare.csv" --raw "$out/compare-samples.csv" |
		tee "$out/compare.txt" || status=1
fi
echo "bench.sh: results in $out" >&2
exit "$status"
