//! Packets and snapshots for tests, benchmarks, the fuzzer and capture generators: one kit
//! instead of a copy in each. Checksums here are computed from scratch with this file's own
//! code, never with the code under test (`checksum`), so a test that compares against these
//! bytes checks the dataplane's arithmetic rather than repeating it.

use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::io::{MemIo, PacketIo};
use crate::snapshot::*;
use crate::{PacketBuf, PacketSink, Snapshot, VecPacket, Verdict, Worker, WorkerConfig};

pub mod v6;

/// `tcpdump -y EN10MB -ddd 'tcp dst port 80'` (tcpdump 4.99.3, libpcap 1.10.3, Debian 12): a real
/// compiled filter, for the BPF interpreter's and the capture tap's tests.
pub const TCPDUMP_TCP_DST_80: &str = "16;40 0 0 12;21 0 4 34525;48 0 0 20;21 0 11 6;40 0 0 56;21 8 9 80;\
    21 0 8 2048;48 0 0 23;21 0 6 6;40 0 0 20;69 4 0 8191;177 0 0 14;72 0 0 16;21 0 1 80;\
    6 0 0 262144;6 0 0 0";

pub const LB_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];
pub const LB_MAC2: [u8; 6] = [0x02, 0, 0, 0, 1, 0xfe];
pub const ROUTER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const CLIENT_GW_MAC: [u8; 6] = [0x02, 0, 0, 0, 2, 0x01];
pub const LB_IP: [u8; 4] = [10, 0, 0, 2];
pub const LB_IP2: [u8; 4] = [10, 1, 0, 1];
pub const CLIENT: [u8; 4] = [198, 51, 100, 7];
pub const VIP_L2: [u8; 4] = [10, 0, 0, 100];
pub const VIP_IPIP: [u8; 4] = [10, 0, 0, 101];
pub const VIP_DSCP: [u8; 4] = [10, 0, 0, 102];

pub fn server_mac(i: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0x10, i]
}

pub fn server_ip(i: u8) -> [u8; 4] {
    [10, 0, 0, 10 + i]
}

pub fn csum(data: &[u8]) -> u16 {
    let mut s: u64 = 0;
    for (i, b) in data.iter().enumerate() {
        s += if i % 2 == 0 { (*b as u64) << 8 } else { *b as u64 };
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

pub fn l4_csum(src: [u8; 4], dst: [u8; 4], proto: u8, seg: &[u8]) -> u16 {
    let mut ph = Vec::new();
    ph.extend_from_slice(&src);
    ph.extend_from_slice(&dst);
    ph.push(0);
    ph.push(proto);
    ph.extend_from_slice(&(seg.len() as u16).to_be_bytes());
    ph.extend_from_slice(seg);
    csum(&ph)
}

#[derive(Clone)]
pub struct Ip {
    pub tos: u8,
    pub id: u16,
    pub df: bool,
    pub mf: bool,
    pub frag_off: u16,
    pub ttl: u8,
    pub proto: u8,
    pub src: [u8; 4],
    pub dst: [u8; 4],
}

impl Ip {
    pub fn new(proto: u8, src: [u8; 4], dst: [u8; 4]) -> Self {
        Ip { tos: 0, id: 0x1234, df: true, mf: false, frag_off: 0, ttl: 61, proto, src, dst }
    }

    pub fn bytes(&self, payload: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; 20];
        h[0] = 0x45;
        h[1] = self.tos;
        h[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
        h[4..6].copy_from_slice(&self.id.to_be_bytes());
        let ff =
            (if self.df { 0x4000 } else { 0 }) | (if self.mf { 0x2000 } else { 0 }) | (self.frag_off / 8);
        h[6..8].copy_from_slice(&ff.to_be_bytes());
        h[8] = self.ttl;
        h[9] = self.proto;
        h[12..16].copy_from_slice(&self.src);
        h[16..20].copy_from_slice(&self.dst);
        let c = csum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h.extend_from_slice(payload);
        h
    }
}

pub fn tcp_seg(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, flags: u8, data: &[u8]) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[4..8].copy_from_slice(&1000u32.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&64240u16.to_be_bytes());
    t.extend_from_slice(data);
    let c = l4_csum(src, dst, 6, &t);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    t
}

pub fn udp_seg(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, data: &[u8], with_csum: bool) -> Vec<u8> {
    let mut u = vec![0u8; 8];
    u[0..2].copy_from_slice(&sport.to_be_bytes());
    u[2..4].copy_from_slice(&dport.to_be_bytes());
    u[4..6].copy_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    u.extend_from_slice(data);
    if with_csum {
        let mut c = l4_csum(src, dst, 17, &u);
        if c == 0 {
            c = 0xffff;
        }
        u[6..8].copy_from_slice(&c.to_be_bytes());
    }
    u
}

pub fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

pub fn eth_vlan(dst: [u8; 6], src: [u8; 6], vid: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x81, 0x00]);
    f.extend_from_slice(&vid.to_be_bytes());
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(payload);
    f
}

