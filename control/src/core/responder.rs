//! Frames the control core answers and originates on the LB's own account: ARP for the VIPs and
//! the LB's addresses, ICMP echo for them, gratuitous ARP, and ARP requests for the neighbours
//! it resolves. Pure functions of the runtime: frames in, frames out.

use std::net::Ipv4Addr;

use dataplane::wire::{
    arp, icmp, ipv4, ArpPacket, ArpRepr, EthernetFrame, Ipv4Header, Ipv4Repr, MacAddr, ETHERTYPE_ARP,
    ETHERTYPE_IPV4, ETHERTYPE_VLAN,
};

use crate::probe::wire::{finish_ipv4, pad};
use crate::runtime::Runtime;

/// An Ethernet frame of `payload`, padded to the minimum size.
pub fn ethernet(dst: MacAddr, src: MacAddr, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    tagged(dst, src, None, ethertype, payload)
}

/// The same with an 802.1Q tag when `vlan` has one: an answer goes out on the VLAN its
/// question came in on.
pub fn tagged(dst: MacAddr, src: MacAddr, vlan: Option<u16>, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(18 + payload.len().max(46));
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    if let Some(tci) = vlan {
        f.extend_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    pad(f)
}

fn arp_frame(dst: MacAddr, repr: ArpRepr) -> Vec<u8> {
    arp_frame_tagged(dst, None, repr)
}

fn arp_frame_tagged(dst: MacAddr, vlan: Option<u16>, repr: ArpRepr) -> Vec<u8> {
    let mut a = [0u8; arp::LEN];
    repr.emit(&mut a);
    tagged(dst, MacAddr(repr.sender_mac), vlan, ETHERTYPE_ARP, &a)
}

/// Who has `target`? Tell `sender` (our address on the port). Broadcast, or straight to the MAC
/// `target` had (to see whether it still answers).
pub fn arp_request(port_mac: MacAddr, sender: Ipv4Addr, target: Ipv4Addr, to: Option<MacAddr>) -> Vec<u8> {
    arp_frame(
        to.unwrap_or(MacAddr::BROADCAST),
        ArpRepr {
            operation: arp::OP_REQUEST,
            sender_mac: port_mac.0,
            sender_ip: sender.octets(),
            target_mac: [0; 6],
            target_ip: target.octets(),
        },
    )
}

/// Announce that `ip` is at `port_mac` (sender = target = ip), so neighbours update caches.
pub fn gratuitous_arp(port_mac: MacAddr, ip: Ipv4Addr) -> Vec<u8> {
    arp_frame(
        MacAddr::BROADCAST,
        ArpRepr {
            operation: arp::OP_REQUEST,
            sender_mac: port_mac.0,
            sender_ip: ip.octets(),
            target_mac: [0; 6],
            target_ip: ip.octets(),
        },
    )
}

/// The answer to an ARP request that arrived on `port` (with this 802.1Q tag, if any): for a
/// VIP on a port where VIPs live, or for the LB's own address on its port — for nothing else
/// (servers hold the VIPs too but must never answer, so the LB is the only one that does).
pub fn arp_reply(rt: &Runtime, port: u16, vlan: Option<u16>, a: &ArpPacket<'_>) -> Option<Vec<u8>> {
    if a.operation() != arp::OP_REQUEST {
        return None;
    }
    let target = Ipv4Addr::from(a.target_ip());
    let sender = Ipv4Addr::from(a.sender_ip());
    let ours_here = rt.is_lb_addr_on(port, target.into());
    let vip_here = rt.vip_ports().contains(&port) && rt.is_vip(target.into());
    if !(ours_here || vip_here) || target == sender {
        return None;
    }
    let port_mac = *rt.port_macs.get(port as usize)?;
    let to = MacAddr(a.sender_mac());
    Some(arp_frame_tagged(
        to,
        vlan,
        ArpRepr {
            operation: arp::OP_REPLY,
            sender_mac: port_mac.0,
            sender_ip: target.octets(),
            target_mac: to.0,
            target_ip: sender.octets(),
        },
    ))
}

/// The reply to an ICMP echo request for a VIP or an LB address (addresses, MACs and type
/// swapped), or `None` if the frame is not a well-formed echo request for one of them.
pub fn echo_reply(rt: &Runtime, port: u16, frame: &[u8]) -> Option<Vec<u8>> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = Ipv4Header::new_checked(eth.payload()).ok()?;
    let dst = Ipv4Addr::from(ip.dst());
    if ip.protocol() != ipv4::PROTO_ICMP
        || ip.is_fragment()
        || !(rt.is_vip(dst.into()) || rt.is_lb_addr(dst.into()))
    {
        return None;
    }
    let msg = ip.payload();
    if msg.len() < icmp::HEADER_LEN || msg[0] != icmp::ECHO_REQUEST {
        return None;
    }
    let mut out = vec![0u8; ipv4::MIN_HEADER_LEN];
    Ipv4Repr::new(ipv4::PROTO_ICMP, ip.dst(), ip.src(), 0, 64).emit(&mut out);
    out.extend_from_slice(msg);
    out[ipv4::MIN_HEADER_LEN] = icmp::ECHO_REPLY;
    finish_ipv4(&mut out);
    let port_mac = *rt.port_macs.get(port as usize)?;
    Some(tagged(MacAddr(eth.src()), port_mac, eth.vlan_tci(), ETHERTYPE_IPV4, &out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use dataplane::checksum;

    const LB_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xfe]);
    const ASKER: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x01]);

    fn rt() -> Runtime {
        let cfg = Config::parse(
            r#"(
    ports: [(device: "net_null0", addresses: ["10.0.0.2/24"])],
    services: [(vip: "10.0.0.100", port: 80, mode: l2, backends: [(ip: "10.0.0.11")])],
)"#,
        )
        .unwrap();
        Runtime::new(cfg, vec![LB_MAC])
    }

    fn request(sender: [u8; 4], target: [u8; 4], op: u16) -> Vec<u8> {
        arp_frame(
            MacAddr::BROADCAST,
            ArpRepr {
                operation: op,
                sender_mac: ASKER.0,
                sender_ip: sender,
                target_mac: [0; 6],
                target_ip: target,
            },
        )
    }

    fn answer(frame: &[u8]) -> Option<Vec<u8>> {
        let a = ArpPacket::new_checked(&frame[14..]).unwrap();
        arp_reply(&rt(), 0, None, &a)
    }

    #[test]
    fn a_tagged_question_gets_a_tagged_answer() {
        let q = request([10, 0, 0, 1], [10, 0, 0, 100], arp::OP_REQUEST);
        let mut tagged_q = q[..12].to_vec();
        tagged_q.extend_from_slice(&[0x81, 0x00, 0x00, 0x2a]);
        tagged_q.extend_from_slice(&q[12..]);
        let eth = EthernetFrame::new_checked(&tagged_q).unwrap();
        let a = ArpPacket::new_checked(eth.payload()).unwrap();
        let r = arp_reply(&rt(), 0, eth.vlan_tci(), &a).unwrap();
        assert_eq!(&r[12..16], &[0x81, 0x00, 0x00, 0x2a], "VLAN 42 kept");
        assert_eq!(&r[16..18], &[0x08, 0x06]);
        let e = EthernetFrame::new_checked(&r).unwrap();
        assert_eq!(ArpPacket::new_checked(e.payload()).unwrap().sender_ip(), [10, 0, 0, 100]);
    }

    #[test]
    fn arp_answered_for_the_vip_and_the_lb_address_only() {
        for target in [[10, 0, 0, 100], [10, 0, 0, 2]] {
            let r = answer(&request([10, 0, 0, 1], target, arp::OP_REQUEST)).expect("answered");
            assert_eq!(&r[0..6], &ASKER.0, "to the asker");
            assert_eq!(&r[6..12], &LB_MAC.0);
            let a = ArpPacket::new_checked(&r[14..]).unwrap();
            assert_eq!(
                (a.operation(), a.sender_mac(), a.sender_ip(), a.target_mac(), a.target_ip()),
                (arp::OP_REPLY, LB_MAC.0, target, ASKER.0, [10, 0, 0, 1])
            );
            assert_eq!(r.len(), 60, "padded to the Ethernet minimum");
        }
        assert_eq!(answer(&request([10, 0, 0, 1], [10, 0, 0, 11], arp::OP_REQUEST)), None, "a backend");
        assert_eq!(answer(&request([10, 0, 0, 1], [10, 0, 0, 77], arp::OP_REQUEST)), None, "nobody");
        assert_eq!(answer(&request([10, 0, 0, 1], [10, 0, 0, 100], arp::OP_REPLY)), None, "a reply");
        assert_eq!(answer(&request([10, 0, 0, 100], [10, 0, 0, 100], arp::OP_REQUEST)), None, "gratuitous");
    }

    #[test]
    fn echo_answered_for_the_vip_and_the_lb_address_only() {
        let req = |dst: [u8; 4], ty: u8| {
            let mut ip = vec![0u8; 20];
            Ipv4Repr { ident: 7, ..Ipv4Repr::new(ipv4::PROTO_ICMP, [198, 51, 100, 7], dst, 0, 64) }
                .emit(&mut ip);
            ip.extend_from_slice(&[ty, 0, 0, 0, 0x12, 0x34, 0, 1, b'h', b'i']);
            finish_ipv4(&mut ip);
            ethernet(LB_MAC, ASKER, ETHERTYPE_IPV4, &ip)
        };
        for dst in [[10, 0, 0, 100], [10, 0, 0, 2]] {
            let r = echo_reply(&rt(), 0, &req(dst, icmp::ECHO_REQUEST)).expect("answered");
            assert_eq!((&r[0..6], &r[6..12]), (&ASKER.0[..], &LB_MAC.0[..]));
            assert_eq!((&r[26..30], &r[30..34]), (&dst[..], &[198, 51, 100, 7][..]), "addresses swapped");
            assert_eq!(r[34], icmp::ECHO_REPLY);
            assert_eq!(&r[38..44], &[0x12, 0x34, 0, 1, b'h', b'i'], "ident, sequence and data kept");
            assert_eq!(checksum::checksum(&r[14..34]), 0, "IP checksum");
            assert_eq!(checksum::checksum(&r[34..44]), 0, "ICMP checksum");
        }
        assert_eq!(echo_reply(&rt(), 0, &req([10, 0, 0, 11], icmp::ECHO_REQUEST)), None, "a backend");
        assert_eq!(echo_reply(&rt(), 0, &req([10, 0, 0, 100], icmp::ECHO_REPLY)), None, "not a request");
    }
}
