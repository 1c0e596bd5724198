//! Packet-buffer pools.

use std::ffi::CString;
use std::ptr::NonNull;

use crate::error::{DpdkError, Result};
use crate::ffi;
use crate::mbuf::Mbuf;

/// A pktmbuf pool. Mempools are multi-producer/multi-consumer safe, so a shared reference is
/// enough to allocate from several lcores.
pub struct Mempool {
    ptr: NonNull<ffi::rte_mempool>,
    size: u32,
}

// SAFETY: rte_mempool operations are thread-safe (lock-free ring plus per-lcore caches).
unsafe impl Send for Mempool {}
// SAFETY: as above; all methods take &self and use only thread-safe mempool calls.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// A pool of `size` mbufs with `data_room` bytes each (headroom included), per-lcore cache
    /// `cache` (0 for none), on the given NUMA socket (`None`: any).
    pub fn new(name: &str, size: u32, cache: u32, data_room: u16, socket: Option<i32>) -> Result<Self> {
        let cname = CString::new(name)
            .map_err(|_| DpdkError::other("rte_pktmbuf_pool_create", "NUL in pool name"))?;
        let socket = socket.unwrap_or(ffi::SOCKET_ID_ANY);
        // SAFETY: name is NUL-terminated and copied by DPDK; the other arguments are plain values.
        let p = unsafe { ffi::rte_pktmbuf_pool_create(cname.as_ptr(), size, cache, 0, data_room, socket) };
        match NonNull::new(p) {
            Some(ptr) => Ok(Mempool { ptr, size }),
            None => Err(DpdkError::from_errno("rte_pktmbuf_pool_create")),
        }
    }

    /// Default data room: 2048 bytes of data plus the standard headroom.
    pub fn default_data_room() -> u16 {
        ffi::RTE_MBUF_DEFAULT_BUF_SIZE as u16
    }

    pub fn as_ptr(&self) -> *mut ffi::rte_mempool {
        self.ptr.as_ptr()
    }

    pub fn size(&self) -> u32 {
        self.size
    }

    /// Mbufs free in the pool right now.
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is valid for our lifetime; the count is a racy read by design.
        unsafe { ffi::dsrlb_mempool_avail(self.ptr.as_ptr()) }
    }

    /// One mbuf, or `None` when the pool has run dry.
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool is valid; a null return means "empty" and is handled.
        let m = unsafe { ffi::dsrlb_pktmbuf_alloc(self.ptr.as_ptr()) };
        NonNull::new(m).map(Mbuf::from_nonnull)
    }

    /// Fill `out` completely or not at all (DPDK's bulk semantics).
    pub fn alloc_bulk(&self, out: &mut crate::Burst, n: usize) -> Result<()> {
        out.fill_from_pool(self, n)
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        // Freeing a pool while mbufs are still out would leave them dangling; in that case we
        // leak the pool instead (it is process-lifetime memory in practice).
        if self.available() == self.size {
            // SAFETY: every mbuf is back in the pool, so nothing refers to its memory any more.
            unsafe { ffi::rte_mempool_free(self.ptr.as_ptr()) }
        }
    }
}
