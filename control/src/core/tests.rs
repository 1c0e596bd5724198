//! The control core without DPDK: frames in through an in-memory `Links`, frames and snapshots
//! out, with the real runtime, responder, prober and health machine.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dataplane::snapshot::BackendState;
use dataplane::testkit::{client_tcp_from, csum, eth, tcp_seg, Ip, NoSink};
use dataplane::wire::{arp, ArpRepr, MacAddr};
use dataplane::{Snapshot, VecPacket, Verdict, Worker, WorkerConfig};

use super::mem::MemLinks;
use super::ControlCore;
use crate::config::Config;
use crate::runtime::Runtime;
use crate::view::View;

pub const LB_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xfe]);
pub const SERVER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x11]);
pub const ROUTER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x01]);

/// One service per mode, each with the on-link backend 10.0.0.11 and a TCP check (rise 2).
pub const EVERY_MODE: &str = r#"#![enable(implicit_some)]
(
    ports: [(device: "net_null0", addresses: ["10.0.0.2/24"], gateway: "10.0.0.1")],
    services: [
        (vip: "10.0.0.100", port: 80, mode: l2, health_check: (check: tcp, interval: 0.5, timeout: 0.4),
         backends: [(ip: "10.0.0.11")]),
        (vip: "10.0.0.101", port: 80, mode: ipip, health_check: (check: tcp, interval: 0.5, timeout: 0.4),
         backends: [(ip: "10.0.0.11")]),
        (vip: "10.0.0.102", port: 80, mode: dscp(7), health_check: (check: tcp, interval: 0.5, timeout: 0.4),
         backends: [(ip: "10.0.0.11")]),
    ],
)"#;

pub fn control_core(config: &str, now: Instant) -> ControlCore<MemLinks> {
    let cfg = Config::parse(config).expect("configuration");
    let mut rt = Runtime::new(cfg, vec![LB_MAC]);
    let snap = Arc::new(rt.build_snapshot(now).unwrap());
    ControlCore::new(
        MemLinks::default(),
        rt,
        snap,
        "test.ron".into(),
        Arc::new(Mutex::new(View::default())),
        now,
    )
}

/// An ARP frame from `mac`/`ip` to the LB.
pub fn arp_from(op: u16, mac: MacAddr, ip: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut a = [0u8; arp::LEN];
    ArpRepr { operation: op, sender_mac: mac.0, sender_ip: ip, target_mac: LB_MAC.0, target_ip: target }
        .emit(&mut a);
    eth(if op == arp::OP_REQUEST { [0xff; 6] } else { LB_MAC.0 }, mac.0, 0x0806, &a)
}

/// The control core with 10.0.0.11 resolved; its first probes failed (unresolved), the next
/// are due half a second after the start.
fn resolved(t0: Instant) -> ControlCore<MemLinks> {
    let mut cc = control_core(EVERY_MODE, t0);
    cc.poll(t0); // asks for 10.0.0.11; probes fail at once (unresolved)
    cc.links_mut().punted.push_back((0, arp_from(arp::OP_REPLY, SERVER_MAC, [10, 0, 0, 11], [10, 0, 0, 2])));
    cc.poll(t0 + Duration::from_millis(1)); // learns it, publishes
    cc.links_mut().sent.clear();
    cc
}

#[test]
fn an_arp_reply_resolves_the_backend_and_a_new_snapshot_carries_it() {
    let t0 = Instant::now();
    let mut cc = control_core(EVERY_MODE, t0);
    cc.poll(t0);
    let asked =
        cc.links().sent.iter().filter(|(_, f)| f[12..14] == [0x08, 0x06] && f[38..42] == [10, 0, 0, 11]);
    assert_eq!(asked.count(), 1, "one ARP request for the backend");
    cc.links_mut().punted.push_back((0, arp_from(arp::OP_REPLY, SERVER_MAC, [10, 0, 0, 11], [10, 0, 0, 2])));
    cc.poll(t0 + Duration::from_millis(1));
    let snap = cc.links().published.last().expect("a snapshot was published");
    let f = snap.forward(0, snap.services[0].backends[0].id).unwrap();
    assert_eq!((f.resolved, f.next_hop()), (true, SERVER_MAC.0));
    assert_eq!(snap.services[0].backends[0].state, BackendState::Up, "resolved; at start, up until checked");
    assert!(!snap.settled, "not settled: no check has answered yet");
}

