#!/usr/bin/env bash
# The fleet demo (also the last part of scripts/demo.sh): three dsrlb instances behind a router
# running BIRD 2 with ECMP and BFD, each announcing the VIPs over its exception interface
# (docs/fleet.md). Shows the router's routes and sessions, new connections spread over the
# instances, an instance killed mid-transfer (and how soon the router stops using it), its
# rejoin, and a graceful drain. Tears everything down; exits non-zero if anything failed.
#   usage (as root): scripts/demo-fleet.sh
#   DSRLB_BIN=PATH scripts/demo-fleet.sh    runs that dsrlb binary instead of building one (to
#                                           compare two builds run for run)
set -euo pipefail
cd "$(dirname "$0")/.."
export DSRLB_TB=dtb
STATE=/run/dsrlb-testbed-$DSRLB_TB

bash scripts/setup.sh >/dev/null
export PATH="$HOME/.cargo/bin:$PATH"
if [ -n "${DSRLB_BIN:-}" ]; then
  BIN=$DSRLB_BIN
else
  echo "== building dsrlb (release)"
  cargo build --release -q -p control --bin dsrlb
  BIN=$PWD/target/release/dsrlb
fi

declare -A PID
cleanup() {
  for i in "${!PID[@]}"; do kill -INT "${PID[$i]}" 2>/dev/null || true; done
  for i in "${!PID[@]}"; do wait "${PID[$i]}" 2>/dev/null || true; done
  scripts/testbed.sh down >/dev/null 2>&1 || true
}
trap cleanup EXIT
scripts/testbed.sh down >/dev/null 2>&1 || true

ns() { ip netns exec "$DSRLB_TB-$1" "${@:2}"; }
ctl() { ns "lb$1" "$BIN" ctl --socket "/run/dsrlb-lb$1.sock" "${@:2}"; }
birdc_rt() { ns rt birdc -s "$STATE/bird-rt.ctl" "$@"; }
start() { # `ip netns exec` execs dsrlb: $! is dsrlb's own pid (through a function it would not be)
  ip netns exec "$DSRLB_TB-lb$1" "$BIN" run -c "$STATE/lb$1.ron" >>"/tmp/dsrlb-demo-fleet-lb$1.log" 2>&1 &
  PID[$1]=$!
}
# The router's next hops for VIP $1, one per line.
nexthops() { ns rt ip route show "$1" | grep -o 'via [0-9.]*' | cut -d' ' -f2; }
wait_for() { # SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2; shift 2
  for _ in $(seq $((limit * 50))); do "$@" && return 0; sleep 0.02; done
  echo "   $what: not within ${limit}s"; return 1
}
all_three() { [ "$(nexthops 10.20.0.100 | wc -l)" = 3 ]; }
without() { ! nexthops 10.20.0.100 | grep -qx "$1"; }
now() { date +%s.%N; }
since() { python3 -c "print(f'{($(now) - $1) * 1000:.0f} ms')"; }

echo "== fleet testbed: router (BIRD, ECMP), instances lb1..lb3 (BIRD each), servers s1..s4"
scripts/testbed.sh up fleet 3
scripts/testbed.sh servers
rm -f /tmp/dsrlb-demo-fleet-lb*.log
for i in 1 2 3; do start "$i"; done
fail=0
wait_for 60 "every instance announced" all_three || fail=1
echo "== the router's BGP sessions (one per instance, BFD on) and its ECMP route to a VIP"
birdc_rt show protocols | grep -E "^Name|BGP"
ns rt ip route show 10.20.0.100

echo "== 60 connections to each VIP: which instance took each, which server answered"
declare -A before
for i in 1 2 3; do before[$i]=$(ctl "$i" --json services | python3 -c 'import json,sys; print(sum(s["new_flows"] for s in json.load(sys.stdin) if s["protocol"]=="tcp"))'); done
for vip in 10.20.0.100 10.20.0.101 10.20.0.102; do
  out=$(ns c1 bash -c "for i in \$(seq 1 60); do curl -s -m 3 --interface 198.51.100.1\$((i % 3)) http://$vip/ || echo FAIL; done")
  f=$(grep -c FAIL <<<"$out" || true); [ "$f" = 0 ] || fail=1
  echo "   $vip: failed $f; servers $(grep -o 'server=[a-z0-9]*' <<<"$out" | sort | uniq -c | awk '{printf "%s:%s ", substr($2,8), $1}')"
done
sleep 1.2 # the counters reach ctl with the view (every 0.5 s)
for i in 1 2 3; do
  n=$(ctl "$i" --json services | python3 -c 'import json,sys; print(sum(s["new_flows"] for s in json.load(sys.stdin) if s["protocol"]=="tcp"))')
  echo "   lb$i took $((n - before[$i])) of 180"
done
echo "== every instance runs the same services (one configuration digest)"
for i in 1 2 3; do echo "   lb$i: $(ctl "$i" status | sed -n 2p)"; done

echo "== 30 downloads (10 per VIP, ~8 s each); lb2 killed with kill -9 after 2 s"
dl=()
for vip in 10.20.0.100 10.20.0.101 10.20.0.102; do
  for k in $(seq 1 10); do
    ns c1 curl -s -m 60 --limit-rate 150K -o /dev/null -w '%{size_download}\n' "http://$vip/bytes/1200000" >>/tmp/dsrlb-demo-fleet-dl.txt &
    dl+=($!)
  done
done
sleep 2
t=$(now); kill -9 "${PID[2]}"; wait "${PID[2]}" 2>/dev/null || true; unset 'PID[2]'
wait_for 10 "router stops using lb2" without 10.0.0.3 || fail=1
echo "   the router stopped using lb2 after $(since "$t") (BFD 100 ms x 3)"
wait "${dl[@]}" || true
done_n=$(grep -cx 1200000 /tmp/dsrlb-demo-fleet-dl.txt || true); rm -f /tmp/dsrlb-demo-fleet-dl.txt
echo "   downloads complete: $done_n/30"
[ "$done_n" = 30 ] || fail=1

echo "== lb2 starts again: it announces once its health checks have settled"
t=$(now); start 2
wait_for 30 "lb2 back in the router's route" all_three || fail=1
echo "   lb2 in the router's route $(since "$t") after its start"

echo "== dsrlb ctl drain-instance on lb1: withdrawn at once, forwards 5 s more, stops"
t=$(now); ctl 1 drain-instance
wait_for 5 "lb1 withdrawn" without 10.0.0.2 || fail=1
echo "   withdrawn after $(since "$t")"
if wait "${PID[1]}"; then echo "   stopped after $(since "$t"), exit 0"; else echo "   exit non-zero"; fail=1; fi
unset 'PID[1]'
ns rt ip route show 10.20.0.100

if [ $fail = 0 ]; then echo "== fleet demo: every step worked"; else echo "== fleet demo: FAILURES above"; fi
exit $fail
