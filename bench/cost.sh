#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# cost.sh: work per call of two builds side by side, in interleaved rounds
# (order swapped every round, so drift and neighbours' load hit both alike).
# Each round runs, for each build, that build's own bench/ingress (--json,
# LUTF_BENCH_ROUNDS paired rounds inside) and, unless --ingress-only,
# bench/dispatch and bench/daemon. The table gives medians over the rounds
# and the median of the per-round ratios NEW/BASE. CPU per call (lutfd, the
# worker) is the figure that host load moves least; wall-clock throughput is
# printed but moves with the neighbours.
#
# Once, before the rounds, the engine's instructions per call (exact, no
# noise): bench/cost_engine.c is built against each build's engine library
# (and the headers of the tree that build came from) and run under
# callgrind, counting only inside the per-call entry points: the front's
# submit and reap (with the result copy, the pops and the unref), and the
# worker side's call_function (resolve, the no-op, the output, the finish).
# The Labors' pop and loop are left out: a spinning Labor's empty polls
# depend on timing. No hardware counters are needed (a VM often
# has none); --no-instructions skips it.
#
# --engine-timed N: also N interleaved runs (order shuffled each run) of
# cost_engine --time sync and --time async, built against each build's
# engine library: bench/dispatch's (b) and (c) in about a second a run, so
# that 20 or more runs can resolve a few percent (one bench/dispatch run
# moves by more than that here). --rounds 0 skips the benches' rounds.
#
#   bench/cost.sh BASE_BUILD NEW_BUILD [--rounds N] [--ingress-only]
#                 [--no-instructions] [--engine-timed N] [--json]
#
# BASE_BUILD and NEW_BUILD are build folders (Release) holding bench/ingress
# (and bench/dispatch, bench/daemon). Needs root (the benches start lutfd),
# jq, valgrind and cc (scripts/deps.sh --bench). Exit 77 when not root.
set -euo pipefail

usage() {
	echo "usage: $0 BASE_BUILD NEW_BUILD [--rounds N] [--ingress-only] [--no-instructions] [--engine-timed N] [--json]" >&2
	exit 2
}

[ $# -ge 2 ] || usage
base=$1 new=$2
shift 2
rounds=4 json=0 only=0 instr=1 timed=0
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) rounds=${2:?}; shift ;;
	--json) json=1 ;;
	--ingress-only) only=1 ;;
	--no-instructions) instr=0 ;;
	--engine-timed) timed=${2:?}; shift ;;
	-h | --help) usage ;;
	*) usage ;;
	esac
	shift
done
[ "$(id -u)" = 0 ] || { echo "cost.sh: needs root (lutfd)" >&2; exit 77; }
command -v jq >/dev/null || { echo "cost.sh: needs jq (scripts/deps.sh --bench)" >&2; exit 1; }
for b in "$base" "$new"; do
	[ -x "$b/bench/ingress" ] || { echo "cost.sh: no $b/bench/ingress" >&2; exit 1; }
	if [ $only = 0 ]; then
		[ -x "$b/bench/dispatch" ] && [ -x "$b/bench/daemon" ] ||
			{ echo "cost.sh: no $b/bench/dispatch or daemon" >&2; exit 1; }
	fi
done

out=$(mktemp -d /tmp/lutf-cost-XXXXXX)
# Every run's output stays there on failure (or with LUTF_COST_KEEP=1).
trap 'st=$?; if [ $st = 0 ] && [ -z "${LUTF_COST_KEEP:-}" ]; then rm -rf "$out"; else echo "cost.sh: outputs in $out" >&2; fi' EXIT
export LUTF_BENCH_ROUNDS=${LUTF_BENCH_ROUNDS:-6}
here=$(cd "$(dirname "$0")" && pwd)
calls=20000

# cost_engine built against one build's engine library (and the headers of
# the tree it came from), as $out/cost_engine.<tag>.
engine_bin() { # build_dir tag
	local b=$1 tag=$2 src
	[ -x "$out/cost_engine.$tag" ] && return 0
	src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$b/CMakeCache.txt")
	cc -O2 -o "$out/cost_engine.$tag" "$here/cost_engine.c" -I"$src/include" \
		"$b/userspace/runtime/liblutf_runtime.a" \
		"$b/userspace/labor_watch/liblutf_labor_watch.a" -lbpf -lpthread -ldl \
		2>"$out/cc.$tag.err" || { cat "$out/cc.$tag.err" >&2; return 1; }
}

