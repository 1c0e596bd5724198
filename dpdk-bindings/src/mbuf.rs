//! Owned packet buffers and fixed-size bursts of them.

use std::ptr::NonNull;

use crate::error::{DpdkError, Result};
use crate::ffi;
use crate::mempool::Mempool;

/// Largest burst moved by one RX/TX call.
pub const MAX_BURST: usize = 64;

/// One packet buffer, owned: it goes back to its pool when dropped.
///
/// dsrlb configures no scatter-gather, so a packet is one segment and `data()` is all of it.
#[repr(transparent)]
pub struct Mbuf(NonNull<ffi::rte_mbuf>);

// SAFETY: an mbuf is owned by exactly one Mbuf value at a time; moving it between threads is how
// DPDK hands packets between lcores. Freeing from any lcore is allowed by the mempool.
unsafe impl Send for Mbuf {}

impl Mbuf {
    pub(crate) fn from_nonnull(p: NonNull<ffi::rte_mbuf>) -> Self {
        Mbuf(p)
    }

    /// Give up ownership without freeing (DPDK takes it, e.g. on TX).
    pub fn into_raw(self) -> *mut ffi::rte_mbuf {
        let p = self.0.as_ptr();
        std::mem::forget(self);
        p
    }

    fn raw(&self) -> &ffi::rte_mbuf {
        // SAFETY: we own a valid mbuf for as long as self lives.
        unsafe { self.0.as_ref() }
    }

    /// Bytes of the packet.
    #[inline]
    pub fn data(&self) -> &[u8] {
        let m = self.raw();
        // SAFETY: buf_addr + data_off .. + data_len lies within the mbuf's data room, which DPDK
        // keeps consistent; the buffer is not aliased mutably while we hold &self.
        unsafe {
            std::slice::from_raw_parts(
                (m.buf_addr as *const u8).add(m.data_off as usize),
                m.data_len as usize,
            )
        }
    }

