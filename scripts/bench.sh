#!/usr/bin/env bash
# Mpps per core for every DSR mode against dpdk-testpmd in the same run (docs/performance.md).
#
#   scripts/bench.sh [--smoke] [--rounds R] [--seconds S] [--flows "1 10000 1000000"] [--sizes "64 1500"]
#                    [--modes "l2 ipip dscp"] [--ipv6] [--packets N] [--out DIR]
#   scripts/bench.sh --scaling [--rounds R] [--seconds S] [--flows ...] [--sizes ...]
#   DSRLB_BIN=PATH scripts/bench.sh ...   runs that dsrlb binary instead of this tree's build (to
#                                         compare two builds run for run)
#
# --ipv6: the same with IPv6 captures, VIPs and backends (modes shown as l2-v6, ipip-v6, dscp-v6),
# testpmd on the same IPv6 capture.
#
# --packets N: each capture holds N packets, going round its flows (default: one per flow). With
# `--flows 1 --packets 1000000` the source costs what the million-flow capture's replay costs
# (a million cold source buffers) while the flow table stays in cache: the million-flow case
# taken apart (docs/performance.md).
#
# Source: net_pcap replaying a generated capture (infinite_rx=1, every packet a distinct flow);
# sink: net_null (no-rx=1). dsrlb is the real binary (`dsrlb run`, the production worker loop on
# lcore 1, control core on lcore 0); its rate is read from its own port counters via `dsrlb ctl`.
# dpdk-testpmd runs io, macswap and 5tswap on the same vdevs and lcores. Runs alternate; each
# figure is the median of R rounds of per-second rates. Output: table on stdout, CSV and a PNG
# plot (if matplotlib is present) in DIR.
#
# --scaling: two workers against one, l2. The capture is split by flow into two files, one per
# RX queue of a two-queue net_pcap port (each flow whole on one queue, as RSS keeps it), and
# dsrlb runs with one worker (lcore 1 on CPU 1) and with two (lcore 1 on CPU 0 beside the
# control core, lcore 2 on CPU 1: the machine has two cores), alternating.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=3; SECS=6; FLOWS="1 10000 1000000"; SIZES="64 1500"; MODES="l2 ipip dscp"; OUT=/tmp/dsrlb-bench; SMOKE=0
SCALING=0; FAMILY=4; PACKETS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMOKE=1; ROUNDS=1; SECS=3; FLOWS="1000"; SIZES="64"; MODES="l2 ipip dscp"; shift ;;
    --scaling) SCALING=1; FLOWS="10000 1000000"; SIZES="64"; shift ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --seconds) SECS=$2; shift 2 ;;
    --flows) FLOWS=$2; shift 2 ;;
    --sizes) SIZES=$2; shift 2 ;;
    --modes) MODES=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --ipv6) FAMILY=6; shift ;;
    --packets) PACKETS=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
# --scaling replays its own IPv4 captures, one packet per flow: say so rather than ignore these.
if [ $SCALING = 1 ] && { [ -n "$PACKETS" ] || [ $FAMILY = 6 ]; }; then
  echo "--scaling takes neither --packets nor --ipv6" >&2; exit 2
fi
mkdir -p "$OUT"
# EAL leaves each file prefix's runtime directory behind (its telemetry socket, config).
trap 'rm -rf /var/run/dpdk/db$$ /var/run/dpdk/tp$$' EXIT
bash scripts/setup.sh >/dev/null
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release -q -p control --bin dsrlb --bin dsrlb-pcapgen
BIN=$PWD/target/release
DSRLB=${DSRLB_BIN:-$BIN/dsrlb}
# net_pcap's MAC (its name in ASCII and the port index): dsrlb takes only frames addressed to
# its port, so the captures are addressed to it.
PCAP_MAC=02:70:63:61:70:00
CSV=$OUT/results.csv

median() { sort -n | awk '{a[NR]=$1} END{ if (NR==0) {print 0} else {print a[int((NR+1)/2)]} }'; }