#[test]
fn arp_for_the_vip_is_answered_and_counted() {
    let t0 = Instant::now();
    let mut cc = control_core(EVERY_MODE, t0);
    cc.links_mut()
        .punted
        .push_back((0, arp_from(arp::OP_REQUEST, ROUTER_MAC, [10, 0, 0, 1], [10, 0, 0, 101])));
    cc.poll(t0);
    let replies: Vec<&Vec<u8>> =
        cc.links().sent.iter().map(|(_, f)| f).filter(|f| f[12..14] == [0x08, 0x06] && f[21] == 2).collect();
    assert_eq!(replies.len(), 1);
    assert_eq!(&replies[0][0..6], &ROUTER_MAC.0);
    assert_eq!(&replies[0][28..32], &[10, 0, 0, 101], "10.0.0.101 is at the LB");
    assert_eq!(cc.view().stats.arp_replies_sent, 1);
}

/// The probe's wire bytes and a client packet's rewritten bytes agree, field for field, on
/// everything the mode sets: Ethernet addresses, and the outer header (ipip) or the DSCP and
/// destination (dscp) or the destination alone (l2).
#[test]
fn probes_and_client_packets_agree_on_the_wire_in_every_mode() {
    let t0 = Instant::now();
    let mut cc = resolved(t0);
    cc.poll(t0 + Duration::from_millis(500)); // the next probes (SYNs) go out on the resolved path
    let probes = cc.links().sent.clone();
    let snap = cc.current().clone();
    let mut w = Worker::new(WorkerConfig { flow_capacity: 1024, ..Default::default() }, snap.clone());
    // The workers forward to a backend only once it is up; the probe path does not care.
    let mut up = snap.services.clone();
    for s in &mut up {
        for b in &mut s.backends {
            b.state = BackendState::Up;
        }
    }
    w.install(Arc::new(Snapshot::build(snap.epoch + 1, snap.ports.clone(), up).unwrap()));
    for (vip, mode) in [([10, 0, 0, 100], "l2"), ([10, 0, 0, 101], "ipip"), ([10, 0, 0, 102], "dscp")] {
        let mut pkt = VecPacket::from_bytes(&client_tcp_from([198, 51, 100, 7], vip, 40000, 80));
        assert_eq!(w.process(&mut pkt, 0, 0, &mut NoSink), Verdict::Tx(0), "{mode}");
        let client = dataplane::PacketBuf::data(&pkt).to_vec();
        let probe = probes
            .iter()
            .map(|(_, f)| f)
            .find(|f| match mode {
                "l2" => f[23] == 6 && f[30..34] == vip,
                "ipip" => f[23] == 4 && f[50..54] == vip,
                _ => f[23] == 6 && f[15] >> 2 == 7,
            })
            .unwrap_or_else(|| panic!("{mode}: no probe among {} frames", probes.len()));
        assert_eq!(&probe[0..14], &client[0..14], "{mode}: Ethernet header");
        match mode {
            "l2" => assert_eq!(&probe[30..34], &client[30..34], "l2: destination (the VIP)"),
            "ipip" => {
                assert_eq!(probe[14], client[14], "ipip: outer version and length");
                assert_eq!(probe[22..24], client[22..24], "ipip: outer TTL and protocol");
                assert_eq!(&probe[26..34], &client[26..34], "ipip: outer source and destination");
                assert_eq!(&probe[50..54], &client[50..54], "ipip: inner destination (the VIP)");
            }
            _ => {
                assert_eq!(probe[15] >> 2, client[15] >> 2, "dscp: the code");
                assert_eq!(&probe[30..34], &client[30..34], "dscp: destination (the real IP)");
            }
        }
    }
}

