#!/usr/bin/env bash
# Runs every test from a fresh Debian 12 machine or an existing checkout:
# installs what is missing, builds, checks the single header, then runs the
# unit, contract, interop (real Node many-level from npm) and Inspector tests
# and a short benchmark smoke run, all through CTest, and last a bounded
# fuzzing slice (scripts/fuzz.sh: 20 s a target; longer runs are opt-in).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
bash scripts/install-node-packages.sh

# Tests build with light optimisation and no debug info: on a 2-core machine
# compile time is most of the run. Benchmarks use ./build (RelWithDebInfo).
BUILD_DIR=build-tests BUILD_TYPE=Debug CMAKE_ARGS="-DCMAKE_CXX_FLAGS_DEBUG=-O1" bash scripts/build.sh

python3 amalgamate.py --check

(cd build-tests && ctest --output-on-failure -j"$(nproc)" --timeout 900)

bash scripts/fuzz.sh --seconds 20
