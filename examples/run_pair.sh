#!/usr/bin/env bash
# Runs a consumer example and a producer example as two processes, the way a user would:
# the consumer creates the ring and prints "ready", then the producer sends COUNT
# messages. Succeeds when both exit 0 and the consumer received all COUNT messages.
# Usage: run_pair.sh CONSUMER PRODUCER [COUNT]
set -uo pipefail
consumer=$1
producer=$2
count=${3:-100}
name=/xproc-example-$$
out=$(mktemp /tmp/xproc-example.XXXXXX)
consumer_pid=
cleanup() {
  [ -n "$consumer_pid" ] && kill "$consumer_pid" 2>/dev/null
  rm -f "$out" "/dev/shm$name"
}
trap cleanup EXIT

"$consumer" "$name" >"$out" &
consumer_pid=$!
for _ in $(seq 200); do
  grep -qx ready "$out" && break
  kill -0 "$consumer_pid" 2>/dev/null || break
  sleep 0.05
done
rc=0
"$producer" "$name" "$count" || rc=$?
if [ "$rc" -ne 0 ]; then
  kill "$consumer_pid" 2>/dev/null
fi
wait "$consumer_pid" || rc=$?
consumer_pid=
cat "$out"
if [ "$rc" -ne 0 ]; then
  echo "run_pair: failed (exit status $rc)" >&2
  exit 1
fi
grep -qx "received $count messages.*" "$out"
