#!/usr/bin/env python3
"""Userspace IP-in-IP decapsulator, for servers whose kernel has no `ipip` or `ip6_tunnel` module.

Receives the tunnels dsrlb sends — IPv4 in IPv4 (protocol 4), IPv6 in IPv6 (next header 41)
and IPv4 in IPv6 (4in6, next header 4) — on raw sockets (while they are open the kernel sends
no protocol-unreachable), strips the outer header and writes the inner packet into a TUN device;
the kernel then delivers it to the VIP on `lo`. Replies leave by the normal route. Real servers
with the modules should use `tunl0` and `ip6tnl0` instead (see docs/server-setup.md).

usage: ipip-decap.py TUN_NAME
"""
import fcntl
import os
import select
import socket
import struct
import sys

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000

name = sys.argv[1] if len(sys.argv) > 1 else "dsrdecap0"
tun = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(tun, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))


def raw(family, proto):
    try:
        s = socket.socket(family, socket.SOCK_RAW, proto)
    except OSError:
        return None  # e.g. IPv6 disabled on this server
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    return s


# An IPv4 raw socket hands over the outer header too; an IPv6 one only what follows it.
sockets = {s: strip for s, strip in [
    (raw(socket.AF_INET, 4), True),
    (raw(socket.AF_INET6, 41), False),
    (raw(socket.AF_INET6, 4), False),
] if s is not None}
print(f"ipip-decap: {name} ready ({len(sockets)} tunnel kinds)", flush=True)
while True:
    ready, _, _ = select.select(list(sockets), [], [])
    for s in ready:
        pkt = s.recv(65535)
        inner = pkt[(pkt[0] & 0x0F) * 4:] if sockets[s] and pkt else pkt
        if inner and inner[0] >> 4 in (4, 6):
            try:
                os.write(tun, inner)
            except OSError:
                pass
