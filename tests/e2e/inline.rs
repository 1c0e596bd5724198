//! Inline topology: client side and server side on separate ports; the servers' gateway is the
//! LB, which routes their replies toward the client-side gateway.

use std::collections::HashMap;

use crate::harness::*;
use crate::Case;

pub fn testbed() -> Testbed {
    let cfg = std::fs::read_to_string(repo().join("docs/examples/testbed-inline.ron")).unwrap();
    Testbed::up("inline", &cfg)
}

pub const CASES: &[Case] = &[
    ("inline_l2_http_udp_and_routed_replies", inline_l2),
    ("ipv6_inline_l2_http_and_routed_replies", inline_l2_v6),
];

fn inline_l2(tb: &Testbed) {
    let mut seen: HashMap<String, u32> = HashMap::new();
    for i in 0..30 {
        let a = get("10.0.0.100", "/", CLIENTS[i % 3]).expect("request through the inline LB");
        assert_eq!(a.client, CLIENTS[i % 3]);
        *seen.entry(a.server).or_default() += 1;
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    let echo = udp_echo("10.0.0.100", CLIENTS[0], "inline").expect("udp");
    assert!(echo.ends_with("inline"));
    assert_eq!(download("10.0.0.100", 10_000_000), "10000000 200");
    // The replies (about 6900 segments for 10 MB) came back through the LB, routed.
    let routed = || tb.stats()["inline_routed"].as_u64().unwrap_or(0);
    tb.wait_for("server replies routed by the LB", std::time::Duration::from_secs(20), || routed() > 5000);
    println!(
        "  30 requests split {seen:?}; 10 MB download; {} server→client packets routed by the LB",
        routed()
    );
}

/// The same in IPv6: the servers' IPv6 gateway is the LB (2001:db8:1::1), which routes their
/// replies to the client side's IPv6 gateway (hop limit − 1, new MACs).
fn inline_l2_v6(tb: &Testbed) {
    let before = tb.stats()["inline_routed"].as_u64().unwrap_or(0);
    let mut seen: HashMap<String, u32> = HashMap::new();
    for i in 0..30 {
        let src = crate::ipv6::CLIENTS6[i % 3];
        let (server, client) = get_any("2001:db8::100", src).expect("through the inline LB");
        assert_eq!(client, src);
        *seen.entry(server).or_default() += 1;
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    let d = download("2001:db8::100", 10_000_000);
    assert_eq!(d, "10000000 200");
    let routed = || tb.stats()["inline_routed"].as_u64().unwrap_or(0) - before;
    tb.wait_for("IPv6 server replies routed by the LB", std::time::Duration::from_secs(20), || {
        routed() > 5000
    });
    println!(
        "  IPv6: 30 requests split {seen:?}; 10 MB download; {} server→client packets routed by the LB",
        routed()
    );
}
