//! The control core in IPv6, without DPDK: neighbour discovery resolves the backends, probes
//! leave in each mode's IPv6 form, and a backend comes up only on answers from its VIP.

use std::time::{Duration, Instant};

use dataplane::snapshot::BackendState;
use dataplane::testkit::eth;
use dataplane::testkit::v6::{ip6, l4_csum6, neighbor_solicit, server_ip6, LB_IP6};
use dataplane::wire::icmpv6::{self, NdRepr};
use dataplane::wire::MacAddr;

use super::tests::{control_core, LB_MAC, ROUTER_MAC, SERVER_MAC};

const VIP_L2: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x64];
const VIP_IPIP: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x65];

/// One IPv6 service per mode, each with the on-link backend 2001:db8::11 and a TCP check.
const EVERY_MODE6: &str = r#"#![enable(implicit_some)]
(
    ports: [(device: "net_null0", addresses: ["10.0.0.2/24", "2001:db8::2/64"], gateway6: "fe80::1")],
    services: [
        (vip: "2001:db8::64", port: 80, mode: l2, health_check: (check: tcp, interval: 0.5, timeout: 0.4),
         backends: [(ip: "2001:db8::11")]),
        (vip: "2001:db8::65", port: 80, mode: ipip, health_check: (check: tcp, interval: 0.5, timeout: 0.4),
         backends: [(ip: "2001:db8::11")]),
        (vip: "2001:db8::66", port: 80, mode: dscp(7), health_check: (check: tcp, interval: 0.5, timeout: 0.4),
         backends: [(ip: "2001:db8::11")]),
    ],
)"#;

