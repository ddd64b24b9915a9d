#!/usr/bin/env bash
# Configures and builds everything (library checks, tests, examples, the
# Inspector when Qt 6 is there) into ./build. Incremental on a second run.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" >/dev/null
cmake --build build -j"$(nproc)"
