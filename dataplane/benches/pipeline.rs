//! Dataplane micro-benchmark (not a test): ns/packet of the real pipeline for each mode with 1,
//! 10 000 and 1 000 000 active flows, new flows per second into a full table, Maglev build time,
//! bytes per flow, and the machine's cost of a random prefetched cache line. One core, no DPDK:
//! packets come from memory.
//!
//!     cargo bench -p dataplane --bench pipeline            (full run)
//!     cargo bench -p dataplane --bench pipeline -- --quick (smoke run, as in CI)

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use dataplane::io::BURST;
use dataplane::maglev::{MaglevBackend, MaglevTable, DEFAULT_SIZE};
use dataplane::snapshot::*;
use dataplane::testkit::v6::{bench_snapshot6, BENCH_VIPS6};
use dataplane::testkit::{bench_snapshot, sized_tcp, NoSink, BENCH_VIPS};
use dataplane::{PacketBuf, Snapshot, VecPacket, Verdict, Worker, WorkerConfig};

const VIPS: [([u8; 4], ForwardMode, &str); 3] = BENCH_VIPS;

/// The cases: each IPv4 mode (`VIPS`), then each IPv6 mode (`BENCH_VIPS6`).
fn mode_names() -> Vec<&'static str> {
    VIPS.iter().map(|v| v.2).chain(BENCH_VIPS6.iter().map(|v| v.2)).collect()
}

fn snapshot(backends: u32) -> Snapshot {
    bench_snapshot(backends)
}

/// Where a case's flows differ: the client address's last four bytes, and the source port.
struct Template {
    frame: Vec<u8>,
    addr_at: usize,
    port_at: usize,
}

