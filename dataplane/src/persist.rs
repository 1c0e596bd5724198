//! Persistence: a client (or a VIP) keeps the backend of its first connection for a while, in a
//! per-worker table keyed by the persisted address within its service.

use crate::flow::hash_addr;
use crate::snapshot::{PersistBy, Persistence, Snapshot};
use crate::table::{Entry, KeyedSlot, Millis, Table};

/// The persisted address within a service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PersistKey {
    pub addr: [u8; 4],
    pub service: u16,
}

/// The address a service persists on for a client→VIP packet.
#[inline]
pub fn persisted_addr(by: PersistBy, src: [u8; 4], dst: [u8; 4]) -> [u8; 4] {
    match by {
        PersistBy::SourceIp => src,
        PersistBy::DestinationIp => dst,
    }
}

pub struct PersistTable {
    table: Table<KeyedSlot<PersistKey>, 2>,
}

impl PersistTable {
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
        addr: [u8; 4],
        now: Millis,
    ) -> Option<u32> {
        let service = snap.services[svc].id;
        let pk = PersistKey { addr, service };
        let ph = hash_addr(addr) ^ service as u64;
        if let Some(slot) = self.table.get_mut(&pk, ph, now) {
            let e = &mut slot.entry;
            if snap.takes_new(svc, e.backend) {
                e.expires = now.wrapping_add(per.timeout_ms);
                return Some(e.backend);
            }
        }
        let b = snap.maglev(svc).lookup(hash_addr(addr))?;
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
