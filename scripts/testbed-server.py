#!/usr/bin/env python3
"""A real server for the testbed: HTTP on port 80 and a UDP echo on port 5353, in IPv4 and IPv6.

HTTP answers with the server's name and the client address it saw, so tests can tell which
backend served them and that the client address was preserved. Paths:
  /               "server=NAME client=IP:PORT"
  /index.html     the same (the health-check path)
  /bytes/N        N bytes (downloads)
  POST /upload    reads the body, answers with its length (uploads)
UDP: each datagram is echoed back prefixed with "NAME ".
"""
import http.server
import socket
import socketserver
import struct
import sys
import threading

NAME = sys.argv[1]
BIND = sys.argv[2] if len(sys.argv) > 2 else "0.0.0.0"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_text(self, body: bytes, code=200):
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Server", NAME)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path in ("/", "/index.html"):
            c = self.client_address
            self.send_text(f"server={NAME} client={c[0]}:{c[1]}\n".encode())
        elif self.path.startswith("/bytes/"):
            n = int(self.path.split("/")[2])
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.send_header("X-Server", NAME)
            self.end_headers()
            chunk = b"x" * 65536
            while n > 0:
                k = min(n, len(chunk))
                self.wfile.write(chunk[:k])
                n -= k
        else:
            self.send_text(b"not found\n", 404)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        got = 0
        while got < n:
            b = self.rfile.read(min(65536, n - got))
            if not b:
                break
            got += len(b)
        self.send_text(f"server={NAME} received={got}\n".encode())


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Server6(Server):
    address_family = socket.AF_INET6

    def server_bind(self):
        # IPv6 only: IPv4 clients keep their own socket (and show as themselves, not ::ffff:).
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        super().server_bind()


IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)


def udp_echo():
    # A DSR server must answer from the address the datagram was sent to (the VIP), not the
    # address routing would pick: read it with IP_PKTINFO and send the reply from it.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    s.bind((BIND, 5353))
    while True:
        data, anc, _, addr = s.recvmsg(65535, socket.CMSG_SPACE(12))
        pktinfo = None
        for level, kind, value in anc:
            if level == socket.IPPROTO_IP and kind == IP_PKTINFO:
                # struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr; }: reply from addr
                pktinfo = struct.pack("i4s4s", 0, value[8:12], b"\0" * 4)
        reply = NAME.encode() + b" " + data
        if pktinfo:
            s.sendmsg([reply], [(socket.IPPROTO_IP, IP_PKTINFO, pktinfo)], 0, addr)
        else:
            s.sendto(reply, addr)


def udp_echo6():
    # The same in IPv6: IPV6_RECVPKTINFO gives the address the datagram was sent to (the VIP),
    # IPV6_PKTINFO sends the reply from it.
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
    s.bind(("::", 5353))
    while True:
        data, anc, _, addr = s.recvmsg(65535, socket.CMSG_SPACE(20))
        cmsgs = []
        for level, kind, value in anc:
            if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO:
                # struct in6_pktinfo { in6_addr addr; int ifindex; }: reply from addr
                cmsgs = [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, value[:16] + struct.pack("i", 0))]
        s.sendmsg([NAME.encode() + b" " + data], cmsgs, 0, addr)


threading.Thread(target=udp_echo, daemon=True).start()
if BIND == "0.0.0.0" and socket.has_ipv6:
    try:
        threading.Thread(target=udp_echo6, daemon=True).start()
        threading.Thread(target=Server6(("::", 80), Handler).serve_forever, daemon=True).start()
    except OSError:
        pass  # IPv6 off in this namespace
Server((BIND, 80), Handler).serve_forever()
