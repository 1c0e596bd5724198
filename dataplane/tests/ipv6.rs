//! IPv6 through the pipeline, on real frames: each mode's rewrite checked byte by byte (with
//! checksums recomputed from scratch), 4in6, Packet Too Big, neighbour discovery, ICMPv6
//! errors steered, fragments, extension headers and martians.

use dataplane::testkit::v6::*;
use dataplane::testkit::{run, server_mac, worker, Ip, LB_MAC, ROUTER_MAC};
use dataplane::wire::l4;
use dataplane::{DropReason, Punt, Verdict};

const TC: u8 = 0x28;

#[test]
fn l2_rewrites_only_the_macs() {
    let mut w = worker(one_arm6(1500));
    let f = tcp(CLIENT, VIP, 40000, 80, l4::TCP_SYN, 10);
    let (v, out, _) = run(&mut w, &f, 0, 0);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(&out[0..6], &server_mac(1));
    assert_eq!(&out[6..12], &LB_MAC);
    assert_eq!(&out[12..], &f[12..], "nothing past the MACs changes");
    assert_eq!(w.flows6().len(), 1);
    assert_eq!(w.flows().len(), 0, "IPv6 flows live in their own table");
}

#[test]
fn dscp_marks_the_traffic_class_and_rewrites_the_destination() {
    let mut w = worker(one_arm6(1500));
    for f in [tcp(CLIENT, VIP_DSCP, 40000, 80, l4::TCP_SYN, 10), udp(CLIENT, VIP_DSCP, 5000, 53, 20)] {
        let mut f = f;
        f[15] |= 0x10; // ECN: ECT(0) in the traffic class's low bits
        let (v, out, _) = run(&mut w, &f, 0, 0);
        assert_eq!(v, Verdict::Tx(0));
        assert_eq!(&out[0..6], &server_mac(3));
        let tc = ((out[14] & 0x0f) << 4) | (out[15] >> 4);
        assert_eq!(tc >> 2, 7, "DSCP 7 marks the VIP");
        assert_eq!(tc & 0x03, ((TC | 1) & 0x03), "ECN kept");
        assert_eq!(out[15] & 0x0f, f[15] & 0x0f, "flow label kept");
        assert_eq!(&out[16..18], &f[16..18], "flow label kept");
        assert_eq!(&out[38..54], &server_ip6(3), "destination is the real address");
        assert_eq!(&out[22..38], &CLIENT, "source kept");
        assert_ip6_valid(&out, 14);
    }
}

#[test]
fn ip6ip6_wraps_the_packet_with_a_flow_label_per_flow() {
    let mut w = worker(one_arm6(1500));
    let f = tcp(CLIENT, VIP_IPIP, 40000, 80, l4::TCP_SYN, 10);
    let (v, out, _) = run(&mut w, &f, 0, 0);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(out.len(), f.len() + 40);
    assert_eq!(&out[0..6], &server_mac(2));
    assert_eq!(&out[12..14], &[0x86, 0xdd]);
    assert_eq!(out[14] >> 4, 6);
    let tc = ((out[14] & 0x0f) << 4) | (out[15] >> 4);
    assert_eq!(tc, TC, "traffic class copied from the inner header");
    assert_eq!(out[20], 41, "next header: IPv6");
    assert_eq!(out[21], 64);
    assert_eq!(&out[22..38], &LB_IP6);
    assert_eq!(&out[38..54], &server_ip6(2));
    assert_eq!(&out[54..], &f[14..], "the inner packet untouched");
    assert_ip6_valid(&out, 54);
    let label = |o: &[u8]| u32::from_be_bytes([0, o[15] & 0x0f, o[16], o[17]]);
    let l = label(&out);
    assert_ne!(l, 0);
    let (_, again, _) = run(&mut w, &tcp(CLIENT, VIP_IPIP, 40000, 80, l4::TCP_ACK, 100), 0, 1);
    assert_eq!(label(&again), l, "one flow, one label: one path through the underlay");
    let labels: std::collections::HashSet<u32> = (0..64)
        .map(|p| label(&run(&mut w, &tcp(CLIENT, VIP_IPIP, 30000 + p, 80, l4::TCP_SYN, 0), 0, 2).1))
        .collect();
    assert!(labels.len() > 60, "flows spread over labels ({} of 64)", labels.len());
}

#[test]
fn ipv4_vips_tunnel_over_ipv6_to_ipv6_backends() {
    let mut w = worker(one_arm6(1500));
    let mut ip = Ip::new(6, dataplane::testkit::CLIENT, VIP4_OVER6);
    ip.tos = 0xb8;
    let inner =
        ip.bytes(&dataplane::testkit::tcp_seg(dataplane::testkit::CLIENT, VIP4_OVER6, 40000, 80, 2, b"hi"));
    let f = dataplane::testkit::eth(LB_MAC, ROUTER_MAC, 0x0800, &inner);
    let (v, out, _) = run(&mut w, &f, 0, 0);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(&out[12..14], &[0x86, 0xdd], "the outer header is IPv6");
    assert_eq!(out[20], 4, "next header: IPv4");
    assert_eq!(((out[14] & 0x0f) << 4) | (out[15] >> 4), 0xb8, "TOS becomes the traffic class");
    assert_eq!(&out[22..38], &LB_IP6);
    assert_eq!(&out[38..54], &server_ip6(2));
    assert_eq!(&out[54..], &inner[..]);
    assert_eq!(w.flows().len(), 1, "an IPv4 flow, in the IPv4 table");
}

