//! The control core's links to the workers and ports: publishing snapshots (epochs), asking
//! for and collecting counters, sending frames and taking the frames the workers punted.
//!
//! `Links` is what the control core needs of them; `DpdkLinks` is the real thing (lock-free
//! rings to worker lcores, mbufs, DPDK ports), and tests drive the control core through an
//! in-memory implementation instead.

use std::sync::Arc;

use dataplane::{Counters, Snapshot};
use dpdk_bindings::{Burst, Mbuf, Mempool, Port, RxQueue, TxQueue};
use log::warn;

use crate::view::PortCounters;
use crate::worker::{Command, Reply, Rings};

/// What a worker publishes about itself when asked.
#[derive(Debug, Clone, Default)]
pub struct WorkerStats {
    pub counters: Counters,
    /// Live flows per backend id held by this worker.
    pub active: Vec<u32>,
    /// Both families' tables together.
    pub flows: usize,
    pub flow_capacity: usize,
    /// The IPv6 table alone.
    pub flows_ipv6: usize,
    pub flow_capacity_ipv6: usize,
    /// The snapshot epoch the worker runs.
    pub epoch: u64,
    pub tx_dropped: u64,
    /// Frames for the control core that did not fit its rings, by `Punt` kind.
    pub punt_dropped: [u64; 3],
}

pub trait Links {
    /// Hand `snap` to every worker; `false` if some worker could not take it now (its command
    /// ring is full: a stuck worker), to be retried.
    fn publish(&mut self, snap: &Arc<Snapshot>) -> bool;
    /// Take the workers' replies: retired snapshots are freed here, counters kept.
    fn collect(&mut self);
    /// Ask every worker for fresh counters (answered through `collect`).
    fn request_stats(&mut self);
    /// The latest counters of each worker.
    fn worker_stats(&self) -> &[WorkerStats];
    /// Send a frame on `port`; `false` if it was dropped (no buffer, ring full).
    fn send(&mut self, port: u16, frame: &[u8]) -> bool;
    /// Copy the next frame a worker punted into `buf`; its port, or `None` when there is none.
    fn next_punted(&mut self, buf: &mut Vec<u8>) -> Option<u16>;
    /// Device counters and link state of each port.
    fn port_counters(&self) -> Vec<PortCounters>;
    /// Each worker's loop count: one that stops moving is stuck.
    fn heartbeats(&self) -> Vec<u64>;
    /// Hand a frame that arrived on `port` to the kernel through the port's exception
    /// interface; `false` if the port has none (or it could not take the frame).
    fn send_to_kernel(&mut self, port: u16, frame: &[u8]) -> bool;
    /// Copy the next frame the kernel sent on an exception interface into `buf`; the data port
    /// it is to leave by.
    fn next_from_kernel(&mut self, buf: &mut Vec<u8>) -> Option<u16>;
}

/// A port's exception interface, owned by the control core (one queue each way).
pub struct Exception {
    /// Keeps the device open.
    _port: Port,
    rx: RxQueue,
    tx: TxQueue,
    rx_burst: Burst,
    /// Received, in order, not yet taken.
    pending: std::collections::VecDeque<Mbuf>,
}

impl Exception {
    pub fn new(port: Port) -> dpdk_bindings::Result<Exception> {
        Ok(Exception {
            rx: port.rx_queue(0)?,
            tx: port.tx_queue(0)?,
            _port: port,
            rx_burst: Burst::new(),
            pending: std::collections::VecDeque::new(),
        })
    }
}

/// Workers on DPDK lcores, reached through lock-free rings; frames in mbufs.
pub struct DpdkLinks {
    // Fields drop in this order: the frames still queued in the rings go back to the pool
    // first, then the ports stop (their queues' frames go back too), then the pool itself,
    // which is freed only when every frame is back in it.
    rings: Vec<Rings>,
    /// Buffers lent to each worker for its counters (`None` while the worker holds it).
    stats_bufs: Vec<Option<Box<WorkerStats>>>,
    stats: Vec<WorkerStats>,
    /// The ring the next punted frame is taken from: rings are drained in turn, one frame at a
    /// time, so that no worker's flood starves the others.
    next_ring: usize,
    /// Priority frames taken in a row.
    priority_run: usize,
    /// By data port.
    exceptions: Vec<Option<Exception>>,
    ports: Vec<Port>,
    pool: Arc<Mempool>,
}

/// Priority frames served in a row before one of the others, if any wait.
const PRIORITY_RUN: usize = 64;

impl DpdkLinks {
    pub fn new(
        pool: Arc<Mempool>,
        ports: Vec<Port>,
        rings: Vec<Rings>,
        exceptions: Vec<Option<Exception>>,
    ) -> DpdkLinks {
        let n = rings.len();
        DpdkLinks {
            pool,
            ports,
            rings,
            stats_bufs: (0..n).map(|_| Some(Box::<WorkerStats>::default())).collect(),
            stats: vec![WorkerStats::default(); n],
            next_ring: 0,
            priority_run: 0,
            exceptions,
        }
    }
}

