#!/usr/bin/env bash
# The aarch64 code paths (registers, breakpoints, stack snapshots) are not built on the x86-64
# machines we test on. This compiles the library and the tools for aarch64 with Debian's cross
# compiler (g++-aarch64-linux-gnu, from scripts/install-deps.sh), syntax and warnings only
# (-fsyntax-only -Werror): no aarch64 libraries are needed. unwind.cpp is left out: libunwind's
# header is per architecture and Debian ships the aarch64 one only in libunwind-dev:arm64.
set -euo pipefail
cd "$(dirname "$0")/.."
CXX=${CXX_AARCH64:-aarch64-linux-gnu-g++}
command -v "$CXX" >/dev/null || { echo "check-aarch64: $CXX not found: run scripts/install-deps.sh" >&2; exit 1; }

# Header-only dependencies, taken from the host without its (x86-64) C library headers.
inc=$(mktemp -d)
trap 'rm -rf "$inc"' EXIT
for d in boost CLI editline; do
  ln -s "/usr/include/$d" "$inc/$d"
done

files=$(git ls-files 'lib/src/*.cpp' 'tools/*.cpp' | grep -v '^lib/src/unwind\.cpp$')
printf '%s\n' $files | xargs -P "$(nproc)" -I{} \
  "$CXX" -std=c++23 -fsyntax-only -Wall -Wextra -Werror \
  -Ilib/include -Ilib/src -Ibench/ipc -isystem "$inc" {}
echo "check-aarch64: $(echo $files | wc -w) files compile for aarch64"
