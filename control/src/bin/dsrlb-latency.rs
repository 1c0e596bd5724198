//! How long a packet spends in dsrlb: the production worker loop (`worker::run`, idle sleep and
//! all) on lcore 1 polls a one-arm port whose queues are DPDK rings; lcore 0 plays the network.
//! It stamps each packet with the TSC as it puts it on the port's receive ring, at a paced rate,
//! and reads the stamp back when the packet comes out of the transmit ring, rewritten for its
//! backend. What it prints is the time from "arrived at the NIC's queue" to "handed to the NIC
//! for transmission": waiting for the worker to poll (or wake), the pipeline, and the TX burst.
//!
//!     dsrlb-latency [--mode l2|ipip|dscp] [--rate PPS] [--seconds S] [--idle-sleep-us N]
//!                   [--flows N] [--json] [--file-prefix P]
//!
//! Run by `scripts/latency.sh`, which sweeps load and idle sleep (docs/performance.md).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Parser;
use control::worker::{self, DpdkIo, Rings, WorkerSetup};
use dataplane::testkit::{bench_snapshot, sized_tcp, BENCH_VIPS};
use dataplane::WorkerConfig;
use dpdk_bindings::{Burst, Eal, Mempool, Port, PortConfig, Ring};

#[derive(Parser)]
#[command(about = "Time packets spend in dsrlb's worker loop, at a paced rate, by percentile")]
struct Args {
    /// DSR mode of the service the packets go to.
    #[arg(long, default_value = "l2", value_parser = ["l2", "ipip", "dscp"])]
    mode: String,
    /// Packets per second offered (paced by the TSC, one packet at a time).
    #[arg(long, default_value_t = 100_000)]
    rate: u64,
    /// Seconds measured (after one second of warm-up).
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// The worker's `worker_idle_sleep_us`: 0 busy-polls.
    #[arg(long, default_value_t = 0)]
    idle_sleep_us: u64,
    /// Distinct flows the packets cycle through.
    #[arg(long, default_value_t = 1000)]
    flows: u32,
    /// IPv4 flow table capacity (`flow_table_size`; the configuration's default).
    #[arg(long, default_value_t = 1 << 20)]
    flow_table_size: usize,
    /// Print one JSON object instead of a line of text.
    #[arg(long)]
    json: bool,
    /// EAL's file prefix (its runtime directory under /var/run/dpdk).
    #[arg(long, default_value = "dsrlb-latency")]
    file_prefix: String,
}

/// Slots of each ring: what a NIC's RX and TX descriptor rings commonly hold.
const RING_SLOTS: u32 = 1024;
/// The stamp sits in the frame's last 8 bytes: inside the TCP payload, which no mode changes and
/// which encapsulation moves only from the front.
const STAMP: usize = 8;