/// A client's TCP packet to `vip:dport` as it arrives from the router.
pub fn client_tcp(vip: [u8; 4], sport: u16, dport: u16, flags: u8, data: &[u8]) -> Vec<u8> {
    let ip = Ip::new(6, CLIENT, vip);
    eth(LB_MAC, ROUTER_MAC, 0x0800, &ip.bytes(&tcp_seg(CLIENT, vip, sport, dport, flags, data)))
}

pub fn client_tcp_from(src: [u8; 4], vip: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let ip = Ip::new(6, src, vip);
    eth(LB_MAC, ROUTER_MAC, 0x0800, &ip.bytes(&tcp_seg(src, vip, sport, dport, 0x02, b"")))
}

/// Check an IPv4 packet at `at`: header checksum and TCP/UDP checksum recomputed from scratch.
pub fn assert_ip_valid(frame: &[u8], at: usize) {
    let ihl = ((frame[at] & 0x0f) as usize) * 4;
    assert_eq!(csum(&frame[at..at + ihl]), 0, "IP header checksum");
    let total = u16::from_be_bytes([frame[at + 2], frame[at + 3]]) as usize;
    let proto = frame[at + 9];
    let frag = u16::from_be_bytes([frame[at + 6], frame[at + 7]]) & 0x3fff;
    if frag != 0 {
        return;
    }
    let src: [u8; 4] = frame[at + 12..at + 16].try_into().unwrap();
    let dst: [u8; 4] = frame[at + 16..at + 20].try_into().unwrap();
    let seg = &frame[at + ihl..at + total];
    match proto {
        6 => assert_eq!(l4_csum(src, dst, 6, seg), 0, "TCP checksum"),
        17 if seg[6..8] != [0, 0] => assert_eq!(l4_csum(src, dst, 17, seg), 0, "UDP checksum"),
        1 => assert_eq!(csum(seg), 0, "ICMP checksum"),
        _ => {}
    }
}

pub fn backend(id: u32, i: u8, weight: u32) -> BackendInfo {
    BackendInfo {
        id,
        real_ip: Ipv4Addr::from(server_ip(i)).into(),
        weight,
        state: BackendState::Up,
        port: 0,
        next_hop_mac: Some(server_mac(i)),
    }
}

pub fn service(
    id: u16,
    vip: [u8; 4],
    proto: u8,
    port: u16,
    mode: ForwardMode,
    backends: Vec<BackendInfo>,
) -> ServiceInfo {
    ServiceInfo {
        id,
        vip: Ipv4Addr::from(vip).into(),
        proto,
        port,
        mode,
        scheduler: Scheduler::Maglev,
        persistence: None,
        tcp_idle_ms: 300_000,
        udp_idle_ms: 30_000,
        closing_ms: 10_000,
        syn_ms: 3_000,
        backends,
        maglev_size: 65537,
    }
}

pub fn lan_port(mtu: u16) -> PortInfo {
    PortInfo {
        mac: LB_MAC,
        addrs: vec![Ipv4Addr::from(LB_IP).into()],
        mtu,
        role: PortRole::Lan,
        gateway_mac: Some(ROUTER_MAC),
        gateway6_mac: Some(ROUTER_MAC),
        peers: Vec::new(),
    }
}

