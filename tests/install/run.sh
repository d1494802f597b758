#!/usr/bin/env bash
# Installs the build tree into a scratch prefix and builds tests/install/consumer
# against it twice: with CMake's find_package(xproc), and with pkg-config; and a C
# program using only <xproc/ring.h>, with pkg-config.
# Usage: run.sh BUILD_DIR [extra compiler/linker flags, e.g. sanitizer flags]
set -euo pipefail
build=$1
extra=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/xproc-install-test.XXXXXX)
trap 'rm -rf "$work"' EXIT

cmake --install "$build" --prefix "$work/prefix" >/dev/null
expect() { [ -e "$work/prefix/$1" ] || { echo "install: $1 is missing from the installed tree" >&2; exit 1; }; }
expect share/man/man7/xproc.7
expect include/xproc/maps.hpp
expect include/xproc/ring.h
expect include/xproc/channel.hpp
expect share/man/man3/xproc_ring.3
if [ -f "$build/tools/xpmap/xpmap" ]; then
  expect bin/xpmap
  expect share/man/man1/xpmap.1
fi

echo "-- find_package(xproc)"
cmake -S "$here/consumer" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_C_FLAGS="$extra" -DCMAKE_CXX_FLAGS="$extra" -DCMAKE_EXE_LINKER_FLAGS="$extra" >/dev/null
cmake --build "$work/cmake-build" >/dev/null
"$work/cmake-build/ring_c"
"$work/cmake-build/consumer"

pcdir=$(dirname "$(find "$work/prefix" -name xproc.pc | head -n1)")
libdir=$(PKG_CONFIG_PATH=$pcdir pkg-config --variable=libdir xproc)
# A static libxproc.a needs its private dependencies (libunwind, libstdc++) on the link line:
# pkg-config gives them with --static (Requires.private, Libs.private).
pc_static=""
if [ -e "$libdir/libxproc.a" ] && [ ! -e "$libdir/libxproc.so" ]; then
  pc_static="--static"
fi

# Before the second C++ consumer: the test passes on two "consumer ok" lines, so a
# failure here (set -e) must happen before the second one is printed.
echo "-- C program, pkg-config xproc"
c_flags=$(PKG_CONFIG_PATH=$pcdir pkg-config $pc_static --cflags --libs xproc)
# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra -Werror -pedantic $extra "$here/consumer/ring_c.c" $c_flags \
  -Wl,-rpath,"$libdir" -o "$work/ring-c"
"$work/ring-c"

echo "-- pkg-config xproc"
flags=$(PKG_CONFIG_PATH=$pcdir pkg-config $pc_static --cflags --libs xproc)
# shellcheck disable=SC2086
c++ -std=c++23 $extra "$here/consumer/main.cpp" $flags -Wl,-rpath,"$libdir" -o "$work/pc-consumer"
"$work/pc-consumer"
