#!/usr/bin/env bash
# The dsrlb testbed: network namespaces for clients, a router, an L2 fabric and real servers.
#
#   scripts/testbed.sh up [one-arm|inline] [SERVERS]   build it (default one-arm, 3 servers)
#   scripts/testbed.sh up fleet [INSTANCES]            a fleet behind ECMP (default 3 instances)
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
# Both are dual-stack, every IPv4 subnet with an IPv6 one beside it: fabric 2001:db8::/64
#   (router ::1, LB ::2, servers ::11-13, x1 ::66), clients 2001:db8:100::/64 (::10-12), routed
#   servers 2001:db8:50::/64, inline server side 2001:db8:1::/64 (LB ::1). No DAD (nodad): the
#   addresses are usable at once.
#
# fleet: the router runs BIRD 2 and spreads the VIPs 10.20.0.100-102 over the instances that
#   announce them (ECMP); instance N lives in namespace "$TB-lbN" with a veth "d0" on the fabric
#   (dsrlb reads it with af_packet; the namespace's own stack ignores it), address 10.0.0.(N+1),
#   and a BIRD that peers with the router over dsrlb's exception interface "dsrlb0". dsrlb itself
#   is started by whoever uses the testbed: scripts/testbed.sh instance-config N prints its file.
#
# dsrlb runs inside namespace "$TB-fab" (one-arm, inline), where the taps and bridges live. Names are prefixed by
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

addr6() { ns "$1" ip -6 addr add "$3" dev "$2" nodad; } # addr6 NS DEV ADDR/PREFIX

server() { # server NAME IP/PREFIX GATEWAY BRIDGE [IP6/PREFIX GATEWAY6]
  local name=$1 addr=$2 gw=$3 br=$4
  mkns "$name"
  link "$name" eth0 fab "v-$name"
  ns fab ip link set "v-$name" master "$br"
  ns "$name" ip addr add "$addr" dev eth0
  ns "$name" ip route add default via "$gw"
  if [ -n "${5:-}" ]; then
    addr6 "$name" eth0 "$5"
    ns "$name" ip -6 route add default via "$6"
  fi
  ns "$name" python3 "$HERE/testbed-server.py" "$name" >/dev/null 2>&1 &
  echo $! >>"$STATE/pids"
}

# The fleet's files: the shipped examples, with lb1's names and address made instance N's.
instance_file() { # N SOURCE
  sed -E "s/\blb1\b/lb$1/g; s/\b10\.0\.0\.2\b/10.0.0.$(($1 + 1))/g; s/dsrlb-lb1/dsrlb-lb$1/g" "$2"
}

bird_log() { # NAME: BIRD's log file and what it records (states and events of every protocol)
  printf 'log "%s" all;\ndebug protocols { states, events };\n\n' "$STATE/bird-$1.log"
}

