//! IPv6 packets and a dual-stack snapshot for tests, benchmarks and the fuzzer. As in the rest
//! of the kit, checksums are computed here from scratch, never with the code under test.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{csum, eth, LB_IP, LB_MAC, ROUTER_MAC};
use crate::snapshot::*;

const fn a6(last: u16) -> [u8; 16] {
    [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, (last >> 8) as u8, last as u8]
}

/// The LB's address on the segment (2001:db8::2).
pub const LB_IP6: [u8; 16] = a6(2);
/// 2001:db8::64, ::65, ::66: the IPv6 VIPs, one per mode.
pub const VIP: [u8; 16] = a6(0x64);
pub const VIP_IPIP: [u8; 16] = a6(0x65);
pub const VIP_DSCP: [u8; 16] = a6(0x66);
/// An IPv4 VIP whose backend has only an IPv6 address (4in6).
pub const VIP4_OVER6: [u8; 4] = [10, 0, 0, 103];
/// A client on the internet (2001:db8:ffff::7).
pub const CLIENT: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];

/// Server `i`'s address: 2001:db8::(10 + i).
pub fn server_ip6(i: u8) -> [u8; 16] {
    a6(0x10 + i as u16)
}

/// The one's-complement checksum of a TCP/UDP/ICMPv6 segment with its IPv6 pseudo-header.
pub fn l4_csum6(src: [u8; 16], dst: [u8; 16], nh: u8, seg: &[u8]) -> u16 {
    let mut ph = Vec::new();
    ph.extend_from_slice(&src);
    ph.extend_from_slice(&dst);
    ph.extend_from_slice(&(seg.len() as u32).to_be_bytes());
    ph.extend_from_slice(&[0, 0, 0, nh]);
    ph.extend_from_slice(seg);
    csum(&ph)
}

/// A fixed IPv6 header (traffic class 0x28: DSCP 10, ECN 0; flow label 0x12345) and payload.
pub fn ip6(nh: u8, src: [u8; 16], dst: [u8; 16], payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 40];
    let w: u32 = (6 << 28) | (0x28 << 20) | 0x12345;
    h[0..4].copy_from_slice(&w.to_be_bytes());
    h[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    h[6] = nh;
    h[7] = 57;
    h[8..24].copy_from_slice(&src);
    h[24..40].copy_from_slice(&dst);
    h.extend_from_slice(payload);
    h
}

pub fn tcp_seg6(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16, flags: u8, data: &[u8]) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[4..8].copy_from_slice(&1000u32.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&64240u16.to_be_bytes());
    t.extend_from_slice(data);
    let c = l4_csum6(src, dst, 6, &t);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    t
}

pub fn udp_seg6(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut u = vec![0u8; 8];
    u[0..2].copy_from_slice(&sport.to_be_bytes());
    u[2..4].copy_from_slice(&dport.to_be_bytes());
    u[4..6].copy_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    u.extend_from_slice(data);
    let mut c = l4_csum6(src, dst, 17, &u);
    if c == 0 {
        c = 0xffff;
    }
    u[6..8].copy_from_slice(&c.to_be_bytes());
    u
}

/// A client's TCP frame with `data_len` bytes of payload, as it arrives from the router.
pub fn tcp(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16, flags: u8, data_len: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..data_len).map(|i| i as u8).collect();
    eth(LB_MAC, ROUTER_MAC, 0x86dd, &ip6(6, src, dst, &tcp_seg6(src, dst, sport, dport, flags, &data)))
}

pub fn udp(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16, data_len: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..data_len).map(|i| i as u8).collect();
    eth(LB_MAC, ROUTER_MAC, 0x86dd, &ip6(17, src, dst, &udp_seg6(src, dst, sport, dport, &data)))
}

/// An ICMPv6 message (`body` from the type on; the checksum is filled in).
pub fn icmp6(src: [u8; 16], dst: [u8; 16], mut body: Vec<u8>) -> Vec<u8> {
    body[2] = 0;
    body[3] = 0;
    let c = l4_csum6(src, dst, 58, &body);
    body[2..4].copy_from_slice(&c.to_be_bytes());
    eth(LB_MAC, ROUTER_MAC, 0x86dd, &ip6(58, src, dst, &body))
}

