#!/usr/bin/env bash
# Build lutf and run every test: the normal build (warnings are errors) with
# all CTest labels, the same tests again with each fallback forced, the unit
# tests under ASan+UBSan (and the hostile suite against that lutfd), and the
# lock-free stress tests under TSan.
# Usage: sudo scripts/test.sh   (root: BPF and the daemon tests need it)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc)

bash scripts/deps.sh

step() { printf '\n==== %s\n' "$*"; }

# The ingress fallback test sets kernel.io_uring_disabled=2 for a moment and
# restores it; should that test die in between, put the host's value back.
uring_sysctl=/proc/sys/kernel/io_uring_disabled
if [ -w "$uring_sysctl" ]; then
	uring_saved=$(cat "$uring_sysctl")
	trap 'echo "$uring_saved" >"$uring_sysctl"' EXIT
fi

build() { # dir, cmake args...
	local dir=$1
	shift
	cmake -S "$root" -B "$dir" -DLUTF_WERROR=ON "$@" >/dev/null
	cmake --build "$dir" -j"$jobs" >/dev/null
}

step "build (Release with debug info, -Werror)"
build build/ci
step "all tests"
(cd build/ci && ctest --output-on-failure -j1)
step "engine and daemon tests again with BPF refused (polling fallback forced)"
(cd build/ci && LUTF_LABOR_WATCH=off ctest --output-on-failure -L 'engine|daemon')

step "daemon, HTTP and tier tests again on the epoll ingress backend (ingress tests run on both already)"
(cd build/ci && LUTF_INGRESS=epoll ctest --output-on-failure -L 'daemon|http|tiers')

step "ASan+UBSan build: unit and stress tests"
build build/asan -DLUTF_ASAN=ON -DLUTF_BENCH=OFF
(cd build/asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -L engine)

step "ASan+UBSan lutfd: the hostile suite (a tenant writing its own region; any sanitizer report fails it)"
(cd build/asan && ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ctest --output-on-failure -L hostile)

step "TSan build: lock-free stress tests"
build build/tsan -DLUTF_TSAN=ON -DLUTF_BENCH=OFF
(cd build/tsan && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure)

step "libFuzzer: the front's region readers, 60 s (clang-14, ASan+UBSan; tests/fuzz/run.sh)"
tests/fuzz/run.sh 60 build/fuzz

step "all test runs passed"
