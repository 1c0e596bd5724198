//! Fuzz the burst pipeline: arbitrary bytes as frames on arbitrary ports, through a worker with a
//! configuration that has every mode, persistence, an every-port service, inline ports and a
//! tiny flow table (so the full-table path runs too). It must never panic, and every packet must
//! be accounted for: forwarded + to control + dropped = received.
#![no_main]

use std::net::Ipv4Addr;
use std::sync::Arc;

use dataplane::snapshot::*;
use dataplane::{PacketSink, Snapshot, VecPacket, Verdict, Worker, WorkerConfig};
use libfuzzer_sys::fuzz_target;

struct Sink(usize);

impl PacketSink<VecPacket> for Sink {
    fn alloc(&mut self) -> Option<VecPacket> {
        (self.0 > 0).then(|| {
            self.0 -= 1;
            VecPacket::new()
        })
    }
    fn emit(&mut self, _: u16, _: VecPacket) {}
}

fn snapshot() -> Snapshot {
    let port = |mac: u8, addr: [u8; 4], role| PortInfo {
        mac: [2, 0, 0, 0, 0, mac],
        addrs: vec![Ipv4Addr::from(addr)],
        mtu: 1500,
        role,
        gateway_mac: Some([2, 0, 0, 0, 9, 9]),
    };
    let backends = |first: u32| -> Vec<BackendInfo> {
        (0..3)
            .map(|i| BackendInfo {
                id: first + i,
                real_ip: Ipv4Addr::new(10, 1, 0, 10 + i as u8),
                weight: 1 + i,
                state: if i == 2 { BackendState::Draining } else { BackendState::Up },
                port: 1,
                next_hop_mac: Some([2, 0, 0, 1, 0, i as u8]),
            })
            .collect()
    };
    let svc = |id: u16, vip: [u8; 4], proto, port, mode, scheduler, persistence| ServiceInfo {
        id,
        vip: Ipv4Addr::from(vip),
        proto,
        port,
        mode,
        scheduler,
        persistence,
        tcp_idle_ms: 1000,
        udp_idle_ms: 500,
        closing_ms: 100,
        backends: backends(id as u32 * 3),
        maglev_size: 251,
    };
    let persist = Some(Persistence { by: PersistBy::SourceIp, timeout_ms: 1000 });
    Snapshot::build(
        1,
        vec![port(1, [10, 0, 0, 2], PortRole::Client), port(2, [10, 1, 0, 1], PortRole::Server)],
        vec![
            svc(0, [10, 0, 0, 100], 6, 80, ForwardMode::L2, Scheduler::Maglev, None),
            svc(1, [10, 0, 0, 101], 6, 80, ForwardMode::Ipip, Scheduler::WeightedRoundRobin, None),
            svc(2, [10, 0, 0, 102], 17, 0, ForwardMode::Dscp(7), Scheduler::LeastConnections, persist),
            svc(3, [10, 0, 0, 102], 6, 443, ForwardMode::Dscp(7), Scheduler::SourceIpHash, None),
        ],
    )
    .expect("snapshot")
}

fuzz_target!(|data: &[u8]| {
    // The snapshot (Maglev tables and all) is built once; each input gets a fresh worker.
    static SNAPSHOT: std::sync::OnceLock<Arc<Snapshot>> = std::sync::OnceLock::new();
    let snap = SNAPSHOT.get_or_init(|| Arc::new(snapshot())).clone();
    let mut w = Worker::new(WorkerConfig { flow_capacity: 16, persistence_capacity: 16, ..Default::default() }, snap);
    // Frames: [port byte][len byte][len bytes]..., with a clock that moves.
    let mut i = 0;
    let mut now = 0u32;
    let mut sink = Sink(8);
    while i + 2 <= data.len() {
        let port = (data[i] & 1) as u16;
        let len = data[i + 1] as usize * 8;
        let frame = &data[i + 2..(i + 2 + len).min(data.len())];
        i += 2 + len;
        let mut p = VecPacket::from_bytes(frame);
        let v = w.process(&mut p, port, now, &mut sink);
        if let Verdict::Tx(port) = v {
            assert!(port < 2);
        }
        now = now.wrapping_add(data[i.min(data.len() - 1)] as u32 * 7);
        w.housekeeping(now);
    }
    let c = w.counters();
    assert_eq!(c.forwarded + c.to_control + c.total_drops(), c.rx_packets);
});