pub fn echo_request(src: [u8; 16], dst: [u8; 16]) -> Vec<u8> {
    icmp6(src, dst, vec![128, 0, 0, 0, 0x12, 0x34, 0, 1, 1, 2, 3, 4])
}

/// A neighbour solicitation for `target` from `src`/`src_mac`, to the target's solicited-node
/// group (hop limit 255, as RFC 4861 requires).
pub fn neighbor_solicit(src: [u8; 16], src_mac: [u8; 6], target: [u8; 16]) -> Vec<u8> {
    let dst = crate::wire::ipv6::solicited_node(target);
    let mut body = vec![135, 0, 0, 0, 0, 0, 0, 0];
    body.extend_from_slice(&target);
    body.extend_from_slice(&[1, 1]);
    body.extend_from_slice(&src_mac);
    let c = l4_csum6(src, dst, 58, &body);
    body[2..4].copy_from_slice(&c.to_be_bytes());
    let mut ip = ip6(58, src, dst, &body);
    ip[7] = 255;
    eth(crate::wire::ipv6::multicast_mac(dst), src_mac, 0x86dd, &ip)
}

/// `frame` (untagged IPv6) with extension headers of the given kinds (8 bytes each, empty
/// options; a routing header with no segments left) inserted after the fixed header.
pub fn with_extensions(frame: &[u8], kinds: &[u8]) -> Vec<u8> {
    let mut f = frame[..54].to_vec();
    let upper = frame[20];
    f[20] = kinds.first().copied().unwrap_or(upper);
    for (i, _) in kinds.iter().enumerate() {
        let next = kinds.get(i + 1).copied().unwrap_or(upper);
        f.extend_from_slice(&[next, 0, 0, 0, 0, 0, 0, 0]);
    }
    f.extend_from_slice(&frame[54..]);
    let plen = (f.len() - 54) as u16;
    f[18..20].copy_from_slice(&plen.to_be_bytes());
    f
}

/// One fragment of `frame` (untagged IPv6): its payload from `offset` 8-byte units on (all of
/// the rest for the first, 8 bytes otherwise) behind a fragment header.
pub fn fragment(frame: &[u8], offset: u16, more: bool, ident: u32) -> Vec<u8> {
    let payload = &frame[54..];
    let start = (offset as usize * 8).min(payload.len());
    let part = if offset == 0 { &payload[start..] } else { &payload[start..(start + 8).min(payload.len())] };
    let mut f = frame[..54].to_vec();
    let upper = frame[20];
    f[20] = 44;
    f.extend_from_slice(&[upper, 0]);
    f.extend_from_slice(&((offset << 3) | more as u16).to_be_bytes());
    f.extend_from_slice(&ident.to_be_bytes());
    f.extend_from_slice(part);
    let plen = (f.len() - 54) as u16;
    f[18..20].copy_from_slice(&plen.to_be_bytes());
    f
}

/// A `size`-byte TCP frame (ACK, or SYN) to `vip:dport`, as `super::sized_tcp` for IPv6.
pub fn sized_tcp(src: [u8; 16], sport: u16, vip: [u8; 16], dport: u16, size: usize, syn: bool) -> Vec<u8> {
    let header = 14 + 40 + 20;
    let data = vec![0u8; size.max(header) - header];
    let seg = tcp_seg6(src, vip, sport, dport, if syn { 0x02 } else { 0x10 }, &data);
    eth(LB_MAC, ROUTER_MAC, 0x86dd, &ip6(6, src, vip, &seg))
}

/// Check the IPv6 packet at `at`: its payload length, and its TCP/UDP/ICMPv6 checksum (directly
/// behind the fixed header) recomputed from scratch.
pub fn assert_ip6_valid(frame: &[u8], at: usize) {
    assert_eq!(frame[at] >> 4, 6, "version");
    let plen = u16::from_be_bytes([frame[at + 4], frame[at + 5]]) as usize;
    assert_eq!(frame.len(), at + 40 + plen, "payload length");
    let src: [u8; 16] = frame[at + 8..at + 24].try_into().unwrap();
    let dst: [u8; 16] = frame[at + 24..at + 40].try_into().unwrap();
    let nh = frame[at + 6];
    if matches!(nh, 6 | 17 | 58) {
        assert_eq!(l4_csum6(src, dst, nh, &frame[at + 40..]), 0, "L4 checksum of next header {nh}");
    }
}