mem_for() { # flows size -> EAL MB, mbufs, mbuf data room
  local n=$1 size=$2 room=256
  [ "$size" -gt 128 ] && room=$((size + 128 + 64))
  local mbufs=$(( (n + 16384) )); [ $mbufs -lt 32768 ] && mbufs=32768
  local mb=$(( mbufs * (room + 192) / 1048576 + 512 ))
  echo "$mb $mbufs $room"
}

run_testpmd() { # pcap fwd mem mbufs room -> median Mpps of port 1 TX
  { timeout -s INT $((SECS + 8)) dpdk-testpmd -l 0-1 --no-huge -m "$3" --no-pci --no-shconf --file-prefix "tp$$" \
      --log-level lib.eal:error --vdev "net_pcap0,rx_pcap=$1,infinite_rx=1" --vdev net_null0,no-rx=1 -- \
      --forward-mode="$2" --port-topology=paired --stats-period 1 --nb-cores=1 \
      --total-num-mbufs="$4" --mbuf-size="$5" </dev/null 2>/dev/null || true; } |
    awk '/statistics for port 1/{p=1} p && /Tx-pps:/{print $2; p=0}' | tail -n +3 | head -n "$SECS" |
    awk '{printf "%.3f\n", $1/1e6}' | median
}

run_dsrlb() { # pcap mode mem mbufs room flows [workers] -> median Mpps of port 1 TX
  local pcap=$1 mode=$2 mem=$3 mbufs=$4 room=$5 flows=$6 workers=${7:-1} cfg=$OUT/dsrlb-$2.ron sock=/run/dsrlb-bench-$$.sock
  local lcores='"-l", "0-1"' rx="rx_pcap=$pcap"
  if [ "$workers" = 2 ]; then
    lcores='"--lcores", "0@0,1@0,2@1"'
    rx="rx_pcap=${pcap%.pcap}-q0.pcap,rx_pcap=${pcap%.pcap}-q1.pcap"
  fi
  local mode_ron=$mode; [ "$mode" = dscp ] && mode_ron="dscp(7)"
  local backends="" vip=10.0.0.100
  for i in $(seq 11 26); do backends+="(ip: \"10.1.0.$i\", mac: \"02:00:00:01:00:$i\"), "; done
  if [ "$FAMILY" = 6 ]; then
    vip=2001:db8::100; backends=""
    for i in $(seq 11 26); do backends+="(ip: \"2001:db8:1::$i\", mac: \"02:00:00:01:00:$i\"), "; done
  fi
  local ft=$(( flows * 2 )); [ $ft -lt 65536 ] && ft=65536
  cat >"$cfg" <<RON
#![enable(implicit_some)]
(
    eal: [$lcores, "--no-huge", "-m", "$mem", "--no-pci", "--no-shconf", "--file-prefix", "db$$", "--log-level", "lib.eal:error"],
    ports: [
        (device: "net_pcap0,$rx,infinite_rx=1", role: client, addresses: ["10.0.0.2/24", "2001:db8::2/64"]),
        (device: "net_null0,no-rx=1", role: server, addresses: ["10.1.0.1/24", "2001:db8:1::1/64"], mtu: 1600),
    ],
    flow_table_size: $ft,
    flow_table_size_ipv6: $ft,
    mempool: (mbufs: $mbufs, data_room: $room),
    control_socket: "$sock",
    metrics: None,
    services: [
        (vip: "$vip", port: 80, mode: $mode_ron, backends: [$backends]),
        (vip: "$vip", port: 80, protocol: udp, mode: $mode_ron, backends: [$backends]),
    ],
)
RON
  RUST_LOG=warn "$DSRLB" run -c "$cfg" >"$OUT/dsrlb-run.log" 2>&1 &
  local pid=$!
  local samples="" last="" ok=0
  for _ in $(seq 1 300); do
    if "$DSRLB" ctl --socket "$sock" --json status >/dev/null 2>&1; then ok=1; break; fi
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
  done
  if [ $ok = 1 ]; then
    sleep 1.5 # warm-up: every flow enters the table
    for _ in $(seq 0 "$SECS"); do
      cur=$("$DSRLB" ctl --socket "$sock" --json status | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["uptime_ms"], d["ports"][1]["tx_packets"])')
      if [ -n "$last" ]; then
        samples+="$(awk -v a="$last" -v b="$cur" 'BEGIN{split(a,x," "); split(b,y," "); if (y[1]>x[1]) printf "%.3f", (y[2]-x[2])/(y[1]-x[1])/1000}')"$'\n'
      fi
      last=$cur
      sleep 1
    done
  fi
  kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true
  rm -f "$sock" "$sock.lock"
  printf '%s' "$samples" | { grep -v '^$' || true; } | median
}

