//! Hostile and odd input at the dataplane, with real frames: what is not ours is dropped and
//! counted, a full table never changes a connection's backend, and every answer a worker gives
//! without state agrees with the one it gives with state.

use std::collections::HashMap;
use std::sync::Arc;

use dataplane::snapshot::*;
use dataplane::testkit::*;
use dataplane::{DropReason, Punt, Snapshot, Verdict, Worker, WorkerConfig};

fn backend_of(out: &[u8]) -> [u8; 6] {
    out[0..6].try_into().unwrap()
}

/// One TCP service on VIP_L2:80 with `n` equal backends, the given scheduler and persistence.
fn service_snapshot(n: u8, sched: Scheduler, persistence: Option<Persistence>) -> Snapshot {
    let bs = (1..=n).map(|i| backend(i as u32 - 1, i, 1)).collect();
    let mut s = service(0, VIP_L2, 6, 80, ForwardMode::L2, bs);
    s.scheduler = sched;
    s.persistence = persistence;
    Snapshot::build(1, vec![lan_port(1500)], vec![s]).unwrap()
}

fn tcp_from(src: [u8; 4], sport: u16, flags: u8) -> Vec<u8> {
    let ip = Ip::new(6, src, VIP_L2).bytes(&tcp_seg(src, VIP_L2, sport, 80, flags, b""));
    eth(LB_MAC, ROUTER_MAC, 0x0800, &ip)
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

#[test]
fn only_frames_for_the_port_mac_take_the_ip_path() {
    let mut w = worker(one_arm());
    let ip = Ip::new(6, CLIENT, VIP_L2).bytes(&tcp_seg(CLIENT, VIP_L2, 40000, 80, SYN, b""));
    let other_host = [0x02, 0, 0, 0, 0x10, 1]; // a server's MAC, flooded by a switch
    for dst in [other_host, [0xff; 6], [0x01, 0x00, 0x5e, 0, 0, 1]] {
        let (v, _, _) = run(&mut w, &eth(dst, ROUTER_MAC, 0x0800, &ip), 0, 0);
        assert_eq!(v, Verdict::Drop(DropReason::NotOurMac), "to {dst:02x?}");
    }
    assert_eq!(run(&mut w, &eth(LB_MAC, ROUTER_MAC, 0x0800, &ip), 0, 0).0, Verdict::Tx(0));
    // ARP: broadcast requests and replies to us are for the control core; others' are not.
    let arp = [0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 100];
    assert_eq!(run(&mut w, &eth([0xff; 6], ROUTER_MAC, 0x0806, &arp), 0, 0).0, Verdict::ToControl(Punt::Arp));
    assert_eq!(run(&mut w, &eth(LB_MAC, ROUTER_MAC, 0x0806, &arp), 0, 0).0, Verdict::ToControl(Punt::Arp));
    assert_eq!(
        run(&mut w, &eth(other_host, ROUTER_MAC, 0x0806, &arp), 0, 0).0,
        Verdict::Drop(DropReason::NotOurMac)
    );
    assert_eq!(w.counters().dropped(DropReason::NotOurMac), 4);
}

/// Two load balancers on one segment whose switch floods a server's MAC: each client packet is
/// forwarded once. Before the check, B took A's frame to the server and forwarded it again, to
/// the server's MAC, which A took again...
#[test]
fn two_load_balancers_on_a_flooding_segment_forward_a_packet_once() {
    let b_mac = [0x02, 0, 0, 0, 0, 0xfd];
    let mut a = worker(one_arm());
    let mut other = one_arm_with_mac(b_mac);
    let (v, out, _) = run(&mut a, &client_tcp(VIP_L2, 40000, 80, SYN, b""), 0, 0);
    assert_eq!(v, Verdict::Tx(0));
    // The switch floods A's output (to the server's MAC) to B as well.
    assert_eq!(run(&mut other, &out, 0, 0).0, Verdict::Drop(DropReason::NotOurMac));
}

fn one_arm_with_mac(mac: [u8; 6]) -> Worker {
    let s = one_arm();
    let mut ports = s.ports.clone();
    ports[0].mac = mac;
    worker(Snapshot::build(2, ports, s.services.clone()).unwrap())
}

#[test]
fn martian_sources_and_ttl_zero_make_no_flow() {
    let mut w = worker(one_arm());
    for src in [[0, 1, 2, 3], [127, 0, 0, 1], [224, 0, 0, 5], [240, 0, 0, 1], [255; 4], VIP_IPIP, LB_IP] {
        let (v, _, _) = run(&mut w, &tcp_from(src, 1000, SYN), 0, 0);
        assert_eq!(v, Verdict::Drop(DropReason::MartianSource), "from {src:?}");
    }
    let mut ip = Ip::new(6, CLIENT, VIP_L2);
    ip.ttl = 0;
    let f = eth(LB_MAC, ROUTER_MAC, 0x0800, &ip.bytes(&tcp_seg(CLIENT, VIP_L2, 1, 80, SYN, b"")));
    assert_eq!(run(&mut w, &f, 0, 0).0, Verdict::Drop(DropReason::TtlExceeded));
    assert_eq!(w.flows().len(), 0);
}

#[test]
fn oversized_packets_in_l2_and_dscp_are_refused_before_the_device() {
    let mut w = worker(Snapshot::build(1, vec![lan_port(1400)], one_arm().services.clone()).unwrap());
    for vip in [VIP_L2, VIP_DSCP] {
        let big = client_tcp(vip, 40000, 80, ACK, &[0; 1460]); // 1500 bytes of IP, DF
        let (v, out, _) = run(&mut w, &big, 0, 0);
        assert_eq!(v, Verdict::Reply(0), "DF: told to the sender");
        assert_eq!(
            (out[34], out[35], u16::from_be_bytes([out[40], out[41]])),
            (3, 4, 1400),
            "frag needed, MTU 1400"
        );
        let mut ip = Ip::new(6, CLIENT, vip);
        ip.df = false;
        let no_df =
            eth(LB_MAC, ROUTER_MAC, 0x0800, &ip.bytes(&tcp_seg(CLIENT, vip, 40001, 80, ACK, &[0; 1460])));
        assert_eq!(
            run(&mut w, &no_df, 0, 0).0,
            Verdict::Drop(DropReason::TooBig),
            "no DF: these modes do not fragment"
        );
    }
    let c = w.counters();
    assert_eq!((c.frag_needed_sent, c.forwarded), (2, 0), "an answer is not a forwarded packet");
    assert_eq!(c.accounted(), c.rx_packets);
}

#[test]
fn a_syn_alone_holds_a_slot_only_for_the_syn_timeout() {
    let mut s = service(0, VIP_L2, 6, 80, ForwardMode::L2, vec![backend(0, 1, 1)]);
    (s.syn_ms, s.tcp_idle_ms) = (3_000, 300_000);
    let mut w = worker(Snapshot::build(1, vec![lan_port(1500)], vec![s]).unwrap());
    run(&mut w, &tcp_from([192, 0, 2, 1], 1000, SYN), 0, 0); // spoofed: nothing follows
    run(&mut w, &tcp_from(CLIENT, 2000, SYN), 0, 0);
    run(&mut w, &tcp_from(CLIENT, 2000, ACK), 0, 50); // the handshake completes
    (3_200..=4_200).for_each(|t| w.housekeeping(t));
    assert_eq!(w.flows().len(), 1, "the lone SYN is gone after 3 s, the connection stays");
    assert_eq!(w.counters().embryonic_expired, 1);
}

/// The flood, at the dataplane: spoofed SYNs at ten times what the table holds per SYN
/// timeout, while established connections send data and new clients connect. Every packet of
/// every real connection reaches the backend its first packet did, whatever the scheduler.
#[test]
fn a_syn_flood_moves_no_connection_whatever_the_scheduler() {
    let persist = Some(Persistence { by: PersistBy::SourceIp, timeout_ms: 60_000 });
    for (name, sched, per) in [
        ("maglev", Scheduler::Maglev, None),
        ("source_hash", Scheduler::SourceHash, None),
        ("persistence", Scheduler::Maglev, persist),
        ("round robin", Scheduler::WeightedRoundRobin, None),
        ("least connections", Scheduler::LeastConnections, None),
    ] {
        let mut s = service_snapshot(4, sched, per);
        s = Snapshot::build(1, s.ports.clone(), {
            let mut v = s.services.clone();
            v[0].syn_ms = 1_000;
            v
        })
        .unwrap();
        let mut w = Worker::new(WorkerConfig { flow_capacity: 1024, ..Default::default() }, Arc::new(s));
        let capacity = w.flows().slots(); // 3072 flows
                                          // 40 established connections before the flood.
        let mut home: HashMap<(u8, u16), [u8; 6]> = HashMap::new();
        for c in 0..40u16 {
            let src = [198, 51, 100, (c % 20) as u8];
            let (_, out, _) = run(&mut w, &tcp_from(src, 5000 + c, SYN), 0, 0);
            run(&mut w, &tcp_from(src, 5000 + c, ACK), 0, 1);
            home.insert((src[3], 5000 + c), backend_of(&out));
        }
        // Ten seconds of flood at 10x the table per SYN timeout (30 720 SYNs/s), 1 ms steps;
        // every 10 ms each established connection sends, and a new client connects.
        let mut spoof = 0u32;
        let mut moved = 0;
        let mut persist_broken = 0;
        let mut by_client: HashMap<u8, [u8; 6]> = HashMap::new();
        for t in 2..10_002u32 {
            for _ in 0..capacity * 10 / 1000 {
                spoof = spoof.wrapping_add(1);
                let src = [203, (spoof >> 16) as u8, (spoof >> 8) as u8, spoof as u8];
                run(&mut w, &tcp_from(src, (spoof % 60_000) as u16 + 1024, SYN), 0, t);
            }
            w.housekeeping(t);
            if t % 10 != 0 {
                continue;
            }
            for (&(c, port), &b) in &home {
                let (v, out, _) = run(&mut w, &tcp_from([198, 51, 100, c], port, ACK), 0, t);
                moved += usize::from(v != Verdict::Tx(0) || backend_of(&out) != b);
            }
            // A new connection opened during the flood: its SYN, then its data.
            let k = (t / 10) as u16;
            let src = [198, 51, 101, (k % 50) as u8];
            let (_, first, _) = run(&mut w, &tcp_from(src, 20_000 + k, SYN), 0, t);
            for later in 1..4 {
                let (v, out, _) = run(&mut w, &tcp_from(src, 20_000 + k, ACK), 0, t + later);
                moved += usize::from(v != Verdict::Tx(0) || backend_of(&out) != backend_of(&first));
            }
            if per.is_some() {
                let was = *by_client.entry(src[3]).or_insert(backend_of(&first));
                persist_broken += usize::from(was != backend_of(&first));
            }
        }
        let c = w.counters();
        println!(
            "{name}: {} spoofed SYNs, table {}/{}, {} stateless, {} embryonic expired, {} midflow without state",
            spoof,
            w.flows().len(),
            capacity,
            c.stateless_fallbacks,
            c.embryonic_expired,
            c.midflow_without_state
        );
        assert!(c.stateless_fallbacks > 0, "{name}: the flood did fill the table");
        assert_eq!(moved, 0, "{name}: packets that reached another backend than their connection's");
        assert_eq!(persist_broken, 0, "{name}: clients that changed backend");
    }
}

#[test]
fn an_icmp_error_goes_to_the_hashed_backend_without_state() {
    // A source-hash service: an ICMP error quoting a flow no worker holds (another instance's,
    // or expired) goes to the backend the client's packets go to, not a pick on the 5-tuple.
    for sched in [Scheduler::SourceHash, Scheduler::DestinationHash] {
        let mut w = worker(service_snapshot(8, sched, None));
        let mut other = worker(service_snapshot(8, sched, None));
        for i in 0..20u8 {
            let client = [198, 51, 100, i];
            let (_, out, _) = run(&mut w, &tcp_from(client, 40000 + i as u16, SYN), 0, 0);
            let quoted =
                Ip::new(6, VIP_L2, client).bytes(&tcp_seg(VIP_L2, client, 80, 40000 + i as u16, ACK, b""));
            let mut m = vec![3, 4, 0, 0, 0, 0, 5, 0xdc];
            m.extend_from_slice(&quoted[..28]);
            let c = csum(&m);
            m[2..4].copy_from_slice(&c.to_be_bytes());
            let err = eth(LB_MAC, ROUTER_MAC, 0x0800, &Ip::new(1, [192, 0, 2, 1], VIP_L2).bytes(&m));
            let (v, steered, _) = run(&mut other, &err, 0, 0);
            assert_eq!(v, Verdict::Tx(0));
            assert_eq!(backend_of(&steered), backend_of(&out), "{sched:?}: client {i}");
        }
    }
}

#[test]
fn fragments_under_source_hash_go_where_the_clients_other_packets_go() {
    let mut w = worker(service_snapshot(8, Scheduler::SourceHash, None));
    for i in 0..20u8 {
        let client = [198, 51, 100, i];
        let (_, whole, _) = run(&mut w, &tcp_from(client, 1000, SYN), 0, 0);
        let mut ip = Ip::new(6, client, VIP_L2);
        (ip.mf, ip.df) = (true, false);
        let first = eth(
            LB_MAC,
            ROUTER_MAC,
            0x0800,
            &ip.bytes(&tcp_seg(client, VIP_L2, 2000, 80, ACK, &[0; 64])[..48]),
        );
        let (v, frag, _) = run(&mut w, &first, 0, 0);
        assert_eq!(v, Verdict::Tx(0));
        assert_eq!(backend_of(&frag), backend_of(&whole), "client {i}");
    }
}

/// A fleet member's routing peer (the router: BGP, BFD) takes the priority lane to the control
/// core, so no flood at the LB's address starves the sessions; a host that forges the router's
/// address from its own MAC does not.
#[test]
fn only_the_routing_peer_itself_takes_the_priority_lane() {
    let router_ip = [10, 0, 0, 1];
    let mut port = lan_port(1500);
    port.peers = vec![(router_ip.into(), ROUTER_MAC)];
    let snap = Snapshot::build(1, vec![port], one_arm().services.clone()).unwrap();
    let mut w = worker(snap);
    let bgp = |mac: [u8; 6]| {
        let seg = tcp_seg(router_ip, LB_IP, 40000, 179, 0x02, b"");
        eth(LB_MAC, mac, 0x0800, &Ip::new(6, router_ip, LB_IP).bytes(&seg))
    };
    assert_eq!(run(&mut w, &bgp(ROUTER_MAC), 0, 0).0, Verdict::ToControl(Punt::Priority));
    assert_eq!(run(&mut w, &bgp([2, 0, 0, 0, 0x66, 0x66]), 0, 0).0, Verdict::ToControl(Punt::Other));
    let seg = tcp_seg([10, 0, 0, 66], LB_IP, 40000, 22, 0x02, b"");
    let ssh = eth(LB_MAC, [2, 0, 0, 0, 0x66, 0x66], 0x0800, &Ip::new(6, [10, 0, 0, 66], LB_IP).bytes(&seg));
    assert_eq!(run(&mut w, &ssh, 0, 0).0, Verdict::ToControl(Punt::Other));
}