up_fleet() {
  local n=$1
  mkns fab; mkns rt; mkns c1
  ns fab ip link add br0 type bridge; ns fab ip link set br0 up
  ns rt sysctl -qw net.ipv4.ip_forward=1
  ns rt sysctl -qw net.ipv4.conf.all.rp_filter=0
  # In a lab of veths the kernel would hash a flow by its socket's random hash (policy 1) or
  # by addresses only (0): hash the 5-tuple, as a router's ASIC does, so a TCP connection
  # sticks to one instance.
  ns rt sysctl -qw net.ipv4.fib_multipath_hash_policy=3
  ns rt sysctl -qw net.ipv4.fib_multipath_hash_fields=0x0037
  link rt cli0 c1 eth0
  ns rt ip addr add 198.51.100.1/24 dev cli0
  for a in 10 11 12; do ns c1 ip addr add "198.51.100.$a/24" dev eth0; done
  ns c1 ip route add default via 198.51.100.1
  link rt fab0 fab rt-fab
  ns fab ip link set rt-fab master br0
  ns rt ip addr add 10.0.0.1/24 dev fab0
  # s4 is not in the instances' configuration: the tests add it.
  for i in 1 2 3 4; do server "s$i" "10.0.0.1$i/24" 10.0.0.1 br0; done
  # x1: a hostile host on the fabric.
  mkns x1
  link x1 eth0 fab v-x1
  ns fab ip link set v-x1 master br0
  ns x1 ip addr add 10.0.0.66/24 dev eth0
  for i in $(seq 1 "$n"); do
    mkns "lb$i"
    link "lb$i" d0 fab "v-lb$i"
    ns fab ip link set "v-lb$i" master br0
    ns "lb$i" ip link set d0 address "02:00:00:00:0$i:02"
    # d0 is dsrlb's (af_packet sees frames before ingress hooks): the namespace's own stack
    # must neither answer nor send on it; it speaks through dsrlb0, the exception interface.
    ns "lb$i" sysctl -qw net.ipv6.conf.d0.disable_ipv6=1
    ns "lb$i" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
    ns "lb$i" nft -f - <<NFT
table netdev dsrlb-data {
  chain ingress { type filter hook ingress device d0 priority 0; policy drop; }
}
NFT
    instance_file "$i" "$HERE/../docs/fleet/instance.ron" >"$STATE/lb$i.ron"
    # The testbed's BIRDs log their sessions' state changes to a file beside their sockets.
    { bird_log "lb$i"; instance_file "$i" "$HERE/../docs/fleet/bird-instance.conf"; } >"$STATE/bird-lb$i.conf"
    ns "lb$i" bird -c "$STATE/bird-lb$i.conf" -s "$STATE/bird-lb$i.ctl" -P "$STATE/bird-lb$i.pid"
  done
  { bird_log rt; cat "$HERE/../docs/fleet/bird-router.conf"; } >"$STATE/bird-rt.conf"
  ns rt bird -c "$STATE/bird-rt.conf" -s "$STATE/bird-rt.ctl" -P "$STATE/bird-rt.pid"
  for k in iptables ip6tables arptables; do ns fab sysctl -qw "net.bridge.bridge-nf-call-$k=0" 2>/dev/null || true; done
  echo "testbed $TB up (fleet, $n instances): namespaces $(tr '\n' ' ' <"$STATE/namespaces")"
  echo "start instance N: ip netns exec $TB-lbN dsrlb run -c $STATE/lbN.ron"
}

