#!/usr/bin/env bash
# Instructions per packet through the dataplane pipeline (one flow, 64-byte packets), counted by
# callgrind: repeatable whatever else the machine is doing, unlike timings (docs/performance.md).
#   usage: scripts/count-instructions.sh [--by-file] [l2|ipip|dscp|l2-v6|ipip-v6|dscp-v6 ...]  (default: all six)
#          scripts/count-instructions.sh --appliance [--seconds S] [MODE ...]
#   --by-file: also where they go, per packet by source file (inlined code counts in the file it
#   came from: the profile docs/performance.md quotes).
#   --appliance: the real `dsrlb run` under callgrind instead (one flow from net_pcap to
#   net_null, as scripts/bench.sh runs it): everything the worker loop does per packet, its own
#   glue around the pipeline included, but not the drivers' RX and TX (DPDK's, the same for
#   testpmd), the time-paced housekeeping (callgrind slows the loop a hundredfold, so work
#   paced by the clock would weigh a hundredfold too), nor the worker's one-off set-up.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }

appliance() {
  local secs=10
  if [ "${1:-}" = "--seconds" ]; then secs=$2; shift 2; fi
  bash scripts/setup.sh >/dev/null
  export PATH="$HOME/.cargo/bin:$PATH"
  cargo build --release -q -p control --bin dsrlb --bin dsrlb-pcapgen
  local bin=$PWD/target/release
  dir=$(mktemp -d /tmp/dsrlb-callgrind-app.XXXXXX)
  trap 'rm -rf "$dir" /var/run/dpdk/dci$$ /run/dsrlb-ci$$.sock /run/dsrlb-ci$$.sock.lock' EXIT
  for mode in "${@:-l2 ipip dscp l2-v6 ipip-v6 dscp-v6}"; do
    for m in $mode; do
      local base=${m%-v6} vip=10.0.0.100 net=10.1.0. backends="" mode_ron
      [ "$m" != "$base" ] && { vip=2001:db8::100; net=2001:db8:1::; }
      mode_ron=$base; [ "$base" = dscp ] && mode_ron="dscp(7)"
      for i in $(seq 11 26); do backends+="(ip: \"$net$i\", mac: \"02:00:00:01:00:$i\"), "; done
      "$bin/dsrlb-pcapgen" --dst-mac 02:70:63:61:70:00 --vip "$vip" --out "$dir/$m.pcap" --flows 1 --size 64 --proto mix 2>/dev/null
      cat >"$dir/$m.ron" <<RON
#![enable(implicit_some)]
(
    eal: ["-l", "0-1", "--no-huge", "-m", "512", "--no-pci", "--no-shconf", "--file-prefix", "dci$$", "--log-level", "lib.eal:error"],
    ports: [
        (device: "net_pcap0,rx_pcap=$dir/$m.pcap,infinite_rx=1", role: client, addresses: ["10.0.0.2/24", "2001:db8::2/64"]),
        (device: "net_null0,no-rx=1", role: server, addresses: ["10.1.0.1/24", "2001:db8:1::1/64"], mtu: 1600),
    ],
    flow_table_size: 65536,
    flow_table_size_ipv6: 65536,
    mempool: (mbufs: 32768, data_room: 256),
    control_socket: "/run/dsrlb-ci$$.sock",
    metrics: None,
    services: [
        (vip: "$vip", port: 80, mode: $mode_ron, backends: [$backends]),
        (vip: "$vip", port: 80, protocol: udp, mode: $mode_ron, backends: [$backends]),
    ],
)
RON
      # Collection is on inside the worker loop and off inside what the toggles below name.
      RUST_LOG=info valgrind --tool=callgrind --fair-sched=yes --callgrind-out-file="$dir/$m.out" \
        --toggle-collect='control::worker::run' --toggle-collect='dsrlb_rx_burst' \
        --toggle-collect='dsrlb_tx_burst' --toggle-collect='*Worker*housekeeping*' \
        --toggle-collect='dataplane::pipeline::Worker::new' \
        "$bin/dsrlb" run -c "$dir/$m.ron" >"$dir/$m.log" 2>&1 &
      local pid=$! ok=0
      for _ in $(seq 1 600); do
        if "$bin/dsrlb" ctl --socket "/run/dsrlb-ci$$.sock" --json status >/dev/null 2>&1; then ok=1; break; fi
        kill -0 $pid 2>/dev/null || break
        sleep 0.1
      done
      [ $ok = 1 ] && sleep "$secs"
      kill -TERM $pid 2>/dev/null || true
      wait $pid 2>/dev/null || true
      local packets total
      packets=$(sed -n 's/.*final counters: rx \([0-9]*\) forwarded.*/\1/p' "$dir/$m.log" | tail -1)
      total=$(callgrind_annotate "$dir/$m.out" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",", "", $1); print $1}')
      if [ -z "$packets" ] || [ "${packets:-0}" = 0 ] || [ -z "$total" ]; then
        echo "$m: no packets counted (see $dir/$m.log)" >&2; trap - EXIT; return 1
      fi
      awk -v m="$m" -v t="$total" -v n="$packets" 'BEGIN{printf "%s: %.0f instructions per packet in the worker loop, drivers and housekeeping apart (%d packets)\n", m, t / n, n}'
    done
  done
}

if [ "${1:-}" = "--appliance" ]; then
  shift
  appliance "$@"
  exit
fi
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