    /// Bytes of the packet, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `data`; &mut self guarantees exclusive access to the buffer.
        unsafe {
            let m = self.0.as_mut();
            std::slice::from_raw_parts_mut(
                (m.buf_addr as *mut u8).add(m.data_off as usize),
                m.data_len as usize,
            )
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.raw().data_len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The length of the whole packet as DPDK keeps it apart (all segments): what PMDs read on
    /// transmit, so it must move with `len` on every change.
    pub fn pkt_len(&self) -> usize {
        self.raw().pkt_len as usize
    }

    /// Free space before the packet (for encapsulation headers).
    #[inline]
    pub fn headroom(&self) -> usize {
        self.raw().data_off as usize
    }

    /// Free space after the packet.
    #[inline]
    pub fn tailroom(&self) -> usize {
        let m = self.raw();
        (m.buf_len as usize).saturating_sub(m.data_off as usize + m.data_len as usize)
    }

    /// Whether the mbuf is one segment, the shape dsrlb's ports are configured for: the
    /// length changes below are then a few field writes done here, as DPDK's inline functions
    /// do them, instead of a call into the C shim per packet. A chained mbuf takes the shim.
    #[inline]
    fn single_segment(&self) -> bool {
        self.raw().nb_segs == 1
    }

    /// Grow the packet at the front by `len` bytes; `false` (nothing changed) without headroom.
    #[inline]
    pub fn prepend(&mut self, len: usize) -> bool {
        if len > self.headroom() {
            return false;
        }
        let len16 = len as u16;
        // SAFETY: we own the mbuf exclusively (&mut self); the new start is still inside the
        // buffer (len <= data_off), and data_len/pkt_len grow by what data_off shrank, exactly as
        // rte_pktmbuf_prepend does for any segment count (it touches only the first segment).
        let m = unsafe { self.0.as_mut() };
        m.data_off -= len16;
        m.data_len += len16;
        m.pkt_len += len as u32;
        true
    }

    /// Grow the packet at the end by `len` bytes (contents unspecified); `false` without tailroom.
    #[inline]
    pub fn append(&mut self, len: usize) -> bool {
        if len > u16::MAX as usize {
            return false;
        }
        if !self.single_segment() {
            // SAFETY: valid owned mbuf; DPDK checks the last segment's tailroom and returns null
            // without changing it.
            return !unsafe { ffi::dsrlb_pktmbuf_append(self.0.as_ptr(), len as u16) }.is_null();
        }
        if len > self.tailroom() {
            return false;
        }
        // SAFETY: exclusive ownership; one segment, and the new end stays inside its buffer
        // (len <= tailroom), as rte_pktmbuf_append does it.
        let m = unsafe { self.0.as_mut() };
        m.data_len += len as u16;
        m.pkt_len += len as u32;
        true
    }

    /// Remove `len` bytes from the front; `false` (nothing changed) if the packet is shorter.
    #[inline]
    pub fn adj(&mut self, len: usize) -> bool {
        if len > self.len() {
            return false;
        }
        let len16 = len as u16;
        // SAFETY: exclusive ownership; len <= data_len, so the new start is inside the first
        // segment's data, as rte_pktmbuf_adj requires and does.
        let m = unsafe { self.0.as_mut() };
        m.data_off += len16;
        m.data_len -= len16;
        m.pkt_len -= len as u32;
        true
    }

    /// Remove `len` bytes from the end; `false` (nothing changed) if the packet is shorter.
    #[inline]
    pub fn trim(&mut self, len: usize) -> bool {
        if len > self.len() {
            return false;
        }
        if !self.single_segment() {
            // SAFETY: valid owned mbuf; the shim trims the last segment and checks its length.
            return unsafe { ffi::dsrlb_pktmbuf_trim(self.0.as_ptr(), len as u16) == 0 };
        }
        // SAFETY: exclusive ownership; one segment and len <= data_len.
        let m = unsafe { self.0.as_mut() };
        m.data_len -= len as u16;
        m.pkt_len -= len as u32;
        true
    }

    /// Set the length to `len`, growing (`append`) or shrinking (`trim`) at the end. The same
    /// length changes nothing (an IP-in-IP encapsulation sets the frame to its IP length first,
    /// which for a frame without Ethernet padding it already is).
    #[inline]
    pub fn set_len(&mut self, len: usize) -> bool {
        let cur = self.len();
        if len > cur {
            self.append(len - cur)
        } else if len < cur {
            self.trim(cur - len)
        } else {
            true
        }
    }

    /// The RSS hash the NIC computed, if it delivered one.
    #[inline]
    pub fn rss_hash(&self) -> Option<u32> {
        if self.raw().ol_flags & rx_rss_flag() == 0 {
            return None;
        }
        // SAFETY: valid owned mbuf; the flag says the hash field holds an RSS hash.
        Some(unsafe { ffi::dsrlb_mbuf_rss(self.0.as_ptr()) })
    }

    /// Port the packet arrived on.
    pub fn port(&self) -> u16 {
        self.raw().port
    }

    /// Whether the NIC found a bad IP or L4 checksum.
    pub fn rx_checksum_bad(&self) -> bool {
        // SAFETY: plain value getters from the shim.
        let bad = unsafe { ffi::dsrlb_ol_rx_ip_cksum_bad() | ffi::dsrlb_ol_rx_l4_cksum_bad() };
        self.raw().ol_flags & bad != 0
    }

    /// Ask the NIC to compute the IPv4 header checksum on transmit (needs the port's offload).
    pub fn request_ipv4_checksum_offload(&mut self, l2_len: u16, l3_len: u16) {
        // SAFETY: valid owned mbuf; the shim sets ol_flags and the l2/l3 length bitfields.
        unsafe {
            let flags = ffi::dsrlb_ol_tx_ipv4() | ffi::dsrlb_ol_tx_ip_cksum();
            ffi::dsrlb_mbuf_set_tx_offload(self.0.as_ptr(), flags, l2_len, l3_len)
        }
    }

    /// Address of the packet data, for prefetching.
    #[inline]
    pub fn data_ptr(&self) -> *const u8 {
        let m = self.raw();
        (m.buf_addr as *const u8).wrapping_add(m.data_off as usize)
    }
}

fn rx_rss_flag() -> u64 {
    // SAFETY: returns a compile-time constant from the shim.
    unsafe { ffi::dsrlb_ol_rx_rss_hash() }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf and nobody else refers to it; it returns to its pool once.
        unsafe { ffi::dsrlb_pktmbuf_free(self.0.as_ptr()) }
    }
}

/// The dataplane works on mbufs as they are: each call is the inherent method of the same name.
impl packet_buf::PacketBuf for Mbuf {
    #[inline]
    fn data(&self) -> &[u8] {
        Mbuf::data(self)
    }

    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        Mbuf::data_mut(self)
    }

    #[inline]
    fn len(&self) -> usize {
        Mbuf::len(self)
    }

    #[inline]
    fn prepend(&mut self, n: usize) -> bool {
        Mbuf::prepend(self, n)
    }

    #[inline]
    fn set_len(&mut self, n: usize) -> bool {
        Mbuf::set_len(self, n)
    }
}

/// Up to `MAX_BURST` owned mbufs in a fixed array: the unit of RX and TX, never allocated per
/// packet. Whatever is left in a burst when it is dropped is freed.
pub struct Burst {
    ptrs: [*mut ffi::rte_mbuf; MAX_BURST],
    len: usize,
}

// SAFETY: a Burst owns its mbufs exactly as Mbuf does.
unsafe impl Send for Burst {}

impl Default for Burst {
    fn default() -> Self {
        Self::new()
    }
}

