#!/usr/bin/env bash
# The dsrlb demo (the README's first command): builds dsrlb, brings up the one-arm testbed
# (client, router, fabric, 3 servers on the fabric and 2 behind the router, each running a
# real HTTP server and UDP echo), starts dsrlb on it, sends traffic through every DSR mode in
# IPv4 and IPv6 (and IPv4 over an IPv6 underlay), prints what happened, and tears everything down; then the fleet demo (scripts/demo-fleet.sh:
# three instances behind a router doing ECMP with BIRD). Exits non-zero if anything failed.
#   usage (as root): scripts/demo.sh [REQUESTS_PER_SERVICE]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-30}
CONFIG=docs/examples/testbed-one-arm.ron
SOCK=/run/dsrlb-tb.sock
export DSRLB_TB=dtb

bash scripts/setup.sh >/dev/null
export PATH="$HOME/.cargo/bin:$PATH"
echo "== building dsrlb (release)"
cargo build --release -q -p control --bin dsrlb
BIN=$PWD/target/release/dsrlb

LB_PID=""
cleanup() {
  if [ -n "$LB_PID" ]; then kill -TERM "$LB_PID" 2>/dev/null || true; wait "$LB_PID" 2>/dev/null || true; fi
  scripts/testbed.sh down >/dev/null 2>&1 || true
}
trap cleanup EXIT
scripts/testbed.sh down >/dev/null 2>&1 || true

echo "== testbed up (one-arm) and servers set up for l2, ipip and dscp (scripts/dsrlb-server)"
scripts/testbed.sh up one-arm 3
scripts/testbed.sh servers
"$BIN" check -c "$CONFIG"

echo "== starting dsrlb in namespace dtb-fab (log: /tmp/dsrlb-demo.log)"
ip netns exec dtb-fab "$BIN" run -c "$CONFIG" >/tmp/dsrlb-demo.log 2>&1 &
LB_PID=$!
ctl() { ip netns exec dtb-fab "$BIN" ctl --socket "$SOCK" "$@"; }
for _ in $(seq 100); do ctl status >/dev/null 2>&1 && break; sleep 0.2; done
scripts/testbed.sh attach
echo -n "== waiting for health checks"
for _ in $(seq 150); do
  if ctl --json backends 2>/dev/null | python3 -c 'import json,sys; b=json.load(sys.stdin); sys.exit(0 if b and all(x["state"]=="up" for x in b) else 1)'; then break; fi
  echo -n "."; sleep 0.2
done
echo

fail=0
echo "== HTTP through every mode: $N requests each from 3 client addresses"
printf '%-13s %-15s %-6s %-30s %s\n' MODE VIP FAILED "REQUESTS PER SERVER" "CLIENT ADDRESSES SEEN BY SERVERS"
for svc in "l2 10.0.0.100" "ipip 10.0.0.101" "dscp 10.0.0.102" "ipip-routed 10.0.0.103" "dscp-routed 10.0.0.104" \
           "4in6 10.0.0.106" "l2 2001:db8::100" "ip6ip6 2001:db8::101" "dscp 2001:db8::102" "ip6ip6-routed 2001:db8::103"; do
  set -- $svc
  if [[ $2 == *:* ]]; then url="http://[$2]/"; src="2001:db8:100::1"; else url="http://$2/"; src="198.51.100.1"; fi
  out=$(ip netns exec dtb-c1 bash -c "for i in \$(seq 1 $N); do curl -s -g -m 3 --interface $src\$((i % 3)) $url || echo FAIL; done")
  failed=$(grep -c FAIL <<<"$out" || true)
  split=$(grep -o 'server=[a-z0-9]*' <<<"$out" | sort | uniq -c | awk '{printf "%s:%s ", substr($2,8), $1}')
  clients=$(grep -o 'client=[0-9a-f.:]*' <<<"$out" | sed -E 's/:[0-9]+$//' | sort -u | cut -d= -f2 | tr '\n' ' ')
  printf '%-13s %-15s %-6s %-30s %s\n' "$1" "$2" "$failed" "$split" "$clients"
  [ "$failed" = 0 ] || fail=1
done

echo "== UDP echo (source-IP persistence): 3 datagrams from each client address"
for svc in "l2 10.0.0.100" "ipip 10.0.0.101" "dscp 10.0.0.102"; do
  set -- $svc
  line=""
  for c in 10 11 12; do
    for k in 1 2 3; do
      r=$(ip netns exec dtb-c1 python3 -c "import socket; s=socket.socket(2,2); s.bind(('198.51.100.$c',0)); s.settimeout(2); s.sendto(b'hi',('$2',5353)); print(s.recv(99).decode().split()[0])" 2>/dev/null || echo FAIL)
      [ "$r" = FAIL ] && fail=1
      line+="198.51.100.$c→$r "
    done
  done
  printf '%-5s %-11s %s\n' "$1" "$2" "$line"
done

echo "== UDP echo over IPv6: 3 datagrams from each client address"
for svc in "l2 2001:db8::100" "ip6ip6 2001:db8::101" "dscp 2001:db8::102"; do
  set -- $svc
  line=""
  for c in 10 11 12; do
    r=$(ip netns exec dtb-c1 python3 -c "import socket; s=socket.socket(socket.AF_INET6,2); s.bind(('2001:db8:100::$c',0)); s.settimeout(2); s.sendto(b'hi',('$2',5353)); print(s.recv(99).decode().split()[0])" 2>/dev/null || echo FAIL)
    [ "$r" = FAIL ] && fail=1
    line+="::$c→$r "
  done
  printf '%-6s %-15s %s\n' "$1" "$2" "$line"
done

echo "== 10 MB download and upload through ipip and ip6ip6 (1500-byte MTU: path-MTU discovery at work)"
head -c 10000000 /dev/zero >/tmp/dsrlb-demo-up.bin
for url in http://10.0.0.101 "http://[2001:db8::101]"; do
  d=$(ip netns exec dtb-c1 curl -s -g -m 60 -o /dev/null -w '%{size_download}' "$url/bytes/10000000" || echo 0)
  u=$(ip netns exec dtb-c1 curl -s -g -m 60 --data-binary @/tmp/dsrlb-demo-up.bin -H 'Content-Type: application/octet-stream' "$url/upload" || echo FAIL)
  echo "$url: download $d bytes; upload: $u"
  [ "$d" = 10000000 ] && grep -q "received=10000000" <<<"$u" || fail=1
done
rm -f /tmp/dsrlb-demo-up.bin

sleep 1
echo "== dsrlb ctl services"; ctl services
echo "== dsrlb ctl backends"; ctl backends
echo "== dsrlb ctl stats (non-zero)"; ctl stats | awk 'NR==1 || $NF != "0"'

if [ $fail = 0 ]; then echo "== demo: every mode worked"; else echo "== demo: FAILURES above"; fi
cleanup
LB_PID=""

echo
echo "== part 2: a fleet of three instances behind a BIRD router (scripts/demo-fleet.sh)"
bash scripts/demo-fleet.sh || fail=1
exit $fail
