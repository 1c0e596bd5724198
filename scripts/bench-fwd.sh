#!/usr/bin/env bash
# What our DPDK bindings cost: the minimal forwarding loop (dpdk-bindings/examples/fwd_loop.rs)
# against dpdk-testpmd --forward-mode=io, same vdevs (net_null source, net_null no-rx sink), both
# forwarding on lcore 1, alternated ROUNDS times in one run. Prints medians and the ratio.
#   usage: scripts/bench-fwd.sh [SECONDS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-8}
ROUNDS=${2:-3}
trap 'rm -rf /var/run/dpdk/fwd$$ /var/run/dpdk/tp$$' EXIT
EAL=(-l 0-1 --no-huge -m 1024 --no-pci --no-shconf --log-level lib.eal:error
     --vdev net_null0 --vdev net_null1,no-rx=1)

cargo build --release -q -p dpdk-bindings --example fwd_loop
ours=(); theirs=()
for r in $(seq 1 "$ROUNDS"); do
  o=$(target/release/examples/fwd_loop "$SECS" -- "${EAL[@]}" --file-prefix fwd$$ 2>/dev/null \
      | sed -n 's/.*median \([0-9.]*\) Mpps.*/\1/p')
  # testpmd prints per-port rates every second; keep port 1's Tx-pps after the first two.
  t=$( { timeout -s INT $((SECS + 2)) dpdk-testpmd "${EAL[@]}" --file-prefix tp$$ -- \
        --forward-mode=io --port-topology=paired --stats-period 1 --nb-cores=1 </dev/null 2>/dev/null || true; } \
      | awk '/statistics for port 1/{p=1} p && /Tx-pps:/{print $2; p=0}' | tail -n +3 \
      | sort -n | awk '{a[NR]=$1} END{if(NR) printf "%.2f", a[int((NR+1)/2)]/1e6}')
  echo "round $r: fwd_loop ${o:-?} Mpps, testpmd io ${t:-?} Mpps"
  ours+=("${o:-0}"); theirs+=("${t:-0}")
done
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
mo=$(med "${ours[@]}"); mt=$(med "${theirs[@]}")
ratio=$(awk -v a="$mo" -v b="$mt" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "n/a" }')
printf '\n%-28s %10s\n' "loop (lcore 1, net_null)" "Mpps"
printf '%-28s %10s\n' "dsrlb fwd_loop (ours)" "$mo" "dpdk-testpmd io" "$mt"
echo "ratio ours/testpmd: $ratio"