#[test]
fn too_big_for_the_tunnel_gets_packet_too_big() {
    let mut w = worker(one_arm6(1500));
    let f = tcp(CLIENT, VIP_IPIP, 40000, 80, l4::TCP_ACK, 1500 - 60);
    assert_eq!(f.len(), 14 + 1500);
    let (v, out, _) = run(&mut w, &f, 0, 0);
    assert_eq!(v, Verdict::Reply(0));
    assert_eq!(&out[0..6], &ROUTER_MAC, "back to the sender");
    assert_eq!(out[20], 58);
    assert_eq!(&out[22..38], &LB_IP6);
    assert_eq!(&out[38..54], &CLIENT);
    assert_eq!(out[54], 2, "Packet Too Big");
    assert_eq!(u32::from_be_bytes(out[58..62].try_into().unwrap()), 1460);
    assert!(out.len() - 14 <= 1280, "fits the minimum MTU");
    assert_eq!(&out[62..62 + 40], &f[14..54], "quotes the offending header");
    assert_ip6_valid(&out, 14);
    assert_eq!(w.counters().frag_needed_sent, 1);
    // Rate-limited: the burst allowance runs out, then drops are counted.
    let mut limited = 0;
    for _ in 0..300 {
        if run(&mut w, &f, 0, 0).0 == Verdict::Drop(DropReason::TooBigDontFragment) {
            limited += 1;
        }
    }
    assert!(limited > 0 && w.counters().frag_needed_rate_limited == limited);
    // A packet that fits goes through.
    let fits = tcp(CLIENT, VIP_IPIP, 40000, 80, l4::TCP_ACK, 1460 - 60);
    assert_eq!(run(&mut w, &fits, 0, 0).0, Verdict::Tx(0));
}

