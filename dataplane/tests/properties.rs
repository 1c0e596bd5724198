//! Random, truncated and corrupted input never panics; whatever is dropped is counted.

use dataplane::testkit::v6;
use dataplane::testkit::*;

use dataplane::Verdict;
use proptest::prelude::*;

fn valid_frames() -> Vec<Vec<u8>> {
    let mut v = vec![
        client_tcp(VIP_L2, 40000, 80, 0x02, b"hello"),
        client_tcp(VIP_IPIP, 40000, 80, 0x10, &[7; 1460]),
        client_tcp(VIP_DSCP, 40000, 80, 0x18, b"GET /"),
        eth(
            LB_MAC,
            ROUTER_MAC,
            0x0800,
            &Ip::new(17, CLIENT, VIP_DSCP).bytes(&udp_seg(CLIENT, VIP_DSCP, 1, 53, b"q", true)),
        ),
        eth(
            LB_MAC,
            ROUTER_MAC,
            0x0800,
            &Ip::new(17, CLIENT, VIP_IPIP).bytes(&udp_seg(CLIENT, VIP_IPIP, 1, 53, &[1; 1472], false)),
        ),
    ];
    let quoted = Ip::new(6, VIP_L2, CLIENT).bytes(&tcp_seg(VIP_L2, CLIENT, 80, 40000, 0x10, b""));
    let mut m = vec![3, 4, 0, 0, 0, 0, 5, 0xdc];
    m.extend_from_slice(&quoted[..28]);
    v.push(eth(LB_MAC, ROUTER_MAC, 0x0800, &Ip::new(1, [192, 0, 2, 1], VIP_L2).bytes(&m)));
    v.push(eth_vlan(
        LB_MAC,
        ROUTER_MAC,
        5,
        &Ip::new(6, CLIENT, VIP_L2).bytes(&tcp_seg(CLIENT, VIP_L2, 1, 80, 2, b"")),
    ));
    v
}

/// Counters must account for every packet: forwarded + to control + dropped + answered = received.
fn check_accounting(w: &dataplane::Worker) {
    let c = w.counters();
    assert_eq!(c.accounted(), c.rx_packets);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1600), port in 0u16..2) {
        let mut w = worker(one_arm());
        let (v, _, _) = run(&mut w, &bytes, port, 0);
        if let Verdict::Drop(r) = v {
            prop_assert_eq!(w.counters().dropped(r), 1);
        }
        check_accounting(&w);
    }

    #[test]
    fn ipv4_shaped_random_headers_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..200), ihl in 0u8..16, proto in prop_oneof![Just(1u8), Just(6), Just(17), any::<u8>()], frag in any::<u16>()) {
        let mut w = worker(one_arm());
        let mut f = eth(LB_MAC, ROUTER_MAC, 0x0800, &[]);
        let mut ip = vec![0x40 | ihl, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0, 198, 51, 100, 7];
        ip.extend_from_slice(&VIP_L2);
        ip[6..8].copy_from_slice(&frag.to_be_bytes());
        let total = (ip.len() + tail.len()) as u16;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&tail);
        let _ = run(&mut w, &f, 0, 0);
        check_accounting(&w);
    }

    #[test]
    fn truncated_and_corrupted_valid_packets_never_panic(which in 0usize..7, cut in 0usize..1600, at in 0usize..1600, byte in any::<u8>()) {
        let frames = valid_frames();
        let mut f = frames[which % frames.len()].clone();
        if at < f.len() {
            f[at] = byte;
        }
        f.truncate(cut.min(f.len()));
        let mut w = worker(one_arm());
        let _ = run(&mut w, &f, 0, 0);
        check_accounting(&w);
    }

    #[test]
    fn ipv6_shaped_random_headers_never_panic(
        tail in proptest::collection::vec(any::<u8>(), 0..200),
        nh in prop_oneof![Just(0u8), Just(6), Just(17), Just(43), Just(44), Just(58), Just(60), any::<u8>()],
        plen_delta in -8i32..8,
        multicast in any::<bool>(),
    ) {
        let mut w = worker(dataplane::testkit::v6::one_arm6(1500));
        let dst = if multicast { [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 0x64] } else { v6::VIP };
        let mut f = v6::ip6(nh, v6::CLIENT, dst, &tail);
        let plen = (tail.len() as i32 + plen_delta).clamp(0, 0xffff) as u16;
        f[4..6].copy_from_slice(&plen.to_be_bytes());
        let mac = if multicast { [0x33, 0x33, 0xff, 0, 0, 0x64] } else { LB_MAC };
        let _ = run(&mut w, &eth(mac, ROUTER_MAC, 0x86dd, &f), 0, 0);
        check_accounting(&w);
    }

    #[test]
    fn truncated_and_corrupted_ipv6_packets_never_panic(which in 0usize..8, cut in 0usize..1600, at in 0usize..1600, byte in any::<u8>()) {
        use dataplane::wire::l4;
        let frames = [
            v6::tcp(v6::CLIENT, v6::VIP, 40000, 80, l4::TCP_SYN, 10),
            v6::tcp(v6::CLIENT, v6::VIP_IPIP, 40000, 80, l4::TCP_ACK, 1400),
            v6::tcp(v6::CLIENT, v6::VIP_DSCP, 40000, 80, l4::TCP_ACK, 100),
            v6::udp(v6::CLIENT, v6::VIP_DSCP, 1, 53, 30),
            v6::fragment(&v6::udp(v6::CLIENT, v6::VIP_DSCP, 1, 53, 30), 0, true, 1),
            v6::with_extensions(&v6::tcp(v6::CLIENT, v6::VIP, 1, 80, 2, 0), &[0, 60, 43]),
            v6::echo_request(v6::CLIENT, v6::VIP),
            v6::neighbor_solicit([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], ROUTER_MAC, v6::VIP),
        ];
        let mut f = frames[which % frames.len()].clone();
        if at < f.len() {
            f[at] = byte;
        }
        f.truncate(cut.min(f.len()));
        let mut w = worker(dataplane::testkit::v6::one_arm6(1500));
        let _ = run(&mut w, &f, 0, 0);
        check_accounting(&w);
    }
}
