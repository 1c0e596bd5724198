//! IPv6 on the one-arm testbed (dual-stack): every mode with real clients and servers —
//! HTTP, UDP, 10 MB each way with path-MTU discovery through ip6ip6, 4in6 — neighbour
//! discovery answered for the VIPs only, and a server missing its IPv6 DSR set-up marked down.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::harness::*;

/// The client addresses in c1 (2001:db8:100::/64).
pub const CLIENTS6: [&str; 3] = ["2001:db8:100::10", "2001:db8:100::11", "2001:db8:100::12"];

/// (VIP, mode, servers behind it, the clients' family)
const HTTP_SERVICES6: [(&str, &str, &[&str], bool); 5] = [
    ("2001:db8::100", "l2", &["s1", "s2", "s3"], true),
    ("2001:db8::101", "ip6ip6", &["s1", "s2", "s3"], true),
    ("2001:db8::102", "dscp", &["s1", "s2", "s3"], true),
    ("2001:db8::103", "ip6ip6 routed", &["r1", "r2"], true),
    ("10.0.0.106", "4in6", &["s1", "s2", "s3"], false),
];

pub fn every_mode_serves_http6(tb: &Testbed) {
    for (vip, mode, servers, six) in HTTP_SERVICES6 {
        let clients: &[&str] = if six { &CLIENTS6 } else { &CLIENTS };
        let mut seen: HashMap<String, u32> = HashMap::new();
        for i in 0..30 {
            let src = clients[i % 3];
            let (server, client) = get_any(vip, src).unwrap_or_else(|e| panic!("{mode} {vip}: {e}"));
            assert_eq!(client, src, "{mode}: the server saw the real client address");
            *seen.entry(server).or_default() += 1;
        }
        println!("  {mode:<14} {vip}: 30 requests, 0 failures, split {seen:?}");
        for s in servers {
            assert!(seen.contains_key(*s), "{mode}: server {s} got no request: {seen:?}");
        }
    }
    // The IPv6 connections are in the IPv6 tables (4in6's, IPv4 flows, in the IPv4 ones).
    let by_family = || {
        let s = tb.stats();
        (s["flows_ipv6"].as_u64().unwrap_or(0), s["flows"].as_u64().unwrap_or(0))
    };
    // The view refreshes twice a second.
    tb.wait_for("flows counted by family", Duration::from_secs(5), || {
        let (v6, all) = by_family();
        v6 >= 120 && all >= v6 + 30
    });
    let (v6, all) = by_family();
    println!("  flow tables: {all} flows, {v6} of them IPv6");
}

pub fn udp_every_mode6(_: &Testbed) {
    udp_persistence(
        &[("2001:db8::100", "l2"), ("2001:db8::101", "ip6ip6"), ("2001:db8::102", "dscp")],
        &CLIENTS6,
        " over IPv6",
    );
}

