//! What the kernel behind an exception interface may get: the traffic for the LB's own address
//! that dsrlb does not answer itself. BGP and BFD are the routers' alone — as a router's
//! control-plane policing has it — so they reach the kernel only from a configured peer (its
//! address and resolved MAC): forged sessions and junk at BFD's ports never reach the routing
//! daemon (which logs each bad packet it reads).

use dataplane::wire::Ipv4Header;

/// BGP's TCP port.
const BGP: u16 = 179;
/// BFD control (single hop), echo, and multihop.
const BFD: [u16; 3] = [3784, 3785, 4784];

/// Whether an IPv4 packet (`ip`) for the LB may go to the kernel; `is_peer` says whether its
/// source address is a peer's, from the peer's own MAC.
pub fn admit(ip: &[u8], is_peer: impl FnOnce([u8; 4]) -> bool) -> bool {
    let Ok(h) = Ipv4Header::new_checked(ip) else { return false };
    !is_routing_protocol(&h) || is_peer(h.src())
}

/// BGP (either end) or BFD. Later fragments carry no ports: they are not, and are harmless
/// to the kernel without their first.
fn is_routing_protocol(h: &Ipv4Header<'_>) -> bool {
    let l4 = h.payload();
    let (Some(sport), Some(dport)) = (port_at(l4, 0), port_at(l4, 2)) else { return false };
    if h.frag_offset() != 0 {
        return false;
    }
    match h.protocol() {
        6 => sport == BGP || dport == BGP,
        17 => BFD.contains(&dport),
        _ => false,
    }
}

fn port_at(l4: &[u8], at: usize) -> Option<u16> {
    l4.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]))
}