/// One-arm: one port, one service per mode, each with one backend (so goldens are exact).
pub fn one_arm() -> Snapshot {
    Snapshot::build(
        1,
        vec![lan_port(1500)],
        vec![
            service(0, VIP_L2, 6, 80, ForwardMode::L2, vec![backend(0, 1, 1)]),
            service(1, VIP_IPIP, 6, 80, ForwardMode::Ipip, vec![backend(1, 2, 1)]),
            service(2, VIP_DSCP, 6, 80, ForwardMode::Dscp(7), vec![backend(2, 3, 1)]),
            service(3, VIP_DSCP, 17, 53, ForwardMode::Dscp(7), vec![backend(3, 3, 1)]),
            service(4, VIP_IPIP, 17, 53, ForwardMode::Ipip, vec![backend(4, 2, 1)]),
            service(5, VIP_L2, 17, 0, ForwardMode::L2, vec![backend(5, 1, 1)]),
        ],
    )
    .unwrap()
}

pub fn worker(snap: Snapshot) -> Worker {
    Worker::new(
        WorkerConfig { flow_capacity: 1 << 12, persistence_capacity: 1 << 10, ..Default::default() },
        Arc::new(snap),
    )
}

/// Run one frame through the worker: the verdict and the packet's bytes afterwards.
pub fn run(w: &mut Worker, frame: &[u8], in_port: u16, now: u32) -> (Verdict, Vec<u8>, MemIo) {
    let mut io = MemIo::new(2);
    let mut p = VecPacket::from_bytes(frame);
    let v = w.process(&mut p, in_port, now, &mut SinkAdapter(&mut io));
    (v, p.data().to_vec(), io)
}

/// Extra packets (outer fragments) into a `MemIo`'s TX queues.
pub struct SinkAdapter<'a>(pub &'a mut MemIo);

impl PacketSink<VecPacket> for SinkAdapter<'_> {
    fn alloc(&mut self) -> Option<VecPacket> {
        self.0.alloc()
    }

    fn emit(&mut self, port: u16, pkt: VecPacket) {
        self.0.tx(port, pkt)
    }
}

/// A sink with no buffers: a packet that would need an outer fragment is dropped (`no_buffer`).
pub struct NoSink;

impl PacketSink<VecPacket> for NoSink {
    fn alloc(&mut self) -> Option<VecPacket> {
        None
    }
    fn emit(&mut self, _: u16, _: VecPacket) {}
}

/// A sink that hands out `n` buffers and discards what is emitted (the fuzzer's).
pub struct CountedSink(pub usize);

impl PacketSink<VecPacket> for CountedSink {
    fn alloc(&mut self) -> Option<VecPacket> {
        (self.0 > 0).then(|| {
            self.0 -= 1;
            VecPacket::new()
        })
    }
    fn emit(&mut self, _: u16, _: VecPacket) {}
}

/// Every feature at once, on tiny tables: inline dual-stack ports, every mode in both
/// families and 4in6, each scheduler, source-IP persistence, every-port services, a draining
/// backend (the fuzzer's configuration).
pub fn every_feature() -> Snapshot {
    use std::net::{IpAddr, Ipv6Addr};
    let v6 = |last: u16| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last));
    let port = |mac: u8, addr: [u8; 4], addr6: u16, role| PortInfo {
        mac: [2, 0, 0, 0, 0, mac],
        addrs: vec![Ipv4Addr::from(addr).into(), v6(addr6)],
        mtu: 1500,
        role,
        gateway_mac: Some([2, 0, 0, 0, 9, 9]),
        gateway6_mac: Some([2, 0, 0, 0, 9, 9]),
        peers: Vec::new(),
    };
    let backends = |first: u32, six: bool| -> Vec<BackendInfo> {
        (0..3)
            .map(|i| BackendInfo {
                id: first + i,
                real_ip: if six {
                    v6(0x110 + i as u16)
                } else {
                    Ipv4Addr::new(10, 1, 0, 10 + i as u8).into()
                },
                weight: 1 + i,
                state: if i == 2 { BackendState::Draining } else { BackendState::Up },
                port: 1,
                next_hop_mac: Some([2, 0, 0, 1, 0, i as u8]),
            })
            .collect()
    };
    let svc = |id: u16, vip: IpAddr, proto, port, mode, scheduler, persistence, six| ServiceInfo {
        id,
        vip,
        proto,
        port,
        mode,
        scheduler,
        persistence,
        tcp_idle_ms: 1000,
        udp_idle_ms: 500,
        closing_ms: 100,
        syn_ms: 50,
        backends: backends(id as u32 * 3, six),
        maglev_size: 251,
    };
    let v4 = |a: [u8; 4]| IpAddr::V4(Ipv4Addr::from(a));
    let persist = Some(Persistence { by: PersistBy::SourceIp, timeout_ms: 1000 });
    use ForwardMode::*;
    use Scheduler::*;
    Snapshot::build(
        1,
        vec![port(1, [10, 0, 0, 2], 2, PortRole::Client), port(2, [10, 1, 0, 1], 0x101, PortRole::Server)],
        vec![
            svc(0, v4([10, 0, 0, 100]), 6, 80, L2, Maglev, None, false),
            svc(1, v4([10, 0, 0, 101]), 6, 80, Ipip, WeightedRoundRobin, None, false),
            svc(2, v4([10, 0, 0, 102]), 17, 0, Dscp(7), LeastConnections, persist, false),
            svc(3, v4([10, 0, 0, 102]), 6, 443, Dscp(7), SourceHash, None, false),
            svc(4, v4([10, 0, 0, 103]), 6, 80, Ipip, Maglev, None, true),
            svc(5, v6(0x64), 6, 80, L2, Maglev, None, true),
            svc(6, v6(0x65), 6, 80, Ipip, WeightedRoundRobin, None, true),
            svc(7, v6(0x66), 17, 0, Dscp(7), LeastConnections, persist, true),
            svc(8, v6(0x66), 6, 443, Dscp(7), SourceHash, None, true),
        ],
    )
    .expect("snapshot")
}

