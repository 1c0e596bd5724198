//! The smallest forwarding loop the safe layer allows: RX a burst on port 0, TX it on port 1, on
//! worker lcore 1. Its rate next to `dpdk-testpmd --forward-mode=io` on the same vdevs says what
//! the bindings cost. Run by `scripts/bench-fwd.sh`.
//!
//!     fwd_loop SECONDS -- EAL-ARGS...   (EAL args must create two ports, e.g. two net_null vdevs)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dpdk_bindings::{Burst, Eal, Mempool, Port, PortConfig};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let split = args.iter().position(|a| a == "--").expect("usage: fwd_loop SECONDS -- EAL-ARGS");
    let seconds: u64 = args[1..split].first().and_then(|s| s.parse().ok()).unwrap_or(10);
    let mut eal_args = vec!["fwd_loop".to_string()];
    eal_args.extend(args[split + 1..].iter().cloned());
    let eal = Eal::init(&eal_args).expect("EAL init");
    let worker = *eal.worker_lcores().first().expect("need a worker lcore (-l 0-1)");
    assert!(Port::count() >= 2, "need two ports");

    let pool =
        Arc::new(Mempool::new("fwd_pool", 8191, 256, Mempool::default_data_room(), None).expect("pool"));
    let p0 = Port::start(0, &PortConfig::default(), pool.clone()).expect("port 0");
    let p1 = Port::start(1, &PortConfig::default(), pool.clone()).expect("port 1");
    let mut rx = p0.rx_queue(0).unwrap();
    let mut tx = p1.tx_queue(0).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let stop_w = stop.clone();
    let job = eal
        .launch(worker, move || {
            let mut burst = Burst::new();
            while !stop_w.load(Ordering::Relaxed) {
                if rx.rx_burst(&mut burst) == 0 {
                    continue;
                }
                tx.tx_burst(&mut burst);
                burst.clear(); // what TX refused is dropped, as testpmd does
            }
            0
        })
        .expect("launch");

    // Per-second rates from the TX port's counters; the median ignores warm-up and noise.
    let mut rates = Vec::new();
    let mut last = p1.stats().unwrap().tx_packets;
    let mut t = Instant::now();
    for _ in 0..seconds {
        std::thread::sleep(Duration::from_secs(1));
        let now = p1.stats().unwrap().tx_packets;
        let dt = t.elapsed().as_secs_f64();
        t = Instant::now();
        rates.push((now - last) as f64 / dt / 1e6);
        last = now;
    }
    stop.store(true, Ordering::Relaxed);
    job.join();
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = rates[rates.len() / 2];
    println!("fwd_loop: median {median:.2} Mpps over {seconds} s on lcore {worker}");
}
