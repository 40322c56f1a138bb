#!/usr/bin/env bash
# Build lutf and run its main job. Until the daemon lands this is the engine
# in one process: run_local loads the example apps (hello, pi, sleep) and
# invokes them through Bricks, Carts and Labors.
# Usage: sudo scripts/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DLUTF_TESTS=OFF >/dev/null
cmake --build build/release -j"$(nproc)" >/dev/null
echo "built in build/release; running the example apps in-process:"
exec build/release/examples/run_local build/release/examples
