//! Golden packets: input bytes → expected output bytes for each mode, built independently here.

mod common;
use common::*;

use dataplane::{DropReason, Verdict};

#[test]
fn l2_changes_only_the_macs() {
    let mut w = worker(one_arm());
    let input = client_tcp(VIP_L2, 40000, 80, 0x02, b"hello");
    let (v, out, _) = run(&mut w, &input, 0, 0);
    assert_eq!(v, Verdict::Tx(0));
    let mut want = input.clone();
    want[0..6].copy_from_slice(&server_mac(1));
    want[6..12].copy_from_slice(&LB_MAC);
    assert_eq!(out, want, "only destination and source MAC differ");
    assert_eq!(w.counters().services[0].new_flows, 1);
}

#[test]
fn l2_keeps_vlan_tag() {
    let mut w = worker(one_arm());
    let ip = Ip::new(6, CLIENT, VIP_L2).bytes(&tcp_seg(CLIENT, VIP_L2, 40001, 80, 0x02, b""));
    let input = eth_vlan(LB_MAC, ROUTER_MAC, 42, &ip);
    let (v, out, _) = run(&mut w, &input, 0, 0);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(&out[0..6], &server_mac(1));
    assert_eq!(&out[12..], &input[12..], "tag and IP untouched");
}

#[test]
fn dscp_tcp_rewrite_matches_independent_build() {
    let mut w = worker(one_arm());
    let mut ip = Ip::new(6, CLIENT, VIP_DSCP);
    ip.tos = 0x02; // ECT(0): the ECN bits must survive
    let seg = tcp_seg(CLIENT, VIP_DSCP, 40000, 80, 0x18, b"GET / HTTP/1.1\r\n\r\n");
    let input = eth(LB_MAC, ROUTER_MAC, 0x0800, &ip.bytes(&seg));
    let (v, out, _) = run(&mut w, &input, 0, 0);
    assert_eq!(v, Verdict::Tx(0));
    let mut want_ip = ip.clone();
    want_ip.tos = (7 << 2) | 0x02;
    want_ip.dst = server_ip(3);
    let want_seg = tcp_seg(CLIENT, server_ip(3), 40000, 80, 0x18, b"GET / HTTP/1.1\r\n\r\n");
    let want = eth(server_mac(3), LB_MAC, 0x0800, &want_ip.bytes(&want_seg));
    assert_eq!(out, want);
    assert_ip_valid(&out, 14);
}

#[test]
fn dscp_udp_with_and_without_checksum() {
    let mut w = worker(one_arm());
    for with in [true, false] {
        let ip = Ip::new(17, CLIENT, VIP_DSCP);
        let input =
            eth(LB_MAC, ROUTER_MAC, 0x0800, &ip.bytes(&udp_seg(CLIENT, VIP_DSCP, 5353, 53, b"query", with)));
        let (v, out, _) = run(&mut w, &input, 0, 0);
        assert_eq!(v, Verdict::Tx(0));
        let mut want_ip = ip.clone();
        want_ip.tos = 7 << 2;
        want_ip.dst = server_ip(3);
        let want = eth(
            server_mac(3),
            LB_MAC,
            0x0800,
            &want_ip.bytes(&udp_seg(CLIENT, server_ip(3), 5353, 53, b"query", with)),
        );
        assert_eq!(out, want, "with checksum: {with}");
        if !with {
            assert_eq!(&out[14 + 20 + 6..14 + 20 + 8], &[0, 0], "a zero UDP checksum stays zero");
        }
        assert_ip_valid(&out, 14);
    }
}

#[test]
fn dscp_udp_checksum_that_becomes_zero_is_sent_as_ffff() {
    // Search a payload whose rewritten checksum computes to 0, then check it is sent as 0xffff.
    let mut w = worker(one_arm());
    let mut found = false;
    for x in 0..=u16::MAX {
        let data = x.to_be_bytes();
        let after = udp_seg(CLIENT, server_ip(3), 5353, 53, &data, false);
        if l4_csum(CLIENT, server_ip(3), 17, &after) != 0 {
            continue;
        }
        found = true;
        let ip = Ip::new(17, CLIENT, VIP_DSCP);
        let input =
            eth(LB_MAC, ROUTER_MAC, 0x0800, &ip.bytes(&udp_seg(CLIENT, VIP_DSCP, 5353, 53, &data, true)));
        let (_, out, _) = run(&mut w, &input, 0, 0);
        assert_eq!(&out[14 + 26..14 + 28], &[0xff, 0xff]);
        break;
    }
    assert!(found);
}

#[test]
fn ipip_prepends_outer_header() {
    let mut w = worker(one_arm());
    let mut ip = Ip::new(6, CLIENT, VIP_IPIP);
    ip.tos = 0x2e << 2;
    let inner = ip.bytes(&tcp_seg(CLIENT, VIP_IPIP, 40000, 80, 0x02, b""));
    let input = eth(LB_MAC, ROUTER_MAC, 0x0800, &inner);
    let (v, out, _) = run(&mut w, &input, 0, 0);
    assert_eq!(v, Verdict::Tx(0));
    let mut outer = Ip::new(4, LB_IP, server_ip(2));
    outer.tos = 0x2e << 2;
    outer.ttl = 64;
    outer.df = true;
    outer.id = 1; // the worker's first fresh ID
    let want = eth(server_mac(2), LB_MAC, 0x0800, &outer.bytes(&inner));
    assert_eq!(out, want);
    assert_ip_valid(&out, 14);
    assert_ip_valid(&out, 34);
}