/// A SYN-ACK to the probe's port, from `src`.
fn syn_ack_to(probe: &[u8], src: [u8; 4]) -> Vec<u8> {
    let l3 = 14 + if probe[23] == 4 { 20 } else { 0 };
    let sport = u16::from_be_bytes([probe[l3 + 20], probe[l3 + 21]]);
    let seq = u32::from_be_bytes([probe[l3 + 24], probe[l3 + 25], probe[l3 + 26], probe[l3 + 27]]);
    let mut t = dataplane::testkit::tcp_seg(src, [10, 0, 0, 2], 80, sport, 0x12, b"");
    t[8..12].copy_from_slice(&seq.wrapping_add(1).to_be_bytes());
    let c = {
        t[16..18].fill(0);
        dataplane::testkit::l4_csum(src, [10, 0, 0, 2], 6, &t)
    };
    t[16..18].copy_from_slice(&c.to_be_bytes());
    eth(LB_MAC.0, SERVER_MAC.0, 0x0800, &dataplane::testkit::Ip::new(6, src, [10, 0, 0, 2]).bytes(&t))
}

#[test]
fn a_backend_comes_up_only_on_answers_from_the_vip() {
    let t0 = Instant::now();
    let mut cc = resolved(t0);
    // Two seconds of 5 ms passes; every SYN a probe sends is answered: the l2 and ipip servers
    // from their VIPs, the dscp server from its real IP (as one without its DSCP rule does).
    let syn = |f: &[u8]| (f[23] == 6 || f[23] == 4) && f[14 + if f[23] == 4 { 20 } else { 0 } + 33] == 0x02;
    for k in 0..400 {
        cc.poll(t0 + super::TICK * k);
        let sent = std::mem::take(&mut cc.links_mut().sent);
        for (_, f) in sent.iter().filter(|(_, f)| syn(f)) {
            let from = match (f[23], f[15] >> 2) {
                (4, _) => [10, 0, 0, 101],
                (_, 7) => [10, 0, 0, 11],
                _ => [10, 0, 0, 100],
            };
            cc.links_mut().punted.push_back((0, syn_ack_to(f, from)));
        }
    }
    cc.update_view(t0 + super::TICK * 400);
    let v = cc.view();
    let backend = |svc: &str| v.backends.iter().find(|b| b.service == svc).unwrap().clone();
    assert_eq!(backend("10.0.0.100:80/tcp").state, BackendState::Up, "l2: answered from the VIP");
    assert_eq!(backend("10.0.0.101:80/tcp").state, BackendState::Up, "ipip: answered from the VIP");
    let dscp = backend("10.0.0.102:80/tcp");
    assert_eq!(dscp.state, BackendState::Down, "dscp: answered from the real IP");
    assert!(dscp.last_error.as_deref().unwrap_or("").contains("not from the VIP"), "{:?}", dscp.last_error);
    assert!(dscp.probes >= 3, "probed on its interval: {}", dscp.probes);
}

