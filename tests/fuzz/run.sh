#!/bin/sh
# SPDX-License-Identifier: MIT
# Build the front's libFuzzer target with clang-14 (ASan + UBSan) and run it.
#   tests/fuzz/run.sh [SECONDS] [OUTDIR]
# SECONDS defaults to 60 (CI); 0 runs until stopped. New inputs go to
# OUTDIR/corpus (default build-fuzz/), never into the committed seeds; a
# crash, hang (10 s per input) or sanitizer report exits non-zero and
# leaves the input in OUTDIR.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
secs=${1:-60}
out=${2:-$root/build-fuzz}
cc=${CC_FUZZ:-clang-14}

command -v "$cc" >/dev/null || { echo "fuzz: $cc not found (apt-get install clang-14 libclang-rt-14-dev)" >&2; exit 1; }
mkdir -p "$out/corpus"
out=$(cd "$out" && pwd) # absolute: the run below changes folder
rt=$root/userspace/runtime
"$cc" -g -O1 -std=gnu11 -D_GNU_SOURCE \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-I"$root/include" -I"$rt" -I"$root/userspace/labor_watch" -I"$root" \
	"$here/fuzz_front.c" "$here/lw_stub.c" "$rt"/*.c \
	-pthread -ldl -o "$out/fuzz_front"
echo "fuzz: running $out/fuzz_front for ${secs}s"
cd "$out"
exec ./fuzz_front -max_total_time="$secs" -timeout=10 -max_len=4096 -rss_limit_mb=2048 \
	-print_final_stats=1 "$out/corpus" "$here/corpus"
