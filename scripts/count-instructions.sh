#!/usr/bin/env bash
# Instructions per packet through the dataplane pipeline (one flow, 64-byte packets), counted by
# callgrind: repeatable whatever else the machine is doing, unlike timings (docs/performance.md).
#   usage: scripts/count-instructions.sh [--by-file] [l2|ipip|dscp|l2-v6|ipip-v6|dscp-v6 ...]  (default: all six)
#   --by-file: also where they go, per packet by source file (inlined code counts in the file it
#   came from: the profile docs/performance.md quotes).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
BENCH=$(cargo bench -p dataplane --bench pipeline --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)
OUT=$(mktemp /tmp/dsrlb-callgrind.XXXXXX)
trap 'rm -f "$OUT"' EXIT
PACKETS=320000
BY_FILE=0
if [ "${1:-}" = "--by-file" ]; then BY_FILE=1; shift; fi
for mode in "${@:-l2 ipip dscp l2-v6 ipip-v6 dscp-v6}"; do
  for m in $mode; do
    # Count only while inside Worker::process_burst (and what it calls): the program total is
    # then that function's inclusive cost, whatever inlining did to the per-function listing.
    valgrind --tool=callgrind --toggle-collect='*Worker*process_burst*' --callgrind-out-file="$OUT" \
      "$BENCH" --profile 1 "$PACKETS" "$m" >/dev/null 2>&1
    # The bench rounds PACKETS down to whole bursts of 32 and adds one warm-up burst.
    callgrind_annotate "$OUT" 2>/dev/null | grep "PROGRAM TOTALS" |
      awk -v m="$m" -v n=$((PACKETS / 32 * 32 + 32)) '{gsub(",", "", $1);
        printf "%s: %.0f instructions per packet through Worker::process_burst (one flow)\n", m, $1 / n}'
    if [ $BY_FILE = 1 ]; then
      callgrind_annotate "$OUT" 2>/dev/null | sed -n '/file:function/,/^$/p' | grep -E '^ *[0-9,]+ ' |
        awk -v n=$((PACKETS / 32 * 32 + 32)) '{c=$1; gsub(",", "", c); for (i = 2; i <= NF; i++) if ($i ~ /:/) { f = $i; break }; sub(/:.*/, "", f);
          sub(/.*library\//, "std/", f); sub(/\/src\/..\/..\/stdarch\/crates\/core_arch/, "/arch", f); if (c / n >= 0.5) printf "  %6.1f  %s\n", c / n, f}'
    fi
  done
done