fn backend6(id: u32, i: u8) -> BackendInfo {
    BackendInfo {
        id,
        real_ip: IpAddr::V6(Ipv6Addr::from(server_ip6(i))),
        weight: 1,
        state: BackendState::Up,
        port: 0,
        next_hop_mac: Some(super::server_mac(i)),
    }
}

fn svc6(id: u16, vip: [u8; 16], proto: u8, port: u16, mode: ForwardMode, b: Vec<BackendInfo>) -> ServiceInfo {
    ServiceInfo { vip: IpAddr::V6(Ipv6Addr::from(vip)), ..super::service(id, [0; 4], proto, port, mode, b) }
}

/// One dual-stack port (10.0.0.2 and 2001:db8::2, MTU `mtu`); one IPv6 service per mode with one
/// backend each, an every-port UDP service, and an IPv4 VIP tunnelled to an IPv6 backend.
pub fn one_arm6(mtu: u16) -> Snapshot {
    let port = PortInfo {
        addrs: vec![IpAddr::V4(Ipv4Addr::from(LB_IP)), IpAddr::V6(Ipv6Addr::from(LB_IP6))],
        ..super::lan_port(mtu)
    };
    Snapshot::build(
        1,
        vec![port],
        vec![
            svc6(0, VIP, 6, 80, ForwardMode::L2, vec![backend6(0, 1)]),
            svc6(1, VIP_IPIP, 6, 80, ForwardMode::Ipip, vec![backend6(1, 2)]),
            svc6(2, VIP_DSCP, 6, 80, ForwardMode::Dscp(7), vec![backend6(2, 3)]),
            svc6(3, VIP_DSCP, 17, 53, ForwardMode::Dscp(7), vec![backend6(3, 3)]),
            svc6(4, VIP, 17, 0, ForwardMode::L2, vec![backend6(4, 1)]),
            ServiceInfo {
                vip: IpAddr::V4(Ipv4Addr::from(VIP4_OVER6)),
                ..super::service(5, [0; 4], 6, 80, ForwardMode::Ipip, vec![backend6(5, 2)])
            },
            svc6(6, VIP_IPIP, 17, 53, ForwardMode::Ipip, vec![backend6(6, 2)]),
        ],
    )
    .expect("snapshot")
}

/// The IPv6 benchmark's VIPs, one per mode, each a TCP service on port 80.
pub const BENCH_VIPS6: [([u8; 16], ForwardMode, &str); 3] = [
    (VIP, ForwardMode::L2, "l2-v6"),
    (VIP_IPIP, ForwardMode::Ipip, "ipip-v6"),
    (VIP_DSCP, ForwardMode::Dscp(7), "dscp-v6"),
];

/// `super::bench_snapshot` for IPv6: one service per mode (`BENCH_VIPS6`) with `backends`
/// IPv6 backends each, on one dual-stack port of MTU 1600.
pub fn bench_snapshot6(backends: u32) -> Snapshot {
    let port = PortInfo {
        addrs: vec![IpAddr::V4(Ipv4Addr::from(LB_IP)), IpAddr::V6(Ipv6Addr::from(LB_IP6))],
        gateway_mac: None,
        ..super::lan_port(1600)
    };
    let services = BENCH_VIPS6
        .iter()
        .enumerate()
        .map(|(s, (vip, mode, _))| ServiceInfo {
            backends: (0..backends)
                .map(|i| BackendInfo {
                    id: s as u32 * backends + i,
                    real_ip: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, i as u16)),
                    weight: 1,
                    state: BackendState::Up,
                    port: 0,
                    next_hop_mac: Some([2, 0, 0, 1, (i >> 8) as u8, i as u8]),
                })
                .collect(),
            ..svc6(s as u16, *vip, 6, 80, *mode, Vec::new())
        })
        .collect();
    Snapshot::build(1, vec![port], services).expect("snapshot")
}

/// A `size`-byte UDP frame to `vip:dport`, with a checksum (as `super::sized_udp` for IPv6).
pub fn sized_udp(src: [u8; 16], sport: u16, vip: [u8; 16], dport: u16, size: usize) -> Vec<u8> {
    let header = 14 + 40 + 8;
    let data = vec![0u8; size.max(header) - header];
    eth(LB_MAC, ROUTER_MAC, 0x86dd, &ip6(17, src, vip, &udp_seg6(src, vip, sport, dport, &data)))
}
