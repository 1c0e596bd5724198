//! The worker loop, generic over where packets come from and go to: DPDK queues in production,
//! in-memory queues in tests and when replaying captures.

use std::collections::VecDeque;

use arrayvec::ArrayVec;

use crate::buf::{PacketBuf, PacketSink, VecPacket};
use crate::pipeline::{Punt, Verdict, Worker};
use crate::table::Millis;

/// Packets moved per RX call.
pub const BURST: usize = 32;

/// A worker's view of its queues: one RX and one TX queue per port, a ring to the control core,
/// and a buffer pool.
pub trait PacketIo {
    type Buf: PacketBuf;
    fn port_count(&self) -> u16;
    /// Receive up to `out`'s spare capacity from `port`.
    fn rx_burst(&mut self, port: u16, out: &mut ArrayVec<Self::Buf, BURST>);
    /// Queue a packet for transmission on `port` (sent at the latest by `flush`).
    fn tx(&mut self, port: u16, pkt: Self::Buf);
    /// Queue every packet of `pkts` for transmission on `port`, emptying it: what a burst
    /// forwarded whole out of one port takes (the common case), in one call instead of one per
    /// packet.
    fn tx_all(&mut self, port: u16, pkts: &mut ArrayVec<Self::Buf, BURST>) {
        for pkt in pkts.drain(..) {
            self.tx(port, pkt);
        }
    }
    /// Hand a packet to the control core, as `kind` (dropped and counted by the implementation
    /// if full).
    fn to_control(&mut self, pkt: Self::Buf, kind: Punt);
    /// A fresh buffer (outer fragments), or `None` if the pool is dry.
    fn alloc(&mut self) -> Option<Self::Buf>;
    /// Send whatever `tx` queued.
    fn flush(&mut self);
}

struct IoSink<'a, I>(&'a mut I);

impl<I: PacketIo> PacketSink<I::Buf> for IoSink<'_, I> {
    fn alloc(&mut self) -> Option<I::Buf> {
        self.0.alloc()
    }

    fn emit(&mut self, port: u16, pkt: I::Buf) {
        self.0.tx(port, pkt)
    }
}

/// One pass of the worker loop: a burst from every port through the pipeline, then TX, then a
/// slice of housekeeping. Returns the packets received.
pub fn poll_once<I: PacketIo>(
    worker: &mut Worker,
    io: &mut I,
    rx: &mut ArrayVec<I::Buf, BURST>,
    now: Millis,
) -> usize {
    let mut n = 0;
    let mut verdicts = [Verdict::Drop(crate::DropReason::NoBuffer); BURST];
    for port in 0..io.port_count() {
        io.rx_burst(port, rx);
        let got = rx.len();
        n += got;
        if let Some(out) = worker.process_burst(&mut rx[..], port, now, &mut verdicts[..got], &mut IoSink(io))
        {
            io.tx_all(out, rx);
            continue;
        }
        for (pkt, v) in rx.drain(..).zip(verdicts.iter()) {
            match *v {
                Verdict::Tx(p) | Verdict::Reply(p) => io.tx(p, pkt),
                Verdict::ToControl(kind) => io.to_control(pkt, kind),
                Verdict::Drop(_) => drop(pkt),
            }
        }
    }
    io.flush();
    worker.housekeeping(now);
    n
}

/// In-memory queues: what tests feed in and read out, and `dsrlb replay` over a capture.
#[derive(Default)]
pub struct MemIo {
    pub rx: Vec<VecDeque<VecPacket>>,
    pub tx: Vec<Vec<VecPacket>>,
    pub control: Vec<VecPacket>,
    /// Buffers `alloc` may still hand out (models a pool running dry).
    pub pool_left: usize,
}

impl MemIo {
    pub fn new(ports: usize) -> Self {
        MemIo {
            rx: vec![VecDeque::new(); ports],
            tx: vec![Vec::new(); ports],
            control: Vec::new(),
            pool_left: usize::MAX,
        }
    }

    pub fn push(&mut self, port: u16, frame: &[u8]) {
        self.rx[port as usize].push_back(VecPacket::from_bytes(frame));
    }

    /// Frames sent on `port` so far, as bytes, emptying the queue.
    pub fn take_tx(&mut self, port: u16) -> Vec<Vec<u8>> {
        self.tx[port as usize].drain(..).map(|p| p.data().to_vec()).collect()
    }
}

impl PacketIo for MemIo {
    type Buf = VecPacket;

    fn port_count(&self) -> u16 {
        self.rx.len() as u16
    }

    fn rx_burst(&mut self, port: u16, out: &mut ArrayVec<VecPacket, BURST>) {
        let q = &mut self.rx[port as usize];
        while !out.is_full() {
            match q.pop_front() {
                Some(p) => out.push(p),
                None => break,
            }
        }
    }

    fn tx(&mut self, port: u16, pkt: VecPacket) {
        if let Some(q) = self.tx.get_mut(port as usize) {
            q.push(pkt);
        }
    }

    fn to_control(&mut self, pkt: VecPacket, _: Punt) {
        self.control.push(pkt);
    }

    fn alloc(&mut self) -> Option<VecPacket> {
        if self.pool_left == 0 {
            return None;
        }
        self.pool_left -= 1;
        Some(VecPacket::new())
    }

    fn flush(&mut self) {}
}
