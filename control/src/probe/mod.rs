//! Health checks that follow the DSR path. Probes leave through the dataplane ports exactly as
//! client traffic does in the service's mode, and a reply counts only when it comes back from
//! the VIP — which proves the server's DSR set-up (VIP on lo, decapsulation, DSCP rule):
//!
//! - `l2`: to the VIP, with the server's MAC;
//! - `ipip`: inner destination the VIP, encapsulated to the server's real IP;
//! - `dscp`: to the real IP, DSCP-marked; the server rewrites it to the VIP and answers from
//!   the VIP (the seed: "source/destination on the LB do not match").
//!
//! The wire form of every probe comes from the dataplane's own rewrite (`wire::onto_wire`).
//! TCP and HTTP checks use smoltcp as the userspace TCP client. smoltcp lives in a private
//! IPv4 address space: it is 100.64.0.1 and each backend is a virtual address of its own; the
//! adapter here moves packets between that space and the wire (LB address ↔ VIP). For an IPv6
//! VIP the adapter also translates the family (the TCP segment moves between an IPv4 header in
//! smoltcp's space and an IPv6 header on the wire, its checksum recomputed for each), so one
//! TCP client serves both families.

mod device;
pub mod wire;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use dataplane::snapshot::{Forward, ForwardMode};
use dataplane::wire::ipv6::{self, Ipv6Repr};
use dataplane::wire::{icmp, icmpv6, ipv4, Ipv4Repr, MacAddr};
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};

use crate::config::Check;
use device::VirtualDevice;

const LOCAL: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);
const VIRTUAL_BASE: u32 = 0x6440_0002; // 100.64.0.2
const FIRST_PORT: u16 = 33000;
const LAST_PORT: u16 = 60999;

/// Everything needed to send a probe to one backend along its service's DSR path.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub backend: u32,
    pub check: Check,
    pub vip: IpAddr,
    /// Port probed (TCP/HTTP).
    pub port: u16,
    pub mode: ForwardMode,
    /// How the workers forward to this backend, from the snapshot they run (egress port, MACs,
    /// real IP, the LB's address there); `None` while the next hop is unresolved.
    pub path: Option<Forward>,
    pub timeout: Duration,
}

impl Target {
    /// The probe's source: the LB's address of the VIP's family on the egress port.
    fn lb_ip(&self) -> IpAddr {
        match (self.vip, self.path) {
            (IpAddr::V4(_), Some(f)) => IpAddr::from(f.outer_src),
            (IpAddr::V6(_), Some(f)) => IpAddr::from(f.outer_src6),
            (IpAddr::V4(_), None) => IpAddr::from([0u8; 4]),
            (IpAddr::V6(_), None) => IpAddr::from([0u8; 16]),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok(Duration),
    Fail(String),
}

/// What the control core must send: (port, frame).
pub type Out = Vec<(u16, Vec<u8>)>;

/// What the prober made of a packet for an LB address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// A reply to a probe in flight.
    Taken,
    /// It names a probe in flight, but does not come the way the probe went (port, next hop)
    /// or does not carry what the probe did: not taken.
    Forged,
    /// Nothing to do with a probe.
    NotOurs,
}

/// A small pseudo-random generator (splitmix64), seeded from the OS.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let mut seed = [0u8; 8];
        // Without the OS's randomness the time still differs between instances and restarts.
        if getrandom::getrandom(&mut seed).is_err() {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            seed = (t.as_nanos() as u64 ^ std::process::id() as u64).to_le_bytes();
        }
        Rng(u64::from_le_bytes(seed))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        dataplane::flow::mix64(self.0)
    }
}

struct Inflight {
    target: Target,
    started: Instant,
    kind: Kind,
    /// A reply came, but from this address instead of the VIP (e.g. a missing DSCP rule).
    wrong_source: Option<IpAddr>,
}

/// A failure, saying so when the server did answer but not from the VIP.
fn failure(wrong_source: Option<IpAddr>, vip: IpAddr, what: String) -> Outcome {
    match wrong_source {
        Some(src) => Outcome::Fail(format!(
            "{what}; the server answered from {src}, not from the VIP {vip} (is its DSR set-up in place?)"
        )),
        None => Outcome::Fail(what),
    }
}

