//! The control plane's parsers on hostile input (the packet pipeline has its own property tests
//! and fuzz target): configuration text, ctl requests, and frames punted to the control core.
//! Nothing may panic; what is accepted must work; what the control core sends must be well
//! formed. The same three run under cargo-fuzz (fuzz/fuzz_targets, docs/fuzzing.md).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use control::config::Config;
use control::core::mem::MemLinks;
use control::core::ControlCore;
use control::runtime::Runtime;
use control::view::View;
use dataplane::testkit::v6;
use dataplane::testkit::{csum, eth, tcp_seg, Ip};
use dataplane::wire::{
    icmpv6, EthernetFrame, Ipv4Header, Ipv6Header, MacAddr, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6,
};
use proptest::prelude::*;

fn example() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/testbed-one-arm.ron");
    std::fs::read_to_string(path).unwrap()
}

/// Bytes of valid text with a few bytes changed, some cut off at the end.
fn mutated(base: &str, edits: &[(usize, u8)], cut: usize) -> String {
    let mut b = base.as_bytes().to_vec();
    for &(at, byte) in edits {
        if !b.is_empty() {
            let i = at % b.len();
            b[i] = byte;
        }
    }
    b.truncate(b.len().saturating_sub(cut));
    String::from_utf8_lossy(&b).into_owned()
}

fn byte() -> impl Strategy<Value = u8> {
    prop_oneof![Just(b'9'), Just(b'0'), Just(b','), Just(b')'), Just(b'"'), Just(b' '), any::<u8>()]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_000, ..ProptestConfig::default() })]

    /// Any text: an error that says something, or a configuration that runs.
    #[test]
    fn configuration_text(edits in proptest::collection::vec((any::<usize>(), byte()), 0..4), cut in 0usize..40) {
        let text = mutated(&example(), &edits, cut);
        match Config::parse(&text) {
            Ok(cfg) => {
                let mut rt = Runtime::new(cfg, vec![MacAddr([2, 0, 0, 0, 0, 2])]);
                prop_assert!(rt.build_snapshot(Instant::now()).is_ok(), "a valid configuration builds");
            }
            Err(e) => prop_assert!(!e.message.is_empty()),
        }
    }

    #[test]
    fn ctl_requests(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        cmd in "[a-z]{0,8}",
        args in proptest::collection::vec(".{0,20}", 0..4),
    ) {
        let _ = control::ctl::parse_request(&bytes);
        let json = serde_json::json!({"cmd": cmd, "args": args}).to_string();
        prop_assert!(control::ctl::parse_request(json.as_bytes()).is_ok());
        // Whatever comes back, rendering it for people never panics.
        let _ = control::ctl::render(&cmd, &serde_json::Value::String(json));
    }

    /// Frames into a whole control core: corrupted and cut copies of the frames it handles
    /// (ARP, neighbour discovery, echo, probe answers, in both families) and random bytes. It must not panic, and every frame it sends
    /// must be ARP, IPv4 with a correct header checksum, or IPv6 (ICMPv6 with a correct checksum).
    #[test]
    fn frames_into_the_control_core(
        frames in proptest::collection::vec(
            (0usize..9, proptest::collection::vec((0usize..80, any::<u8>()), 0..3), 0usize..30),
            1..40,
        ),
    ) {
        let cfg = Config::parse(&example()).unwrap();
        let t0 = Instant::now();
        let mut rt = Runtime::new(cfg, vec![MacAddr([2, 0, 0, 0, 0, 2])]);
        let snap = Arc::new(rt.build_snapshot(t0).unwrap());
        let view = Arc::new(Mutex::new(View::default()));
        let mut cc = ControlCore::new(MemLinks::default(), rt, snap, "x.ron".into(), view, t0);
        let templates = templates();
        for (k, (which, edits, cut)) in frames.iter().enumerate() {
            let mut f = templates[*which].clone();
            for &(at, b) in edits {
                if at < f.len() {
                    f[at] = b;
                }
            }
            f.truncate(f.len().saturating_sub(*cut));
            cc.links_mut().punted.push_back((0, f));
            cc.poll(t0 + Duration::from_millis(7 * k as u64));
        }
        for (_, f) in &cc.links().sent {
            let e = EthernetFrame::new_checked(f).expect("an Ethernet frame");
            match e.ethertype() {
                ETHERTYPE_ARP => prop_assert!(e.payload().len() >= 28),
                ETHERTYPE_IPV4 => {
                    let h = Ipv4Header::new_checked(e.payload()).expect("a whole IPv4 packet");
                    prop_assert_eq!(csum(&e.payload()[..h.header_len()]), 0, "header checksum");
                }
                ETHERTYPE_IPV6 => {
                    let h = Ipv6Header::new_checked(e.payload()).expect("a whole IPv6 packet");
                    if h.next_header() == 58 {
                        prop_assert!(icmpv6::checksum_ok(h.payload(), h.src(), h.dst()), "ICMPv6 checksum");
                    }
                }
                other => prop_assert!(false, "sent ethertype {:#x}", other),
            }
        }
    }
}

