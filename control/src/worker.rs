//! A worker lcore: the dataplane's loop over DPDK queues. It owns RX/TX queue `i` of every port
//! and its flow table; it talks to the control core only through lock-free rings: commands in
//! (new snapshot, "fill these stats"), replies out (retired snapshot, filled stats), packets
//! punted to the control core (health-check answers and ARP on their own ring, served first),
//! and a heartbeat the control core watches.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use arrayvec::ArrayVec;
use crossbeam_queue::ArrayQueue;
use dataplane::io::{poll_once, PacketIo, BURST};
use dataplane::{Punt, Snapshot, Worker, WorkerConfig};
use dpdk_bindings::{Burst, Mbuf, Mempool, RxQueue, TxQueue};

use crate::capture::{Dir, Tap, WorkerTap};
use crate::core::links::WorkerStats;

pub enum Command {
    Install(Arc<Snapshot>),
    /// Fill this (reused) buffer and send it back.
    Stats(Box<WorkerStats>),
}

pub enum Reply {
    /// The snapshot the worker stopped using: the control core frees it, not the worker.
    Retired(Arc<Snapshot>),
    Stats(Box<WorkerStats>),
}

/// A frame for the control core: the port it came in on, and the frame.
pub type Punted = (u16, Mbuf);

/// The rings between one worker and the control core.
#[derive(Clone)]
pub struct Rings {
    pub commands: Arc<ArrayQueue<Command>>,
    pub replies: Arc<ArrayQueue<Reply>>,
    /// ARP and health-check answers: the control core empties this one first.
    pub punted_priority: Arc<ArrayQueue<Punted>>,
    /// Everything else for the LB itself (echo requests, other traffic to its addresses).
    pub punted_other: Arc<ArrayQueue<Punted>>,
    /// Frames the control core sends (ARP, ICMP, probes), transmitted by this worker on its
    /// own TX queues: some PMDs (net_tap) need as many RX as TX queues, so a TX queue of the
    /// control core's own would bring an RX queue nobody polls.
    pub outbound: Arc<ArrayQueue<(u16, Mbuf)>>,
    /// Loop passes of the worker: the control core sees a stuck worker by it.
    pub heartbeat: Arc<AtomicU64>,
}