enum Kind {
    /// An echo request with a random ident and sequence number, which the reply must carry.
    Icmp {
        ident: u16,
        seq: u16,
    },
    Tcp {
        handle: SocketHandle,
        local_port: u16,
        request_sent: bool,
        response: Vec<u8>,
    },
}

pub struct Prober {
    iface: Interface,
    device: VirtualDevice,
    sockets: SocketSet<'static>,
    inflight: HashMap<u32, Inflight>,
    by_local_port: HashMap<u16, u32>,
    by_icmp_ident: HashMap<u16, u32>,
    /// Idents, sequence numbers, ports and smoltcp's initial sequence numbers are random, so a
    /// host that sees no probe cannot forge an answer to one (nor can another instance's).
    rng: Rng,
    ip_ident: u16,
    clock: Instant,
    /// Probes that ended inside `on_packet`, reported by the next `poll`.
    done: Vec<(u32, Outcome)>,
    last_targets: HashMap<u32, Target>,
}

fn virtual_addr(backend: u32) -> Ipv4Addr {
    Ipv4Addr::from(VIRTUAL_BASE + backend)
}

fn backend_of_virtual(a: Ipv4Addr) -> Option<u32> {
    u32::from(a).checked_sub(VIRTUAL_BASE)
}

impl Prober {
    pub fn new(now: Instant) -> Prober {
        let mut device = VirtualDevice::default();
        let mut rng = Rng::seeded();
        let mut config = IfaceConfig::new(HardwareAddress::Ip);
        config.random_seed = rng.next();
        let mut iface = Interface::new(config, &mut device, smoltcp::time::Instant::from_millis(0));
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(IpAddress::Ipv4(LOCAL), 10));
        });
        Prober {
            iface,
            device,
            sockets: SocketSet::new(vec![]),
            inflight: HashMap::new(),
            by_local_port: HashMap::new(),
            by_icmp_ident: HashMap::new(),
            ip_ident: rng.next() as u16,
            rng,
            clock: now,
            done: Vec::new(),
            last_targets: HashMap::new(),
        }
    }

    fn smol_now(&self, now: Instant) -> smoltcp::time::Instant {
        smoltcp::time::Instant::from_micros(now.saturating_duration_since(self.clock).as_micros() as i64)
    }

    pub fn in_flight(&self, backend: u32) -> bool {
        self.inflight.contains_key(&backend)
    }

    /// Start a probe of `t`. Returns an immediate failure if it cannot even be sent.
    pub fn start(&mut self, t: Target, now: Instant, out: &mut Out) -> Option<Outcome> {
        if self.inflight.contains_key(&t.backend) {
            return None;
        }
        let Some(path) = t.path else {
            return Some(Outcome::Fail("MAC of the next hop unresolved".into()));
        };
        match t.check {
            Check::Icmp => {
                let Some(ident) = self.alloc_ident() else {
                    return Some(Outcome::Fail("no free ICMP ident: too many probes in flight".into()));
                };
                let seq = self.rng.next() as u16;
                let mut echo = vec![icmp::ECHO_REQUEST, 0, 0, 0];
                echo.extend_from_slice(&ident.to_be_bytes());
                echo.extend_from_slice(&seq.to_be_bytes());
                echo.extend_from_slice(b"dsrlb health probe......");
                let ip = match (t.lb_ip(), t.vip) {
                    (IpAddr::V6(_), IpAddr::V6(_)) => {
                        echo[0] = icmpv6::ECHO_REQUEST;
                        ip_packet(ipv6::NH_ICMPV6, t.lb_ip(), t.vip, &echo)
                    }
                    _ => ip_packet(ipv4::PROTO_ICMP, t.lb_ip(), t.vip, &echo),
                };
                let Some(frame) = self.onto_wire(&t, ip) else {
                    return Some(Outcome::Fail("probe refused by the dataplane rewrite".into()));
                };
                self.by_icmp_ident.insert(ident, t.backend);
                out.push((path.port, frame));
                self.inflight.insert(
                    t.backend,
                    Inflight { target: t, started: now, kind: Kind::Icmp { ident, seq }, wrong_source: None },
                );
            }
            Check::Tcp | Check::Http { .. } => {
                let Some(local_port) = self.alloc_port() else {
                    return Some(Outcome::Fail("no free probe port: too many probes in flight".into()));
                };
                let mut s = tcp::Socket::new(
                    tcp::SocketBuffer::new(vec![0; 4096]),
                    tcp::SocketBuffer::new(vec![0; 1024]),
                );
                // No smoltcp timeout: the probe's own deadline decides, so its failure can say in
                // which state the connection was (no SYN-ACK, or no HTTP answer).
                let remote = (IpAddress::Ipv4(virtual_addr(t.backend)), t.port);
                if let Err(e) = s.connect(self.iface.context(), remote, local_port) {
                    return Some(Outcome::Fail(format!("connect: {e}")));
                }
                let handle = self.sockets.add(s);
                self.by_local_port.insert(local_port, t.backend);
                self.inflight.insert(
                    t.backend,
                    Inflight {
                        target: t,
                        started: now,
                        kind: Kind::Tcp { handle, local_port, request_sent: false, response: Vec::new() },
                        wrong_source: None,
                    },
                );
            }
        }
        None
    }

    /// A free local port for a TCP probe, at random; `None` when every one is in flight.
    fn alloc_port(&mut self) -> Option<u16> {
        let span = (LAST_PORT - FIRST_PORT + 1) as u64;
        let start = (self.rng.next() % span) as u16;
        // Random tries first; a full scan only when nearly every port is taken.
        (0..16)
            .map(|_| FIRST_PORT + (self.rng.next() % span) as u16)
            .chain((0..span as u16).map(|k| FIRST_PORT + (start + k) % span as u16))
            .find(|p| !self.by_local_port.contains_key(p))
    }

    /// A free ICMP ident, at random; `None` when every one is in flight.
    fn alloc_ident(&mut self) -> Option<u16> {
        let start = self.rng.next() as u16;
        (0..16)
            .map(|_| self.rng.next() as u16)
            .chain((0..=u16::MAX).map(|k| start.wrapping_add(k)))
            .find(|i| !self.by_icmp_ident.contains_key(i))
    }

    /// An IP packet in wire addresses (LB → VIP), checksummed, framed and rewritten by the
    /// dataplane for the target's mode.
    fn onto_wire(&mut self, t: &Target, mut ip: Vec<u8>) -> Option<Vec<u8>> {
        if t.vip.is_ipv6() {
            wire::finish_ipv6(&mut ip);
            return wire::onto_wire6(&ip, t.mode, t.path.as_ref()?);
        }
        wire::finish_ipv4(&mut ip);
        wire::onto_wire(&ip, t.mode, t.path.as_ref()?, &mut self.ip_ident)
    }

    /// An IPv4 packet addressed to an LB address arrived (punted by a worker) on `port` from
    /// the neighbour `eth_src`. Whether it was taken as a probe's reply: only from the VIP of
    /// the probed service (its DSR set-up proven), on the port the probe left by, from the next
    /// hop it went to, carrying the probe's ident and sequence (ICMP) or to its port and from
    /// the probed one (TCP). Anything else changes nothing.
    pub fn on_packet(&mut self, ip: &[u8], port: u16, eth_src: MacAddr, now: Instant) -> Reply {
        let Ok(h) = dataplane::wire::Ipv4Header::new_checked(ip) else { return Reply::NotOurs };
        if h.is_fragment() {
            return Reply::NotOurs;
        }
        let echo = h.protocol() == ipv4::PROTO_ICMP && h.payload().first() == Some(&icmp::ECHO_REPLY);
        let proto = if echo {
            Proto::Echo
        } else if h.protocol() == ipv4::PROTO_TCP {
            Proto::Tcp
        } else {
            Proto::Other
        };
        self.on_reply(IpAddr::from(h.src()), proto, h.payload(), port, eth_src, now)
    }

    /// The same for an IPv6 packet (TCP or ICMPv6 right behind the fixed header, as a probe's
    /// answer comes).
    pub fn on_packet6(&mut self, ip: &[u8], port: u16, eth_src: MacAddr, now: Instant) -> Reply {
        let Ok(h) = dataplane::wire::Ipv6Header::new_checked(ip) else { return Reply::NotOurs };
        let payload = h.payload();
        let proto = match h.next_header() {
            ipv6::NH_ICMPV6 if payload.first() == Some(&icmpv6::ECHO_REPLY) => Proto::Echo,
            ipv6::NH_TCP => Proto::Tcp,
            _ => Proto::Other,
        };
        self.on_reply(IpAddr::from(h.src()), proto, payload, port, eth_src, now)
    }

    fn on_reply(
        &mut self,
        src: IpAddr,
        proto: Proto,
        payload: &[u8],
        port: u16,
        eth_src: MacAddr,
        now: Instant,
    ) -> Reply {
        let (b, sport_ok) = match proto {
            Proto::Echo if payload.len() >= icmp::HEADER_LEN => {
                let ident = u16::from_be_bytes([payload[4], payload[5]]);
                let seq = u16::from_be_bytes([payload[6], payload[7]]);
                let Some(&b) = self.by_icmp_ident.get(&ident) else { return Reply::NotOurs };
                let ok = matches!(self.inflight.get(&b), Some(f) if matches!(f.kind, Kind::Icmp { seq: s, .. } if s == seq));
                (b, ok)
            }
            Proto::Tcp if payload.len() >= dataplane::wire::l4::TCP_MIN_LEN => {
                let sport = u16::from_be_bytes([payload[0], payload[1]]);
                let dport = u16::from_be_bytes([payload[2], payload[3]]);
                let Some(&b) = self.by_local_port.get(&dport) else { return Reply::NotOurs };
                (b, self.inflight.get(&b).is_some_and(|f| f.target.port == sport))
            }
            _ => return Reply::NotOurs,
        };
        let Some(f) = self.inflight.get_mut(&b) else { return Reply::NotOurs };
        let from_path = f.target.path.is_some_and(|p| p.port == port && p.next_hop() == eth_src.0);
        if !sport_ok || !from_path || src.is_ipv6() != f.target.vip.is_ipv6() {
            return Reply::Forged;
        }
        if src != f.target.vip {
            f.wrong_source = Some(src); // a reply, but not from the VIP: DSR set-up not proven
            return Reply::Taken;
        }
        if let Kind::Icmp { ident, .. } = f.kind {
            let rtt = now.duration_since(f.started);
            self.finish_icmp(b, ident);
            self.done.push((b, Outcome::Ok(rtt)));
            return Reply::Taken;
        }
        // Into smoltcp's space, in IPv4 whatever the wire's family: from the backend's virtual
        // address to 100.64.0.1, the segment's checksum recomputed for its new header.
        let p = ip_packet(ipv4::PROTO_TCP, virtual_addr(b).into(), LOCAL.into(), payload);
        let mut p = p;
        wire::finish_ipv4(&mut p);
        self.device.rx.push_back(p);
        Reply::Taken
    }

    fn finish_icmp(&mut self, b: u32, ident: u16) {
        self.by_icmp_ident.remove(&ident);
        self.inflight.remove(&b);
    }

    /// Drive the TCP client and time out probes; frames to send go to `out`, finished probes
    /// are returned.
    pub fn poll(&mut self, now: Instant, out: &mut Out) -> Vec<(u32, Outcome)> {
        let ts = self.smol_now(now);
        self.iface.poll(ts, &mut self.device, &mut self.sockets);
        let mut finished: Vec<(u32, Outcome)> = std::mem::take(&mut self.done);
        for (&b, f) in self.inflight.iter_mut() {
            let elapsed = now.duration_since(f.started);
            let (wrong, vip) = (f.wrong_source, f.target.vip);
            match &mut f.kind {
                Kind::Icmp { .. } => {
                    if elapsed >= f.target.timeout {
                        finished
                            .push((b, failure(wrong, vip, "timeout (no echo reply from the VIP)".into())));
                    }
                }
                Kind::Tcp { handle, request_sent, response, .. } => {
                    let s = self.sockets.get_mut::<tcp::Socket>(*handle);
                    let verdict = match &f.target.check {
                        Check::Tcp if s.state() == tcp::State::Established => Some(Outcome::Ok(elapsed)),
                        Check::Http { path, status } => {
                            if s.may_send() && !*request_sent {
                                let req = format!(
                                    "GET {path} HTTP/1.0\r\nHost: {}\r\nUser-Agent: dsrlb-health\r\nConnection: close\r\n\r\n",
                                    host(f.target.vip)
                                );
                                *request_sent =
                                    s.send_slice(req.as_bytes()).map(|n| n == req.len()).unwrap_or(false);
                            }
                            if s.can_recv() {
                                let mut buf = [0u8; 512];
                                if let Ok(n) = s.recv_slice(&mut buf) {
                                    response.extend_from_slice(&buf[..n]);
                                }
                            }
                            http_verdict(
                                response,
                                *status,
                                elapsed,
                                s.may_recv() || s.state() == tcp::State::SynSent,
                            )
                        }
                        _ => None,
                    };
                    let timed_out = elapsed >= f.target.timeout;
                    let verdict = verdict.or_else(|| match s.state() {
                        tcp::State::SynSent if timed_out => {
                            Some(failure(wrong, vip, "no SYN-ACK from the VIP before the timeout".into()))
                        }
                        _ if timed_out => {
                            Some(failure(wrong, vip, format!("timeout (TCP state {})", s.state())))
                        }
                        tcp::State::Closed if !*request_sent => {
                            Some(failure(wrong, vip, "connection refused or reset".into()))
                        }
                        tcp::State::Closed => {
                            Some(failure(wrong, vip, "connection closed before a verdict".into()))
                        }
                        _ => None,
                    });
                    if let Some(v) = verdict {
                        s.abort();
                        finished.push((b, v));
                    }
                }
            }
        }
        // Let aborted sockets send their RST, then forget them.
        self.iface.poll(ts, &mut self.device, &mut self.sockets);
        for (b, _) in &finished {
            if let Some(f) = self.inflight.remove(b) {
                match f.kind {
                    Kind::Tcp { handle, local_port, .. } => {
                        self.sockets.remove(handle);
                        self.by_local_port.remove(&local_port);
                    }
                    Kind::Icmp { ident, .. } => {
                        self.by_icmp_ident.remove(&ident);
                    }
                }
            }
        }
        self.flush(out);
        finished
    }

    /// smoltcp's output, from the private space onto the wire (in the VIP's family).
    fn flush(&mut self, out: &mut Out) {
        for mut p in std::mem::take(&mut self.device.tx) {
            if p.len() < ipv4::MIN_HEADER_LEN {
                continue;
            }
            let d = ipv4::field::DST;
            let dst = Ipv4Addr::new(p[d], p[d + 1], p[d + 2], p[d + 3]);
            let Some(b) = backend_of_virtual(dst) else { continue };
            let Some(t) = self
                .inflight
                .get(&b)
                .map(|f| f.target.clone())
                .or_else(|| self.last_targets.get(&b).cloned())
            else {
                continue;
            };
            let p = match (t.lb_ip(), t.vip) {
                (IpAddr::V4(src), IpAddr::V4(vip)) => {
                    p[ipv4::field::SRC..ipv4::field::SRC + 4].copy_from_slice(&src.octets());
                    p[ipv4::field::DST..ipv4::field::DST + 4].copy_from_slice(&vip.octets());
                    p
                }
                (src, vip) => {
                    let ihl = ((p[0] & 0x0f) as usize) * 4;
                    let total = u16::from_be_bytes([p[2], p[3]]) as usize;
                    let Some(segment) = p.get(ihl..total.min(p.len())) else { continue };
                    ip_packet(p[ipv4::field::PROTOCOL], src, vip, segment)
                }
            };
            if let (Some(path), Some(frame)) = (t.path, self.onto_wire(&t, p)) {
                out.push((path.port, frame));
            }
        }
    }

    /// Remember targets so segments sent after a probe ended (its RST) still find the path.
    pub fn remember(&mut self, t: &Target) {
        self.last_targets.insert(t.backend, t.clone());
    }
}

