#!/usr/bin/env bash
# Health-check capacity: how many backends dsrlb's control core probes per second, along the
# real DSR path, against a real kernel.
#
#   usage (as root): scripts/bench-health.sh [--backends "250 1000 4000"] [--checks "icmp tcp"]
#                                            [--interval 0.25] [--seconds 6] [--smoke]
#
# It brings up a one-arm testbed (prefix "dhb") with one server namespace that carries every
# backend address (10.3.0.0/16 on its eth0) and the l2 DSR set-up for the VIP, then runs dsrlb
# with one l2 service of N backends, each checked every --interval seconds (icmp: echo to the
# VIP, answered by the server's kernel; tcp: a handshake with port 7, where a plain accept loop
# with a deep backlog listens, so the server's userspace is not what is measured). After the
# checks settle it samples the completed probes (`dsrlb ctl backends`) for --seconds and prints,
# per N: probes asked per second (N / interval), probes done per second, backends up, and the
# control core's CPU share. Capacity is where "done" falls behind "asked" or the CPU reaches 100%.
set -euo pipefail
cd "$(dirname "$0")/.."
NS="250 1000 4000"; CHECKS="icmp tcp"; INTERVAL=0.25; SECS=6
while [ $# -gt 0 ]; do
  case "$1" in
    --backends) NS=$2; shift 2 ;;
    --checks) CHECKS=$2; shift 2 ;;
    --interval) INTERVAL=$2; shift 2 ;;
    --seconds) SECS=$2; shift 2 ;;
    --smoke) NS="50"; CHECKS="icmp tcp"; SECS=2; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
export DSRLB_TB=dhb
SOCK=/run/dsrlb-bench-health.sock
CFG=/tmp/dsrlb-bench-health.ron
bash scripts/setup.sh >/dev/null
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release -q -p control --bin dsrlb
BIN=$PWD/target/release/dsrlb

LB_PID=""; ACCEPT_PID=""
stop_lb() {
  if [ -n "$LB_PID" ]; then kill -TERM "$LB_PID" 2>/dev/null || true; wait "$LB_PID" 2>/dev/null || true; fi
  LB_PID=""
}
cleanup() {
  stop_lb
  [ -n "$ACCEPT_PID" ] && kill "$ACCEPT_PID" 2>/dev/null || true
  scripts/testbed.sh down >/dev/null 2>&1 || true
  rm -f "$CFG" "$SOCK"
  rm -rf /var/run/dpdk/dsrlb-hb
  rm -f "$SOCK.lock"
}
trap cleanup EXIT
scripts/testbed.sh down >/dev/null 2>&1 || true
scripts/testbed.sh up one-arm 1 >/dev/null
srv() { ip netns exec dhb-s1 "$@"; }
MAXN=$(tr ' ' '\n' <<<"$NS" | sort -n | tail -1)
# Every backend address on the one server: 10.3.0.1, 10.3.0.2, ... (up to 65 000).
{ for i in $(seq 1 "$MAXN"); do echo "addr add 10.3.$((i / 250)).$((i % 250 + 1))/16 dev eth0"; done; } | srv ip -batch -
srv scripts/dsrlb-server setup l2 --vip 10.0.0.100 >/dev/null
srv sysctl -qw net.core.somaxconn=65535 net.ipv4.tcp_max_syn_backlog=65535
srv python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7)); s.listen(65535)
while True:
    c, _ = s.accept(); c.close()' &
ACCEPT_PID=$!

config() { # N CHECK
  local n=$1 check=$2 backends=""
  for i in $(seq 1 "$n"); do backends+="(ip: \"10.3.$((i / 250)).$((i % 250 + 1))\"), "; done
  local port_field=""; [ "$check" = tcp ] && port_field=", port: 7"
  cat >"$CFG" <<RON
#![enable(implicit_some)]
(
    eal: ["-l", "0-1", "--no-huge", "-m", "512", "--no-pci", "--no-shconf", "--file-prefix", "dsrlb-hb",
          "--log-level", "lib.eal:warning", "--log-level", "pmd.net.tap:error"],
    ports: [
        (device: "net_tap0,iface=lb0,mac=02:00:00:00:00:02", addresses: ["10.0.0.2/24", "10.3.255.254/16"], gateway: "10.0.0.1"),
    ],
    flow_table_size: 65536,
    control_socket: "$SOCK",
    metrics: None,
    worker_idle_sleep_us: 60,
    services: [
        (vip: "10.0.0.100", port: 80, mode: l2,
         health_check: (check: $check$port_field, interval: $INTERVAL, timeout: $INTERVAL, rise: 1, fall: 3),
         backends: [$backends]),
    ],
)
RON
}

ctl() { ip netns exec dhb-fab "$BIN" ctl --socket "$SOCK" "$@"; }
# probes done so far, backends up
probes() { ctl --json backends | python3 -c 'import json,sys; b=json.load(sys.stdin); print(sum(x["probes"] for x in b), sum(x["state"]=="up" for x in b))'; }
# CPU seconds used so far by dsrlb's control thread (the process's main thread)
cpu() { awk '{print ($14 + $15) / 100}' "/proc/$LB_PID/task/$LB_PID/stat"; }

printf '%-6s %7s %14s %13s %11s %17s\n' check backends "asked probes/s" "done probes/s" "backends up" "control core CPU"
for check in $CHECKS; do
  for n in $NS; do
    config "$n" "$check"
    "$BIN" check -c "$CFG" >/dev/null
    ip netns exec dhb-fab "$BIN" run -c "$CFG" >/tmp/dsrlb-bench-health.log 2>&1 &
    LB_PID=$!
    for _ in $(seq 100); do ctl status >/dev/null 2>&1 && break; sleep 0.2; done
    scripts/testbed.sh attach >/dev/null
    # Settle: neighbours resolved, first rounds of checks done.
    for _ in $(seq 60); do
      read -r _ up < <(probes)
      [ "$up" -ge "$n" ] && break
      sleep 0.5
    done
    sleep 1
    read -r p0 _ < <(probes); c0=$(cpu); t0=$(date +%s.%N)
    sleep "$SECS"
    read -r p1 up < <(probes); c1=$(cpu); t1=$(date +%s.%N)
    awk -v c="$check" -v n="$n" -v i="$INTERVAL" -v p0="$p0" -v p1="$p1" -v up="$up" -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" \
      'BEGIN { dt = t1 - t0; printf "%-6s %7d %14.0f %13.0f %11s %16.0f%%\n", c, n, n / i, (p1 - p0) / dt, up "/" n, 100 * (c1 - c0) / dt }'
    if [ "$up" -lt "$n" ]; then
      ctl --json backends | python3 -c '
import collections, json, sys
b = json.load(sys.stdin)
why = collections.Counter(x["last_error"] or x["health"] for x in b if x["state"] != "up")
for w, k in why.most_common(3): print(f"         {k} backends not up: {w}")'
    fi
    stop_lb
    [ "$up" -gt 0 ] || { echo "no backend came up: see /tmp/dsrlb-bench-health.log" >&2; exit 1; }
  done
done
