#!/usr/bin/env bash
# Build lutf and run every test: the normal build (warnings are errors) with
# all CTest labels, the same tests again with each fallback forced, the unit
# tests under ASan+UBSan (and the hostile suite against that lutfd), the
# lock-free stress tests under TSan, and the region fuzzer.
# Every phase runs, whatever the ones before it did; a table of the phases
# (passed, failed, skipped, seconds) ends the run, and the exit status is 1
# when any phase failed. A phase's failing tests print their assertion and
# file:line (ctest --output-on-failure).
# Usage (root: BPF and the daemon tests need it; another user goes through
# sudo): scripts/test.sh
set -uo pipefail
. "$(dirname "$0")/as_root.sh"
lutf_as_root "$@"
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc)

bash scripts/deps.sh || exit 1
mkdir -p build

rows=()	      # "phase|passed|failed|skipped|seconds"
declare -A broken # build dirs whose build failed
total_pass=0 total_fail=0 total_skip=0 any_failed=0

# build DIR [CMAKE ARGS...]: configure and build DIR (a phase of its own).
build() {
	local dir=$1
	shift
	if cmake -S "$root" -B "$dir" -DLUTF_WERROR=ON "$@" >"$dir.cmake.log" 2>&1 &&
		nice cmake --build "$dir" -j"$jobs" >>"$dir.cmake.log" 2>&1; then
		unset "broken[$dir]"
		return 0
	fi
	broken[$dir]=1
	tail -40 "$dir.cmake.log"
	echo "build of $dir failed (whole log: $dir.cmake.log)"
	return 1
}

# tests DIR [VAR=VALUE...] [CTEST ARGS...]: ctest in DIR with those variables.
tests() {
	local dir=$1 vars=()
	shift
	while [ $# -gt 0 ] && [[ $1 == [A-Z_]*=* ]]; do
		vars+=("$1")
		shift
	done
	if [ -n "${broken[$dir]:-}" ]; then
		echo "not run: the build of $dir failed"
		return 1
	fi
	(cd "$dir" && env "${vars[@]}" ctest --output-on-failure "$@")
}

# phase NAME COMMAND...: run one phase, whatever happened before, and count
# it: ctest's own counts when it ran ctest, else 1 passed or 1 failed.
phase() {
	local name=$1 log rc start pass fail skip
	shift
	printf '\n==== %s\n' "$name"
	log=$(mktemp)
	start=$SECONDS
	"$@" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	if summary=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" |
		tail -1) && [ -n "$summary" ]; then
		read -r fail all < <(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1 \2/' \
			<<<"$summary")
		skip=$(grep -cE '^[[:space:]]*[0-9]+ - .*\(Skipped\)' "$log")
		pass=$((all - fail - skip))
		[ "$rc" -ne 0 ] && [ "$fail" -eq 0 ] && fail=1 # ctest failed otherwise
	elif [ "$rc" -eq 0 ]; then
		pass=1 fail=0 skip=0
	else
		pass=0 fail=1 skip=0
	fi
	rm -f "$log"
	[ "$fail" -gt 0 ] && any_failed=1
	total_pass=$((total_pass + pass)) total_fail=$((total_fail + fail))
	total_skip=$((total_skip + skip))
	rows+=("$name|$pass|$fail|$skip|$((SECONDS - start))")
}

# One line per phase; add a phase as one more line.
phase "build (RelWithDebInfo, -Werror)" build build/ci
phase "all tests" tests build/ci -j1
# The fallback phases rerun what the fallback changes (the engine and lutfd
# without BPF; lutfd's and the gateway's traffic on epoll), not the quick
# benchmark smoke runs (bench_*), which the first phase has run.
phase "BPF refused: engine, daemon" tests build/ci LUTF_LABOR_WATCH=off -L 'engine|daemon' -E '^bench_'
phase "epoll ingress: daemon, http" tests build/ci LUTF_INGRESS=epoll -L 'daemon|http' -E '^bench_'
phase "build ASan+UBSan" build build/asan -DLUTF_ASAN=ON -DLUTF_BENCH=OFF
phase "ASan+UBSan: engine" tests build/asan ASAN_OPTIONS=detect_leaks=1 -L engine
phase "ASan+UBSan lutfd: hostile" tests build/asan ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 -L hostile
phase "build TSan" build build/tsan -DLUTF_TSAN=ON -DLUTF_BENCH=OFF
phase "TSan: stress" tests build/tsan TSAN_OPTIONS=halt_on_error=1

phase "libFuzzer: the front's region readers, 60 s" tests/fuzz/run.sh 60 build/fuzz

printf '\n==== summary\n'
printf '%-40s %7s %7s %7s %6s\n' phase passed failed skipped secs
for row in "${rows[@]}"; do
	IFS='|' read -r name pass fail skip secs <<<"$row"
	printf '%-40s %7s %7s %7s %6s%s\n' "$name" "$pass" "$fail" "$skip" "$secs" \
		"$([ "$fail" -gt 0 ] && echo '  FAILED')"
done
echo "total: $total_pass passed, $total_fail failed, $total_skip skipped"
exit $any_failed