impl DpdkLinks {
    /// A fresh mbuf holding `frame`.
    fn mbuf_of(&self, frame: &[u8]) -> Option<Mbuf> {
        let Some(mut m) = self.pool.alloc() else {
            warn!("mempool dry: control frame dropped");
            return None;
        };
        if !m.append(frame.len()) {
            return None;
        }
        m.data_mut().copy_from_slice(frame);
        Some(m)
    }
}

impl Links for DpdkLinks {
    fn publish(&mut self, snap: &Arc<Snapshot>) -> bool {
        for r in &self.rings {
            // Commands are few; a full ring means a stuck worker, so log and retry later.
            if r.commands.push(Command::Install(snap.clone())).is_err() {
                warn!("worker command ring full; snapshot {} delayed", snap.epoch);
                return false;
            }
        }
        true
    }

    fn collect(&mut self) {
        for (w, r) in self.rings.iter().enumerate() {
            while let Some(reply) = r.replies.pop() {
                match reply {
                    Reply::Retired(old) => drop(old), // freed here, off the fast path
                    Reply::Stats(b) => {
                        self.stats[w].clone_from(&b);
                        self.stats_bufs[w] = Some(b);
                    }
                }
            }
        }
    }

    fn request_stats(&mut self) {
        for (w, r) in self.rings.iter().enumerate() {
            if let Some(b) = self.stats_bufs[w].take() {
                if let Err(Command::Stats(b)) = r.commands.push(Command::Stats(b)) {
                    self.stats_bufs[w] = Some(b);
                }
            }
        }
    }

    fn worker_stats(&self) -> &[WorkerStats] {
        &self.stats
    }

    fn send(&mut self, port: u16, frame: &[u8]) -> bool {
        let Some(m) = self.mbuf_of(frame) else { return false };
        // Worker 0 transmits for the control core (see Rings::outbound).
        if self.rings[0].outbound.push((port, m)).is_err() {
            warn!("outbound ring full: control frame dropped");
            return false;
        }
        true
    }

    fn next_punted(&mut self, buf: &mut Vec<u8>) -> Option<u16> {
        // Priority first (ARP, health-check answers), the workers' rings in turn; the others
        // when those are empty, and one of them after every PRIORITY_RUN priority frames so
        // that a flood of answers cannot starve echo entirely either.
        let lanes = if self.priority_run >= PRIORITY_RUN { [false, true] } else { [true, false] };
        let n = self.rings.len();
        for priority in lanes {
            for k in 0..n {
                let w = (self.next_ring + k) % n;
                let ring =
                    if priority { &self.rings[w].punted_priority } else { &self.rings[w].punted_other };
                if let Some((port, m)) = ring.pop() {
                    self.next_ring = (w + 1) % n;
                    self.priority_run = if priority { self.priority_run + 1 } else { 0 };
                    buf.clear();
                    buf.extend_from_slice(m.data());
                    return Some(port);
                }
            }
        }
        None
    }

    fn send_to_kernel(&mut self, port: u16, frame: &[u8]) -> bool {
        if self.exceptions.get(port as usize).is_none_or(|x| x.is_none()) {
            return false;
        }
        let Some(m) = self.mbuf_of(frame) else { return false };
        let Some(Some(x)) = self.exceptions.get_mut(port as usize) else { return false };
        let mut b = Burst::new();
        let _ = b.push(m);
        x.tx.tx_burst(&mut b) == 1
    }

    fn next_from_kernel(&mut self, buf: &mut Vec<u8>) -> Option<u16> {
        for (port, x) in self.exceptions.iter_mut().enumerate() {
            let Some(x) = x else { continue };
            if x.pending.is_empty() {
                x.rx.rx_burst_max(&mut x.rx_burst, 32);
                x.pending.extend(x.rx_burst.drain());
            }
            if let Some(m) = x.pending.pop_front() {
                buf.clear();
                buf.extend_from_slice(m.data());
                return Some(port as u16);
            }
        }
        None
    }

    fn heartbeats(&self) -> Vec<u64> {
        self.rings.iter().map(|r| r.heartbeat.load(std::sync::atomic::Ordering::Relaxed)).collect()
    }

    fn port_counters(&self) -> Vec<PortCounters> {
        self.ports
            .iter()
            .map(|p| {
                let st = p.stats().unwrap_or_default();
                let link = p.link().ok();
                PortCounters {
                    link_up: link.is_some_and(|l| l.up),
                    speed_mbps: link.map_or(0, |l| l.speed_mbps),
                    rx_packets: st.rx_packets,
                    tx_packets: st.tx_packets,
                    rx_bytes: st.rx_bytes,
                    tx_bytes: st.tx_bytes,
                    rx_missed: st.rx_missed,
                    rx_errors: st.rx_errors,
                    tx_errors: st.tx_errors,
                    rx_no_mbuf: st.rx_no_mbuf,
                }
            })
            .collect()
    }
}
