//! What the kernel behind an exception interface may get: the traffic for the LB's own address
//! that dsrlb does not answer itself. BGP and BFD are the routers' alone — as a router's
//! control-plane policing has it — so they reach the kernel only from a configured peer (its
//! address and resolved MAC): forged sessions and junk at BFD's ports never reach the routing
//! daemon (which logs each bad packet it reads).

use std::net::IpAddr;

use dataplane::parse::Fragment;
use dataplane::wire::{ipv6, Ipv4Header};

use crate::probe::wire::ip_of;

/// BGP's TCP port.
const BGP: u16 = 179;
/// BFD control (single hop), echo, and multihop.
const BFD: [u16; 3] = [3784, 3785, 4784];

/// Whether a frame for the LB (either family) may go to the kernel; `is_peer` says whether its
/// source address is a peer's, from the peer's own MAC.
pub fn admit(frame: &[u8], is_peer: impl FnOnce(IpAddr) -> bool) -> bool {
    if let Some(ip) = ip_of(frame) {
        let Ok(h) = Ipv4Header::new_checked(ip) else { return false };
        let routing = h.frag_offset() == 0 && is_routing_protocol(h.protocol(), h.payload());
        return !routing || is_peer(IpAddr::from(h.src()));
    }
    // IPv6: the dataplane's own walk over the extension headers finds the ports.
    let Ok(p) = dataplane::parse6::parse6(frame) else { return false };
    let l4 = p.l4.and_then(|at| frame.get(at..)).unwrap_or_default();
    let routing = p.fragment != Fragment::Later && is_routing_protocol(p.proto, l4);
    !routing || is_peer(IpAddr::from(p.src))
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

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::testkit::{client_tcp_from, v6};

    #[test]
    fn bgp_and_bfd_only_from_a_peer_in_either_family() {
        let peer4 = IpAddr::from([198, 51, 100, 7]);
        let bgp4 = client_tcp_from([198, 51, 100, 7], [10, 0, 0, 2], 40000, BGP);
        assert!(admit(&bgp4, |src| src == peer4));
        assert!(!admit(&bgp4, |_| false), "BGP from a non-peer");
        let ssh4 = client_tcp_from([198, 51, 100, 7], [10, 0, 0, 2], 40000, 22);
        assert!(admit(&ssh4, |_| false), "anything else goes to the kernel");

        let peer6 = IpAddr::from(v6::CLIENT);
        let bgp6 = v6::tcp(v6::CLIENT, v6::LB_IP6, 40000, BGP, 2, 0);
        assert!(admit(&bgp6, |src| src == peer6));
        assert!(!admit(&bgp6, |_| false), "BGP over IPv6 from a non-peer");
        let bfd6 = v6::with_extensions(&v6::udp(v6::CLIENT, v6::LB_IP6, 49152, BFD[0], 24), &[60]);
        assert!(!admit(&bfd6, |_| false), "BFD behind a destination-options header");
        assert!(admit(&bfd6, |src| src == peer6));
        assert!(admit(&v6::tcp(v6::CLIENT, v6::LB_IP6, 40000, 22, 2, 0), |_| false));
        assert!(!admit(&bgp6[..30], |_| true), "a cut frame");
    }
}
