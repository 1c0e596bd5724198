//! Frames the control core builds: ARP requests, replies and gratuitous ARP, ICMP echo
//! replies, and the IPv4 plumbing the probes need (checksums, IPIP, Ethernet).

use std::net::Ipv4Addr;

use dataplane::checksum;
use dataplane::wire::{arp, ipv4, Ipv4Repr, ETHERTYPE_ARP, ETHERTYPE_IPV4};

use crate::neigh::Mac;

pub const BROADCAST: Mac = [0xff; 6];

pub fn ethernet(dst: Mac, src: Mac, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len().max(46));
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    if f.len() < 60 {
        f.resize(60, 0); // Ethernet minimum (without FCS)
    }
    f
}

fn arp_frame(dst: Mac, op: u16, sha: Mac, spa: Ipv4Addr, tha: Mac, tpa: Ipv4Addr) -> Vec<u8> {
    let mut a = [0u8; arp::LEN];
    arp::ArpRepr {
        operation: op,
        sender_mac: sha,
        sender_ip: spa.octets(),
        target_mac: tha,
        target_ip: tpa.octets(),
    }
    .emit(&mut a);
    ethernet(dst, sha, ETHERTYPE_ARP, &a)
}

/// Who has `target`? Tell `sender` (our address on the port).
pub fn arp_request(port_mac: Mac, sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    arp_frame(BROADCAST, arp::OP_REQUEST, port_mac, sender, [0; 6], target)
}

/// `ip` is at `port_mac`, to `to_mac`/`to_ip`.
pub fn arp_reply(port_mac: Mac, ip: Ipv4Addr, to_mac: Mac, to_ip: Ipv4Addr) -> Vec<u8> {
    arp_frame(to_mac, arp::OP_REPLY, port_mac, ip, to_mac, to_ip)
}

/// Announce that `ip` is at `port_mac` (sender = target = ip), so neighbours update caches.
pub fn gratuitous_arp(port_mac: Mac, ip: Ipv4Addr) -> Vec<u8> {
    arp_frame(BROADCAST, arp::OP_REQUEST, port_mac, ip, [0; 6], ip)
}

/// Finish an IPv4 packet in place: total length, header checksum, and the TCP/UDP/ICMP
/// checksum computed from scratch.
pub fn fix_ipv4(pkt: &mut [u8]) {
    let ihl = ((pkt[0] & 0x0f) as usize) * 4;
    let total = pkt.len();
    pkt[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    pkt[10..12].fill(0);
    let c = checksum::checksum(&pkt[..ihl]);
    pkt[10..12].copy_from_slice(&c.to_be_bytes());
    let proto = pkt[9];
    let src: [u8; 4] = pkt[12..16].try_into().unwrap();
    let dst: [u8; 4] = pkt[16..20].try_into().unwrap();
    let l4 = &mut pkt[ihl..];
    let at = match proto {
        ipv4::PROTO_TCP if l4.len() >= 20 => 16,
        ipv4::PROTO_UDP if l4.len() >= 8 => 6,
        ipv4::PROTO_ICMP if l4.len() >= 8 => 2,
        _ => return,
    };
    l4[at..at + 2].fill(0);
    let acc =
        if proto == ipv4::PROTO_ICMP { 0 } else { checksum::pseudo_header(src, dst, proto, l4.len() as u16) };
    let mut c = checksum::finish(checksum::sum(l4, acc));
    if proto == ipv4::PROTO_UDP && c == 0 {
        c = 0xffff;
    }
    l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

/// Wrap an IPv4 packet in an outer header (IPIP), as the dataplane does for client traffic.
pub fn ipip(inner: &[u8], src: Ipv4Addr, dst: Ipv4Addr, ident: u16) -> Vec<u8> {
    let mut o = vec![0u8; 20];
    Ipv4Repr {
        tos: inner.get(1).copied().unwrap_or(0),
        ident,
        dont_fragment: inner.len() >= 8 && inner[6] & 0x40 != 0,
        ..Ipv4Repr::new(ipv4::PROTO_IPIP, src.octets(), dst.octets(), inner.len() as u16, 64)
    }
    .emit(&mut o);
    o.extend_from_slice(inner);
    o
}

/// The reply to an ICMP echo request frame (addresses, MACs and type swapped), or `None` if it is
/// not a well-formed echo request.
pub fn icmp_echo_reply(frame: &[u8], port_mac: Mac) -> Option<Vec<u8>> {
    let eth = dataplane::wire::EthernetFrame::new_checked(frame).ok()?;
    let ip = dataplane::wire::Ipv4Header::new_checked(eth.payload()).ok()?;
    if ip.protocol() != ipv4::PROTO_ICMP || ip.is_fragment() {
        return None;
    }
    let icmp = ip.payload();
    if icmp.len() < 8 || icmp[0] != 8 {
        return None;
    }
    let mut out_ip = vec![0u8; 20];
    Ipv4Repr::new(ipv4::PROTO_ICMP, ip.dst(), ip.src(), 0, 64).emit(&mut out_ip);
    out_ip.extend_from_slice(icmp);
    out_ip[20] = 0; // echo reply
    fix_ipv4(&mut out_ip);
    Some(ethernet(eth.src(), port_mac, ETHERTYPE_IPV4, &out_ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_reply_swaps_and_checksums() {
        let mut req = vec![0u8; 20];
        Ipv4Repr { ident: 7, ..Ipv4Repr::new(ipv4::PROTO_ICMP, [10, 0, 0, 5], [10, 0, 0, 100], 0, 64) }
            .emit(&mut req);
        req.extend_from_slice(&[8, 0, 0, 0, 0x12, 0x34, 0, 1, b'h', b'i']);
        fix_ipv4(&mut req);
        let f = ethernet([2, 0, 0, 0, 0, 0xfe], [2, 0, 0, 0, 0, 5], 0x0800, &req);
        let r = icmp_echo_reply(&f, [2, 0, 0, 0, 0, 0xfe]).unwrap();
        assert_eq!(&r[0..6], &[2, 0, 0, 0, 0, 5]);
        assert_eq!(&r[26..30], &[10, 0, 0, 100]);
        assert_eq!(&r[30..34], &[10, 0, 0, 5]);
        assert_eq!(r[34], 0);
        assert_eq!(&r[38..40], &[0x12, 0x34], "id kept");
        assert_eq!(checksum::checksum(&r[14..34]), 0);
        assert_eq!(checksum::checksum(&r[34..34 + 10]), 0);
    }

    #[test]
    fn arp_frames() {
        let g = gratuitous_arp([2, 0, 0, 0, 0, 1], Ipv4Addr::new(10, 0, 0, 100));
        let a = arp::ArpPacket::new_checked(&g[14..]).unwrap();
        assert_eq!(a.sender_ip(), a.target_ip());
        assert_eq!(&g[0..6], &BROADCAST);
        let r = arp_reply(
            [2, 0, 0, 0, 0, 1],
            Ipv4Addr::new(10, 0, 0, 100),
            [2, 0, 0, 0, 0, 9],
            Ipv4Addr::new(10, 0, 0, 9),
        );
        let a = arp::ArpPacket::new_checked(&r[14..]).unwrap();
        assert_eq!(
            (a.operation(), a.sender_mac(), a.target_ip()),
            (arp::OP_REPLY, [2, 0, 0, 0, 0, 1], [10, 0, 0, 9])
        );
    }
}
