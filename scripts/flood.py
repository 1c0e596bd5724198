#!/usr/bin/env python3
"""Hostile traffic for the testbed's tests, bounded in time and count: frames built here and
sent from a namespace's interface with an AF_PACKET socket, as fast as the kernel takes them
(or at --pps). Only for the testbed's own namespaces and addresses.

usage: flood.py IFACE DST_MAC KIND [options]
  KIND  udp        UDP to --dst:--port from --src (a port without a service: never punted)
        echo       ICMP echo requests to --dst (a VIP: punted to the control core)
        syn        TCP SYNs to --dst:--port from random (spoofed) sources in 203.0.0.0/8
        garp       gratuitous ARP: --src is at --mac (a spoofed announcement)
        na         IPv6 neighbour advertisements: --src (IPv6) is at --mac, unsolicited to all
                   nodes and falsely "solicited" to the LB (spoofed, as garp)
        echo-reply echo replies from --src to --dst sweeping every ident (forged probe answers)
        syn-ack    SYN-ACKs from --src:--port to --dst, sweeping destination ports 33000-60999
        big        one --size-byte UDP datagram (DF) to --dst:--port per --every frames of the
                   normal size (oversized frames among normal ones)
options: --seconds S (default 5) --count N --pps R --src A --dst A --port P --mac M
         --size BYTES --every K
Prints "sent N frames in T s (R/s)".
"""
import argparse
import random
import socket
import struct
import sys
import time


def csum(b: bytes) -> int:
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def mac(s: str) -> bytes:
    return bytes(int(x, 16) for x in s.split(":"))


def ip(s: str) -> bytes:
    return socket.inet_aton(s)


def ipv4(src: bytes, dst: bytes, proto: int, payload: bytes, df=True, ttl=64) -> bytes:
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), random.getrandbits(16),
                    0x4000 if df else 0, ttl, proto, 0, src, dst)
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def l4(src: bytes, dst: bytes, proto: int, seg: bytearray, at: int) -> bytes:
    ph = src + dst + struct.pack("!BBH", 0, proto, len(seg))
    struct.pack_into("!H", seg, at, csum(ph + bytes(seg)))
    return bytes(seg)


def udp(src, dst, sport, dport, data):
    seg = bytearray(struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data)
    return ipv4(src, dst, 17, l4(src, dst, 17, seg, 6))


def na(target: bytes, claim: bytes, dst: bytes, solicited: bool) -> bytes:
    flags = 0x20 | (0x40 if solicited else 0)  # override, and solicited if claimed
    m = bytearray(struct.pack("!BBHB3x16s", 136, 0, 0, flags, target) + struct.pack("!BB6s", 2, 1, claim))
    ph = target + dst + struct.pack("!I3xB", len(m), 58)
    struct.pack_into("!H", m, 2, csum(ph + bytes(m)))
    return struct.pack("!IHBB16s16s", 6 << 28, len(m), 58, 255, target, dst) + bytes(m)


def tcp(src, dst, sport, dport, flags, seq=0, ack=0):
    seg = bytearray(struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 64240, 0, 0))
    return ipv4(src, dst, 6, l4(src, dst, 6, seg, 16))


def icmp(src, dst, typ, ident, seq, data=b"dsrlb health probe......"):
    m = bytearray(struct.pack("!BBHHH", typ, 0, 0, ident, seq) + data)
    struct.pack_into("!H", m, 2, csum(bytes(m)))
    return ipv4(src, dst, 1, bytes(m))


def main():
    a = argparse.ArgumentParser()
    a.add_argument("iface")
    a.add_argument("dst_mac")
    a.add_argument("kind")
    a.add_argument("--seconds", type=float, default=5.0)
    a.add_argument("--count", type=int, default=0)
    a.add_argument("--pps", type=float, default=0)
    a.add_argument("--src", default="198.51.100.66")
    a.add_argument("--dst", default="10.0.0.100")
    a.add_argument("--port", type=int, default=9999)
    a.add_argument("--mac", default=None)
    a.add_argument("--size", type=int, default=1600)
    a.add_argument("--every", type=int, default=20)
    o = a.parse_args()
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((o.iface, 0))
    me = s.getsockname()[4]
    dst_mac = mac(o.dst_mac)
    six = ":" in o.src or ":" in o.dst
    src, dst = (socket.inet_pton(socket.AF_INET6, o.src), socket.inet_pton(socket.AF_INET6, o.dst)) if six \
        else (ip(o.src), ip(o.dst))
    eth = lambda payload, ethertype=0x0800, d=dst_mac, m=me: d + m + struct.pack("!H", ethertype) + payload

    # A few thousand frames built up front, cycled: the loop itself only sends.
    if o.kind == "udp":
        frames = [eth(udp(src, dst, 1024 + i, o.port, b"x" * 18)) for i in range(4096)]
    elif o.kind == "echo":
        frames = [eth(icmp(src, dst, 8, i, 1)) for i in range(4096)]
    elif o.kind == "syn":
        rnd = random.Random(7)
        frames = [eth(tcp(ip("203.%d.%d.%d" % (rnd.randrange(256), rnd.randrange(256), rnd.randrange(1, 255))),
                          dst, rnd.randrange(1024, 65535), o.port, 0x02, rnd.getrandbits(32)))
                  for _ in range(100_000)]
    elif o.kind == "garp":
        claim = mac(o.mac) if o.mac else me
        arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, claim, src, b"\0" * 6, src)
        reply = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 2, claim, src, dst_mac, dst)
        frames = [eth(arp, 0x0806, b"\xff" * 6, claim if o.mac else me), eth(reply, 0x0806, dst_mac, claim if o.mac else me)]
    elif o.kind == "na":
        claim = mac(o.mac) if o.mac else me
        all_nodes = socket.inet_pton(socket.AF_INET6, "ff02::1")
        frames = [eth(na(src, claim, all_nodes, False), 0x86DD, b"\x33\x33\0\0\0\x01", claim),
                  eth(na(src, claim, dst, True), 0x86DD, dst_mac, claim)]
    elif o.kind == "echo-reply":
        m = mac(o.mac) if o.mac else me
        frames = [eth(icmp(src, dst, 0, i, seq), m=m) for i in range(65536) for seq in (1,)]
    elif o.kind == "syn-ack":
        m = mac(o.mac) if o.mac else me
        frames = [eth(tcp(src, dst, o.port, p, 0x12, 1000, 1001), m=m) for p in range(33000, 61000)]
    elif o.kind == "big":
        normal = eth(udp(src, dst, 40000, o.port, b"n" * 18))
        big = eth(udp(src, dst, 40001, o.port, b"B" * (o.size - 14 - 28)))
        frames = [big] + [normal] * o.every
    else:
        sys.exit(f"unknown kind {o.kind}")

    n, t0 = 0, time.monotonic()
    end = t0 + o.seconds
    k = len(frames)
    while True:
        now = time.monotonic()
        if now >= end or (o.count and n >= o.count):
            break
        if o.pps and n > o.pps * (now - t0):
            # Ahead of the rate: wait for the time the frames sent so far are due.
            time.sleep(min(n / o.pps - (now - t0), end - now))
            continue
        for _ in range(64):
            try:
                s.send(frames[n % k])
            except OSError:
                pass  # a full queue: the flood goes on
            n += 1
            if o.count and n >= o.count:
                break
    t = time.monotonic() - t0
    print(f"sent {n} frames in {t:.1f} s ({n / t:.0f}/s)")


if __name__ == "__main__":
    main()
