#!/usr/bin/env bash
# Instructions per packet through the dataplane pipeline (l2, one flow), counted by callgrind:
# repeatable whatever else the machine is doing, unlike timings (docs/performance.md).
#   usage: scripts/count-instructions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
BENCH=$(cargo bench -p dataplane --bench pipeline --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)
OUT=$(mktemp /tmp/dsrlb-callgrind.XXXXXX)
valgrind --tool=callgrind --callgrind-out-file="$OUT" "$BENCH" --profile >/dev/null 2>&1
# --profile runs 320 032 packets through Worker::process_burst.
callgrind_annotate --inclusive=yes "$OUT" | grep -E "Worker::process_burst \[" | head -1 |
  awk '{gsub(",", "", $1); printf "%.0f instructions per packet through Worker::process_burst (l2, one flow)\n", $1 / 320032}'
rm -f "$OUT"