/// The VIP as an HTTP Host header names it (IPv6 in brackets).
fn host(vip: IpAddr) -> String {
    match vip {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    }
}

/// What a reply to a probe carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    Echo,
    Tcp,
    Other,
}

/// An IP packet of `src`'s family (`proto` the protocol or next header) around `payload`, its
/// lengths and checksums left to `finish_ipv4`/`finish_ipv6`.
fn ip_packet(proto: u8, src: IpAddr, dst: IpAddr, payload: &[u8]) -> Vec<u8> {
    let mut ip = match (src, dst) {
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut h = vec![0u8; ipv6::HEADER_LEN];
            Ipv6Repr {
                traffic_class: 0,
                flow_label: 0,
                payload_len: payload.len() as u16,
                next_header: proto,
                hop_limit: 64,
                src: s.octets(),
                dst: d.octets(),
            }
            .emit(&mut h);
            h
        }
        (s, d) => {
            let v4 = |a: IpAddr| match a {
                IpAddr::V4(a) => a.octets(),
                IpAddr::V6(_) => [0; 4],
            };
            let mut h = vec![0u8; ipv4::MIN_HEADER_LEN];
            Ipv4Repr::new(proto, v4(s), v4(d), 0, 64).emit(&mut h);
            h
        }
    };
    ip.extend_from_slice(payload);
    ip
}

