//! Rings of mbufs, and ports made of them (`net_ring`): a device whose RX queue is a ring some
//! other lcore fills and whose TX queue is a ring it empties. The latency benchmark drives the
//! production worker loop through one, so that it can stamp each packet as it "arrives" and read
//! the stamp back as the packet leaves.

use std::ffi::CString;
use std::ptr::NonNull;

use crate::error::{DpdkError, Result};
use crate::ffi;
use crate::mbuf::Burst;

/// A multi-producer, multi-consumer ring of mbuf pointers. The mbufs in it are owned by the
/// ring until dequeued; a ring dropped with mbufs still in it frees them.
pub struct Ring(NonNull<ffi::rte_ring>);

// SAFETY: created without the single-producer/single-consumer flags, so every enqueue and
// dequeue is safe from any number of threads at once; the pointer itself is only freed on drop.
unsafe impl Send for Ring {}
// SAFETY: as above: all operations through &Ring are DPDK's thread-safe MP/MC ring calls.
unsafe impl Sync for Ring {}

impl Ring {
    /// A ring of `size` slots (a power of two; it holds `size - 1` mbufs), named `name`.
    pub fn new(name: &str, size: u32) -> Result<Ring> {
        if !size.is_power_of_two() || size < 2 {
            return Err(DpdkError::other("rte_ring_create", "size must be a power of two, at least 2"));
        }
        let c = CString::new(name).map_err(|_| DpdkError::other("rte_ring_create", "NUL in name"))?;
        // SAFETY: c is NUL-terminated; flags 0 is an MP/MC ring; DPDK returns null on failure
        // (and sets rte_errno).
        let p = unsafe { ffi::rte_ring_create(c.as_ptr(), size, ffi::SOCKET_ID_ANY, 0) };
        NonNull::new(p).map(Ring).ok_or_else(|| DpdkError::from_errno("rte_ring_create"))
    }

    /// Move as many of `burst`'s mbufs as fit into the ring, from the front; returns how many.
    pub fn enqueue(&self, burst: &mut Burst) -> usize {
        let len = burst.len();
        if len == 0 {
            return 0;
        }
        // SAFETY: the first `len` pointers are valid owned mbufs; the ring takes exactly the
        // first `n` it reports, which the burst then forgets.
        let n =
            unsafe { ffi::dsrlb_ring_enqueue_burst(self.0.as_ptr(), burst.raw_ptrs(), len as u32) } as usize;
        burst.consume_front(n);
        n
    }

    /// Move up to the burst's free space of mbufs out of the ring into `burst`; returns how many.
    pub fn dequeue(&self, burst: &mut Burst) -> usize {
        let (spare, room) = burst.spare();
        if room == 0 {
            return 0;
        }
        // SAFETY: `spare` has room for `room` pointers; the ring writes at most that many mbufs,
        // each of which it owned and now hands to the burst.
        let n = unsafe { ffi::dsrlb_ring_dequeue_burst(self.0.as_ptr(), spare, room as u32) } as usize;
        burst.grow(n);
        n
    }

    /// A port named `name` that receives what is enqueued on `rx` and transmits into `tx`.
    /// The rings must outlive the port, hence `'static` (a benchmark leaks them on purpose).
    /// Start it with `Port::start` as any other.
    pub fn port(name: &str, rx: &'static Ring, tx: &'static Ring) -> Result<u16> {
        let c = CString::new(name).map_err(|_| DpdkError::other("rte_eth_from_rings", "NUL in name"))?;
        let (rxs, txs) = ([rx.0.as_ptr()], [tx.0.as_ptr()]);
        // SAFETY: c is NUL-terminated; the arrays hold one valid ring each, which live for the
        // rest of the program; DPDK returns the new port id or -1.
        let id = unsafe {
            ffi::rte_eth_from_rings(c.as_ptr(), rxs.as_ptr(), 1, txs.as_ptr(), 1, ffi::SOCKET_ID_ANY as u32)
        };
        u16::try_from(id).map_err(|_| DpdkError::from_errno("rte_eth_from_rings"))
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        let mut b = Burst::new();
        while self.dequeue(&mut b) > 0 {
            b.clear();
        }
        // SAFETY: we own the ring, nobody else holds it (a port's ring is 'static and never
        // dropped), and it is freed once.
        unsafe { ffi::rte_ring_free(self.0.as_ptr()) }
    }
}
