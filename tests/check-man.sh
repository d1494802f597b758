#!/usr/bin/env bash
# Renders one man page with groff, all warnings on; any warning fails the test.
set -euo pipefail
page=$1
warnings=$(groff -man -Tutf8 -ww -z "$page" 2>&1 >/dev/null)
if [ -n "$warnings" ]; then
  echo "$warnings"
  exit 1
fi
# man -l must also format it (the way users read it); MANWIDTH keeps line breaking stable.
out=$(MANWIDTH=80 man -l "$page" 2>&1 >/dev/null)
if [ -n "$out" ]; then
  echo "$out"
  exit 1
fi
echo "$(basename "$page"): renders cleanly"