impl Rings {
    pub fn new() -> Rings {
        Rings {
            commands: Arc::new(ArrayQueue::new(64)),
            replies: Arc::new(ArrayQueue::new(64)),
            punted_priority: Arc::new(ArrayQueue::new(1024)),
            punted_other: Arc::new(ArrayQueue::new(256)),
            outbound: Arc::new(ArrayQueue::new(1024)),
            heartbeat: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Default for Rings {
    fn default() -> Self {
        Self::new()
    }
}

/// The worker's queues as the dataplane's packet I/O.
pub struct DpdkIo {
    rx: Vec<RxQueue>,
    tx: Vec<TxQueue>,
    pending: Vec<Burst>,
    pool: Arc<Mempool>,
    rings: Rings,
    current_port: u16,
    /// Live capture (`dsrlb ctl capture`): looked at once per loop pass.
    tap: WorkerTap,
    /// Frames the device did not take: refused (e.g. too big for it) or its queue full.
    pub tx_dropped: u64,
    /// Frames for the control core that did not fit its ring, by `Punt` kind.
    pub punt_dropped: [u64; 3],
}

impl DpdkIo {
    pub fn new(
        rx: Vec<RxQueue>,
        tx: Vec<TxQueue>,
        pool: Arc<Mempool>,
        rings: Rings,
        tap: Arc<Tap>,
    ) -> DpdkIo {
        let pending = tx.iter().map(|_| Burst::new()).collect();
        DpdkIo {
            rx,
            tx,
            pending,
            pool,
            rings,
            current_port: 0,
            tap: WorkerTap::new(tap),
            tx_dropped: 0,
            punt_dropped: [0; 3],
        }
    }

    /// Send what is queued for `port`. A device stops taking a burst at the first frame it
    /// refuses, or when its queue is full: the first frame left is dropped and the rest offered
    /// once more, so one bad frame does not cost the frames behind it; what the device still
    /// does not take is dropped rather than stall the loop.
    fn flush_port(&mut self, port: usize) {
        let before = self.pending[port].len();
        self.tx[port].tx_burst(&mut self.pending[port]);
        if !self.pending[port].is_empty() {
            self.after_refusal(port, before);
        }
    }

    /// The device stopped taking a burst of `offered` frames; what it left is in `pending`.
    fn after_refusal(&mut self, port: usize, offered: usize) {
        let b = &mut self.pending[port];
        if b.len() < offered || offered > 1 {
            // It took some and stopped: drop the one it stopped at, offer the others again.
            b.drop_first();
            self.tx_dropped += 1;
            self.tx[port].tx_burst(b);
        }
        self.tx_dropped += b.len() as u64;
        b.clear();
    }
}

impl PacketIo for DpdkIo {
    type Buf = Mbuf;

    fn port_count(&self) -> u16 {
        self.rx.len() as u16
    }

    #[inline]
    fn rx_burst(&mut self, port: u16, out: &mut ArrayVec<Mbuf, BURST>) {
        self.current_port = port;
        if port == 0 {
            // poll_once starts every pass at port 0.
            self.tap.refresh();
        }
        let start = out.len();
        self.rx[port as usize].rx_burst_into(out);
        let got = &out[start..];
        if self.tap.rx(port) {
            for m in got {
                self.tap.offer(m.data(), port, Dir::Rx);
            }
        }
        // As l3fwd does: start pulling every packet's headers into cache before the pipeline
        // reads the first one.
        for m in got {
            dpdk_bindings::prefetch(m.data_ptr());
        }
    }

    #[inline]
    fn tx(&mut self, port: u16, pkt: Mbuf) {
        let p = port as usize;
        if p >= self.pending.len() {
            return;
        }
        if self.tap.tx(port) {
            self.tap.offer(pkt.data(), port, Dir::Tx);
        }
        if let Err(m) = self.pending[p].push(pkt) {
            self.flush_port(p);
            let _ = self.pending[p].push(m);
        }
    }

    #[inline]
    fn tx_all(&mut self, port: u16, pkts: &mut ArrayVec<Mbuf, BURST>) {
        let p = port as usize;
        if p >= self.pending.len() {
            pkts.clear();
            return;
        }
        if self.tap.tx(port) {
            for pkt in pkts.iter() {
                self.tap.offer(pkt.data(), port, Dir::Tx);
            }
        }
        if self.pending[p].is_empty() {
            // Nothing queued before it: the burst goes to the device from the vector it was
            // received and rewritten in, as testpmd sends, with no copy into `pending`.
            let offered = pkts.len();
            self.tx[p].tx_burst_from(pkts);
            if pkts.is_empty() {
                return;
            }
            // The device stopped partway: the rest takes the same rule as a queued burst.
            self.pending[p].fill_from(&mut pkts.drain(..));
            self.after_refusal(p, offered);
            return;
        }
        let mut rest = pkts.drain(..);
        loop {
            self.pending[p].fill_from(&mut rest);
            if rest.len() == 0 {
                break;
            }
            self.flush_port(p);
        }
    }

    fn to_control(&mut self, pkt: Mbuf, kind: Punt) {
        let ring = if kind.is_priority() { &self.rings.punted_priority } else { &self.rings.punted_other };
        if ring.push((self.current_port, pkt)).is_err() {
            self.punt_dropped[kind as usize] += 1;
        }
    }

    fn alloc(&mut self) -> Option<Mbuf> {
        self.pool.alloc()
    }

    #[inline]
    fn flush(&mut self) {
        for p in 0..self.pending.len() {
            if !self.pending[p].is_empty() {
                self.flush_port(p);
            }
        }
    }
}

/// Everything a worker lcore needs; moved onto the lcore by `run`.
pub struct WorkerSetup {
    pub index: usize,
    pub config: WorkerConfig,
    pub snapshot: Arc<Snapshot>,
    pub io: DpdkIo,
    pub rings: Rings,
    pub stop: Arc<AtomicBool>,
    /// Sleep this long when a poll finds nothing (0: busy-poll, the default for appliances).
    pub idle_sleep_us: u64,
}

/// The worker loop. Returns 0 when told to stop.
pub fn run(setup: WorkerSetup) -> i32 {
    let WorkerSetup { index, config, snapshot, mut io, rings, stop, idle_sleep_us } = setup;
    let fault = fault::Injected::from_env(index);
    let mut worker = Worker::new(config, snapshot);
    let mut rx: ArrayVec<Mbuf, BURST> = ArrayVec::new();
    // A reply that did not fit in the ring waits here: the worker never frees a snapshot.
    let mut unsent: Option<Reply> = None;
    let hz = dpdk_bindings::tsc_hz().max(1);
    let ticks_per_ms = (hz / 1000).max(1);
    let start = dpdk_bindings::tsc();
    let mut passes = 0u64;
    let idle_ticks = idle_sleep_us.saturating_mul(hz) / 1_000_000;
    let mut idle_since: Option<u64> = None;
    if idle_sleep_us > 0 {
        // The kernel may wake a thread up to its timer slack late, 50 µs unless told otherwise
        // (EAL's lcore threads are): a 20 µs idle sleep took 70 and cost every packet that
        // arrived meanwhile as much (docs/performance.md, "Latency"). The sleep is what the
        // operator configured, give or take a microsecond.
        let _ = dpdk_bindings::sys::set_timer_slack(1_000);
    }
    while !stop.load(Ordering::Relaxed) {
        passes += 1;
        rings.heartbeat.store(passes, Ordering::Relaxed);
        if unsent.is_none() {
            if let Some(cmd) = pop_ready(&rings.commands) {
                unsent = Some(match cmd {
                    Command::Install(s) => Reply::Retired(worker.install(s)),
                    Command::Stats(mut b) => {
                        fill_stats(&worker, &io, &mut b);
                        Reply::Stats(b)
                    }
                });
            }
        }
        if let Some(r) = unsent.take() {
            if let Err(r) = rings.replies.push(r) {
                unsent = Some(r);
            }
        }
        while let Some((port, m)) = pop_ready(&rings.outbound) {
            io.tx(port, m);
        }
        let tsc = dpdk_bindings::tsc();
        let now = ((tsc - start) / ticks_per_ms) as u32;
        let n = poll_once(&mut worker, &mut io, &mut rx, now);
        fault.check(worker.counters().rx_packets);
        // Sleep only once the ports have been idle for as long as one sleep: a worker that slept
        // at every empty poll added the sleep to the packets of a busy port between its bursts,
        // and at 8 Mpps let the receive ring overflow while it slept (docs/performance.md,
        // "Latency"). An idle worker still sleeps, poll after poll.
        if n > 0 {
            idle_since = None;
        } else if idle_sleep_us > 0 {
            let since = *idle_since.get_or_insert(tsc);
            if tsc.wrapping_sub(since) >= idle_ticks {
                std::thread::sleep(std::time::Duration::from_micros(idle_sleep_us));
            }
        }
    }
    0
}

/// What `queue` holds next, if anything. An empty `ArrayQueue::pop` still fences memory (a
/// locked instruction), and the worker finds its rings empty on nearly every pass; `is_empty`
/// is two plain loads.
#[inline]
fn pop_ready<T>(queue: &ArrayQueue<T>) -> Option<T> {
    if queue.is_empty() {
        return None;
    }
    queue.pop()
}

fn fill_stats(worker: &Worker, io: &DpdkIo, b: &mut WorkerStats) {
    // clone_from reuses the buffers the control core sent: no allocation while sizes hold.
    b.counters.clone_from(worker.counters());
    let (flows, flows6) = (worker.flows(), worker.flows6());
    let n = worker.snapshot().backend_id_bound();
    b.active.resize(n, 0);
    // A backend's flows are all in one family's table (its service's), so the sum is its count.
    for (i, a) in b.active.iter_mut().enumerate() {
        *a = flows.active(i as u32) + flows6.active(i as u32);
    }
    b.flows = flows.len() + flows6.len();
    b.flow_capacity = flows.capacity() + flows6.capacity();
    (b.flows_ipv6, b.flow_capacity_ipv6) = (flows6.len(), flows6.capacity());
    b.epoch = worker.snapshot().epoch;
    b.tx_dropped = io.tx_dropped;
    b.punt_dropped = io.punt_dropped;
}

/// Faults injected on purpose, to test that a failing worker takes the appliance down instead
/// of leaving it half alive. Compiled only with the `fault-injection` feature (the test
/// suite's build); `DSRLB_FAULT=panic:N` or `stall:N` makes worker 0 panic, or stop polling,
/// once it has received N packets.
#[cfg(feature = "fault-injection")]
mod fault {
    pub struct Injected(Option<(bool, u64)>);

    impl Injected {
        pub fn from_env(worker: usize) -> Injected {
            let spec = std::env::var("DSRLB_FAULT").ok().filter(|_| worker == 0);
            Injected(spec.and_then(|s| {
                let (kind, n) = s.split_once(':')?;
                Some((kind == "panic", n.parse().ok()?))
            }))
        }

        pub fn check(&self, received: u64) {
            match self.0 {
                Some((true, n)) if received >= n => panic!("injected fault: worker panics after {n} packets"),
                Some((false, n)) if received >= n => loop {
                    std::thread::sleep(std::time::Duration::from_secs(1));
                },
                _ => {}
            }
        }
    }
}

#[cfg(not(feature = "fault-injection"))]
mod fault {
    pub struct Injected;

    impl Injected {
        #[inline(always)]
        pub fn from_env(_: usize) -> Injected {
            Injected
        }

        #[inline(always)]
        pub fn check(&self, _: u64) {}
    }
}
