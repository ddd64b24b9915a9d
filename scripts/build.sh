#!/usr/bin/env bash
# Configures and builds into ./build (BUILD_DIR overrides it): everything
# (tests, examples, the Inspector when Qt 6 is there), or only the targets
# named as arguments. Incremental on a second run. BUILD_TYPE picks the
# CMake build type (RelWithDebInfo by default).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" ${CMAKE_ARGS:-} >/dev/null
targets=()
for target in "$@"; do targets+=(--target "$target"); done
cmake --build "$build_dir" -j"$(nproc)" "${targets[@]}"