#[test]
fn neighbour_discovery_is_punted_only_from_the_link() {
    let mut w = worker(one_arm6(1500));
    let router6 = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe, 0, 0, 1];
    let ns = neighbor_solicit(router6, ROUTER_MAC, VIP);
    assert_eq!(run(&mut w, &ns, 0, 0).0, Verdict::ToControl(Punt::Arp));
    let mut routed = ns.clone();
    routed[21] = 64;
    assert_eq!(run(&mut w, &routed, 0, 0).0, Verdict::Drop(DropReason::NeighborDiscoveryRefused));
    // Router advertisements and redirects are not taken.
    let ra = icmp6(router6, CLIENT, vec![134, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(run(&mut w, &ra, 0, 0).0, Verdict::Drop(DropReason::NeighborDiscoveryRefused));
    // Other multicast is not ours.
    let mut mc = udp(CLIENT, VIP, 5000, 53, 4);
    mc[0..6].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
    assert_eq!(run(&mut w, &mc, 0, 0).0, Verdict::Drop(DropReason::NotOurMac));
    let mut other = tcp(CLIENT, VIP, 40000, 80, l4::TCP_SYN, 0);
    other[5] = 0x77;
    assert_eq!(run(&mut w, &other, 0, 0).0, Verdict::Drop(DropReason::NotOurMac));
}

#[test]
fn echo_and_local_traffic_go_to_the_control_core() {
    let mut w = worker(one_arm6(1500));
    assert_eq!(run(&mut w, &echo_request(CLIENT, VIP), 0, 0).0, Verdict::ToControl(Punt::Other));
    assert_eq!(run(&mut w, &echo_request(CLIENT, LB_IP6), 0, 0).0, Verdict::ToControl(Punt::Other));
    // A DSR health-check answer comes from the VIP to the LB: the priority lane.
    let answer = tcp(VIP, LB_IP6, 80, 33000, l4::TCP_SYN | l4::TCP_ACK, 0);
    assert_eq!(run(&mut w, &answer, 0, 0).0, Verdict::ToControl(Punt::Priority));
    let reply = icmp6(server_ip6(1), LB_IP6, vec![129, 0, 0, 0, 0, 1, 0, 1]);
    assert_eq!(run(&mut w, &reply, 0, 0).0, Verdict::ToControl(Punt::Priority));
    assert_eq!(
        run(&mut w, &tcp(CLIENT, VIP, 40000, 8080, l4::TCP_SYN, 0), 0, 0).0,
        Verdict::Drop(DropReason::NoService)
    );
    let stranger = [0x20, 1, 0xd, 0xb8, 9, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    assert_eq!(
        run(&mut w, &tcp(CLIENT, stranger, 1, 80, l4::TCP_SYN, 0), 0, 0).0,
        Verdict::Drop(DropReason::NotForUs)
    );
}

#[test]
fn icmpv6_errors_about_a_flow_go_to_its_backend() {
    let mut w = worker(one_arm6(1500));
    // The flow exists: client:40000 → VIP_DSCP:80 on server 3.
    run(&mut w, &tcp(CLIENT, VIP_DSCP, 40000, 80, l4::TCP_SYN, 0), 0, 0);
    // A router on the way back says the server's reply (VIP:80 → client:40000) was too big.
    let router = [0x20, 1, 0xd, 0xb8, 0xee, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let quoted = ip6(6, VIP_DSCP, CLIENT, &tcp_seg6(VIP_DSCP, CLIENT, 80, 40000, l4::TCP_ACK, &[0; 64]));
    let mut body = vec![2, 0, 0, 0, 0, 0, 0x05, 0x00];
    body.extend_from_slice(&quoted);
    let ptb = icmp6(router, VIP_DSCP, body);
    let (v, out, _) = run(&mut w, &ptb, 0, 1);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(&out[0..6], &server_mac(3));
    assert_eq!(&out[38..54], &server_ip6(3));
    assert_ip6_valid(&out, 14);
    assert_eq!(w.counters().icmp_errors_steered, 1);
    // Quoting a flow of no service: unmatched.
    let quoted = ip6(6, VIP_DSCP, CLIENT, &tcp_seg6(VIP_DSCP, CLIENT, 9999, 40000, l4::TCP_ACK, &[]));
    let mut body = vec![2, 0, 0, 0, 0, 0, 0x05, 0x00];
    body.extend_from_slice(&quoted);
    assert_eq!(
        run(&mut w, &icmp6(router, VIP_DSCP, body), 0, 1).0,
        Verdict::Drop(DropReason::IcmpErrorUnmatched)
    );
}

#[test]
fn fragments_of_a_datagram_reach_one_backend() {
    let mut w = worker(one_arm6(1500));
    let base = udp(CLIENT, VIP_DSCP, 5000, 53, 40);
    let first = fragment(&base, 0, true, 9);
    let later = fragment(&base, 3, false, 9);
    let (v1, o1, _) = run(&mut w, &first, 0, 0);
    let (v2, o2, _) = run(&mut w, &later, 0, 0);
    assert_eq!((v1, v2), (Verdict::Tx(0), Verdict::Tx(0)));
    assert_eq!(&o1[38..54], &server_ip6(3));
    assert_eq!(&o2[38..54], &server_ip6(3));
    assert_eq!(&o2[54..], &later[54..], "a later fragment's payload is not touched");
}

#[test]
fn unsafe_extension_headers_and_martians_are_dropped_by_reason() {
    let mut w = worker(one_arm6(1500));
    let base = tcp(CLIENT, VIP, 40000, 80, l4::TCP_SYN, 0);
    let mut routed = with_extensions(&base, &[43]);
    routed[54 + 3] = 2;
    assert_eq!(run(&mut w, &routed, 0, 0).0, Verdict::Drop(DropReason::Ipv6ExtensionHeader));
    let ok = with_extensions(&base, &[0, 60]);
    assert_eq!(run(&mut w, &ok, 0, 0).0, Verdict::Tx(0), "hop-by-hop and destination options are walked");
    let link_local = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
    let mapped = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1];
    for src in [link_local, mapped, [0; 16], VIP, LB_IP6] {
        assert_eq!(
            run(&mut w, &tcp(src, VIP, 40000, 80, l4::TCP_SYN, 0), 0, 0).0,
            Verdict::Drop(DropReason::MartianSource),
            "{src:?}"
        );
    }
    let c = w.counters();
    assert_eq!(c.accounted(), c.rx_packets, "every packet counted once");
}

#[test]
fn a_flow_is_found_again_whatever_its_shape() {
    // The common shape's hash is taken in the first pass; other shapes (extension headers,
    // a VLAN tag) hash in the IPv6 path: each must find its own flow again.
    let mut w = worker(one_arm6(1500));
    let plain = tcp(CLIENT, VIP, 40000, 80, l4::TCP_SYN, 0);
    let with_ext = with_extensions(&tcp(CLIENT, VIP, 40001, 80, l4::TCP_SYN, 0), &[60]);
    for f in [&plain, &with_ext] {
        for k in 0..4 {
            let mut f = f.clone();
            if k > 0 {
                let at = if f[20] == 6 { 54 } else { 62 };
                f[at + 13] = l4::TCP_ACK;
            }
            assert_eq!(run(&mut w, &f, 0, k).0, Verdict::Tx(0));
        }
    }
    assert_eq!(w.flows6().len(), 2, "one entry per flow, each found again");
    assert_eq!(w.counters().midflow_without_state, 0);
}