#[test]
fn forged_arp_moves_no_backend() {
    let t0 = Instant::now();
    let mut cc = resolved(t0);
    let published = cc.links().published.len();
    let attacker = MacAddr([2, 0, 0, 0, 0, 0x66]);
    let backend = [10, 0, 0, 11];
    let mut forged = vec![
        arp_from(arp::OP_REQUEST, attacker, backend, backend), // gratuitous, its own MAC
        arp_from(arp::OP_REPLY, attacker, backend, [10, 0, 0, 2]), // an unsolicited reply
        arp_from(arp::OP_REQUEST, MacAddr::BROADCAST, backend, backend),
    ];
    // A reply with the sender forged (Ethernet source the attacker's).
    let mut f = arp_from(arp::OP_REPLY, SERVER_MAC, backend, [10, 0, 0, 2]);
    f[6..12].copy_from_slice(&attacker.0);
    forged.push(f);
    // Well after our request's answer window: nobody asked.
    for (k, f) in forged.into_iter().enumerate() {
        cc.links_mut().punted.push_back((0, f));
        cc.poll(t0 + Duration::from_millis(3000 + k as u64));
    }
    assert_eq!(cc.links().published.len(), published, "no new snapshot: nothing changed");
    let snap = cc.current();
    for svc in 0..3 {
        let f = snap.forward(svc, snap.services[svc].backends[0].id).unwrap();
        assert_eq!(f.next_hop(), SERVER_MAC.0, "service {svc}: still the server's MAC");
    }
    cc.update_view(t0 + Duration::from_millis(3100));
    let s = cc.view().stats;
    assert_eq!((s.arp_unsolicited, s.arp_rejected, s.arp_changes), (2, 2, 0));
}

