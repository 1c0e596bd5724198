//! The packet buffer the dataplane works on, so the same code runs on DPDK mbufs in production
//! and on plain vectors in tests and captures. The traits live in the `packet-buf` crate, which
//! DPDK's side implements too; this module adds the vector-backed buffer.

pub use packet_buf::{PacketBuf, PacketSink};

/// Headroom of a `VecPacket`, the same as DPDK's default mbuf headroom.
pub const VEC_HEADROOM: usize = 128;
/// Data room of a `VecPacket`, as a default DPDK mbuf.
pub const VEC_DATA_ROOM: usize = 2048;

/// A heap-backed packet for tests, captures and fuzzing.
#[derive(Clone, PartialEq, Eq)]
pub struct VecPacket {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl VecPacket {
    pub fn new() -> Self {
        VecPacket { storage: vec![0; VEC_HEADROOM + VEC_DATA_ROOM], start: VEC_HEADROOM, len: 0 }
    }

    /// A packet holding `bytes` (truncated to the data room).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut p = Self::new();
        let n = bytes.len().min(VEC_DATA_ROOM);
        p.storage[VEC_HEADROOM..VEC_HEADROOM + n].copy_from_slice(&bytes[..n]);
        p.len = n;
        p
    }
}

impl VecPacket {
    /// Refill with `bytes` at the standard headroom, reusing the storage (no allocation).
    #[inline]
    pub fn reset_from(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(VEC_DATA_ROOM);
        self.start = VEC_HEADROOM;
        self.storage[VEC_HEADROOM..VEC_HEADROOM + n].copy_from_slice(&bytes[..n]);
        self.len = n;
    }
}

impl Default for VecPacket {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for VecPacket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VecPacket({} bytes)", self.len)
    }
}

// Inlined: the pipeline is generic over its buffer, and a call per access cost the dataplane
// benchmark, which runs on these, more than the appliance's DPDK mbufs cost it.
impl PacketBuf for VecPacket {
    #[inline]
    fn data(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.len]
    }

    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + self.len]
    }

    #[inline]
    fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn prepend(&mut self, n: usize) -> bool {
        if n > self.start {
            return false;
        }
        self.start -= n;
        self.len += n;
        true
    }

    #[inline]
    fn set_len(&mut self, n: usize) -> bool {
        if self.start + n > self.storage.len() {
            return false;
        }
        self.len = n;
        true
    }
}
