#!/usr/bin/env bash
# `make demo`: the tour of xproc on a fresh machine. Starts the example program
# examples/memory_tour, which reads its own map through the library, then shows
# its memory map through xpmap, the pmap-compatible tool, then peeks into its
# memory with xpeek, gdb's memory commands without stopping it.
set -euo pipefail
BUILD=${1:-build}
tour=$BUILD/examples/memory_tour
xpmap=$BUILD/tools/xpmap/xpmap
xring=$BUILD/tools/xring/xring
xpeek=$BUILD/tools/xpeek/xpeek
xstack=$BUILD/tools/xstack/xstack

fifo=$(mktemp -u /tmp/xproc-demo.XXXXXX)
mkfifo "$fifo"
"$tour" --wait >"$fifo" &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$fifo"; }
trap cleanup EXIT

echo "== 1. examples/memory_tour reads its own memory map with the xproc library:"
while IFS= read -r line; do
  [ "$line" = ready ] && break
  echo "   $line"
done <"$fifo"

echo
echo "== 2. xpmap -x $pid: the same process seen from outside, in procps pmap's -x format"
echo "   (Kbytes = size, RSS = resident, Dirty = modified pages; [ anon ] has no file)"
echo
"$xpmap" -x "$pid"
echo
echo "== 3. xpmap --by-file --top 5 $pid: totals per backing file, what pmap cannot do"
echo
"$xpmap" --by-file --top 5 "$pid"
echo
echo "== 4. xring bench: a million 64-byte messages from one process to another,"
echo "   through an xproc shared-memory ring and through a pipe (each message checked)"
echo
json=$("$xring" bench --transport ring_copy_adaptive --transport pipe --messages 1000000 --size 64 \
  --throughput-only --json)
python3 -c '
import json, sys
report = json.loads(sys.argv[1])
rate = {m["transport"]: m["messages_per_second"] for m in report["measurements"] if m["status"] == "ok"}
ring, pipe = rate.get("ring_copy_adaptive"), rate.get("pipe")
print("   xproc ring (copy API, adaptive waits): %6.2f M msgs/s" % (ring / 1e6))
print("   pipe (one write per message):          %6.2f M msgs/s" % (pipe / 1e6))
print("   the ring moved them %.1fx faster" % (ring / pipe))
' "$json"
echo
echo "== 5. xpeek -batch -ex CMD... $pid: gdb's memory commands on the running tour, which keeps running"
echo "   (its globals tour_answer and tour_motto, then every copy of the motto's words)"
echo
"$xpeek" -batch -ex 'info address tour_answer' -ex 'x/dw &tour_answer' -ex 'x/s tour_motto' \
  -ex 'find -all "seen from"' "$pid" | sed 's/^/   /'
echo "   (state of $pid after the reads: $(awk '{print $3}' "/proc/$pid/stat"), as before: never stopped)"
echo
echo "== 6. xstack -v $pid: every thread's stack, in eu-stack's format; the tour is stopped only"
echo "   while its registers and stacks are copied (the time is on the last line)"
echo
"$xstack" -v "$pid" 2>&1 | sed 's/^/   /'
echo "   (state of $pid afterwards: $(awk '{print $3}' "/proc/$pid/stat"), running again)"
echo
echo "Next: 'make test' runs the whole suite; 'man -l man/xpmap.1', 'man -l man/xpeek.1', 'man -l man/xstack.1' for every option."
