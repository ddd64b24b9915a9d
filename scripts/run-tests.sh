#!/usr/bin/env bash
# Runs every test from a fresh Debian 12 machine or an existing checkout:
# installs what is missing, builds, checks the single header, then runs the
# unit, contract, interop (real Node many-level from npm) and Inspector tests
# and a short benchmark smoke run, all through CTest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
bash scripts/install-node-packages.sh
bash scripts/build.sh

python3 amalgamate.py --check

cd build
ctest --output-on-failure -j"$(nproc)" --timeout 900