/// The testbed's IPv6 l2 VIP.
fn vip6() -> [u8; 16] {
    "2001:db8::100".parse::<std::net::Ipv6Addr>().unwrap().octets()
}

/// Frames the control core takes: ARP request for a VIP, ARP reply from a backend, echo to a
/// VIP, a SYN-ACK and an echo reply from a VIP to the LB, and a random-looking one.
fn templates() -> Vec<Vec<u8>> {
    let lb = [2, 0, 0, 0, 0, 2];
    let server = [2, 0, 0, 0, 0, 0x11];
    let arp = |op: u8, sha: [u8; 6], spa: [u8; 4], tpa: [u8; 4]| {
        let mut a = vec![0, 1, 8, 0, 6, 4, 0, op];
        a.extend_from_slice(&sha);
        a.extend_from_slice(&spa);
        a.extend_from_slice(&[0; 6]);
        a.extend_from_slice(&tpa);
        a
    };
    let icmp = |ty: u8| {
        let mut m = vec![ty, 0, 0, 0, 0x12, 0x34, 0, 1];
        let c = csum(&m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        m
    };
    let syn_ack = tcp_seg([10, 0, 0, 100], [10, 0, 0, 2], 80, 40000, 0x12, b"");
    vec![
        eth(
            [0xff; 6],
            [2, 0, 0, 0, 0, 1],
            0x0806,
            &arp(1, [2, 0, 0, 0, 0, 1], [10, 0, 0, 1], [10, 0, 0, 100]),
        ),
        eth(lb, server, 0x0806, &arp(2, server, [10, 0, 0, 11], [10, 0, 0, 2])),
        eth(lb, [2, 0, 0, 0, 0, 1], 0x0800, &Ip::new(1, [198, 51, 100, 7], [10, 0, 0, 100]).bytes(&icmp(8))),
        eth(lb, server, 0x0800, &Ip::new(6, [10, 0, 0, 100], [10, 0, 0, 2]).bytes(&syn_ack)),
        eth(lb, server, 0x0800, &Ip::new(1, [10, 0, 0, 100], [10, 0, 0, 2]).bytes(&icmp(0))),
        // IPv6: a solicitation for a VIP, an echo request to it, a SYN-ACK from it to the LB.
        v6::neighbor_solicit(
            [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 1],
            vip6(),
        ),
        v6::echo_request(v6::CLIENT, vip6()),
        {
            let lb6 = "2001:db8::2".parse::<std::net::Ipv6Addr>().unwrap().octets();
            let seg = v6::tcp_seg6(vip6(), lb6, 80, 40000, 0x12, b"");
            eth(lb, server, 0x86dd, &v6::ip6(6, vip6(), lb6, &seg))
        },
        (0..64u8).map(|b| b.wrapping_mul(37)).collect(),
    ]
}
