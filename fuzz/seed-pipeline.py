#!/usr/bin/env python3
"""Seed fuzz/corpus/pipeline with IPv6 frames the every-feature snapshot answers to: TCP/UDP to
each mode's VIP, extension headers, fragments, echo, a Packet Too Big quoting a reply, and a
neighbour solicitation. Random bytes rarely make a valid IPv6 header; mutating these does.
Input format: [port byte][length / 8][frame]."""
import os
import struct

d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "pipeline")
os.makedirs(d, exist_ok=True)


def a6(x):
    return bytes.fromhex("20010db8000000000000000000000000")[:14] + struct.pack(">H", x)


client = bytes.fromhex("20010db8ffff00000000000000000007")


def frame(dstmac, nh, src, dst, payload, hl=57):
    ip = struct.pack(">IHBB", (6 << 28) | (0x28 << 20) | 0x12345, len(payload), nh, hl) + src + dst + payload
    f = dstmac + bytes([2, 0, 0, 0, 0, 9]) + b"\x86\xdd" + ip
    return f + b"\0" * ((-len(f)) % 8)


mac = bytes([2, 0, 0, 0, 0, 1])
def tcp(sp, dp, fl): return struct.pack(">HHIIBBHHH", sp, dp, 1000, 0, 5 << 4, fl, 64240, 0, 0)
def udp(sp, dp, n): return struct.pack(">HHHH", sp, dp, 8 + n, 0) + b"x" * n


seeds = [
    frame(mac, 6, client, a6(0x64), tcp(40000, 80, 2)),
    frame(mac, 6, client, a6(0x65), tcp(40000, 80, 0x10) + b"y" * 40),
    frame(mac, 17, client, a6(0x66), udp(5000, 53, 20)),
    frame(mac, 0, client, a6(0x64), bytes([60, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0]) + tcp(1, 80, 2)),
    frame(mac, 44, client, a6(0x66), bytes([17, 0, 0, 1, 0, 0, 0, 7]) + udp(5000, 53, 16)),
    frame(mac, 44, client, a6(0x66), bytes([17, 0, 0, 24, 0, 0, 0, 7]) + b"z" * 16),
    frame(mac, 58, client, a6(0x64), bytes([128, 0, 0, 0, 0, 1, 0, 1])),
    frame(mac, 58, a6(0xEE), a6(0x66), bytes([2, 0, 0, 0, 0, 0, 5, 0])
          + struct.pack(">IHBB", 6 << 28, 20, 6, 64) + a6(0x66) + client + tcp(80, 40000, 0x10)),
    frame(bytes([0x33, 0x33, 0xFF, 0, 0, 0x64]), 58, bytes.fromhex("fe80000000000000000000fffe000009"),
          bytes.fromhex("ff0200000000000000000001ff000064"),
          bytes([135, 0, 0, 0, 0, 0, 0, 0]) + a6(0x64) + bytes([1, 1, 2, 0, 0, 0, 0, 9]), 255),
]
for i, f in enumerate(seeds):
    for port in (0, 1):
        with open(os.path.join(d, f"v6-seed-{i}-{port}"), "wb") as out:
            out.write(bytes([port, len(f) // 8]) + f)
print(f"{2 * len(seeds)} IPv6 seeds in {d}")