pub fn large_transfers6(tb: &Testbed) {
    let up = std::env::temp_dir().join("dsrlb-e2e6-10MB.bin");
    let data: Vec<u8> = (0..10_000_000u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
    std::fs::write(&up, &data).unwrap();
    // Forget what path MTUs the client learnt: the first full-size segment into ip6ip6 must be
    // answered by the LB's Packet Too Big.
    in_ns_ok("c1", &["ip", "-6", "route", "flush", "cache"]);
    let before = tb.stats()["frag_needed_sent"].as_u64().unwrap_or(0);
    for (vip, mode, _, _) in HTTP_SERVICES6 {
        let t = Instant::now();
        let url = |path: &str| format!("http://{}{path}", url_host(vip));
        let d = download(vip, 10_000_000);
        assert_eq!(d, "10000000 200", "{mode}: download");
        let u = in_ns_ok(
            "c1",
            &[
                "curl",
                "-s",
                "-g",
                "-m",
                "60",
                "-H",
                "Content-Type: application/octet-stream",
                "--data-binary",
                &format!("@{}", up.display()),
                &url("/upload"),
            ],
        );
        assert!(u.contains("received=10000000"), "{mode}: upload answer {u:?}");
        println!("  {mode:<14} 10 MB down and 10 MB up in {:.1} s", t.elapsed().as_secs_f64());
    }
    let _ = std::fs::remove_file(&up);
    // Full-size segments cannot take 40 more bytes in a 1500-byte MTU: the LB answers Packet
    // Too Big (IPv6 is never fragmented on the way) and the client's PMTU discovery shrinks them.
    let sent = || tb.stats()["frag_needed_sent"].as_u64().unwrap_or(0) - before;
    tb.wait_for("Packet Too Big sent for ip6ip6 and 4in6", Duration::from_secs(20), || sent() > 0);
    let pmtu = in_ns_ok("c1", &["ip", "-6", "route", "get", "2001:db8::101"]);
    println!("  ip6ip6: {} Packet Too Big / fragmentation needed sent; client route: {pmtu}", sent());
    assert!(pmtu.contains("mtu 1460"), "the client learnt the tunnel's MTU: {pmtu}");
}

pub fn neighbour_discovery6(_: &Testbed) {
    // The router resolves the VIPs and the LB's address to the LB, the servers to themselves.
    for ip in ["2001:db8::100", "2001:db8::103", "2001:db8::2"] {
        let _ = in_ns("rt", &["ping", "-6", "-c", "1", "-W", "2", ip]);
        let neigh = in_ns_ok("rt", &["ip", "-6", "neigh", "show", ip, "dev", "fab0"]);
        assert!(neigh.contains(LB_MAC), "{ip} resolved to the LB: {neigh:?}");
    }
    let _ = in_ns("rt", &["ping", "-6", "-c", "1", "-W", "2", "2001:db8::11"]);
    let neigh = in_ns_ok("rt", &["ip", "-6", "neigh", "show", "2001:db8::11", "dev", "fab0"]);
    assert!(!neigh.contains(LB_MAC) && neigh.contains("lladdr"), "a server answers for itself: {neigh:?}");
    // Every server holds the VIP on lo, and every host on the segment hears x1 ask for it:
    // only the LB answers.
    let pcap = "/tmp/dsrlb-e2e-nd.pcap";
    let _ = std::fs::remove_file(pcap);
    let mut cap = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &format!("{TB}-x1"),
            "tcpdump",
            "-i",
            "eth0",
            "-n",
            "-U",
            "-w",
            pcap,
            "icmp6",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let _ = in_ns("x1", &["ip", "-6", "neigh", "flush", "dev", "eth0"]);
    let _ = in_ns("x1", &["ping", "-6", "-c", "1", "-W", "2", "2001:db8::100"]);
    std::thread::sleep(Duration::from_millis(500));
    let _ = ok(&["kill", "-INT", &cap.id().to_string()]);
    let _ = cap.wait();
    let o = sh(&["tcpdump", "-e", "-n", "-r", pcap, "icmp6 and ip6[40] == 136"]);
    let adverts: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.contains("tgt is 2001:db8::100"))
        .map(|l| l.split_whitespace().nth(1).unwrap_or("").to_string())
        .collect();
    assert!(!adverts.is_empty(), "someone answered for the VIP");
    assert!(adverts.iter().all(|m| m == LB_MAC), "only the LB answers for the VIP: {adverts:?}");
    in_ns_ok("c1", &["ping", "-6", "-c", "2", "-W", "2", "2001:db8::100"]);
    in_ns_ok("c1", &["ping", "-6", "-c", "2", "-W", "2", "2001:db8::2"]);
    println!("  VIPs and the LB's address resolve to {LB_MAC}; servers to themselves; echo answered");
}

fn state(tb: &Testbed, service: &str, ip: &str) -> String {
    tb.backend(service, ip)["state"].as_str().unwrap_or("").to_string()
}

pub fn missing_dsr_setup6(tb: &Testbed) {
    // l2: the VIP off lo on s1; dscp: the IPv6 rule deleted on s3.
    in_ns_ok("s1", &["ip", "-6", "addr", "del", "2001:db8::100/128", "dev", "lo"]);
    in_ns_ok("s3", &["nft", "flush", "chain", "ip6", "dsrlb_server_7", "dsr_in"]);
    let cases = [("[2001:db8::100]:80/tcp", "2001:db8::11"), ("[2001:db8::102]:80/tcp", "2001:db8::13")];
    for (svc, ip) in cases {
        let took = tb
            .wait_for(&format!("{svc} {ip} down"), Duration::from_secs(20), || state(tb, svc, ip) == "down");
        let err = tb.backend(svc, ip)["last_error"].as_str().unwrap_or("").to_string();
        println!("  {svc} {ip}: down after {:.1} s: {err}", took.as_secs_f64());
    }
    let err =
        tb.backend("[2001:db8::102]:80/tcp", "2001:db8::13")["last_error"].as_str().unwrap_or("").to_string();
    assert!(
        err.contains("not from the VIP"),
        "dscp without its rule: the server answers from its real address: {err}"
    );
    for (vip, bad) in [("2001:db8::100", "s1"), ("2001:db8::102", "s3")] {
        for i in 0..15 {
            let (server, _) =
                get_any(vip, CLIENTS6[i % 3]).unwrap_or_else(|e| panic!("{vip}: blackholed: {e}"));
            assert_ne!(server, bad, "{vip}: no request to {bad}");
        }
    }
    in_ns_ok("s1", &["ip", "-6", "addr", "add", "2001:db8::100/128", "dev", "lo", "nodad"]);
    in_ns_ok(
        "s3",
        &[
            "nft",
            "add",
            "rule",
            "ip6",
            "dsrlb_server_7",
            "dsr_in",
            "ip6",
            "daddr",
            "2001:db8::13",
            "ip6",
            "dscp",
            "7",
            "notrack",
            "ip6",
            "daddr",
            "set",
            "2001:db8::102",
        ],
    );
    for (svc, ip) in cases {
        tb.wait_for(&format!("{svc} {ip} back up"), Duration::from_secs(20), || state(tb, svc, ip) == "up");
    }
    println!("  both back up once their set-up returned");
}