fn template(mode: usize, size: usize) -> (Template, Snapshot) {
    if mode < VIPS.len() {
        (Template { frame: frame(VIPS[mode].0, 0, size), addr_at: 26, port_at: 34 }, snapshot(16))
    } else {
        let vip = BENCH_VIPS6[mode - VIPS.len()].0;
        let client = [0x20, 1, 0xd, 0xb8, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let f = dataplane::testkit::v6::sized_tcp(client, 1024, vip, 80, size, false);
        (Template { frame: f, addr_at: 34, port_at: 54 }, bench_snapshot6(16))
    }
}

/// A 64-byte (or `size`-byte) TCP frame from flow `i` to `vip`:80.
fn frame(vip: [u8; 4], i: u32, size: usize) -> Vec<u8> {
    sized_tcp(
        [100, (i >> 16) as u8, (i >> 8) as u8, i as u8],
        1024 + (i % 60000) as u16,
        vip,
        80,
        size,
        false,
    )
}

/// A fixed pseudo-random visiting order, so large flow counts miss the caches as real traffic does.
fn order(n: usize) -> Vec<u32> {
    let mut v: Vec<u32> = (0..n as u32).collect();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

/// Timed segments per case: the figure is their median, so a neighbour's burst of activity on a
/// shared machine spoils a segment or two instead of the whole figure (min and max are shown).
const SEGMENTS: usize = 9;

/// One case's figures, in ns/packet.
struct Timing {
    median: f64,
    min: f64,
    max: f64,
    /// The benchmark's own refill of the burst, alone (included in the others).
    copy: f64,
}

fn ns_per_packet(mode: usize, flows: usize, size: usize, packets: usize) -> Timing {
    let (tpl, snap) = template(mode, size);
    let cfg = WorkerConfig {
        flow_capacity: flows.max(1024),
        flow6_capacity: flows.max(1024),
        ..Default::default()
    };
    let mut w = Worker::new(cfg, Arc::new(snap));
    // One cached template; each packet gets its flow's source address and port written in, as a
    // NIC writes fresh packets into hot buffers (reading a 1M-entry template array instead would
    // add a cache miss per packet that the real dataplane never has).
    let (template, addr_at, port_at) = (tpl.frame, tpl.addr_at, tpl.port_at);
    let ord = order(flows);
    let mut burst: Vec<VecPacket> = (0..BURST).map(|_| VecPacket::new()).collect();
    let mut verdicts = [Verdict::Tx(0); BURST];
    let bursts = packets / BURST;
    let mut next = 0usize;
    let mut refill = |burst: &mut [VecPacket]| {
        for p in burst.iter_mut() {
            p.reset_from(&template);
            let i = ord[next % flows];
            let d = p.data_mut();
            d[addr_at..addr_at + 4].copy_from_slice(&[100, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
            d[port_at..port_at + 2].copy_from_slice(&(1024 + (i % 60000) as u16).to_be_bytes());
            next += 1;
        }
    };
    // Warm-up: every flow enters the table.
    for _ in 0..flows.div_ceil(BURST) {
        refill(&mut burst);
        w.process_burst(&mut burst, 0, 0, &mut verdicts, &mut NoSink);
    }
    // The refill alone, to say how much of the figure is the benchmark's own copying.
    let t = Instant::now();
    for _ in 0..bursts {
        refill(&mut burst);
        black_box(burst[0].data()[0]);
    }
    let copy_ns = t.elapsed().as_nanos() as f64 / (bursts * BURST) as f64;
    let per_segment = bursts.div_ceil(SEGMENTS);
    let mut ok = 0usize;
    let mut segments: Vec<f64> = (0..SEGMENTS)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_segment {
                refill(&mut burst);
                w.process_burst(&mut burst, 0, 1, &mut verdicts, &mut NoSink);
                ok += verdicts.iter().filter(|v| matches!(v, Verdict::Tx(_))).count();
            }
            t.elapsed().as_nanos() as f64 / (per_segment * BURST) as f64
        })
        .collect();
    assert_eq!(ok, SEGMENTS * per_segment * BURST, "every packet forwarded");
    segments.sort_by(f64::total_cmp);
    Timing { median: segments[SEGMENTS / 2], min: segments[0], max: segments[SEGMENTS - 1], copy: copy_ns }
}

/// The longest `housekeeping` call in each millisecond, in µs (the median over two seconds of
/// milliseconds, and the largest), with the appliance's default table sizes holding `flows`
/// flows and 32 calls a millisecond (a busy worker makes far more): what the packets behind one
/// loop pass wait for the background sweep.
fn sweep_stall_us(flows: u32) -> (f64, f64) {
    let mut w = Worker::new(WorkerConfig::default(), Arc::new(snapshot(16)));
    let mut pkt = VecPacket::new();
    for i in 0..flows {
        pkt.reset_from(&frame(VIPS[0].0, i, 64));
        w.process(&mut pkt, 0, 0, &mut NoSink);
    }
    w.housekeeping(0);
    let mut longest: Vec<f64> = (1..=2000)
        .map(|now| {
            (0..32)
                .map(|_| {
                    let t = Instant::now();
                    w.housekeeping(now);
                    t.elapsed().as_nanos() as f64 / 1e3
                })
                .fold(0.0, f64::max)
        })
        .collect();
    longest.sort_by(f64::total_cmp);
    (longest[longest.len() / 2], longest[longest.len() - 1])
}

fn new_flows_per_sec(n: usize, expired: bool) -> f64 {
    let snap = Arc::new(snapshot(16));
    let cap = 1 << 16;
    let mut w = Worker::new(WorkerConfig { flow_capacity: cap, ..Default::default() }, snap);
    let vip = VIPS[0].0;
    let mut pkt = VecPacket::new();
    // Fill the table (every slot of every bucket), at time 0 with a 300 s timeout.
    for i in 0..w.flows().slots() as u32 {
        pkt.reset_from(&frame(vip, i, 64));
        w.process(&mut pkt, 0, 0, &mut NoSink);
    }
    let now = if expired { 400_000 } else { 1 };
    let base = frame(vip, 0, 64);
    let t = Instant::now();
    for i in 0..n as u32 {
        pkt.reset_from(&base);
        // A new 5-tuple every packet (SYN-flood-like): vary source address and port.
        let d = pkt.data_mut();
        d[26..30].copy_from_slice(&(0xc000_0000u32 + i).to_be_bytes());
        d[34..36].copy_from_slice(&((i % 60000) as u16 + 1024).to_be_bytes());
        black_box(w.process(&mut pkt, 0, now, &mut NoSink));
    }
    n as f64 / t.elapsed().as_secs_f64()
}

/// The machine's own cost of one random cache line from a table of `mib` MiB, with each read
/// prefetched 16 reads ahead and no other work: the floor under the pipeline's per-flow miss.
fn random_line_ns(mib: usize) -> f64 {
    let lines = mib << 14; // 64-byte lines per MiB
    let table = vec![[1u64; 8]; lines];
    let reads = 10_000_000usize;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let order: Vec<u32> = (0..reads)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % lines as u64) as u32
        })
        .collect();
    let mut sum = 0u64;
    let t = Instant::now();
    for (i, &line) in order.iter().enumerate() {
        if let Some(&ahead) = order.get(i + 16) {
            mem_prefetch::prefetch_read_data::<_, 3>(&table[ahead as usize]);
        }
        sum = sum.wrapping_add(table[line as usize][0]);
    }
    let ns = t.elapsed().as_nanos() as f64 / reads as f64;
    black_box(sum);
    ns
}

