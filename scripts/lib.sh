# shellcheck shell=bash
# lib.sh: what the scripts in this directory share. Sourced, never run.
# The sourcing script sets $root (the checkout) and $GO (the go command);
# mplock_binary sets $mplock for it.
# shellcheck disable=SC2154,SC2034

# die MESSAGE: report a usage error or a missing tool, exit 2.
die() { echo "${0##*/}: $*" >&2; exit 2; }

# need TOOL HINT: die unless TOOL is on PATH; HINT says how to get it.
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found: $2"; }

# mplock_binary DIR: set mplock to $MPLOCK when given, else build mplock
# from this checkout into DIR, stamped with the checkout's git revision.
mplock_binary() {
	if [[ -n ${MPLOCK:-} ]]; then
		[[ -x $MPLOCK ]] || die "MPLOCK=$MPLOCK is not an executable"
		mplock=$MPLOCK
		return
	fi
	need "$GO" "building mplock needs Go: install it, or set MPLOCK to a built binary"
	local rev
	rev=$(git -C "$root" describe --always --dirty 2>/dev/null || echo devel)
	(cd "$root" && "$GO" build -ldflags "-X main.buildVersion=$rev" -o "$1/mplock" ./cmd/mplock) ||
		{ echo "${0##*/}: go build failed" >&2; exit 1; }
	mplock=$1/mplock
}
