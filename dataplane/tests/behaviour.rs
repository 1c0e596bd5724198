//! What the pipeline decides: drops by reason, punts to control, flows, schedulers, persistence,
//! fragments, ICMP errors, inline routing, a full table and idle timeouts.

use dataplane::testkit::*;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use dataplane::snapshot::*;
use dataplane::{DropReason, Punt, Snapshot, Verdict, Worker, WorkerConfig};

fn backend_of(out: &[u8]) -> [u8; 6] {
    out[0..6].try_into().unwrap()
}

fn icmp_msg(ty: u8, code: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(body);
    let c = csum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

#[test]
fn every_drop_reason_is_counted() {
    let mut w = worker(one_arm());
    let expect = |w: &mut dataplane::Worker, frame: Vec<u8>, r: DropReason| {
        let before = w.counters().dropped(r);
        let (v, _, _) = run(w, &frame, 0, 0);
        assert_eq!(v, Verdict::Drop(r));
        assert_eq!(w.counters().dropped(r), before + 1, "{r:?} counted");
    };
    expect(&mut w, vec![0u8; 10], DropReason::TruncatedEthernet);
    expect(&mut w, eth(LB_MAC, ROUTER_MAC, 0x88cc, &[0x60; 40]), DropReason::UnsupportedEthertype);
    expect(&mut w, eth(LB_MAC, ROUTER_MAC, 0x86dd, &[0x60; 40]), DropReason::MalformedIpv6);
    let mut bad = Ip::new(6, CLIENT, VIP_L2).bytes(&tcp_seg(CLIENT, VIP_L2, 1, 80, 2, b""));
    bad[0] = 0x55;
    expect(&mut w, eth(LB_MAC, ROUTER_MAC, 0x0800, &bad), DropReason::MalformedIpv4);
    let short_tcp = Ip::new(6, CLIENT, VIP_L2).bytes(&[0u8; 12]);
    expect(&mut w, eth(LB_MAC, ROUTER_MAC, 0x0800, &short_tcp), DropReason::MalformedL4);
    expect(&mut w, client_tcp(VIP_L2, 1, 9999, 2, b""), DropReason::NoService);
    let gre = Ip::new(47, CLIENT, VIP_L2).bytes(&[0u8; 8]);
    expect(&mut w, eth(LB_MAC, ROUTER_MAC, 0x0800, &gre), DropReason::NoService);
    // A later fragment (no ports) to a VIP with two TCP services cannot be placed.
    let mut two = worker(
        Snapshot::build(
            1,
            vec![lan_port(1500)],
            vec![
                service(0, VIP_L2, 6, 80, ForwardMode::L2, vec![backend(0, 1, 1)]),
                service(1, VIP_L2, 6, 443, ForwardMode::L2, vec![backend(1, 2, 1)]),
            ],
        )
        .unwrap(),
    );
    let mut frag = Ip::new(6, CLIENT, VIP_L2);
    frag.df = false;
    frag.frag_off = 1480;
    expect(
        &mut two,
        eth(LB_MAC, ROUTER_MAC, 0x0800, &frag.bytes(&[0u8; 100])),
        DropReason::FragmentWithoutService,
    );
    expect(&mut w, client_tcp([10, 0, 0, 77], 1, 80, 2, b""), DropReason::NotForUs);
    let ts = Ip::new(1, CLIENT, VIP_L2).bytes(&icmp_msg(13, 0, &[0; 12]));
    expect(&mut w, eth(LB_MAC, ROUTER_MAC, 0x0800, &ts), DropReason::IcmpUnsupported);
    // An error quoting a packet that was not from a VIP.
    let quoted = Ip::new(6, [10, 9, 9, 9], CLIENT).bytes(&[0u8; 8]);
    let err = Ip::new(1, [192, 0, 2, 1], VIP_L2).bytes(&icmp_msg(3, 4, &quoted));
    expect(&mut w, eth(LB_MAC, ROUTER_MAC, 0x0800, &err), DropReason::IcmpErrorUnmatched);

    // No healthy backend: the only backend is down.
    let mut b = backend(0, 1, 1);
    b.state = BackendState::Down;
    let mut down = worker(
        Snapshot::build(1, vec![lan_port(1500)], vec![service(0, VIP_L2, 6, 80, ForwardMode::L2, vec![b])])
            .unwrap(),
    );
    expect(&mut down, client_tcp(VIP_L2, 1, 80, 2, b""), DropReason::NoHealthyBackend);
    // An unresolved MAC counts as down.
    let mut b = backend(0, 1, 1);
    b.next_hop_mac = None;
    let mut nomac = worker(
        Snapshot::build(1, vec![lan_port(1500)], vec![service(0, VIP_L2, 6, 80, ForwardMode::L2, vec![b])])
            .unwrap(),
    );
    expect(&mut nomac, client_tcp(VIP_L2, 1, 80, 2, b""), DropReason::NoHealthyBackend);
}

#[test]
fn arp_echo_and_lb_traffic_go_to_control() {
    let mut w = worker(one_arm());
    let arp = eth(
        [0xff; 6],
        ROUTER_MAC,
        0x0806,
        &[0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 100],
    );
    assert_eq!(run(&mut w, &arp, 0, 0).0, Verdict::ToControl(Punt::Arp));
    let echo = Ip::new(1, CLIENT, VIP_DSCP).bytes(&icmp_msg(8, 0, b"ping"));
    assert_eq!(run(&mut w, &eth(LB_MAC, ROUTER_MAC, 0x0800, &echo), 0, 0).0, Verdict::ToControl(Punt::Other));
    // A health-check reply in dscp mode comes from the VIP to the LB address.
    let reply = Ip::new(6, VIP_DSCP, LB_IP).bytes(&tcp_seg(VIP_DSCP, LB_IP, 80, 33000, 0x12, b""));
    assert_eq!(
        run(&mut w, &eth(LB_MAC, server_mac(3), 0x0800, &reply), 0, 0).0,
        Verdict::ToControl(Punt::Priority)
    );
    assert_eq!(w.counters().to_control, 3);
}

fn inline_snapshot(gw: Option<[u8; 6]>) -> Snapshot {
    let client = PortInfo {
        mac: LB_MAC,
        addrs: vec![Ipv4Addr::from(LB_IP).into()],
        mtu: 1500,
        role: PortRole::Client,
        gateway_mac: gw,
        gateway6_mac: gw,
        peers: Vec::new(),
    };
    let server = PortInfo {
        mac: LB_MAC2,
        addrs: vec![Ipv4Addr::from(LB_IP2).into()],
        mtu: 1500,
        role: PortRole::Server,
        gateway_mac: None,
        gateway6_mac: None,
        peers: Vec::new(),
    };
    let mut b = backend(0, 1, 1);
    b.port = 1;
    Snapshot::build(1, vec![client, server], vec![service(0, VIP_L2, 6, 80, ForwardMode::L2, vec![b])])
        .unwrap()
}

#[test]
fn inline_forwards_client_to_server_port_and_routes_replies() {
    let mut w = worker(inline_snapshot(Some(CLIENT_GW_MAC)));
    let (v, out, _) = run(&mut w, &client_tcp(VIP_L2, 40000, 80, 2, b""), 0, 0);
    assert_eq!(v, Verdict::Tx(1), "to the server-side port");
    assert_eq!(&out[6..12], &LB_MAC2, "from the server-side port's MAC");
    // The server's reply from the VIP: routed to the client gateway, unmodified above L2 but TTL.
    let ip = Ip::new(6, VIP_L2, CLIENT);
    let reply =
        eth(LB_MAC2, server_mac(1), 0x0800, &ip.bytes(&tcp_seg(VIP_L2, CLIENT, 80, 40000, 0x12, b"ok")));
    let (v, out, _) = run(&mut w, &reply, 1, 0);
    assert_eq!(v, Verdict::Tx(0));
    let mut want_ip = ip.clone();
    want_ip.ttl -= 1;
    let want =
        eth(CLIENT_GW_MAC, LB_MAC, 0x0800, &want_ip.bytes(&tcp_seg(VIP_L2, CLIENT, 80, 40000, 0x12, b"ok")));
    assert_eq!(out, want);
    assert_eq!(w.counters().inline_routed, 1);
    // TTL 1 cannot be forwarded; client-side traffic not for a VIP is not routed.
    let mut dying = ip.clone();
    dying.ttl = 1;
    let f = eth(LB_MAC2, server_mac(1), 0x0800, &dying.bytes(&tcp_seg(VIP_L2, CLIENT, 80, 40000, 0x10, b"")));
    assert_eq!(run(&mut w, &f, 1, 0).0, Verdict::Drop(DropReason::TtlExceeded));
    assert_eq!(
        run(&mut w, &client_tcp([8, 8, 8, 8], 1, 80, 2, b""), 0, 0).0,
        Verdict::Drop(DropReason::NotForUs)
    );
    let mut nogw = worker(inline_snapshot(None));
    assert_eq!(run(&mut nogw, &reply, 1, 0).0, Verdict::Drop(DropReason::GatewayUnresolved));
}

fn multi(sched: Scheduler, weights: &[u32]) -> Snapshot {
    let bs = weights.iter().enumerate().map(|(i, w)| backend(i as u32, i as u8 + 1, *w)).collect();
    let mut s = service(0, VIP_L2, 6, 80, ForwardMode::L2, bs);
    s.scheduler = sched;
    Snapshot::build(1, vec![lan_port(1500)], vec![s]).unwrap()
}

fn spread(w: &mut Worker, flows: u32) -> HashMap<[u8; 6], u32> {
    let mut m = HashMap::new();
    for i in 0..flows {
        let src = [100, (i >> 16) as u8, (i >> 8) as u8, i as u8];
        let (v, out, _) = run(w, &client_tcp_from(src, VIP_L2, 1024 + (i % 50000) as u16, 80), 0, 0);
        assert_eq!(v, Verdict::Tx(0));
        *m.entry(backend_of(&out)).or_insert(0) += 1;
    }
    m
}

#[test]
fn weighted_schedulers_follow_weights() {
    for sched in
        [Scheduler::Maglev, Scheduler::WeightedRoundRobin, Scheduler::SourceHash, Scheduler::LeastConnections]
    {
        let mut w = Worker::new(
            WorkerConfig { flow_capacity: 1 << 16, ..Default::default() },
            Arc::new(multi(sched, &[1, 2, 3])),
        );
        let m = spread(&mut w, 30000);
        for (i, wt) in [1u32, 2, 3].iter().enumerate() {
            let got = m[&server_mac(i as u8 + 1)] as f64 / 30000.0;
            let want = *wt as f64 / 6.0;
            assert!((got - want).abs() < 0.02, "{sched:?}: backend {i} got {got:.3} want {want:.3}");
        }
    }
}

#[test]
fn destination_hash_sends_one_vip_to_one_backend() {
    let mut w = worker(multi(Scheduler::DestinationHash, &[1, 1, 1]));
    let m = spread(&mut w, 500);
    assert_eq!(m.len(), 1, "all flows to one destination share a backend");
}

#[test]
fn flows_stick_reschedule_on_failure_and_stay_on_draining() {
    let snap = multi(Scheduler::Maglev, &[1, 1, 1]);
    let mut w = worker(snap);
    let f = client_tcp(VIP_L2, 40000, 80, 0x10, b"");
    let first = backend_of(&run(&mut w, &f, 0, 0).1);
    for t in 1..20 {
        assert_eq!(backend_of(&run(&mut w, &f, 0, t).1), first, "same flow, same backend");
    }
    let idx = (first[5] - 1) as usize;
    // Draining: the flow stays; new flows avoid it.
    let mut bs: Vec<BackendInfo> = (0..3).map(|i| backend(i, i as u8 + 1, 1)).collect();
    bs[idx].state = BackendState::Draining;
    w.install(Arc::new(
        Snapshot::build(
            2,
            vec![lan_port(1500)],
            vec![service(0, VIP_L2, 6, 80, ForwardMode::L2, bs.clone())],
        )
        .unwrap(),
    ));
    assert_eq!(backend_of(&run(&mut w, &f, 0, 30).1), first, "draining keeps its flow");
    let m = spread(&mut w, 300);
    assert!(!m.contains_key(&first), "no new flow to a draining backend");
    // Down: the flow moves.
    bs[idx].state = BackendState::Down;
    w.install(Arc::new(
        Snapshot::build(3, vec![lan_port(1500)], vec![service(0, VIP_L2, 6, 80, ForwardMode::L2, bs)])
            .unwrap(),
    ));
    let moved = backend_of(&run(&mut w, &f, 0, 40).1);
    assert_ne!(moved, first);
    assert_eq!(backend_of(&run(&mut w, &f, 0, 41).1), moved, "and stays where it moved");
    assert_eq!(w.counters().rescheduled, 1);
}

#[test]
fn reload_keeps_flows_on_surviving_backends() {
    let mut w = worker(multi(Scheduler::Maglev, &[1, 1, 1]));
    let flows: Vec<Vec<u8>> = (0..200).map(|i| client_tcp(VIP_L2, 20000 + i, 80, 0x10, b"")).collect();
    let before: Vec<[u8; 6]> = flows.iter().map(|f| backend_of(&run(&mut w, f, 0, 0).1)).collect();
    // Add two backends: Maglev would move some flows, but existing flows keep theirs.
    w.install(Arc::new(multi(Scheduler::Maglev, &[1, 1, 1, 1, 1])));
    let after: Vec<[u8; 6]> = flows.iter().map(|f| backend_of(&run(&mut w, f, 0, 1).1)).collect();
    assert_eq!(before, after);
}

#[test]
fn source_ip_persistence_outlives_flows_and_backend_changes() {
    let mut s =
        service(0, VIP_L2, 6, 80, ForwardMode::L2, (0..4).map(|i| backend(i, i as u8 + 1, 1)).collect());
    s.persistence = Some(Persistence { by: PersistBy::SourceIp, timeout_ms: 60_000 });
    s.tcp_idle_ms = 1000;
    let mut w = worker(Snapshot::build(1, vec![lan_port(1500)], vec![s.clone()]).unwrap());
    let src = [203, 0, 113, 9];
    let first = backend_of(&run(&mut w, &client_tcp_from(src, VIP_L2, 1000, 80), 0, 0).1);
    for port in 1001..1100 {
        assert_eq!(backend_of(&run(&mut w, &client_tcp_from(src, VIP_L2, port, 80), 0, 10).1), first);
    }
    // Flows expire (1 s) but persistence (60 s) holds, even after backends are added.
    let mut s2 = s.clone();
    s2.backends.extend((4..12).map(|i| backend(i, i as u8 + 1, 1)));
    w.install(Arc::new(Snapshot::build(2, vec![lan_port(1500)], vec![s2]).unwrap()));
    assert_eq!(backend_of(&run(&mut w, &client_tcp_from(src, VIP_L2, 2000, 80), 0, 30_000).1), first);
    // Other clients spread.
    let others: std::collections::HashSet<_> = (0..200u8)
        .map(|i| backend_of(&run(&mut w, &client_tcp_from([203, 0, 114, i], VIP_L2, 5, 80), 0, 30_001).1))
        .collect();
    assert!(others.len() > 6);
}

/// A 1480-byte UDP datagram from `src`:`sport` to `VIP_L2`:`dport` in two fragments (IP id
/// `id`): the first carries the UDP header, the later one does not.
fn fragmented_udp(src: [u8; 4], id: u16, sport: u16, dport: u16) -> (Vec<u8>, Vec<u8>) {
    let mut first = Ip::new(17, src, VIP_L2);
    first.df = false;
    first.mf = true;
    first.id = id;
    let udp = udp_seg(src, VIP_L2, sport, dport, &[id as u8; 1472], true);
    let f1 = eth(LB_MAC, ROUTER_MAC, 0x0800, &first.bytes(&udp[..1480]));
    let mut later = first.clone();
    later.mf = false;
    later.frag_off = 1480;
    (f1, eth(LB_MAC, ROUTER_MAC, 0x0800, &later.bytes(&udp[1480..])))
}

#[test]
fn fragments_agree_beside_an_every_port_service() {
    // Port 53 has its own service; every other UDP port of the VIP is another. A later fragment
    // cannot say its port, so it goes to the every-port service: so must the first.
    let snap = || {
        Snapshot::build(
            1,
            vec![lan_port(1500)],
            vec![
                service(
                    0,
                    VIP_L2,
                    17,
                    53,
                    ForwardMode::L2,
                    (0..3).map(|i| backend(i, i as u8 + 1, 1)).collect(),
                ),
                service(
                    1,
                    VIP_L2,
                    17,
                    0,
                    ForwardMode::L2,
                    (3..6).map(|i| backend(i, i as u8 + 1, 1)).collect(),
                ),
            ],
        )
        .unwrap()
    };
    let mut w = worker(snap());
    for c in 0..20u8 {
        let src = [198, 18, 1, c];
        let (f1, f2) = fragmented_udp(src, 100 + c as u16, 4000 + c as u16, 53);
        let b1 = backend_of(&run(&mut w, &f1, 0, 0).1);
        let b2 = backend_of(&run(&mut w, &f2, 0, 0).1);
        let b2_elsewhere = backend_of(&run(&mut worker(snap()), &f2, 0, 0).1);
        assert_eq!((b1, b1), (b2, b2_elsewhere), "datagram from {src:?}");
        assert!((4..=6).contains(&b1[5]), "the every-port service's backends are 4-6");
    }
    // An unfragmented datagram to port 53 still goes to port 53's own service.
    let (v, out, _) = run(
        &mut w,
        &eth(
            LB_MAC,
            ROUTER_MAC,
            0x0800,
            &Ip::new(17, CLIENT, VIP_L2).bytes(&udp_seg(CLIENT, VIP_L2, 9, 53, b"q", true)),
        ),
        0,
        0,
    );
    assert!(matches!(v, Verdict::Tx(_)));
    assert!((1..=3).contains(&backend_of(&out)[5]), "port 53's own backends are 1-3");
}

#[test]
fn every_fragment_follows_its_first_fragment() {
    let bs = (0..5).map(|i| backend(i, i as u8 + 1, 1)).collect();
    let mut w = worker(
        Snapshot::build(1, vec![lan_port(1500)], vec![service(0, VIP_L2, 17, 0, ForwardMode::L2, bs)])
            .unwrap(),
    );
    let mut seen = std::collections::HashSet::new();
    for c in 0..50u8 {
        let src = [198, 18, 0, c];
        let (f1, f2) = fragmented_udp(src, c as u16, 4000 + c as u16, 53);
        // Reordered: the later fragment first, and on a fresh worker (another RSS queue).
        let mut other = worker(
            Snapshot::build(
                1,
                vec![lan_port(1500)],
                vec![service(
                    0,
                    VIP_L2,
                    17,
                    0,
                    ForwardMode::L2,
                    (0..5).map(|i| backend(i, i as u8 + 1, 1)).collect(),
                )],
            )
            .unwrap(),
        );
        let b2 = backend_of(&run(&mut other, &f2, 0, 0).1);
        let b1 = backend_of(&run(&mut w, &f1, 0, 0).1);
        assert_eq!(b1, b2, "datagram from {src:?}");
        seen.insert(b1);
    }
    assert!(seen.len() >= 4, "datagrams still spread over backends");
}

#[test]
fn icmp_error_goes_to_the_flows_backend() {
    let mut w = worker(multi(Scheduler::WeightedRoundRobin, &[1, 1, 1, 1]));
    let flow = client_tcp(VIP_L2, 45678, 80, 0x02, b"");
    let owner = backend_of(&run(&mut w, &flow, 0, 0).1);
    // A router tells the VIP that the server's reply (VIP:80 → client:45678) was too big.
    let quoted = Ip::new(6, VIP_L2, CLIENT).bytes(&tcp_seg(VIP_L2, CLIENT, 80, 45678, 0x10, &[0; 100]));
    let mut body = vec![0u8; 0];
    body.extend_from_slice(&quoted[..28]);
    let mut m = icmp_msg(3, 4, &body);
    m[6..8].copy_from_slice(&1400u16.to_be_bytes());
    let c = csum(&{
        let mut z = m.clone();
        z[2] = 0;
        z[3] = 0;
        z
    });
    m[2..4].copy_from_slice(&c.to_be_bytes());
    let err = eth(LB_MAC, ROUTER_MAC, 0x0800, &Ip::new(1, [192, 0, 2, 1], VIP_L2).bytes(&m));
    for _ in 0..5 {
        let (v, out, _) = run(&mut w, &err, 0, 1);
        assert_eq!(v, Verdict::Tx(0));
        assert_eq!(backend_of(&out), owner, "steered by the embedded header, not round robin");
    }
    assert_eq!(w.counters().icmp_errors_steered, 5);
}

#[test]
fn full_table_falls_back_to_stateless_and_never_drops() {
    let mut w = Worker::new(
        WorkerConfig { flow_capacity: 8, ..Default::default() },
        Arc::new(multi(Scheduler::Maglev, &[1, 1, 1])),
    );
    let mut forwarded = 0;
    for i in 0..2000u16 {
        if let Verdict::Tx(_) = run(&mut w, &client_tcp(VIP_L2, i, 80, 2, b""), 0, 0).0 {
            forwarded += 1;
        }
    }
    assert_eq!(forwarded, 2000);
    assert!(w.counters().stateless_fallbacks > 1900, "{}", w.counters().stateless_fallbacks);
    assert_eq!(w.counters().total_drops(), 0);
    assert!(w.flows().len() <= w.flows().slots());
}

#[test]
fn idle_flows_expire_and_fin_shortens_life() {
    let mut s = service(0, VIP_L2, 6, 80, ForwardMode::L2, vec![backend(0, 1, 1)]);
    s.tcp_idle_ms = 5_000;
    s.closing_ms = 1_000;
    let mut w = worker(Snapshot::build(1, vec![lan_port(1500)], vec![s]).unwrap());
    run(&mut w, &client_tcp(VIP_L2, 1, 80, 0x02, b""), 0, 0);
    run(&mut w, &client_tcp(VIP_L2, 1, 80, 0x10, b""), 0, 10); // the handshake's ACK
    run(&mut w, &client_tcp(VIP_L2, 2, 80, 0x02, b""), 0, 0);
    run(&mut w, &client_tcp(VIP_L2, 2, 80, 0x11, b""), 0, 100); // FIN
    assert_eq!(w.flows().len(), 2);
    // The sweep is paced by time: here a pass over the table per 250 ms, a quarter of the
    // 1 s closing timeout.
    (1_200..=2_200).for_each(|t| w.housekeeping(t));
    assert_eq!(w.flows().len(), 1, "the closing flow expired after 1 s");
    // Activity refreshes (less than a whole timeout was left): expires at 4 + 5 + 5/32 s.
    run(&mut w, &client_tcp(VIP_L2, 1, 80, 0x10, b""), 0, 4_000);
    (4_001..=9_155).for_each(|t| w.housekeeping(t));
    assert_eq!(w.flows().len(), 1, "active flow stays until its timeout and 1/32");
    (9_156..=9_500).for_each(|t| w.housekeeping(t));
    assert_eq!(w.flows().len(), 0, "idle flow gone within a sweep period of it");
    assert_eq!(w.counters().expired_by_sweep, 2);
}

#[test]
fn the_sweep_is_paid_in_slices_and_keeps_its_pace() {
    // 65 536 buckets swept per 750 ms (a quarter of the 3 s SYN timeout): 88 a millisecond,
    // more than one call's slice. A caller four times a millisecond pays it in slices; one
    // that comes once a millisecond pays all but the last millisecond's each time.
    for calls_per_ms in [4, 1] {
        let cfg = WorkerConfig { flow_capacity: 1 << 16, ..Default::default() };
        let mut w = Worker::new(cfg, Arc::new(one_arm()));
        for i in 0..50 {
            run(&mut w, &client_tcp(VIP_L2, i, 80, 0x02, b""), 0, 0);
        }
        w.housekeeping(0);
        for ms in 1..3_000 {
            (0..calls_per_ms).for_each(|_| w.housekeeping(ms));
        }
        assert_eq!(w.flows().len(), 50, "nothing expires before the SYN timeout");
        for ms in 3_000..=3_752 {
            (0..calls_per_ms).for_each(|_| w.housekeeping(ms));
        }
        assert_eq!(w.flows().len(), 0, "{calls_per_ms} a ms: swept within a period of the timeout");
        assert_eq!(w.counters().embryonic_expired, 50);
    }
}

#[test]
fn sweep_period_shorter_than_the_floor_is_accepted() {
    // A configured longest period under the 100 ms floor is taken as it is (it once panicked).
    let cfg = WorkerConfig { flow_capacity: 64, sweep_period_ms: 10, ..Default::default() };
    let mut w = Worker::new(cfg, Arc::new(one_arm()));
    run(&mut w, &client_tcp(VIP_L2, 1, 80, 0x02, b""), 0, 0);
    (300_000..300_011).for_each(|t| w.housekeeping(t));
    assert_eq!(w.flows().len(), 0, "the whole table swept within 10 ms of the timeout");
}

#[test]
fn worker_loop_over_memory_queues() {
    use dataplane::io::{poll_once, MemIo, BURST};
    let mut w = worker(one_arm());
    let mut io = MemIo::new(1);
    for i in 0..100 {
        io.push(0, &client_tcp(VIP_L2, i, 80, 2, b""));
    }
    io.push(0, &[0u8; 5]);
    let echo = Ip::new(1, CLIENT, VIP_L2).bytes(&icmp_msg(8, 0, b"x"));
    io.push(0, &eth(LB_MAC, ROUTER_MAC, 0x0800, &echo));
    let mut rx = arrayvec::ArrayVec::<_, BURST>::new();
    let mut total = 0;
    while total < 102 {
        total += poll_once(&mut w, &mut io, &mut rx, 0);
    }
    assert_eq!(io.take_tx(0).len(), 100);
    assert_eq!(io.control.len(), 1);
    assert_eq!(w.counters().dropped(DropReason::TruncatedEthernet), 1);
    assert_eq!(w.counters().rx_packets, 102);
}
