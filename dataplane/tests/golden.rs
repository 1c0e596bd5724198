//! Golden packets: input bytes → expected verdict and output bytes, for each mode and edge,
//! built independently with the test kit (Katran's table of fixtures with one tester). Cases
//! that need more than one packet (rate limits, fragments, pools) follow the table.

use dataplane::testkit::*;

use dataplane::snapshot::Snapshot;
use dataplane::{DropReason, Verdict};

/// One golden case: a frame into a fresh worker on a snapshot, and what must come out.
struct Golden {
    name: &'static str,
    snapshot: fn() -> Snapshot,
    in_port: u16,
    input: Vec<u8>,
    verdict: Verdict,
    /// The packet's bytes afterwards (checked when the verdict is `Tx`).
    output: Vec<u8>,
    /// The IPv4 headers (offsets) whose checksums must verify from scratch.
    valid_ip_at: &'static [usize],
}

fn cases() -> Vec<Golden> {
    let mut v = Vec::new();

    // l2: only the destination and source MAC change, tag and all.
    let input = client_tcp(VIP_L2, 40000, 80, 0x02, b"hello");
    let mut output = input.clone();
    output[0..6].copy_from_slice(&server_mac(1));
    output[6..12].copy_from_slice(&LB_MAC);
    v.push(Golden {
        name: "l2 tcp: MACs only",
        snapshot: one_arm,
        in_port: 0,
        input,
        verdict: Verdict::Tx(0),
        output,
        valid_ip_at: &[14],
    });

    let ip = Ip::new(6, CLIENT, VIP_L2).bytes(&tcp_seg(CLIENT, VIP_L2, 40001, 80, 0x02, b""));
    v.push(Golden {
        name: "l2 tcp with an 802.1Q tag: tag kept",
        snapshot: one_arm,
        in_port: 0,
        input: eth_vlan(LB_MAC, ROUTER_MAC, 42, &ip),
        verdict: Verdict::Tx(0),
        output: eth_vlan(server_mac(1), LB_MAC, 42, &ip),
        valid_ip_at: &[18],
    });

    // dscp: DSCP set (ECN kept), destination the real IP, checksums updated.
    let mut ip = Ip::new(6, CLIENT, VIP_DSCP);
    ip.tos = 0x02; // ECT(0)
    let req = b"GET / HTTP/1.1\r\n\r\n";
    let input = eth(LB_MAC, ROUTER_MAC, 0x0800, &ip.bytes(&tcp_seg(CLIENT, VIP_DSCP, 40000, 80, 0x18, req)));
    let mut want = ip.clone();
    want.tos = (7 << 2) | 0x02;
    want.dst = server_ip(3);
    let output =
        eth(server_mac(3), LB_MAC, 0x0800, &want.bytes(&tcp_seg(CLIENT, server_ip(3), 40000, 80, 0x18, req)));
    v.push(Golden {
        name: "dscp tcp: DSCP 7, ECN kept, to the real IP",
        snapshot: one_arm,
        in_port: 0,
        input,
        verdict: Verdict::Tx(0),
        output,
        valid_ip_at: &[14],
    });

    for with in [true, false] {
        let ip = Ip::new(17, CLIENT, VIP_DSCP);
        let input =
            eth(LB_MAC, ROUTER_MAC, 0x0800, &ip.bytes(&udp_seg(CLIENT, VIP_DSCP, 5353, 53, b"query", with)));
        let mut want = ip.clone();
        want.tos = 7 << 2;
        want.dst = server_ip(3);
        let output = eth(
            server_mac(3),
            LB_MAC,
            0x0800,
            &want.bytes(&udp_seg(CLIENT, server_ip(3), 5353, 53, b"query", with)),
        );
        v.push(Golden {
            name: if with { "dscp udp with a checksum" } else { "dscp udp without a checksum: stays zero" },
            snapshot: one_arm,
            in_port: 0,
            input,
            verdict: Verdict::Tx(0),
            output,
            valid_ip_at: &[14],
        });
    }

    // ipip: an outer header (LB → server, TOS and DF from the inner, fresh ID, TTL 64).
    let mut ip = Ip::new(6, CLIENT, VIP_IPIP);
    ip.tos = 0x2e << 2;
    let inner = ip.bytes(&tcp_seg(CLIENT, VIP_IPIP, 40000, 80, 0x02, b""));
    let mut outer = Ip::new(4, LB_IP, server_ip(2));
    outer.tos = 0x2e << 2;
    outer.ttl = 64;
    outer.id = 1; // the worker's first fresh ID
    v.push(Golden {
        name: "ipip tcp: outer header prepended",
        snapshot: one_arm,
        in_port: 0,
        input: eth(LB_MAC, ROUTER_MAC, 0x0800, &inner),
        verdict: Verdict::Tx(0),
        output: eth(server_mac(2), LB_MAC, 0x0800, &outer.bytes(&inner)),
        valid_ip_at: &[14, 34],
    });

    let inner = Ip::new(17, CLIENT, VIP_IPIP).bytes(&udp_seg(CLIENT, VIP_IPIP, 9, 53, b"x", true));
    let mut input = eth_vlan(LB_MAC, ROUTER_MAC, 7, &inner);
    input.resize(64, 0); // padded to the Ethernet minimum
    let mut outer = Ip::new(4, LB_IP, server_ip(2));
    outer.ttl = 64;
    outer.id = 1;
    v.push(Golden {
        name: "ipip udp, tagged and padded: padding dropped, tag kept",
        snapshot: one_arm,
        in_port: 0,
        input,
        verdict: Verdict::Tx(0),
        output: eth_vlan(server_mac(2), LB_MAC, 7, &outer.bytes(&inner)),
        valid_ip_at: &[18, 38],
    });

    // ipip, 1500 bytes with DF: "fragmentation needed" (MTU - 20) back toward the client,
    // quoting the packet up to 576 bytes of IP.
    let inner =
        Ip::new(6, CLIENT, VIP_IPIP).bytes(&tcp_seg(CLIENT, VIP_IPIP, 40000, 80, 0x10, &[0xaa; 1460]));
    let mut icmp = vec![3, 4, 0, 0, 0, 0];
    icmp.extend_from_slice(&1480u16.to_be_bytes());
    icmp.extend_from_slice(&inner[..576 - 28]);
    let c = csum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut reply = Ip::new(1, LB_IP, CLIENT);
    (reply.tos, reply.ttl, reply.id) = (0xc0, 64, 0);
    v.push(Golden {
        name: "ipip too big with DF: fragmentation needed",
        snapshot: one_arm,
        in_port: 0,
        input: eth(LB_MAC, ROUTER_MAC, 0x0800, &inner),
        verdict: Verdict::Reply(0),
        output: eth(ROUTER_MAC, LB_MAC, 0x0800, &reply.bytes(&icmp)),
        valid_ip_at: &[14],
    });

    // IPv6: l2 changes the MACs only; dscp the traffic class's DSCP (ECN and flow label kept)
    // and the destination, with the TCP/UDP checksum as if computed afresh for the new one.
    use dataplane::testkit::v6;
    let input = v6::tcp(v6::CLIENT, v6::VIP, 40000, 80, 0x02, 5);
    let mut output = input.clone();
    output[0..6].copy_from_slice(&server_mac(1));
    output[6..12].copy_from_slice(&LB_MAC);
    v.push(Golden {
        name: "ipv6 l2 tcp: MACs only",
        snapshot: || v6::one_arm6(1500),
        in_port: 0,
        input,
        verdict: Verdict::Tx(0),
        output,
        valid_ip_at: &[],
    });
    let dscp_out = |mut f: Vec<u8>| {
        // Traffic class 0x28 (DSCP 10, ECN 0) becomes DSCP 7: 0x1c; the flow label's first
        // nibble (1) stays.
        f[0..6].copy_from_slice(&server_mac(3));
        f[6..12].copy_from_slice(&LB_MAC);
        f[14] = 0x61;
        f[15] = 0xc1;
        f
    };
    v.push(Golden {
        name: "ipv6 dscp tcp: DSCP and destination, checksum as if afresh",
        snapshot: || v6::one_arm6(1500),
        in_port: 0,
        input: v6::tcp(v6::CLIENT, v6::VIP_DSCP, 40000, 80, 0x18, 9),
        verdict: Verdict::Tx(0),
        output: dscp_out(v6::tcp(v6::CLIENT, v6::server_ip6(3), 40000, 80, 0x18, 9)),
        valid_ip_at: &[],
    });
    v.push(Golden {
        name: "ipv6 dscp udp: DSCP and destination, checksum as if afresh",
        snapshot: || v6::one_arm6(1500),
        in_port: 0,
        input: v6::udp(v6::CLIENT, v6::VIP_DSCP, 5353, 53, 11),
        verdict: Verdict::Tx(0),
        output: dscp_out(v6::udp(v6::CLIENT, v6::server_ip6(3), 5353, 53, 11)),
        valid_ip_at: &[],
    });
    v.push(Golden {
        name: "ipv6 with a routing header that has segments left: dropped",
        snapshot: || v6::one_arm6(1500),
        in_port: 0,
        input: {
            let mut f = v6::with_extensions(&v6::tcp(v6::CLIENT, v6::VIP, 1, 80, 2, 0), &[43]);
            f[57] = 1;
            f
        },
        verdict: Verdict::Drop(DropReason::Ipv6ExtensionHeader),
        output: Vec::new(),
        valid_ip_at: &[],
    });

    // Drops, each under its reason.
    v.push(Golden {
        name: "no service on that port",
        snapshot: one_arm,
        in_port: 0,
        input: client_tcp(VIP_L2, 40000, 81, 0x02, b""),
        verdict: Verdict::Drop(DropReason::NoService),
        output: Vec::new(),
        valid_ip_at: &[],
    });
    v
}

