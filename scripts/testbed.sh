#!/usr/bin/env bash
# The dsrlb testbed: network namespaces for clients, a router, an L2 fabric and real servers.
#
#   scripts/testbed.sh up [one-arm|inline] [SERVERS]   build it (default one-arm, 3 servers)
#   scripts/testbed.sh servers                         set servers up for the example configs' modes
#   scripts/testbed.sh attach                          bridge dsrlb's taps (after dsrlb started)
#   scripts/testbed.sh down                            remove exactly what `up` made
#
# one-arm: the LB (net_tap "lb0") and the servers share the fabric bridge 10.0.0.0/24 with the
#   router (10.0.0.1); clients (198.51.100.0/24) reach VIPs through the router; servers answer
#   clients directly through the router. A second server subnet, 192.168.50.0/24, sits behind the
#   router ("routed" servers for ipip and dscp).
# inline: the LB has a client-side tap ("lbc0", 10.0.0.2 on the router's subnet) and a
#   server-side tap ("lbs0", 10.1.0.1/24 on a second bridge); the servers' gateway is the LB.
#
# dsrlb runs inside namespace "$TB-fab", where the taps and bridges live. Names are prefixed by
# $DSRLB_TB (default "dtb") so parallel testbeds do not collide.
set -euo pipefail
TB=${DSRLB_TB:-dtb}
STATE=/run/dsrlb-testbed-$TB
HERE=$(cd "$(dirname "$0")" && pwd)

ns() { ip netns exec "$TB-$1" "${@:2}"; }
quiet_offloads() { ns "$1" ethtool -K "$2" tx off gso off tso off gro off >/dev/null 2>&1 || true; }

# veth NAME_A in ns A <-> NAME_B in ns B
link() {
  ip link add "$TB-tmpa" type veth peer name "$TB-tmpb"
  ip link set "$TB-tmpa" netns "$TB-$1" name "$2"
  ip link set "$TB-tmpb" netns "$TB-$3" name "$4"
  ns "$1" ip link set "$2" up
  ns "$3" ip link set "$4" up
  quiet_offloads "$1" "$2"
  quiet_offloads "$3" "$4"
}

mkns() {
  ip netns add "$TB-$1"
  ns "$1" ip link set lo up
  echo "$TB-$1" >>"$STATE/namespaces"
}

server() { # server NAME IP/PREFIX GATEWAY BRIDGE
  local name=$1 addr=$2 gw=$3 br=$4
  mkns "$name"
  link "$name" eth0 fab "v-$name"
  ns fab ip link set "v-$name" master "$br"
  ns "$name" ip addr add "$addr" dev eth0
  ns "$name" ip route add default via "$gw"
  ns "$name" python3 "$HERE/testbed-server.py" "$name" >/dev/null 2>&1 &
  echo $! >>"$STATE/pids"
}

up() {
  local topo=${1:-one-arm} n=${2:-3}
  if [ -d "$STATE" ]; then echo "testbed $TB is already up (scripts/testbed.sh down first)" >&2; exit 1; fi
  mkdir -p "$STATE"
  echo "$topo" >"$STATE/topology"
  : >"$STATE/namespaces"; : >"$STATE/pids"
  mkns fab; mkns rt; mkns c1
  ns fab ip link add br0 type bridge; ns fab ip link set br0 up
  ns fab ip link add br1 type bridge; ns fab ip link set br1 up
  ns rt sysctl -qw net.ipv4.ip_forward=1
  ns rt sysctl -qw net.ipv4.conf.all.rp_filter=0
  # client side
  link rt cli0 c1 eth0
  ns rt ip addr add 198.51.100.1/24 dev cli0
  ns c1 ip addr add 198.51.100.10/24 dev eth0
  ns c1 ip addr add 198.51.100.11/24 dev eth0
  ns c1 ip addr add 198.51.100.12/24 dev eth0
  ns c1 ip route add default via 198.51.100.1
  # router on the fabric, and a routed server subnet behind it
  link rt fab0 fab rt-fab
  ns fab ip link set rt-fab master br0
  ns rt ip addr add 10.0.0.1/24 dev fab0
  link rt srv0 fab rt-srv
  ns fab ip link set rt-srv master br1
  ns rt ip addr add 192.168.50.1/24 dev srv0
  if [ "$topo" = inline ]; then
    # servers on their own segment behind the LB; the router reaches them (and VIPs) via the LB
    ns fab ip link add br2 type bridge; ns fab ip link set br2 up
    ns rt ip route add 10.1.0.0/24 via 10.0.0.2
    for i in $(seq 1 "$n"); do server "s$i" "10.1.0.1$i/24" 10.1.0.1 br2; done
  else
    for i in $(seq 1 "$n"); do server "s$i" "10.0.0.1$i/24" 10.0.0.1 br0; done
    for i in $(seq 1 2); do server "r$i" "192.168.50.1$i/24" 192.168.50.1 br1; done
    # x1: another host on the LB's segment, from which the tests send hostile traffic.
    mkns x1
    link x1 eth0 fab v-x1
    ns fab ip link set v-x1 master br0
    ns x1 ip addr add 10.0.0.66/24 dev eth0
    ns x1 ip route add default via 10.0.0.1
  fi
  # The bridges pass frames as a switch does: br_netfilter (on in every namespace here) would
  # drop malformed frames and trim trailers the tests send on purpose.
  for k in iptables ip6tables arptables; do ns fab sysctl -qw "net.bridge.bridge-nf-call-$k=0" 2>/dev/null || true; done
  echo "testbed $TB up ($topo, $n servers): namespaces $(tr '\n' ' ' <"$STATE/namespaces")"
}

