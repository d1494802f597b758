#!/usr/bin/env bash
# Runs every libFuzzer target of a fuzz build for SECONDS each.
#
#   scripts/run-fuzz.sh BUILD_DIR SECONDS      (make fuzz FUZZ_SECONDS=N does the build first)
#
# Each target <name>_fuzz starts from the seed corpus tests/fuzz/corpus/<name>/,
# copied to BUILD_DIR/fuzz-corpus/<name>/ so the inputs a run adds never touch
# the source tree, with tests/fuzz/<name>.dict as its dictionary if there is one.
# A crash leaves its input in BUILD_DIR/fuzz-artifacts/<name>/ and makes this
# script fail. Prints the number of executions of each target.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR SECONDS" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
seconds=$2
case $seconds in
  '' | *[!0-9]*) echo "run-fuzz: SECONDS must be a whole number, not '$seconds'" >&2; exit 2 ;;
esac
src=$(cd "$(dirname "$0")/.." && pwd)

mapfile -t targets < <(find "$build/tests/fuzz" -maxdepth 1 -type f -name '*_fuzz' -perm -u+x 2>/dev/null | sort)
if [ ${#targets[@]} -eq 0 ]; then
  echo "run-fuzz: no *_fuzz programs in $build/tests/fuzz (configure with -DXPROC_FUZZ=ON and build)" >&2
  exit 1
fi

status=0
total=0
for target in "${targets[@]}"; do
  name=$(basename "$target" _fuzz)
  corpus="$build/fuzz-corpus/$name"
  artifacts="$build/fuzz-artifacts/$name"
  mkdir -p "$corpus" "$artifacts"
  if [ -d "$src/tests/fuzz/corpus/$name" ]; then
    cp -n "$src/tests/fuzz/corpus/$name"/* "$corpus"/ 2>/dev/null || true
  fi
  dict=()
  if [ -f "$src/tests/fuzz/$name.dict" ]; then
    dict=(-dict="$src/tests/fuzz/$name.dict")
  fi
  log="$build/fuzz-$name.log"
  echo "run-fuzz: $name for ${seconds}s (corpus $corpus, log $log)"
  rc=0
  # -rss_limit_mb: a 2-core, 24 GiB machine; -max_len: room for a several-mapping smaps.
  "$target" -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=4096 -max_len=16384 \
    -artifact_prefix="$artifacts/" "${dict[@]}" "$corpus" >"$log" 2>&1 || rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  runs=${runs:-0}
  total=$((total + runs))
  cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[^ ]+' "$log" | tail -1 || true)
  if [ $rc -ne 0 ]; then
    echo "run-fuzz: $name FAILED (exit $rc) after $runs executions; input in $artifacts/, last lines of the log:"
    tail -40 "$log"
    status=1
  else
    echo "run-fuzz: $name ok: $runs executions in ${seconds}s ($cov)"
  fi
done
echo "run-fuzz: $total executions in total"
exit $status