#[test]
fn golden_cases() {
    for c in cases() {
        let mut w = worker((c.snapshot)());
        let (verdict, out, _) = run(&mut w, &c.input, c.in_port, 0);
        assert_eq!(verdict, c.verdict, "{}: verdict", c.name);
        if let Verdict::Tx(_) | Verdict::Reply(_) = verdict {
            assert_eq!(out, c.output, "{}: output bytes", c.name);
        }
        for &at in c.valid_ip_at {
            assert_ip_valid(&out, at);
        }
        assert_eq!(w.counters().accounted(), 1, "{}: counted once", c.name);
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
fn ipip_frag_needed_is_rate_limited() {
    let mut w = worker(one_arm());
    let inner =
        Ip::new(6, CLIENT, VIP_IPIP).bytes(&tcp_seg(CLIENT, VIP_IPIP, 40000, 80, 0x10, &vec![0; 1460]));
    let input = eth(LB_MAC, ROUTER_MAC, 0x0800, &inner);
    let mut sent = 0;
    for _ in 0..500 {
        if let (Verdict::Reply(_), _, _) = run(&mut w, &input, 0, 0) {
            sent += 1;
        }
    }
    assert_eq!(sent, 100, "the burst allowance, at one instant");
    assert_eq!(w.counters().frag_needed_rate_limited, 400);
    assert_eq!(w.counters().dropped(DropReason::TooBigDontFragment), 400);
    // Tokens come back with time: 1000/s → 10 in 10 ms.
    let more = (0..50).filter(|_| matches!(run(&mut w, &input, 0, 10).0, Verdict::Reply(_))).count();
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
