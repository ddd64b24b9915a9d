#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (AddressSanitizer and
# UndefinedBehaviorSanitizer) into ./build-fuzz and runs each on its corpus:
#
#   scripts/fuzz.sh [--seconds N] [--only fuzz_frames,...] [--merge]
#
#   --seconds N  how long each target runs (default 20: the bounded slice the
#                test command runs; an hour or a night: --seconds 3600)
#   --only LIST  these targets only (default: all four)
#   --merge      afterwards, add what the runs found that covers new code to
#                the checked-in corpus (tests/fuzz/corpus/TARGET), minimised
#
# The checked-in corpus is read, never written (except with --merge); new
# inputs go to build-fuzz/corpus/TARGET. A crash, a sanitizer report, a leak,
# an input that takes over 10 s or 2 GiB fails the run (exit 1): the input is
# in build-fuzz/crashes/TARGET/, to become a regression test (docs/RELIABILITY.md).
# One line per target gives its executions and their rate.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=20
only="fuzz_frames,fuzz_parsing,fuzz_guest_session,fuzz_host_session"
merge=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --merge) merge=1; shift ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fuzz.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ $seconds =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: --seconds needs a positive number" >&2; exit 2; }

cxx=$(command -v clang++-14 || command -v clang++ || true)
if [[ -z $cxx ]]; then
  echo "fuzz.sh: clang is not installed (scripts/install-deps.sh installs clang-14)" >&2
  exit 1
fi

IFS=, read -r -a targets <<<"$only"
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER="$cxx" \
  -DMANY_LEVEL_BUILD_TESTS=OFF -DMANY_LEVEL_BUILD_EXAMPLES=OFF -DMANY_LEVEL_BUILD_INSPECTOR=OFF \
  -DMANY_LEVEL_BUILD_FUZZERS=ON >/dev/null
build_args=()
for target in "${targets[@]}"; do build_args+=(--target "$target"); done
cmake --build build-fuzz -j"$(nproc)" "${build_args[@]}"

failed=0
for target in "${targets[@]}"; do
  work=build-fuzz/corpus/$target
  crashes=build-fuzz/crashes/$target
  log=build-fuzz/$target.log
  mkdir -p "$work" "$crashes"
  status=0
  "build-fuzz/tests/fuzz/$target" "$work" "tests/fuzz/corpus/$target" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
    -artifact_prefix="$crashes/" -print_final_stats=1 >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  if [[ $status -ne 0 ]]; then
    echo "fuzz.sh: $target FAILED (status $status) after ${runs:-?} executions; the input is in $crashes/:" >&2
    grep -E "ERROR|SUMMARY|runtime error|what\(\)" "$log" | head -n 10 >&2 || true
    failed=1
    continue
  fi
  echo "fuzz.sh: $target: ${runs:-0} executions in ${seconds} s ($(( ${runs:-0} / seconds ))/s), no failure"
  if [[ $merge -eq 1 ]]; then
    "build-fuzz/tests/fuzz/$target" -merge=1 "tests/fuzz/corpus/$target" "$work" >>"$log" 2>&1
  fi
done
exit "$failed"