/// The verdict of an HTTP probe from what has arrived so far.
fn http_verdict(response: &[u8], want: u16, elapsed: Duration, open: bool) -> Option<Outcome> {
    if let Some(end) = response.windows(2).position(|w| w == b"\r\n") {
        let line = String::from_utf8_lossy(&response[..end]);
        let mut parts = line.split_whitespace();
        let code = parts.nth(1).and_then(|c| c.parse::<u16>().ok());
        return Some(match (line.starts_with("HTTP/"), code) {
            (true, Some(c)) if c == want => Outcome::Ok(elapsed),
            (true, Some(c)) => Outcome::Fail(format!("HTTP status {c}, expected {want}")),
            _ => Outcome::Fail(format!("not an HTTP response: {line:?}")),
        });
    }
    if !open && !response.is_empty() {
        return Some(Outcome::Fail("connection closed before the status line".into()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_status_lines() {
        let d = Duration::from_millis(3);
        assert_eq!(http_verdict(b"HTTP/1.1 200 OK\r\n", 200, d, true), Some(Outcome::Ok(d)));
        assert!(
            matches!(http_verdict(b"HTTP/1.0 404 Not Found\r\n", 200, d, true), Some(Outcome::Fail(m)) if m.contains("404"))
        );
        assert_eq!(http_verdict(b"HTTP/1.1 20", 200, d, true), None);
        assert!(matches!(http_verdict(b"SSH-2.0\r\n", 200, d, true), Some(Outcome::Fail(_))));
        assert!(matches!(http_verdict(b"HTTP/1.1 2", 200, d, false), Some(Outcome::Fail(_))));
    }

    #[test]
    fn virtual_addresses_round_trip() {
        for b in [0u32, 1, 4000] {
            assert_eq!(backend_of_virtual(virtual_addr(b)), Some(b));
        }
        assert_eq!(backend_of_virtual(LOCAL), None);
    }
}

#[cfg(test)]
mod randomness {
    use super::*;

    fn target(check: Check) -> Target {
        Target {
            backend: 3,
            check,
            vip: Ipv4Addr::new(10, 0, 0, 100).into(),
            port: 80,
            mode: ForwardMode::L2,
            path: Some(Forward {
                service: 0,
                port: 0,
                keeps_flows: true,
                takes_new: true,
                resolved: true,
                macs: Forward::macs([2, 0, 0, 0, 0, 0x11], [2, 0, 0, 0, 0, 0xfe]),
                real_ip: [10, 0, 0, 11],
                outer_src: [10, 0, 0, 2],
                mtu: 1500,
                real_v6: false,
                real_ip6: [0; 16],
                outer_src6: [0; 16],
                csum_base: 0,
            }),
            timeout: Duration::from_secs(1),
        }
    }

    /// What a fresh prober (a new instance, or a restart) puts in its first probe of each kind:
    /// TCP source port and initial sequence number, ICMP ident and sequence number.
    fn first_probes() -> ([u8; 6], [u8; 4]) {
        let now = Instant::now();
        let mut p = Prober::new(now);
        let mut out = Vec::new();
        p.start(target(Check::Tcp), now, &mut out);
        p.poll(now, &mut out);
        let syn = &out[0].1;
        let mut tcp = [0u8; 6];
        tcp[..2].copy_from_slice(&syn[34..36]);
        tcp[2..].copy_from_slice(&syn[38..42]);
        let mut p = Prober::new(now);
        let mut out = Vec::new();
        p.start(Target { backend: 4, ..target(Check::Icmp) }, now, &mut out);
        let echo = &out[0].1;
        (tcp, echo[38..42].try_into().unwrap())
    }

    #[test]
    fn probes_differ_between_instances_and_restarts() {
        let firsts: Vec<_> = (0..4).map(|_| first_probes()).collect();
        for i in 0..firsts.len() {
            for j in i + 1..firsts.len() {
                assert_ne!(firsts[i].0, firsts[j].0, "TCP port and ISN: {firsts:02x?}");
                assert_ne!(firsts[i].1, firsts[j].1, "ICMP ident and sequence: {firsts:02x?}");
            }
        }
    }
}