impl Burst {
    pub const fn new() -> Self {
        Burst { ptrs: [std::ptr::null_mut(); MAX_BURST], len: 0 }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == MAX_BURST
    }

    pub fn as_slice(&self) -> &[Mbuf] {
        // SAFETY: Mbuf is repr(transparent) over a non-null pointer, and the first `len` entries
        // are valid mbufs we own.
        unsafe { std::slice::from_raw_parts(self.ptrs.as_ptr().cast::<Mbuf>(), self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        // SAFETY: as in as_slice, with exclusive access through &mut self.
        unsafe { std::slice::from_raw_parts_mut(self.ptrs.as_mut_ptr().cast::<Mbuf>(), self.len) }
    }

    /// Add a packet; hands it back when the burst is full.
    #[inline]
    pub fn push(&mut self, m: Mbuf) -> std::result::Result<(), Mbuf> {
        if self.len == MAX_BURST {
            return Err(m);
        }
        self.ptrs[self.len] = m.into_raw();
        self.len += 1;
        Ok(())
    }

    /// Move packets from `pkts`, in order, into the burst until it is full: one room check for
    /// them all instead of one per `push`. Returns how many it took; the rest stay in `pkts`.
    #[inline]
    pub fn fill_from(&mut self, pkts: &mut impl Iterator<Item = Mbuf>) -> usize {
        let mut taken = 0;
        // The free slots come first in the zip, so no packet is taken once they run out.
        for (slot, m) in self.ptrs[self.len..].iter_mut().zip(pkts) {
            *slot = m.into_raw();
            taken += 1;
        }
        self.len += taken;
        taken
    }

    /// Take the last packet out.
    pub fn pop(&mut self) -> Option<Mbuf> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        NonNull::new(self.ptrs[self.len]).map(Mbuf)
    }

    /// Take every packet out, in order, leaving the burst empty. Packets the caller does not
    /// take from the iterator are freed when it is dropped.
    pub fn drain(&mut self) -> Drain<'_> {
        let n = std::mem::replace(&mut self.len, 0);
        Drain { ptrs: &self.ptrs[..n], next: 0 }
    }

    /// Free the first packet and move the rest to the front (the one a device refused).
    pub fn drop_first(&mut self) {
        if self.len == 0 {
            return;
        }
        drop(NonNull::new(self.ptrs[0]).map(Mbuf));
        self.consume_front(1);
    }

    /// Free every packet.
    pub fn clear(&mut self) {
        self.drain().for_each(drop);
    }

    pub(crate) fn spare(&mut self) -> (*mut *mut ffi::rte_mbuf, usize) {
        // SAFETY: len <= MAX_BURST, so the offset stays inside the array.
        (unsafe { self.ptrs.as_mut_ptr().add(self.len) }, MAX_BURST - self.len)
    }

    pub(crate) fn grow(&mut self, n: usize) {
        debug_assert!(self.len + n <= MAX_BURST);
        self.len += n;
    }

    /// Forget the first `n` packets (DPDK took them) and move the rest to the front.
    pub(crate) fn consume_front(&mut self, n: usize) {
        self.ptrs.copy_within(n..self.len, 0);
        self.len -= n;
    }

    pub(crate) fn raw_ptrs(&mut self) -> *mut *mut ffi::rte_mbuf {
        self.ptrs.as_mut_ptr()
    }

    pub(crate) fn fill_from_pool(&mut self, pool: &Mempool, n: usize) -> Result<()> {
        let (spare, room) = self.spare();
        if n > room {
            return Err(DpdkError::other("rte_pktmbuf_alloc_bulk", "burst has no room"));
        }
        // SAFETY: `spare` has room for n pointers; on success DPDK writes n valid mbufs there,
        // on failure it writes nothing.
        let rc = unsafe { ffi::dsrlb_pktmbuf_alloc_bulk(pool.as_ptr(), spare, n as u32) };
        if rc != 0 {
            return Err(DpdkError::from_rc("rte_pktmbuf_alloc_bulk", rc));
        }
        self.grow(n);
        Ok(())
    }
}

/// The packets of a burst, by value, in order.
pub struct Drain<'a> {
    ptrs: &'a [*mut ffi::rte_mbuf],
    next: usize,
}

impl Iterator for Drain<'_> {
    type Item = Mbuf;

    fn next(&mut self) -> Option<Mbuf> {
        let p = *self.ptrs.get(self.next)?;
        self.next += 1;
        // Each pointer was a valid owned mbuf; it is handed out exactly once.
        NonNull::new(p).map(Mbuf)
    }
}

impl Drop for Drain<'_> {
    fn drop(&mut self) {
        for m in self.by_ref() {
            drop(m);
        }
    }
}

impl Drop for Burst {
    fn drop(&mut self) {
        self.clear();
    }
}