# Instructions per call of the engine, one build: "<front> <worker>", or
# nothing on failure. Front: everything run inside lutf_runtime_submit and
# lutf_runtime_reap (the result copy, the pops, the unref); worker: inside
# the Labor's call_function (resolve, the no-op, the output, the finish).
# Program totals under the toggles, so tail calls cannot hide a callee.
engine_instr() { # build_dir tag
	local b=$1 tag=$2 side
	engine_bin "$b" "$tag" || return 1
	for side in "front:--toggle-collect=lutf_runtime_submit --toggle-collect=lutf_runtime_reap" \
		"worker:--toggle-collect=call_function"; do
		# shellcheck disable=SC2086 # the toggles are words
		valgrind --tool=callgrind --callgrind-out-file="$out/cg.$tag.${side%%:*}" ${side#*:} \
			"$out/cost_engine.$tag" "$calls" >/dev/null 2>"$out/vg.$tag.err" ||
			{ tail -5 "$out/vg.$tag.err" >&2; return 1; }
		callgrind_annotate "$out/cg.$tag.${side%%:*}" 2>/dev/null |
			awk -v n="$calls" '/PROGRAM TOTALS/ { gsub(",", "", $1); printf "%.1f ", $1 / n; f = 1 }
				END { if (!f) printf "null " }'
	done
}

# figure name, bench, jq path (one line each)
figures=(
	"lutfd CPU/call io_uring (ns)|ingress|.uring.lutfd_cpu_ns_per_call"
	"worker CPU/call io_uring (ns)|ingress|.uring.worker_cpu_ns_per_call"
	"lutfd CPU/call epoll (ns)|ingress|.epoll.lutfd_cpu_ns_per_call"
	"worker CPU/call epoll (ns)|ingress|.epoll.worker_cpu_ns_per_call"
	"lutfd syscalls/call io_uring|ingress|.uring.lutfd_main_syscalls_per_call"
	"lutfd slices/call io_uring|ingress|.uring.lutfd_slices_per_call"
	"invokes/server CPU-s io_uring|ingress|.uring.invokes_per_server_cpu_s"
	"invokes/s io_uring|ingress|.uring.invokes_per_s"
	"invokes/s epoll|ingress|.epoll.invokes_per_s"
)
if [ $only = 0 ]; then
	figures+=(
		"daemon invoke median (ns)|daemon|.roundtrip.invoke.median_ns"
		"dispatch (b) invoke median (ns)|dispatch|.cases.invoke.median_ns"
		"dispatch (c) calls/s, 64 in flight|dispatch|.cases.async64.calls_per_s"
	)
	benches=(ingress dispatch daemon)
else
	benches=(ingress)
fi

ibase="" inew=""
if [ $instr = 1 ]; then
	for t in valgrind callgrind_annotate cc; do
		command -v $t >/dev/null || { echo "cost.sh: needs $t (or --no-instructions)" >&2; exit 1; }
	done
	echo "cost.sh: engine instructions per call (callgrind, $calls calls each)" >&2
	ibase=$(engine_instr "$base" base) && inew=$(engine_instr "$new" new) ||
		{ echo "cost.sh: the instruction count failed" >&2; exit 1; }
fi

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
if [ "$timed" -gt 0 ]; then
	command -v cc >/dev/null || { echo "cost.sh: --engine-timed needs cc" >&2; exit 1; }
	engine_bin "$base" base && engine_bin "$new" new ||
		{ echo "cost.sh: cannot build cost_engine" >&2; exit 1; }
	echo "cost.sh: $timed interleaved engine timings (sync, async)" >&2
	for ((i = 1; i <= timed; i++)); do
		if ((RANDOM % 2)); then order=(base new); else order=(new base); fi
		for t in "${order[@]}"; do
			for m in sync async; do
				"$out/cost_engine.$t" --time $m >"$out/timed.$m.$t.$i" 2>"$out/timed.$m.$t.$i.err" ||
					{ echo "cost.sh: cost_engine.$t --time $m failed:" >&2; tail -3 "$out/timed.$m.$t.$i.err" >&2; exit 1; }
			done
		done
	done
fi
for ((i = 1; i <= rounds; i++)); do
	if ((i % 2)); then order=("base:$base" "new:$new"); else order=("new:$new" "base:$base"); fi
	for v in "${order[@]}"; do
		for p in "${benches[@]}"; do
			echo "cost.sh: round $i/$rounds ${v%%:*} $p" >&2
			"${v#*:}/bench/$p" --json >"$out/$p.${v%%:*}.$i.json" 2>"$out/$p.${v%%:*}.$i.err" ||
				{ echo "cost.sh: ${v#*:}/bench/$p failed:" >&2; tail -5 "$out/$p.${v%%:*}.$i.err" >&2; exit 1; }
		done
	done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

median() { sort -g | awk '{v[NR]=$1} END {if (!NR) {print "null"; exit} if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

rows=()
if [ -n "$ibase" ]; then
	read -r -a ib <<<"$ibase"
	read -r -a in <<<"$inew"
	inames=("engine instr/call: front (submit, reap)" "engine instr/call: worker (call_function)")
	for k in 0 1; do
		r=$(awk -v a="${in[$k]}" -v b="${ib[$k]}" 'BEGIN {print (b > 0 ? a / b : 0)}')
		rows+=("${inames[$k]}|${ib[$k]}|${in[$k]}|$r|$r")
	done
fi
timed_row() { # name mode
	local bs=() ns=() rs=() i b n
	for ((i = 1; i <= timed; i++)); do
		b=$(cat "$out/timed.$2.base.$i") n=$(cat "$out/timed.$2.new.$i")
		bs+=("$b") ns+=("$n")
		rs+=("$(awk -v a="$n" -v b="$b" 'BEGIN {print (b > 0 ? a / b : 0)}')")
	done
	rows+=("$1|$(printf '%s\n' "${bs[@]}" | median)|$(printf '%s\n' "${ns[@]}" | median)|$(printf '%s\n' "${rs[@]}" | median)|${rs[*]}")
}
if [ "$timed" -gt 0 ]; then
	timed_row "engine (b) sync invoke median (ns)" sync
	timed_row "engine (c) calls/s, 64 in flight" async
fi
for f in "${figures[@]}"; do
	[ "$rounds" -gt 0 ] || break
	IFS='|' read -r name p path <<<"$f"
	bs=() ns=() rs=()
	for ((i = 1; i <= rounds; i++)); do
		b=$(jq -r "$path // empty" "$out/$p.base.$i.json")
		n=$(jq -r "$path // empty" "$out/$p.new.$i.json")
		[ -n "$b" ] && [ -n "$n" ] || continue
		bs+=("$b") ns+=("$n")
		rs+=("$(awk -v a="$n" -v b="$b" 'BEGIN {print (b > 0 ? a / b : 0)}')")
	done
	mb=$(printf '%s\n' "${bs[@]}" | median)
	mn=$(printf '%s\n' "${ns[@]}" | median)
	mr=$(printf '%s\n' "${rs[@]}" | median)
	rows+=("$name|$mb|$mn|$mr|${rs[*]}")
done

if [ $json = 1 ]; then
	{
		printf '{"rounds": %d, "load_start": "%s", "load_end": "%s", "figures": [' \
			"$rounds" "$load_start" "$load_end"
		sep=""
		for r in "${rows[@]}"; do
			IFS='|' read -r name mb mn mr all <<<"$r"
			printf '%s{"name": "%s", "base": %s, "new": %s, "ratio": %s, "ratios": [%s]}' \
				"$sep" "$name" "$mb" "$mn" "$mr" "$(echo "$all" | tr ' ' ',')"
			sep=", "
		done
		printf ']}\n'
	} | jq .
else
	echo "cost.sh: $rounds interleaved rounds, base $base, new $new"
	echo "load average: $load_start at the start, $load_end at the end"
	printf '%-42s %14s %14s %8s  %s\n' figure base new new/base "per-round ratios"
	for r in "${rows[@]}"; do
		IFS='|' read -r name mb mn mr all <<<"$r"
		printf '%-42s %14s %14s %8s  %s\n' "$name" "$(printf '%.1f' "$mb" 2>/dev/null || echo -)" \
			"$(printf '%.1f' "$mn" 2>/dev/null || echo -)" "$(printf '%.3f' "$mr" 2>/dev/null || echo -)" \
			"$(for x in $all; do printf '%.2f ' "$x" 2>/dev/null || printf -- '- '; done)"
	done
fi