if [ $SCALING = 1 ]; then
  echo "workers,flows,bytes,round,mpps" >"$OUT/scaling.csv"
  for size in $SIZES; do
    for flows in $FLOWS; do
      pcap=$OUT/flows-$flows-$size.pcap
      # one worker reads the whole capture, two workers its two halves: the same flows
      [ -s "$pcap" ] || "$BIN/dsrlb-pcapgen" --dst-mac "$PCAP_MAC" --out "$pcap" --flows "$flows" --size "$size" --proto mix 2>/dev/null
      for q in 0 1; do
        [ -s "${pcap%.pcap}-q$q.pcap" ] || "$BIN/dsrlb-pcapgen" --dst-mac "$PCAP_MAC" --out "${pcap%.pcap}-q$q.pcap" --flows "$flows" \
          --size "$size" --proto mix --shard "$q/2" 2>/dev/null
      done
      read -r mem mbufs room < <(mem_for "$flows" "$size")
      for r in $(seq 1 "$ROUNDS"); do
        for w in 1 2; do
          v=$(run_dsrlb "$pcap" l2 "$mem" "$mbufs" "$room" "$flows" "$w")
          echo "$w,$flows,$size,$r,$v" >>"$OUT/scaling.csv"
          echo "  round $r: dsrlb l2, $w worker(s), $flows flows ${size} B: $v Mpps" >&2
        done
      done
    done
  done
  python3 - "$OUT/scaling.csv" <<'PY'
import csv, statistics, sys
med = {}
for r in csv.DictReader(open(sys.argv[1])):
    med.setdefault((int(r["flows"]), int(r["bytes"]), int(r["workers"])), []).append(float(r["mpps"] or 0))
med = {k: statistics.median(v) for k, v in med.items()}
print(f"\n{'flows':>8} {'bytes':>6} {'1 worker Mpps':>14} {'2 workers Mpps':>15} {'ratio':>6}")
for (f, b) in sorted({(f, b) for f, b, _ in med}):
    one, two = med.get((f, b, 1), 0), med.get((f, b, 2), 0)
    print(f"{f:>8} {b:>6} {one:>14.2f} {two:>15.2f} {two / one if one else 0:>6.2f}")
PY
  exit 0
fi

echo "mode,flows,bytes,round,mpps" >"$CSV"
declare -A R
SUFFIX=""; GENVIP=10.0.0.100
[ "$FAMILY" = 6 ] && { SUFFIX="-v6"; GENVIP=2001:db8::100; }
for size in $SIZES; do
  for flows in $FLOWS; do
    pcap=$OUT/flows$SUFFIX-$flows${PACKETS:+-x$PACKETS}-$size.pcap
    [ -s "$pcap" ] || "$BIN/dsrlb-pcapgen" --dst-mac "$PCAP_MAC" --vip "$GENVIP" --out "$pcap" --flows "$flows" --size "$size" --proto mix \
      ${PACKETS:+--packets "$PACKETS"} 2>/dev/null
    # the replay holds every packet of the capture in an mbuf
    read -r mem mbufs room < <(mem_for "$(( ${PACKETS:-0} > flows ? ${PACKETS:-0} : flows ))" "$size")
    for r in $(seq 1 "$ROUNDS"); do
      for fwd in io macswap 5tswap; do
        [ $SMOKE = 1 ] && [ $fwd != io ] && continue
        v=$(run_testpmd "$pcap" "$fwd" "$mem" "$mbufs" "$room"); echo "testpmd-$fwd,$flows,$size,$r,$v" >>"$CSV"
        echo "  round $r: testpmd $fwd $flows flows ${size} B: $v Mpps" >&2
      done
      for mode in $MODES; do
        v=$(run_dsrlb "$pcap" "$mode" "$mem" "$mbufs" "$room" "$flows"); echo "$mode$SUFFIX,$flows,$size,$r,$v" >>"$CSV"
        echo "  round $r: dsrlb $mode$SUFFIX $flows flows ${size} B: $v Mpps" >&2
      done
    done
  done