up() {
  local topo=${1:-one-arm} n=${2:-3}
  if [ -d "$STATE" ]; then echo "testbed $TB is already up (scripts/testbed.sh down first)" >&2; exit 1; fi
  mkdir -p "$STATE"
  echo "$topo" >"$STATE/topology"
  : >"$STATE/namespaces"; : >"$STATE/pids"
  if [ "$topo" = fleet ]; then up_fleet "${2:-3}"; return; fi
  mkns fab; mkns rt; mkns c1
  # No MLD snooping: neighbour discovery's multicast reaches every port, as on a plain switch
  # (with snooping and no querier on the segment, a bridge may keep solicitations from the LB).
  ns fab ip link add br0 type bridge mcast_snooping 0; ns fab ip link set br0 up
  ns fab ip link add br1 type bridge mcast_snooping 0; ns fab ip link set br1 up
  ns rt sysctl -qw net.ipv4.ip_forward=1
  ns rt sysctl -qw net.ipv4.conf.all.rp_filter=0
  ns rt sysctl -qw net.ipv6.conf.all.forwarding=1
  # client side
  link rt cli0 c1 eth0
  ns rt ip addr add 198.51.100.1/24 dev cli0
  addr6 rt cli0 2001:db8:100::1/64
  for a in 10 11 12; do
    ns c1 ip addr add "198.51.100.$a/24" dev eth0
    addr6 c1 eth0 "2001:db8:100::$a/64"
  done
  ns c1 ip route add default via 198.51.100.1
  ns c1 ip -6 route add default via 2001:db8:100::1
  # router on the fabric, and a routed server subnet behind it
  link rt fab0 fab rt-fab
  ns fab ip link set rt-fab master br0
  ns rt ip addr add 10.0.0.1/24 dev fab0
  addr6 rt fab0 2001:db8::1/64
  link rt srv0 fab rt-srv
  ns fab ip link set rt-srv master br1
  ns rt ip addr add 192.168.50.1/24 dev srv0
  addr6 rt srv0 2001:db8:50::1/64
  if [ "$topo" = inline ]; then
    # servers on their own segment behind the LB; the router reaches them (and VIPs) via the LB
    ns fab ip link add br2 type bridge mcast_snooping 0; ns fab ip link set br2 up
    ns rt ip route add 10.1.0.0/24 via 10.0.0.2
    ns rt ip -6 route add 2001:db8:1::/64 via 2001:db8::2
    for i in $(seq 1 "$n"); do server "s$i" "10.1.0.1$i/24" 10.1.0.1 br2 "2001:db8:1::1$i/64" 2001:db8:1::1; done
  else
    for i in $(seq 1 "$n"); do server "s$i" "10.0.0.1$i/24" 10.0.0.1 br0 "2001:db8::1$i/64" 2001:db8::1; done
    for i in $(seq 1 2); do
      server "r$i" "192.168.50.1$i/24" 192.168.50.1 br1 "2001:db8:50::1$i/64" 2001:db8:50::1
    done
    # x1: another host on the LB's segment, from which the tests send hostile traffic.
    mkns x1
    link x1 eth0 fab v-x1
    ns fab ip link set v-x1 master br0
    ns x1 ip addr add 10.0.0.66/24 dev eth0
    ns x1 ip route add default via 10.0.0.1
    addr6 x1 eth0 2001:db8::66/64
    ns x1 ip -6 route add default via 2001:db8::1
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
  if [ "$topo" = fleet ]; then return; fi   # af_packet on veths: nothing to attach
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
    for s in s1 s2 s3; do ns "$s" "$tool" setup l2 --vip 10.0.0.100 --vip 2001:db8::100 >/dev/null; done
    return
  fi
  if [ "$topo" = fleet ]; then   # docs/fleet/instance.ron
    for i in 1 2 3 4; do
      ns "s$i" "$tool" setup l2 --vip 10.20.0.100 >/dev/null
      ns "s$i" "$tool" setup ipip --vip 10.20.0.101 >/dev/null
      ns "s$i" "$tool" setup dscp --vip 10.20.0.102 --code 7 --real "10.0.0.1$i" >/dev/null
    done
    return
  fi
  for i in 1 2 3; do
    ns "s$i" "$tool" setup l2 --vip 10.0.0.100 --vip 10.0.0.105 --vip 2001:db8::100 >/dev/null
    # 10.0.0.106: an IPv4 VIP tunnelled to the servers' IPv6 addresses (4in6).
    ns "s$i" "$tool" setup ipip --vip 10.0.0.101 --vip 2001:db8::101 --vip 10.0.0.106 >/dev/null
    ns "s$i" "$tool" setup dscp --vip 10.0.0.102 --code 7 --real "10.0.0.1$i" >/dev/null
    ns "s$i" "$tool" setup dscp --vip 2001:db8::102 --code 7 --real "2001:db8::1$i" >/dev/null
  done
  for i in 1 2; do
    ns "r$i" "$tool" setup ipip --vip 10.0.0.103 --vip 2001:db8::103 >/dev/null
    ns "r$i" "$tool" setup dscp --vip 10.0.0.104 --code 9 --real "192.168.50.1$i" >/dev/null
  done
}

down() {
  [ -d "$STATE" ] || { echo "testbed $TB is not up"; return 0; }
  for p in "$STATE"/bird-*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null || true; done
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
  # EAL leaves each instance's runtime directory (its telemetry socket) behind: the prefixes the
  # testbed's configurations and tests use.
  rm -rf /var/run/dpdk/dsrlb-tb /var/run/dpdk/dsrlb-tb2 /var/run/dpdk/dsrlb-lb[0-9]
  # and each instance's lock file beside its control socket (kept by dsrlb itself: removing it
  # at exit would race a second instance), now that no instance runs.
  rm -f /run/dsrlb-tb.sock.lock /run/dsrlb-tb2.sock.lock /run/dsrlb-lb[0-9].sock.lock
  echo "testbed $TB down"
}

case "${1:-}" in
  up) shift; up "$@" ;;
  servers) servers ;;
  attach) attach ;;
  down) down ;;
  *) echo "usage: $0 up [one-arm|inline|fleet] [SERVERS|INSTANCES] | servers | attach | down" >&2; exit 2 ;;
esac