/// The benchmark's VIPs, one per mode, each a TCP service on port 80.
pub const BENCH_VIPS: [([u8; 4], ForwardMode, &str); 3] = [
    ([10, 0, 0, 100], ForwardMode::L2, "l2"),
    ([10, 0, 0, 101], ForwardMode::Ipip, "ipip"),
    ([10, 0, 0, 102], ForwardMode::Dscp(7), "dscp"),
];

/// One service per mode (`BENCH_VIPS`) with `backends` backends each, on one port of MTU 1600
/// (as on a fabric sized for IPIP, so 1500-byte packets encapsulate without fragmenting).
pub fn bench_snapshot(backends: u32) -> Snapshot {
    let port = PortInfo { gateway_mac: None, ..lan_port(1600) };
    let services = BENCH_VIPS
        .iter()
        .enumerate()
        .map(|(s, (vip, mode, _))| ServiceInfo {
            backends: (0..backends)
                .map(|i| BackendInfo {
                    id: s as u32 * backends + i,
                    real_ip: Ipv4Addr::new(10, 1, (i >> 8) as u8, i as u8).into(),
                    weight: 1,
                    state: BackendState::Up,
                    port: 0,
                    next_hop_mac: Some([2, 0, 0, 1, (i >> 8) as u8, i as u8]),
                })
                .collect(),
            ..service(s as u16, *vip, 6, 80, *mode, Vec::new())
        })
        .collect();
    Snapshot::build(1, vec![port], services).expect("snapshot")
}

/// A `size`-byte TCP frame (ACK, or SYN) from `src:sport` to `vip:dport` as it arrives from the
/// router, with correct checksums and zero padding: what benchmarks and captures replay.
pub fn sized_tcp(src: [u8; 4], sport: u16, vip: [u8; 4], dport: u16, size: usize, syn: bool) -> Vec<u8> {
    let header = 14 + 20 + 20;
    let data = vec![0u8; size.max(header) - header];
    let ip =
        Ip::new(6, src, vip).bytes(&tcp_seg(src, vip, sport, dport, if syn { 0x02 } else { 0x10 }, &data));
    eth(LB_MAC, ROUTER_MAC, 0x0800, &ip)
}

/// A `size`-byte UDP frame from `src:sport` to `vip:dport`, with a checksum.
pub fn sized_udp(src: [u8; 4], sport: u16, vip: [u8; 4], dport: u16, size: usize) -> Vec<u8> {
    let header = 14 + 20 + 8;
    let data = vec![0u8; size.max(header) - header];
    let ip = Ip::new(17, src, vip).bytes(&udp_seg(src, vip, sport, dport, &data, true));
    eth(LB_MAC, ROUTER_MAC, 0x0800, &ip)
}