fn main() {
    let args = Args::parse();
    let eal_args = [
        "dsrlb-latency".to_string(),
        "-l".into(),
        "0-1".into(),
        "--no-huge".into(),
        "-m".into(),
        "512".into(),
        "--no-pci".into(),
        "--no-shconf".into(),
        "--file-prefix".into(),
        args.file_prefix.clone(),
        "--log-level".into(),
        "lib.eal:error".into(),
    ];
    let eal = Eal::init(eal_args).expect("EAL init");
    let lcore = *eal.worker_lcores().first().expect("needs a worker lcore (-l 0-1)");
    let pool =
        Arc::new(Mempool::new("lat_pool", 16383, 256, Mempool::default_data_room(), None).expect("pool"));
    let rx: &'static Ring = Box::leak(Box::new(Ring::new("lat_rx", RING_SLOTS).expect("ring")));
    let tx: &'static Ring = Box::leak(Box::new(Ring::new("lat_tx", RING_SLOTS).expect("ring")));
    let id = Ring::port("lat_port", rx, tx).expect("ring port");
    let port = Port::start(id, &PortConfig::default(), pool.clone()).expect("start port");

    // One-arm: the worker sends each packet back out of the port it came in on, to the backend.
    let vip = BENCH_VIPS.iter().find(|v| v.2 == args.mode).expect("mode").0;
    let templates: Vec<Vec<u8>> = (0..args.flows.max(1))
        .map(|i| sized_tcp([100, 64, (i >> 8) as u8, i as u8], 1024 + (i % 60000) as u16, vip, 80, 64, false))
        .collect();
    let rings = Rings::new();
    let stop = Arc::new(AtomicBool::new(false));
    let setup = WorkerSetup {
        index: 0,
        // The appliance's default table sizes, on huge pages as it asks: the background sweep
        // reads the whole table over time, and what a packet waits behind it grows with the
        // table, not with the flows (a 64 Ki-flow table here once hid most of it).
        config: WorkerConfig {
            flow_capacity: args.flow_table_size,
            memory_advice: Some(dpdk_bindings::advise_huge_pages),
            ..WorkerConfig::default()
        },
        snapshot: Arc::new(bench_snapshot(16)),
        io: DpdkIo::new(
            vec![port.rx_queue(0).expect("rx queue")],
            vec![port.tx_queue(0).expect("tx queue")],
            pool.clone(),
            rings.clone(),
            Arc::new(control::capture::Tap::new(vec![rings.heartbeat.clone()])),
        ),
        rings,
        stop: stop.clone(),
        idle_sleep_us: args.idle_sleep_us,
    };
    // The worker thread's id, for its CPU time (/proc/self/task/TID/schedstat).
    let worker_tid = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let tid_slot = worker_tid.clone();
    let job = eal
        .launch(lcore, move || {
            let tid = std::fs::read_link("/proc/thread-self")
                .ok()
                .and_then(|p| p.file_name().and_then(|n| n.to_str()?.parse().ok()))
                .unwrap_or(0);
            tid_slot.store(tid, Ordering::Relaxed);
            worker::run(setup)
        })
        .expect("launch worker");

    let hz = dpdk_bindings::tsc_hz();
    let period = (hz / args.rate.max(1)).max(1);
    let warmup_end = dpdk_bindings::tsc() + hz;
    let end = warmup_end + args.seconds * hz;
    let mut samples: Vec<u64> = Vec::with_capacity((args.rate * args.seconds + 1024) as usize);
    let (mut sent, mut received, mut refused, mut i) = (0u64, 0u64, 0u64, 0usize);
    let (mut out, mut back) = (Burst::new(), Burst::new());
    let mut next = dpdk_bindings::tsc();
    let mut cpu_start: Option<(u64, std::time::Instant)> = None;
    loop {
        let now = dpdk_bindings::tsc();
        if now >= end {
            break;
        }
        if cpu_start.is_none() && now >= warmup_end {
            cpu_start = Some((cpu_ns(worker_tid.load(Ordering::Relaxed)), std::time::Instant::now()));
        }
        if now >= next {
            // One packet per period: a NIC's queue receives them one by one at this rate. When
            // the loop falls behind, it sends what it owes at once rather than skew the rate.
            while next <= now && !out.is_full() {
                let Some(mut m) = pool.alloc() else { break };
                let t = &templates[i % templates.len()];
                i += 1;
                if m.append(t.len()) {
                    let d = m.data_mut();
                    d.copy_from_slice(t);
                    let n = d.len();
                    d[n - STAMP..].copy_from_slice(&dpdk_bindings::tsc().to_le_bytes());
                    let _ = out.push(m);
                }
                next += period;
            }
            let k = out.len();
            rx.enqueue(&mut out);
            refused += out.len() as u64;
            sent += (k - out.len()) as u64;
            out.clear();
        }
        while tx.dequeue(&mut back) > 0 {
            let t = dpdk_bindings::tsc();
            for m in back.drain() {
                let d = m.data();
                if d.len() >= STAMP {
                    let stamp = u64::from_le_bytes(d[d.len() - STAMP..].try_into().expect("8 bytes"));
                    received += 1;
                    if stamp >= warmup_end && samples.len() < samples.capacity() {
                        samples.push(t.saturating_sub(stamp));
                    }
                }
            }
        }
    }
    // The share of one core the worker used over the measured seconds.
    let cpu = cpu_start.map_or(0.0, |(ns, t)| {
        let used = cpu_ns(worker_tid.load(Ordering::Relaxed)).saturating_sub(ns);
        100.0 * used as f64 / t.elapsed().as_nanos().max(1) as f64
    });
    stop.store(true, Ordering::Relaxed);
    job.join();
    report(&args, &mut samples, hz, (sent, received, refused), cpu);
}

/// Nanoseconds thread `tid` of this process has run (the kernel's schedstat), 0 if unknown.
fn cpu_ns(tid: u64) -> u64 {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn report(args: &Args, samples: &mut [u64], hz: u64, (sent, received, refused): (u64, u64, u64), cpu: f64) {
    samples.sort_unstable();
    let ns = |q: f64| -> f64 {
        if samples.is_empty() {
            return 0.0;
        }
        let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i] as f64 * 1e9 / hz as f64
    };
    let (p50, p99, p999, max) = (ns(0.5), ns(0.99), ns(0.999), ns(1.0));
    if args.json {
        println!(
            "{{\"mode\":\"{}\",\"rate\":{},\"idle_sleep_us\":{},\"samples\":{},\"sent\":{},\"received\":{},\"refused\":{},\"p50_ns\":{:.0},\"p99_ns\":{:.0},\"p999_ns\":{:.0},\"max_ns\":{:.0},\"worker_cpu_pct\":{:.1}}}",
            args.mode, args.rate, args.idle_sleep_us, samples.len(), sent, received, refused, p50, p99, p999, max, cpu
        );
    } else {
        println!(
            "{} at {} pps, idle sleep {} µs: p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs ({} samples; sent {}, received {}, ring full {}; worker {:.0} % of a core)",
            args.mode,
            args.rate,
            args.idle_sleep_us,
            p50 / 1e3,
            p99 / 1e3,
            p999 / 1e3,
            max / 1e3,
            samples.len(),
            sent,
            received,
            refused,
            cpu
        );
    }
}
