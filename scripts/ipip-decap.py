#!/usr/bin/env python3
"""Userspace IP-in-IP decapsulator, for servers whose kernel has no `ipip` module.

Receives protocol-4 packets on a raw socket (while it is open the kernel sends no ICMP
protocol-unreachable), strips the outer IPv4 header and writes the inner packet into a TUN
device; the kernel then delivers it to the VIP on `lo`. Replies leave by the normal route.
Real servers with the module should use `tunl0` instead (see docs/server-setup.md).

usage: ipip-decap.py TUN_NAME
"""
import fcntl
import os
import socket
import struct
import sys

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000

name = sys.argv[1] if len(sys.argv) > 1 else "dsrdecap0"
tun = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(tun, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, 4)
raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
print(f"ipip-decap: {name} ready", flush=True)
while True:
    pkt = raw.recv(65535)
    if len(pkt) < 40:
        continue
    outer_len = (pkt[0] & 0x0F) * 4
    inner = pkt[outer_len:]
    if inner and inner[0] >> 4 == 4:
        try:
            os.write(tun, inner)
        except OSError:
            pass
