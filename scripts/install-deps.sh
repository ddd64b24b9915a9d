#!/usr/bin/env bash
# Installs what building and testing many-level needs on Debian 12, and only
# what is missing: a second run changes nothing and needs no network.
set -euo pipefail

packages=(
  build-essential cmake pkg-config python3
  libsqlite3-dev sqlite3
  libssl-dev openssl
  libprotobuf-dev protobuf-compiler
  nlohmann-json3-dev
  libgtest-dev libgmock-dev
  qt6-base-dev libgl-dev
  clang-14 libclang-rt-14-dev
  nodejs npm
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    # A newer Node.js from elsewhere serves as well as Debian's.
    if [[ $package == nodejs || $package == npm ]] && command -v "${package/nodejs/node}" >/dev/null; then
      continue
    fi
    missing+=("$package")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: everything is already installed"
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
