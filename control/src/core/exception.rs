//! What the kernel behind an exception interface may get: the traffic for the LB's own address
//! that dsrlb does not answer itself. BGP and BFD are the routers' alone — as a router's
//! control-plane policing has it — so they reach the kernel only from a configured peer (its
//! address and resolved MAC): forged sessions and junk at BFD's ports never reach the routing
//! daemon (which logs each bad packet it reads).

use std::net::IpAddr;

use dataplane::parse::Fragment;
use dataplane::wire::{ipv6, Ipv4Header};

/// BGP's TCP port.
const BGP: u16 = 179;
/// BFD control (single hop), echo, and multihop.
const BFD: [u16; 3] = [3784, 3785, 4784];

/// Whether an IP packet (`ip`, either family) for the LB may go to the kernel; `is_peer` says
/// whether its source address is a peer's, from the peer's own MAC.
pub fn admit(ip: &[u8], is_peer: impl FnOnce(IpAddr) -> bool) -> bool {
    match ip.first().map(|b| b >> 4) {
        Some(4) => {
            let Ok(h) = Ipv4Header::new_checked(ip) else { return false };
            let routing = h.frag_offset() == 0 && is_routing_protocol(h.protocol(), h.payload());
            !routing || is_peer(IpAddr::from(h.src()))
        }
        Some(6) => {
            // The dataplane's own walk over the extension headers finds the ports.
            let mut frame = vec![0u8; 12];
            frame.extend_from_slice(&dataplane::wire::ETHERTYPE_IPV6.to_be_bytes());
            frame.extend_from_slice(ip);
            let Ok(p) = dataplane::parse6::parse6(&frame) else { return false };
            let l4 = p.l4.and_then(|at| frame.get(at..)).unwrap_or_default();
            let routing = p.fragment != Fragment::Later && is_routing_protocol(p.proto, l4);
            !routing || is_peer(IpAddr::from(p.src))
        }
        _ => false,
    }
}

/// BGP (either end) or BFD. Later fragments carry no ports: they are not, and are harmless
/// to the kernel without their first.
fn is_routing_protocol(proto: u8, l4: &[u8]) -> bool {
    let (Some(sport), Some(dport)) = (port_at(l4, 0), port_at(l4, 2)) else { return false };
    match proto {
        ipv6::NH_TCP => sport == BGP || dport == BGP,
        ipv6::NH_UDP => BFD.contains(&dport),
        _ => false,
    }
}

fn port_at(l4: &[u8], at: usize) -> Option<u16> {
    l4.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]))
}
