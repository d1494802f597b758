#!/usr/bin/env bash
# Installs every package xproc's build, tests and benchmarks need (Debian 12).
# Idempotent: when everything is present it changes nothing and says so.
# Usable as root or through sudo. `--check` only reports what is missing (exit 1 if any).
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git
  clang-19 libclang-rt-19-dev   # libFuzzer targets (-DXPROC_FUZZ=ON); clang 14 cannot compile <expected>
  clang-format
  libboost-dev          # Boost.Interprocess (header-only)
  libunwind-dev         # remote unwinding (replaces LLVM's libunwind-14-dev: expected)
  libcli11-dev          # every tool's command line
  libgtest-dev libgmock-dev googletest
  libbenchmark-dev      # bench/
  libzmq3-dev           # ring benchmark peer: ZeroMQ ipc://
  iceoryx libiceoryx-posh-dev   # ring benchmark peer: iceoryx (iox-roudi daemon, posh library)
  procps                # pmap: the reference xpmap is compared against
  libcap2-bin           # setcap: the no_new_privs + file capability access test
  libedit-dev           # xpeek's line editing and history (BSD licence, unlike GNU readline's GPL)
  gdb
  libc6-dbg             # libc's full symbol table: names of its static functions in xstack/xpeek backtraces, as gdb shows them
  elfutils              # xstack's benchmark peer (eu-stack)
  python3               # a target kind in the integration tests
  groff-base man-db     # man pages are rendered by a test
  g++-aarch64-linux-gnu # CI: the aarch64 code paths compile (scripts/check-aarch64.sh)
)

missing=()
for p in "${PACKAGES[@]}"; do
  # "install ok installed" is the only state that counts as present.
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "install-deps: missing: ${missing[*]}"
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: not root and no sudo: install ${missing[*]} by hand" >&2; exit 1; }
  SUDO=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