fn maglev_build_ms(n: u32) -> f64 {
    let b: Vec<MaglevBackend> =
        (0..n).map(|i| MaglevBackend { id: i, seed: 0x0a01_0000 + i as u64, weight: 1 + i % 3 }).collect();
    let reps = 5;
    let t = Instant::now();
    for _ in 0..reps {
        black_box(MaglevTable::build(&b, DEFAULT_SIZE));
    }
    t.elapsed().as_secs_f64() * 1000.0 / reps as f64
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // `--profile [FLOWS [PACKETS [MODE]]]`: one 64-byte case only (l2 unless MODE says), for
    // callgrind or perf.
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--profile") {
        let num = |i: usize, default: usize| args.get(at + i).and_then(|a| a.parse().ok()).unwrap_or(default);
        let (flows, packets) = (num(1, 1), num(2, 320_000));
        let mode = args.get(at + 3).and_then(|m| mode_names().iter().position(|v| v == m)).unwrap_or(0);
        let t = ns_per_packet(mode, flows, 64, packets);
        println!(
            "{} {flows} flows 64 B: {:.1} ns/packet (median of {SEGMENTS}; min {:.1}, max {:.1})",
            mode_names()[mode],
            t.median,
            t.min,
            t.max
        );
        return;
    }
    let (flow_counts, packets): (&[usize], usize) =
        if quick { (&[1, 10_000], 200_000) } else { (&[1, 10_000, 1_000_000], 5_000_000) };
    println!("dataplane pipeline, one core, packets from memory");
    println!(
        "(ns/packet: median of {SEGMENTS} timed segments, their min and max; the refill copy alone apart)"
    );
    println!(
        "{:<8} {:>10} {:>6} {:>12} {:>10} {:>8} {:>8} {:>8}",
        "mode", "flows", "bytes", "ns/packet", "Mpps", "min", "max", "copy ns"
    );
    for (m, name) in mode_names().into_iter().enumerate() {
        for &flows in flow_counts {
            for size in [64usize, 1500] {
                let t = ns_per_packet(m, flows, size, packets);
                println!(
                    "{:<8} {:>10} {:>6} {:>12.1} {:>10.2} {:>8.1} {:>8.1} {:>8.1}",
                    name,
                    flows,
                    size,
                    t.median,
                    1e3 / t.median,
                    t.min,
                    t.max,
                    t.copy
                );
            }
        }
    }
    let n = if quick { 100_000 } else { 2_000_000 };
    println!(
        "new flows/s into a full table, live entries (stateless fallback): {:.2} M",
        new_flows_per_sec(n, false) / 1e6
    );
    println!(
        "new flows/s into a full table, expired entries (reclaimed):        {:.2} M",
        new_flows_per_sec(n, true) / 1e6
    );
    for flows in [1, 100_000] {
        let (median, max) = sweep_stall_us(flows);
        println!(
            "longest housekeeping call a millisecond, default tables, {flows} flows: {median:.2} µs (largest {max:.1})"
        );
    }
    for b in [10, 100, 1000] {
        println!("maglev build, {b:>4} backends, M={DEFAULT_SIZE}: {:.2} ms", maglev_build_ms(b));
    }
    if !quick {
        println!("random cache line, prefetched, no other work: {:.1} ns in 64 MiB", random_line_ns(64));
    }
    let w = Worker::new(
        WorkerConfig { flow_capacity: 1 << 20, flow6_capacity: 1 << 20, ..Default::default() },
        Arc::new(snapshot(1)),
    );
    println!(
        "flow table, IPv4: {} flows in {} MiB = {} bytes per flow",
        w.flows().capacity(),
        w.flows().memory_bytes() >> 20,
        w.flows().memory_bytes() / w.flows().capacity()
    );
    println!(
        "flow table, IPv6: {} flows in {} MiB = {} bytes per flow",
        w.flows6().capacity(),
        w.flows6().memory_bytes() >> 20,
        w.flows6().memory_bytes() / w.flows6().capacity()
    );
}
