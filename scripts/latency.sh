#!/usr/bin/env bash
# The time a packet spends in dsrlb (p50, p99, p99.9, max), at low and high load, busy-polling
# and with idle sleeps (docs/performance.md, "Latency"). Each case is one run of dsrlb-latency:
# the production worker loop on lcore 1, a paced generator on lcore 0 stamping packets as they
# reach the worker's receive ring and reading the stamps back from its transmit ring.
#
#   scripts/latency.sh [--seconds S] [--rates "10000 1000000 8000000"] [--sleeps "0 20 60"]
#                      [--modes "l2 ipip dscp"] [--smoke]
#
# Every mode runs at every rate busy-polling; the idle sleeps run for the first mode. The
# machine is shared: compare figures of one run with each other, not with another day's.
# The last column is the share of a core the worker used: at a low rate, what idle sleep saves.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=3; RATES="10000 1000000 8000000"; SLEEPS="0 20 60"; MODES="l2 ipip dscp"
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECS=$2; shift 2 ;;
    --rates) RATES=$2; shift 2 ;;
    --sleeps) SLEEPS=$2; shift 2 ;;
    --modes) MODES=$2; shift 2 ;;
    --smoke) SECS=1; RATES="10000 1000000"; SLEEPS="0 20"; MODES="l2"; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
bash scripts/setup.sh >/dev/null
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release -q -p control --bin dsrlb-latency
BIN=$PWD/target/release/dsrlb-latency
FIRST=${MODES%% *}
# EAL leaves its runtime directory behind.
trap 'rm -rf /var/run/dpdk/lat$$' EXIT

printf '%-5s %9s %10s %9s %9s %9s %9s %10s %8s\n' mode pps 'sleep µs' 'p50 µs' 'p99 µs' 'p99.9 µs' 'max µs' 'ring full' 'worker %'
for mode in $MODES; do
  for rate in $RATES; do
    for sleep_us in $SLEEPS; do
      [ "$mode" != "$FIRST" ] && [ "$sleep_us" != 0 ] && continue
      "$BIN" --file-prefix "lat$$" --mode "$mode" --rate "$rate" --idle-sleep-us "$sleep_us" --seconds "$SECS" --json 2>/dev/null |
        python3 -c 'import json,sys
d = json.loads(sys.stdin.read().strip().splitlines()[-1])
assert d["samples"] > 0 and d["received"] > 0, "no packet came back through the worker"
print("%-5s %9d %10d %9.1f %9.1f %9.1f %9.1f %10d %8.0f" % (d["mode"], d["rate"], d["idle_sleep_us"],
      d["p50_ns"] / 1e3, d["p99_ns"] / 1e3, d["p999_ns"] / 1e3, d["max_ns"] / 1e3, d["refused"], d["worker_cpu_pct"]))'
    done
  done
done
