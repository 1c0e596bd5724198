//! Links to no workers at all: the frames a test or a fuzzer hands in are the punted ones, and
//! what the control core sends and publishes is kept to be read. The control core then runs
//! whole, without DPDK.

use std::collections::VecDeque;
use std::sync::Arc;

use dataplane::Snapshot;

use super::links::{Links, WorkerStats};
use crate::view::PortCounters;

#[derive(Default)]
pub struct MemLinks {
    /// (port, frame) as if punted by a worker, taken in order.
    pub punted: VecDeque<(u16, Vec<u8>)>,
    /// (port, frame) the control core sent.
    pub sent: Vec<(u16, Vec<u8>)>,
    pub published: Vec<Arc<Snapshot>>,
    stats: Vec<WorkerStats>,
    pub heartbeats: Vec<u64>,
    /// (port, frame) handed to the kernel.
    pub to_kernel: Vec<(u16, Vec<u8>)>,
    /// (port, frame) as if sent by the kernel on an exception interface.
    pub from_kernel: VecDeque<(u16, Vec<u8>)>,
    /// Ports that have an exception interface.
    pub exception_ports: Vec<u16>,
}

impl Links for MemLinks {
    fn publish(&mut self, snap: &Arc<Snapshot>) -> bool {
        self.published.push(snap.clone());
        true
    }
    fn collect(&mut self) {}
    fn request_stats(&mut self) {}
    fn worker_stats(&self) -> &[WorkerStats] {
        &self.stats
    }
    fn send(&mut self, port: u16, frame: &[u8]) -> bool {
        self.sent.push((port, frame.to_vec()));
        true
    }
    fn next_punted(&mut self, buf: &mut Vec<u8>) -> Option<u16> {
        let (port, f) = self.punted.pop_front()?;
        buf.clear();
        buf.extend_from_slice(&f);
        Some(port)
    }
    fn port_counters(&self) -> Vec<PortCounters> {
        vec![PortCounters::default()]
    }
    fn heartbeats(&self) -> Vec<u64> {
        self.heartbeats.clone()
    }
    fn send_to_kernel(&mut self, port: u16, frame: &[u8]) -> bool {
        if !self.exception_ports.contains(&port) {
            return false;
        }
        self.to_kernel.push((port, frame.to_vec()));
        true
    }
    fn next_from_kernel(&mut self, buf: &mut Vec<u8>) -> Option<u16> {
        let (port, f) = self.from_kernel.pop_front()?;
        buf.clear();
        buf.extend_from_slice(&f);
        Some(port)
    }
}
