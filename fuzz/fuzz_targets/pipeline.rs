//! Fuzz the burst pipeline: arbitrary bytes as frames on arbitrary ports, through a worker with a
//! configuration that has every mode, persistence, an every-port service, inline ports and a
//! tiny flow table (so the full-table path runs too). It must never panic, and every packet must
//! be accounted for: forwarded + to control + dropped + answered = received.
#![no_main]

use std::sync::Arc;

use dataplane::testkit::{every_feature, CountedSink};
use dataplane::{Snapshot, VecPacket, Verdict, Worker, WorkerConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The snapshot (Maglev tables and all) is built once; each input gets a fresh worker.
    static SNAPSHOT: std::sync::OnceLock<Arc<Snapshot>> = std::sync::OnceLock::new();
    let snap = SNAPSHOT.get_or_init(|| Arc::new(every_feature())).clone();
    let mut w =
        Worker::new(
        WorkerConfig { flow_capacity: 16, flow6_capacity: 16, persistence_capacity: 16, ..Default::default() },
        snap,
    );
    // Frames: [port byte][len byte][len bytes]..., with a clock that moves.
    let mut i = 0;
    let mut now = 0u32;
    let mut sink = CountedSink(8);
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
    assert_eq!(c.accounted(), c.rx_packets);
});
