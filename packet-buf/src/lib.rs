//! The packet buffer the dataplane works on, so the same code runs on DPDK mbufs in production
//! and on plain vectors in tests and captures.
//!
//! A crate of its own, with nothing else in it, so that both sides see it: `dataplane` (which
//! must not depend on DPDK) works on these traits, and `dpdk-bindings` implements them for its
//! `Mbuf` itself. The worker then hands the pipeline the mbufs DPDK wrote, with no wrapper
//! type to move each packet into and out of.

#![forbid(unsafe_code)]

/// A single-segment packet with headroom for encapsulation.
pub trait PacketBuf {
    fn data(&self) -> &[u8];
    fn data_mut(&mut self) -> &mut [u8];
    /// The packet's length (what `data().len()` is, without making the slice).
    #[inline]
    fn len(&self) -> usize {
        self.data().len()
    }
    #[inline]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Grow at the front by `n` bytes; `false` (nothing changed) without enough headroom.
    fn prepend(&mut self, n: usize) -> bool;
    /// Set the length, growing or shrinking at the end; `false` (nothing changed) if impossible.
    fn set_len(&mut self, n: usize) -> bool;
}

/// Where the pipeline gets extra packets (outer fragments) and sends them.
pub trait PacketSink<B> {
    /// A fresh empty buffer from the pool; `None` when the pool is dry.
    fn alloc(&mut self) -> Option<B>;
    /// Transmit an extra packet on `port`.
    fn emit(&mut self, port: u16, pkt: B);
}