# Attach the LB's taps once dsrlb runs (after its ports started: the tap PMD sets the kernel
# side's MAC to the DPDK side's on start, and a bridge port with the LB's own MAC would swallow
# the frames meant for it). Bridge them and give the kernel side a MAC of its own.
attach_one() { # DEV KERNEL_MAC BRIDGE
  ns fab ip link set "$1" address "$2"
  # The kernel queues frames for dsrlb here; 1000 frames is 25 ms at 40 000/s, less than this
  # two-core machine may keep the worker off its CPU while the tests flood it.
  ns fab ip link set "$1" txqueuelen 10000
  ns fab ip link set "$1" master "$3" up
  ns fab ip link show "$1" | grep -q "link/ether $2" || { echo "attach: $1 lost its MAC" >&2; return 1; }
}

attach() {
  local topo; topo=$(cat "$STATE/topology")
  if [ "$topo" = inline ]; then
    attach_one lbc0 02:00:00:00:01:02 br0
    attach_one lbs0 02:00:00:00:01:03 br2
  else
    attach_one lb0 02:00:00:00:01:02 br0
  fi
}

# Prepare every server for the DSR modes the example configurations use
# (docs/examples/testbed-one-arm.ron, docs/examples/testbed-inline.ron), with the server tool.
servers() {
  local topo; topo=$(cat "$STATE/topology")
  local tool="$HERE/dsrlb-server"
  if [ "$topo" = inline ]; then
    for s in s1 s2 s3; do ns "$s" "$tool" setup l2 --vip 10.0.0.100 >/dev/null; done
    return
  fi
  for i in 1 2 3; do
    ns "s$i" "$tool" setup l2 --vip 10.0.0.100 --vip 10.0.0.105 >/dev/null
    ns "s$i" "$tool" setup ipip --vip 10.0.0.101 >/dev/null
    ns "s$i" "$tool" setup dscp --vip 10.0.0.102 --code 7 --real "10.0.0.1$i" >/dev/null
  done
  for i in 1 2; do
    ns "r$i" "$tool" setup ipip --vip 10.0.0.103 >/dev/null
    ns "r$i" "$tool" setup dscp --vip 10.0.0.104 --code 9 --real "192.168.50.1$i" >/dev/null
  done
}

down() {
  [ -d "$STATE" ] || { echo "testbed $TB is not up"; return 0; }
  if [ -f "$STATE/pids" ]; then
    while read -r p; do kill "$p" 2>/dev/null || true; done <"$STATE/pids"
  fi
  if [ -f "$STATE/namespaces" ]; then
    tac "$STATE/namespaces" | while read -r n; do
      ip netns pids "$n" 2>/dev/null | xargs -r kill 2>/dev/null || true
      ip netns del "$n" 2>/dev/null || true
      rm -rf "/run/dsrlb-server/$n"   # dsrlb-server's record for that namespace
    done
  fi
  rm -rf "$STATE"
  echo "testbed $TB down"
}

case "${1:-}" in
  up) shift; up "$@" ;;
  servers) servers ;;
  attach) attach ;;
  down) down ;;
  *) echo "usage: $0 up [one-arm|inline] [SERVERS] | servers | attach | down" >&2; exit 2 ;;
esac