done

# Debian's interpreter has Debian's matplotlib (the plot); install it for full runs.
PY=python3; [ -x /usr/bin/python3 ] && PY=/usr/bin/python3
if [ $SMOKE = 0 ] && ! $PY -c 'import matplotlib' 2>/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-matplotlib >/dev/null 2>&1 || true
fi
$PY - "$CSV" "$OUT" "$SMOKE" <<'PY'
import csv, statistics, sys, os
rows = list(csv.DictReader(open(sys.argv[1])))
out, smoke = sys.argv[2], sys.argv[3] == "1"
med = {}
for r in rows:
    med.setdefault((r["mode"], int(r["flows"]), int(r["bytes"])), []).append(float(r["mpps"] or 0))
med = {k: statistics.median(v) for k, v in med.items()}
keys = sorted({(f, b) for (_, f, b) in med})
modes = [m for m in ["l2", "ipip", "dscp", "l2-v6", "ipip-v6", "dscp-v6"] if any(k[0] == m for k in med)]
print(f"\n{'mode':<7} {'flows':>8} {'bytes':>6} {'Mpps':>7} {'Gbit/s':>7} {'testpmd io':>11} {'macswap':>8} {'5tswap':>7} {'ratio to 5tswap':>16}")
for (f, b) in keys:
    io, ms, ts = (med.get((f"testpmd-{x}", f, b), 0) for x in ("io", "macswap", "5tswap"))
    for m in modes:
        v = med.get((m, f, b), 0)
        ratio = f"{v / ts:.2f}" if ts else (f"{v / io:.2f} (io)" if io else "n/a")
        print(f"{m:<7} {f:>8} {b:>6} {v:>7.2f} {v * b * 8 / 1000:>7.2f} {io:>11.2f} {ms:>8.2f} {ts:>7.2f} {ratio:>16}")
bad = [k for k, v in med.items() if v <= 0]
if bad:
    print(f"\nno rate measured for: {bad}")
    sys.exit(1)
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len({b for _, b in keys}), figsize=(11, 4), squeeze=False)
    for ax, b in zip(axes[0], sorted({b for _, b in keys})):
        fl = sorted({f for f, bb in keys if bb == b})
        series = modes + [s for s in ("testpmd-io", "testpmd-macswap", "testpmd-5tswap") if any(k[0] == s for k in med)]
        w = 0.8 / len(series)
        for i, s in enumerate(series):
            ax.bar([x + i * w for x in range(len(fl))], [med.get((s, f, b), 0) for f in fl], w, label=s)
        ax.set_xticks([x + 0.4 - w / 2 for x in range(len(fl))], [f"{f} flows" for f in fl])
        ax.set_title(f"{b}-byte packets, one core"); ax.set_ylabel("Mpps")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout(); fig.savefig(os.path.join(out, "performance.png"), dpi=110)
    print(f"\nplot: {os.path.join(out, 'performance.png')}")
except ImportError:
    print("\n(no matplotlib: no plot; apt-get install python3-matplotlib)")
PY
[ -z "$PACKETS" ] || echo "(every capture: $PACKETS packets, going round its flows)"