/// A solicited advertisement from `mac` for `target`, to the LB.
fn advert(target: [u8; 16], mac: MacAddr) -> Vec<u8> {
    let na = NdRepr {
        msg_type: icmpv6::NEIGHBOR_ADVERT,
        flags: icmpv6::NA_SOLICITED | icmpv6::NA_OVERRIDE,
        target,
        link_addr: Some(mac.0),
    };
    let mut m = vec![0u8; na.len()];
    na.emit(&mut m);
    let c = l4_csum6(target, LB_IP6, 58, &m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    let mut ip = ip6(58, target, LB_IP6, &m);
    ip[7] = 255;
    eth(LB_MAC.0, mac.0, 0x86dd, &ip)
}

fn is_ns_for(f: &[u8], target: [u8; 16]) -> bool {
    f[12..14] == [0x86, 0xdd] && f[20] == 58 && f[54] == icmpv6::NEIGHBOR_SOLICIT && f[62..78] == target
}

#[test]
fn neighbour_discovery_resolves_the_backend_and_answers_for_the_vip() {
    let t0 = Instant::now();
    let mut cc = control_core(EVERY_MODE6, t0);
    cc.poll(t0);
    let backend = server_ip6(1);
    let asked: Vec<&Vec<u8>> =
        cc.links().sent.iter().map(|(_, f)| f).filter(|f| is_ns_for(f, backend)).collect();
    assert_eq!(asked.len(), 1, "one solicitation for the backend");
    assert_eq!(&asked[0][0..6], &[0x33, 0x33, 0xff, 0, 0, 0x11], "to its solicited-node group");
    // A forged advertisement (from another MAC than it names) and an unsolicited one move nothing.
    let mut forged = advert(backend, MacAddr([2, 0, 0, 0, 0, 0x66]));
    forged[6..12].copy_from_slice(&ROUTER_MAC.0);
    cc.links_mut().punted.push_back((0, forged));
    cc.poll(t0 + Duration::from_millis(1));
    assert!(cc.links().published.is_empty(), "nothing learned");
    cc.links_mut().punted.push_back((0, advert(backend, SERVER_MAC)));
    cc.poll(t0 + Duration::from_millis(2));
    let snap = cc.links().published.last().expect("a snapshot was published");
    let f = snap.forward(0, snap.services[0].backends[0].id).unwrap();
    assert_eq!((f.resolved, f.next_hop(), f.real_v6), (true, SERVER_MAC.0, true));
    // The router asks for the VIP: the LB answers, for the VIP and nothing else.
    let router_ll = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    cc.links_mut().sent.clear();
    cc.links_mut().punted.push_back((0, neighbor_solicit(router_ll, ROUTER_MAC.0, VIP_IPIP)));
    cc.links_mut().punted.push_back((0, neighbor_solicit(router_ll, ROUTER_MAC.0, backend)));
    cc.poll(t0 + Duration::from_millis(3));
    let adverts: Vec<&Vec<u8>> = cc
        .links()
        .sent
        .iter()
        .map(|(_, f)| f)
        .filter(|f| f[12..14] == [0x86, 0xdd] && f[54] == icmpv6::NEIGHBOR_ADVERT)
        .collect();
    assert_eq!(adverts.len(), 1);
    assert_eq!(&adverts[0][62..78], &VIP_IPIP);
    assert_eq!(&adverts[0][0..6], &ROUTER_MAC.0);
}

/// A SYN-ACK to an IPv6 probe's port, from `src`: the probe's TCP header sits behind one IPv6
/// header (l2, dscp) or two (ip6ip6).
fn syn_ack_to(probe: &[u8], src: [u8; 16]) -> Vec<u8> {
    let l4 = 14 + 40 + if probe[20] == 41 { 40 } else { 0 };
    let sport = u16::from_be_bytes([probe[l4], probe[l4 + 1]]);
    let seq = u32::from_be_bytes([probe[l4 + 4], probe[l4 + 5], probe[l4 + 6], probe[l4 + 7]]);
    let mut t = dataplane::testkit::v6::tcp_seg6(src, LB_IP6, 80, sport, 0x12, b"");
    t[8..12].copy_from_slice(&seq.wrapping_add(1).to_be_bytes());
    t[16..18].fill(0);
    let c = l4_csum6(src, LB_IP6, 6, &t);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    eth(LB_MAC.0, SERVER_MAC.0, 0x86dd, &ip6(6, src, LB_IP6, &t))
}

#[test]
fn an_ipv6_backend_comes_up_only_on_answers_from_the_vip() {
    let t0 = Instant::now();
    let mut cc = control_core(EVERY_MODE6, t0);
    cc.poll(t0);
    cc.links_mut().punted.push_back((0, advert(server_ip6(1), SERVER_MAC)));
    cc.poll(t0 + Duration::from_millis(1));
    cc.links_mut().sent.clear();
    let syn = |f: &[u8]| {
        let l4 = 14 + 40 + if f[20] == 41 { 40 } else { 0 };
        f[12..14] == [0x86, 0xdd] && f.len() > l4 + 13 && (f[20] == 6 || f[20] == 41) && f[l4 + 13] == 0x02
    };
    let mut seen = [false; 3];
    for k in 0..400 {
        cc.poll(t0 + super::TICK * k);
        let sent = std::mem::take(&mut cc.links_mut().sent);
        for (_, f) in sent.iter().filter(|(_, f)| syn(f)) {
            assert_eq!(&f[0..6], &SERVER_MAC.0, "to the server's MAC");
            let tc = ((f[14] & 0x0f) << 4) | (f[15] >> 4);
            let (mode, from) = if f[20] == 41 {
                // ip6ip6: outer LB → real address, inner LB → VIP.
                assert_eq!((&f[22..38], &f[38..54]), (&LB_IP6[..], &server_ip6(1)[..]));
                assert_eq!(&f[78..94], &VIP_IPIP);
                (1, VIP_IPIP)
            } else if tc >> 2 == 7 {
                // dscp: to the real address, marked; this server answers from its real address
                // (as one without its DSCP rule does).
                assert_eq!(&f[38..54], &server_ip6(1));
                (2, server_ip6(1))
            } else {
                assert_eq!(&f[38..54], &VIP_L2);
                (0, VIP_L2)
            };
            seen[mode] = true;
            cc.links_mut().punted.push_back((0, syn_ack_to(f, from)));
        }
    }
    assert_eq!(seen, [true; 3], "a probe in each mode");
    cc.update_view(t0 + super::TICK * 400);
    let v = cc.view();
    let backend = |svc: &str| v.backends.iter().find(|b| b.service == svc).unwrap().clone();
    assert_eq!(backend("[2001:db8::64]:80/tcp").state, BackendState::Up, "l2: answered from the VIP");
    assert_eq!(backend("[2001:db8::65]:80/tcp").state, BackendState::Up, "ip6ip6: answered from the VIP");
    let dscp = backend("[2001:db8::66]:80/tcp");
    assert_eq!(dscp.state, BackendState::Down, "dscp: answered from the real address");
    assert!(dscp.last_error.as_deref().unwrap_or("").contains("not from the VIP"), "{:?}", dscp.last_error);
}
