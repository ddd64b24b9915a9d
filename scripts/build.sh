#!/usr/bin/env bash
# Configures and builds into ./build: everything (tests, examples, the
# Inspector when Qt 6 is there), or only the targets named as arguments.
# Incremental on a second run.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" >/dev/null
targets=()
for target in "$@"; do targets+=(--target "$target"); done
cmake --build build -j"$(nproc)" "${targets[@]}"
