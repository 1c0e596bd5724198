//! Persistence: a client (or a VIP) keeps the backend of its first connection for a while, in a
//! per-worker table keyed by the persisted address within its service (one table per family).

use crate::flow::{hash_addr, hash_addr6};
use crate::snapshot::{PersistBy, Persistence, Snapshot};
use crate::table::{Entry, KeyedSlot, Millis, Table};

/// An address a service can persist on: IPv4 (`[u8; 4]`) or IPv6 (`[u8; 16]`).
pub trait PersistAddr: Copy + Default + Eq {
    /// The hash the service's Maglev table is read with (the same as source hashing's).
    fn hash(&self) -> u64;
}

impl PersistAddr for [u8; 4] {
    #[inline]
    fn hash(&self) -> u64 {
        hash_addr(*self)
    }
}

impl PersistAddr for [u8; 16] {
    #[inline]
    fn hash(&self) -> u64 {
        hash_addr6(*self)
    }
}

/// The persisted address within a service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PersistKey<A> {
    pub addr: A,
    pub service: u16,
}

/// The address a service persists on for a client→VIP packet.
#[inline]
pub fn persisted_addr<A>(by: PersistBy, src: A, dst: A) -> A {
    match by {
        PersistBy::SourceIp => src,
        PersistBy::DestinationIp => dst,
    }
}

/// Two entries to a cache line in either family (IPv4: 20 bytes each, IPv6: 32).
pub struct PersistTable<A: PersistAddr = [u8; 4]> {
    table: Table<KeyedSlot<PersistKey<A>>, 2>,
}

impl<A: PersistAddr> PersistTable<A> {
    pub fn new(capacity: usize) -> Self {
        PersistTable { table: Table::new(capacity) }
    }

    /// The backend for a new flow of service position `svc` whose persisted address is `addr`:
    /// the one it already has while that one takes new flows, else its consistent-hash pick
    /// (the same on every worker and every instance), which is remembered.
    #[inline]
    pub fn pick(
        &mut self,
        snap: &Snapshot,
        svc: usize,
        per: Persistence,
        addr: A,
        now: Millis,
    ) -> Option<u32> {
        let service = snap.services[svc].id;
        let pk = PersistKey { addr, service };
        let h = addr.hash();
        let ph = h ^ service as u64;
        if let Some(slot) = self.table.get_mut(&pk, ph, now) {
            let e = &mut slot.entry;
            if snap.takes_new(svc, e.backend) {
                e.expires = now.wrapping_add(per.timeout_ms);
                return Some(e.backend);
            }
        }
        let b = snap.maglev(svc).lookup(h)?;
        let _ = self.table.remove(&pk, ph);
        let entry = Entry { backend: b, service, flags: 0, expires: now.wrapping_add(per.timeout_ms) };
        let _ = self.table.insert(&pk, ph, KeyedSlot::new(pk, entry), now);
        Some(b)
    }

    /// Bounded expiry between bursts, as the flow table's.
    pub fn sweep(&mut self, now: Millis, max_buckets: usize) {
        self.table.sweep(now, max_buckets, |_| {});
    }
}