#[test]
fn ipip_drops_ethernet_padding_and_keeps_vlan() {
    let mut w = worker(one_arm());
    let inner = Ip::new(17, CLIENT, VIP_IPIP).bytes(&udp_seg(CLIENT, VIP_IPIP, 9, 53, b"x", true));
    let mut input = eth_vlan(LB_MAC, ROUTER_MAC, 7, &inner);
    input.resize(64, 0); // padded to the Ethernet minimum
    let (v, out, _) = run(&mut w, &input, 0, 0);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(&out[12..16], &[0x81, 0x00, 0x00, 0x07], "tag kept");
    assert_eq!(out.len(), 18 + 20 + inner.len(), "padding removed, outer length exact");
    assert_eq!(&out[38..], &inner[..]);
    assert_ip_valid(&out, 18);
}

#[test]
fn ipip_oversized_df_gets_frag_needed() {
    let mut w = worker(one_arm());
    let seg = tcp_seg(CLIENT, VIP_IPIP, 40000, 80, 0x10, &vec![0xaa; 1460]);
    let inner = Ip::new(6, CLIENT, VIP_IPIP).bytes(&seg); // 1500 bytes, DF
    let input = eth(LB_MAC, ROUTER_MAC, 0x0800, &inner);
    let (v, out, _) = run(&mut w, &input, 0, 0);
    assert_eq!(v, Verdict::Tx(0), "sent back out the ingress port");
    assert_eq!(&out[0..6], &ROUTER_MAC, "toward the sender's next hop");
    assert_eq!(&out[6..12], &LB_MAC);
    assert_eq!(&out[26..30], &LB_IP, "from the LB");
    assert_eq!(&out[30..34], &CLIENT, "to the client");
    assert_eq!(out[23], 1, "ICMP");
    assert_eq!((out[34], out[35]), (3, 4), "fragmentation needed");
    assert_eq!(u16::from_be_bytes([out[40], out[41]]), 1480, "MTU - 20");
    assert_eq!(&out[42..62], &inner[..20], "quotes the original header");
    assert_eq!(out.len(), 14 + 576, "no more than 576 bytes of IP");
    assert_ip_valid(&out, 14);
    assert_eq!(w.counters().frag_needed_sent, 1);
}

#[test]
fn ipip_frag_needed_is_rate_limited() {
    let mut w = worker(one_arm());
    let inner =
        Ip::new(6, CLIENT, VIP_IPIP).bytes(&tcp_seg(CLIENT, VIP_IPIP, 40000, 80, 0x10, &vec![0; 1460]));
    let input = eth(LB_MAC, ROUTER_MAC, 0x0800, &inner);
    let mut sent = 0;
    for _ in 0..500 {
        if let (Verdict::Tx(_), _, _) = run(&mut w, &input, 0, 0) {
            sent += 1;
        }
    }
    assert_eq!(sent, 100, "the burst allowance, at one instant");
    assert_eq!(w.counters().frag_needed_rate_limited, 400);
    assert_eq!(w.counters().dropped(DropReason::TooBigDontFragment), 400);
    // Tokens come back with time: 1000/s → 10 in 10 ms.
    let more = (0..50).filter(|_| matches!(run(&mut w, &input, 0, 10).0, Verdict::Tx(_))).count();
    assert_eq!(more, 10);
}

#[test]
fn ipip_oversized_without_df_is_fragmented() {
    let mut w = worker(one_arm());
    let mut ip = Ip::new(17, CLIENT, VIP_IPIP);
    ip.df = false;
    let payload: Vec<u8> = (0..1472u32).map(|i| i as u8).collect();
    let inner = ip.bytes(&udp_seg(CLIENT, VIP_IPIP, 7, 53, &payload, true)); // 1500 bytes
    let input = eth(LB_MAC, ROUTER_MAC, 0x0800, &inner);
    let (v, first, mut io) = run(&mut w, &input, 0, 0);
    assert_eq!(v, Verdict::Tx(0));
    let rest = io.take_tx(0);
    assert_eq!(rest.len(), 1);
    let mut reassembled = Vec::new();
    for (i, f) in std::iter::once(&first).chain(rest.iter()).enumerate() {
        assert!(f.len() - 14 <= 1500, "fragment {i} fits the MTU");
        assert_ip_valid(f, 14);
        assert_eq!(f[23], 4);
        let ff = u16::from_be_bytes([f[20], f[21]]);
        assert_eq!(ff & 0x1fff, (reassembled.len() / 8) as u16, "offsets continue");
        assert_eq!(ff & 0x2000 != 0, i == 0, "MF on all but the last");
        reassembled.extend_from_slice(&f[34..]);
    }
    assert_eq!(reassembled, inner, "the outer fragments carry the inner packet exactly");
    assert_eq!(w.counters().outer_fragments, 2);
}

#[test]
fn ipip_fragmentation_with_a_dry_pool_drops_cleanly() {
    let mut w = worker(one_arm());
    let mut ip = Ip::new(17, CLIENT, VIP_IPIP);
    ip.df = false;
    let input =
        eth(LB_MAC, ROUTER_MAC, 0x0800, &ip.bytes(&udp_seg(CLIENT, VIP_IPIP, 7, 53, &[1; 1472], true)));
    let mut io = dataplane::io::MemIo::new(1);
    io.pool_left = 0;
    let mut p = dataplane::VecPacket::from_bytes(&input);
    let v = w.process(&mut p, 0, 0, &mut SinkAdapter(&mut io));
    assert_eq!(v, Verdict::Drop(DropReason::NoBuffer));
    assert_eq!(w.counters().dropped(DropReason::NoBuffer), 1);
}