/// An echo reply from the VIP to the LB, with this ident and sequence number, from `mac`.
fn echo_reply(ident: u16, seq: u16, mac: MacAddr) -> Vec<u8> {
    let mut m = vec![0, 0, 0, 0];
    m.extend_from_slice(&ident.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(b"dsrlb health probe......");
    let c = dataplane::testkit::csum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    eth(LB_MAC.0, mac.0, 0x0800, &dataplane::testkit::Ip::new(1, [10, 0, 0, 100], [10, 0, 0, 2]).bytes(&m))
}

#[test]
fn forged_probe_replies_keep_no_dead_backend_up() {
    let icmp = EVERY_MODE.replace("check: tcp,", "check: icmp,");
    let t0 = Instant::now();
    let mut cc = control_core(&icmp, t0);
    cc.poll(t0);
    cc.links_mut().punted.push_back((0, arp_from(arp::OP_REPLY, SERVER_MAC, [10, 0, 0, 11], [10, 0, 0, 2])));
    // Three seconds: the server is dead (it never answers). Every 250 ms a forger on the
    // segment sweeps every ident, as the server and as itself, with a sequence number it must
    // guess: none of it may keep the backend up.
    let attacker = MacAddr([2, 0, 0, 0, 0, 0x66]);
    for k in 0..600u32 {
        let now = t0 + super::TICK * k;
        if k % 50 == 25 {
            for ident in 0..=u16::MAX {
                let mac = if ident % 2 == 0 { SERVER_MAC } else { attacker };
                cc.links_mut().punted.push_back((0, echo_reply(ident, 1, mac)));
            }
        }
        // Forged SYN-ACKs from the VIP to every probe port (TCP checks get the same guard).
        while cc.poll(now) {}
    }
    cc.update_view(t0 + super::TICK * 600);
    let v = cc.view();
    let b = v.backends.iter().find(|b| b.service == "10.0.0.100:80/tcp").unwrap();
    assert_eq!(b.state, BackendState::Down, "dead backend kept down: {:?}", b.last_error);
    assert_eq!(b.transitions, 1, "down after its first checks (up at start), never back up");
    assert!(v.stats.probe_replies_forged > 0, "forgeries naming a probe were seen and refused");
    assert_eq!(v.stats.probe_replies, 0);
}

#[test]
fn forged_syn_acks_keep_no_dead_backend_up() {
    let t0 = Instant::now();
    let mut cc = resolved(t0);
    let attacker = MacAddr([2, 0, 0, 0, 0, 0x66]);
    for k in 0..400u32 {
        let now = t0 + Duration::from_millis(500) + super::TICK * k;
        cc.poll(now);
        let sent = std::mem::take(&mut cc.links_mut().sent);
        // The forger sees no probe; it guesses the port (here: right, as if it could) but not
        // the initial sequence number, from the VIP, as the server and as itself.
        for (_, f) in sent.iter().filter(|(_, f)| f[23] == 6 && f[30..34] == [10, 0, 0, 100]) {
            for mac in [SERVER_MAC, attacker] {
                let mut forged = syn_ack_to(f, [10, 0, 0, 100]);
                forged[6..12].copy_from_slice(&mac.0);
                // A guessed acknowledgement number, not the probe's.
                forged[42..46].copy_from_slice(&1001u32.to_be_bytes());
                cc.links_mut().punted.push_back((0, forged));
            }
        }
    }
    cc.update_view(t0 + Duration::from_secs(3));
    let v = cc.view();
    let b = v.backends.iter().find(|b| b.service == "10.0.0.100:80/tcp").unwrap();
    assert_eq!(b.state, BackendState::Down, "{:?}", b.last_error);
    assert_eq!(b.transitions, 1, "down after its first checks (up at start), never back up");
}

#[test]
fn removing_a_check_on_reload_brings_its_failing_backends_back() {
    let dir = std::env::temp_dir().join(format!("dsrlb-core-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("c.ron");
    let icmp = EVERY_MODE.replace("check: tcp,", "check: icmp,");
    std::fs::write(&path, &icmp).unwrap();
    let t0 = Instant::now();
    let mut cc = control_core(&icmp, t0);
    cc.config_path = path.clone();
    cc.poll(t0);
    cc.links_mut().punted.push_back((0, arp_from(arp::OP_REPLY, SERVER_MAC, [10, 0, 0, 11], [10, 0, 0, 2])));
    for k in 1..600 {
        cc.poll(t0 + super::TICK * k); // nobody answers the probes: down after fall
    }
    let state = |cc: &ControlCore<MemLinks>| {
        let snap = cc.current();
        snap.services.iter().map(|s| s.backends[0].state).collect::<Vec<_>>()
    };
    assert_eq!(state(&cc), [BackendState::Down; 3]);
    std::fs::write(
        &path,
        EVERY_MODE.replace(", health_check: (check: tcp, interval: 0.5, timeout: 0.4)", ""),
    )
    .unwrap();
    cc.reload().expect("reload");
    assert_eq!(state(&cc), [BackendState::Up; 3], "nothing checks them any more");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn drain_by_vip_drains_the_backend_in_every_service_of_the_vip() {
    let two = r#"(
    ports: [(device: "net_null0", addresses: ["10.0.0.2/24"])],
    services: [
        (vip: "10.0.0.100", port: 80, mode: l2, backends: [(ip: "10.0.0.11"), (ip: "10.0.0.12")]),
        (vip: "10.0.0.100", port: 5353, protocol: udp, mode: l2, backends: [(ip: "10.0.0.11")]),
        (vip: "10.0.0.101", port: 80, mode: l2, backends: [(ip: "10.0.0.11")]),
    ],
)"#;
    let t0 = Instant::now();
    let mut cc = control_core(two, t0);
    let r = cc
        .handle_ctl(crate::ctl::CtlCommand::Drain {
            service: "10.0.0.100".into(),
            backend: "10.0.0.11".parse().unwrap(),
            drain: true,
        })
        .unwrap();
    assert_eq!(r, "draining 10.0.0.11 of 10.0.0.100:80/tcp, 10.0.0.100:5353/udp");
    let drained: Vec<bool> = cc.rt.backends(t0).iter().map(|b| b.drained).collect();
    assert_eq!(drained, [true, false, true, false], "both services of the VIP, not the other VIP");
    let one = cc.handle_ctl(crate::ctl::CtlCommand::Drain {
        service: "10.0.0.101:80".into(),
        backend: "10.0.0.11".parse().unwrap(),
        drain: true,
    });
    assert_eq!(one.unwrap(), "draining 10.0.0.11 of 10.0.0.101:80/tcp");
}

#[test]
fn a_worker_whose_loop_stops_is_found() {
    let t0 = Instant::now();
    let mut cc = control_core(EVERY_MODE, t0);
    cc.links_mut().heartbeats = vec![1, 1];
    for k in 0..30u64 {
        let now = t0 + Duration::from_millis(100 * k);
        cc.links_mut().heartbeats[0] += 1; // worker 0 keeps going; worker 1 is stuck
        let stalled = cc.stalled_worker(now);
        if now.duration_since(t0) < super::STALL_LIMIT {
            assert_eq!(stalled, None, "at {k}");
        } else {
            assert_eq!(stalled, Some(1), "at {k}");
            return;
        }
    }
    panic!("never found");
}

/// A fleet member: an exception interface on its port (the router a peer), VIPs announced.
const FLEET: &str = r#"#![enable(implicit_some)]
(
    ports: [(device: "net_null0", addresses: ["10.0.0.2/24"], gateway: "10.0.0.1",
             exception: (device: "net_tap1,iface=dsrlb0", peers: ["10.0.0.1"]))],
    announce: (table: 100, drain_time: 2.0),
    services: [
        (vip: "10.20.0.100", port: 80, mode: l2, backends: [(ip: "10.0.0.11")]),
        (vip: "10.20.0.101", port: 80, mode: ipip, backends: [(ip: "10.0.0.12")]),
    ],
)"#;

fn from_router(proto: u8, dst: [u8; 4], l4: &[u8]) -> Vec<u8> {
    eth(LB_MAC.0, ROUTER_MAC.0, 0x0800, &Ip::new(proto, [10, 0, 0, 1], dst).bytes(l4))
}

#[test]
fn the_kernel_gets_what_dsrlb_does_not_answer_and_its_frames_leave_on_the_port() {
    let t0 = Instant::now();
    let mut cc = control_core(FLEET, t0);
    cc.links_mut().exception_ports = vec![0];
    cc.poll(t0);
    cc.links_mut().sent.clear();
    // BGP from the router to the LB's address: the kernel's (BIRD's).
    let bgp = from_router(6, [10, 0, 0, 2], &tcp_seg([10, 0, 0, 1], [10, 0, 0, 2], 40000, 179, 0x02, b""));
    // An echo request: dsrlb answers it itself.
    let mut echo = vec![8, 0, 0, 0, 0, 1, 0, 1];
    let c = csum(&echo);
    echo[2..4].copy_from_slice(&c.to_be_bytes());
    let ping = from_router(1, [10, 0, 0, 2], &echo);
    // The router's ARP answer: dsrlb learns it, and so does the kernel behind the interface.
    let arp = arp_from(arp::OP_REPLY, ROUTER_MAC, [10, 0, 0, 1], [10, 0, 0, 2]);
    // A question (dsrlb's to answer), and an answer to someone else: not the kernel's.
    let question = arp_from(arp::OP_REQUEST, ROUTER_MAC, [10, 0, 0, 1], [10, 0, 0, 2]);
    let elsewhere = arp_from(arp::OP_REPLY, ROUTER_MAC, [10, 0, 0, 1], [10, 0, 0, 66]);
    // BGP from anyone but the router itself is refused.
    let stranger = eth(
        LB_MAC.0,
        [2, 0, 0, 0, 0x66, 0x66],
        0x0800,
        &Ip::new(6, [10, 0, 0, 1], [10, 0, 0, 2]).bytes(&tcp_seg(
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            40000,
            179,
            0x02,
            b"",
        )),
    );
    // SSH from a management host is the kernel's (its firewall's) to judge.
    let ssh = eth(
        LB_MAC.0,
        [2, 0, 0, 0, 0x66, 0x66],
        0x0800,
        &Ip::new(6, [10, 0, 0, 66], [10, 0, 0, 2]).bytes(&tcp_seg(
            [10, 0, 0, 66],
            [10, 0, 0, 2],
            40000,
            22,
            0x02,
            b"",
        )),
    );
    for f in [&arp, &bgp, &ping, &question, &elsewhere, &stranger, &ssh] {
        cc.links_mut().punted.push_back((0, f.clone()));
    }
    // What BIRD sends (its SYN-ACK) leaves on the data port as it is.
    let answer = eth(ROUTER_MAC.0, LB_MAC.0, 0x0800, &[0x45; 40]);
    cc.links_mut().from_kernel.push_back((0, answer.clone()));
    cc.poll(t0 + Duration::from_millis(1));
    let to_kernel: Vec<&Vec<u8>> = cc.links().to_kernel.iter().map(|(_, f)| f).collect();
    assert_eq!(to_kernel, vec![&arp, &bgp, &ssh], "the ARP answer, the router's BGP and SSH; nothing else");
    let sent = &cc.links().sent;
    assert!(sent.iter().any(|(p, f)| *p == 0 && *f == answer), "the kernel's frame left on port 0");
    assert!(sent.iter().any(|(_, f)| f.len() > 34 && f[34] == 0), "the echo request answered by dsrlb");
    let c = cc.counters;
    assert_eq!((c.to_kernel, c.from_kernel, c.to_kernel_refused), (3, 1, 1));
}

#[test]
fn the_router_is_a_peer_only_with_its_own_mac_once_resolved() {
    let t0 = Instant::now();
    let mut cc = control_core(FLEET, t0);
    cc.poll(t0);
    assert!(cc.current().ports[0].peers.is_empty(), "not before its MAC is known");
    cc.links_mut().punted.push_back((0, arp_from(arp::OP_REPLY, ROUTER_MAC, [10, 0, 0, 1], [10, 0, 0, 2])));
    cc.poll(t0 + Duration::from_millis(1));
    let snap = cc.current().clone();
    assert!(snap.is_peer(0, [10, 0, 0, 1].into(), ROUTER_MAC.0));
    assert!(!snap.is_peer(0, [10, 0, 0, 1].into(), SERVER_MAC.0), "the address alone is not enough");
    assert!(!snap.is_peer(0, [10, 0, 0, 66].into(), ROUTER_MAC.0));
}

#[test]
fn vips_are_announced_once_settled_with_a_backend_up_and_withdrawn_for_a_drain() {
    let t0 = Instant::now();
    let mut cc = control_core(FLEET, t0);
    cc.poll(t0);
    assert!(cc.wanted_vips(t0).is_empty(), "nothing before the start has settled");
    // 10.0.0.11 answers; 10.0.0.12 never does: only the first VIP can be served.
    cc.links_mut().punted.push_back((0, arp_from(arp::OP_REPLY, SERVER_MAC, [10, 0, 0, 11], [10, 0, 0, 2])));
    let t1 = t0 + Duration::from_millis(1);
    cc.poll(t1);
    assert!(cc.wanted_vips(t1).is_empty(), "still settling: 10.0.0.12 is not resolved yet");
    let later = t0 + Duration::from_secs(5);
    cc.poll(later);
    let want: Vec<std::net::IpAddr> = cc.wanted_vips(later).into_iter().collect();
    assert_eq!(want, vec![std::net::IpAddr::from([10, 20, 0, 100])]);
    // Draining the only backend of a VIP withdraws it.
    cc.handle_ctl(crate::ctl::CtlCommand::Drain {
        service: "10.20.0.100:80/tcp".into(),
        backend: "10.0.0.11".parse().unwrap(),
        drain: true,
    })
    .unwrap();
    cc.poll(later + Duration::from_millis(1));
    assert!(cc.wanted_vips(later + Duration::from_millis(1)).is_empty());
    cc.handle_ctl(crate::ctl::CtlCommand::Drain {
        service: "10.20.0.100:80/tcp".into(),
        backend: "10.0.0.11".parse().unwrap(),
        drain: false,
    })
    .unwrap();
    let t2 = later + Duration::from_millis(2);
    cc.poll(t2);
    assert_eq!(cc.wanted_vips(t2).len(), 1);
    // The instance drains: every VIP withdrawn at once, stopped after the drain time.
    cc.drain_instance(t2);
    assert!(cc.wanted_vips(t2).is_empty());
    assert!(!cc.drained(t2 + Duration::from_millis(1999)));
    assert!(cc.drained(t2 + Duration::from_secs(2)));
}
