//! Flow keys, the hash every stage agrees on, and the per-worker flow table with the active-flow
//! count per backend that least-connections scheduling reads.

use crate::table::{Entry, Insert, MemoryAdvice, Millis, Table};

/// The 5-tuple of a client→VIP flow (ports are 0 for fragmented datagrams, which are
/// scheduled on addresses only so every fragment lands on the same backend). Packed in two
/// words so that comparing and hashing keys is two operations each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// source address << 32 | destination address
    addrs: u64,
    /// source port << 32 | destination port << 16 | protocol
    rest: u64,
}

impl FlowKey {
    pub const ZERO: FlowKey = FlowKey { addrs: 0, rest: 0 };

    #[inline]
    pub fn new(proto: u8, src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Self {
        FlowKey {
            addrs: ((u32::from_be_bytes(src) as u64) << 32) | u32::from_be_bytes(dst) as u64,
            rest: ((sport as u64) << 32) | ((dport as u64) << 16) | proto as u64,
        }
    }

    pub fn src(&self) -> [u8; 4] {
        ((self.addrs >> 32) as u32).to_be_bytes()
    }

    pub fn dst(&self) -> [u8; 4] {
        (self.addrs as u32).to_be_bytes()
    }

    pub fn sport(&self) -> u16 {
        (self.rest >> 32) as u16
    }

    pub fn dport(&self) -> u16 {
        (self.rest >> 16) as u16
    }

    pub fn proto(&self) -> u8 {
        self.rest as u8
    }

    /// A 64-bit hash: the flow table's bucket index and Maglev's slot both come from it, so it
    /// must be the same on every worker (no per-process seed).
    #[inline]
    pub fn hash(&self) -> u64 {
        mix64(self.addrs ^ mix64(self.rest ^ 0x243f_6a88_85a3_08d3))
    }
}

/// The splitmix64 finaliser: cheap and well-spread for table indexing.
#[inline]
pub fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Hash of one address (source- or destination-IP scheduling and persistence).
#[inline]
pub fn hash_addr(a: [u8; 4]) -> u64 {
    mix64(u32::from_be_bytes(a) as u64 ^ 0x1319_8a2e_0370_7344)
}

pub struct FlowTable {
    table: Table<FlowKey>,
    /// Live flows this worker holds per backend id (least-connections input).
    active: Vec<u32>,
}

impl FlowTable {
    pub fn new(capacity: usize, backend_ids: usize) -> Self {
        Self::with_memory_advice(capacity, backend_ids, None)
    }

    pub fn with_memory_advice(capacity: usize, backend_ids: usize, advise: Option<MemoryAdvice>) -> Self {
        FlowTable { table: Table::with_memory_advice(capacity, advise), active: vec![0; backend_ids] }
    }

    /// Grow the per-backend counts when a configuration adds backend ids (between bursts).
    pub fn ensure_backends(&mut self, n: usize) {
        if self.active.len() < n {
            self.active.resize(n, 0);
        }
    }

    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub fn memory_bytes(&self) -> usize {
        self.table.memory_bytes()
    }

    /// Flows currently held for `backend` by this worker.
    #[inline]
    pub fn active(&self, backend: u32) -> u32 {
        self.active.get(backend as usize).copied().unwrap_or(0)
    }

    /// Start pulling the key's home bucket into cache before the packet is processed.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        self.table.prefetch(hash)
    }

    #[inline(always)]
    pub fn get_mut(&mut self, key: &FlowKey, hash: u64, now: Millis) -> Option<&mut Entry> {
        self.table.get_mut(key, hash, now)
    }

    fn release(&mut self, backend: u32) {
        if let Some(a) = self.active.get_mut(backend as usize) {
            *a = a.saturating_sub(1);
        }
    }

    /// Insert a new flow; `Full` means forward it statelessly.
    #[inline]
    pub fn insert(&mut self, key: FlowKey, hash: u64, entry: Entry, now: Millis) -> Insert {
        let r = self.table.insert(key, hash, entry, now);
        match r {
            Insert::Stored => self.take(entry.backend),
            Insert::Reclaimed(old) => {
                self.release(old.backend);
                self.take(entry.backend);
            }
            Insert::Full => {}
        }
        r
    }

    fn take(&mut self, backend: u32) {
        if let Some(a) = self.active.get_mut(backend as usize) {
            *a += 1;
        }
    }

    /// Point a live flow at another backend (its old one failed or left).
    pub fn reassign(&mut self, key: &FlowKey, hash: u64, now: Millis, backend: u32) {
        let Some(e) = self.table.get_mut(key, hash, now) else { return };
        let old = std::mem::replace(&mut e.backend, backend);
        self.release(old);
        self.take(backend);
    }

    pub fn remove(&mut self, key: &FlowKey, hash: u64) -> Option<Entry> {
        let e = self.table.remove(key, hash)?;
        self.release(e.backend);
        Some(e)
    }

    /// Bounded incremental expiry; returns entries freed.
    pub fn sweep(&mut self, now: Millis, max_buckets: usize) -> usize {
        let active = &mut self.active;
        self.table.sweep(now, max_buckets, |_, e| {
            if let Some(a) = active.get_mut(e.backend as usize) {
                *a = a.saturating_sub(1);
            }
        })
    }

    pub fn for_each_live(&self, now: Millis, f: impl FnMut(&FlowKey, &Entry)) {
        self.table.for_each_live(now, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_16_bytes_and_hash_is_stable() {
        assert_eq!(std::mem::size_of::<FlowKey>(), 16);
        let k = FlowKey::new(6, [10, 0, 0, 1], [10, 0, 0, 100], 40000, 80);
        assert_eq!(k.hash(), FlowKey::new(6, [10, 0, 0, 1], [10, 0, 0, 100], 40000, 80).hash());
        assert_ne!(k.hash(), FlowKey::new(6, [10, 0, 0, 1], [10, 0, 0, 100], 40001, 80).hash());
    }

    #[test]
    fn active_counts_follow_inserts_moves_and_expiry() {
        let mut ft = FlowTable::new(64, 4);
        let e = |b| Entry { backend: b, service: 0, flags: 0, expires: 100 };
        for i in 0..5u16 {
            let k = FlowKey::new(6, [1, 1, 1, 1], [2, 2, 2, 2], i, 80);
            ft.insert(k, k.hash(), e(if i < 3 { 1 } else { 2 }), 0);
        }
        assert_eq!((ft.active(1), ft.active(2)), (3, 2));
        let k = FlowKey::new(6, [1, 1, 1, 1], [2, 2, 2, 2], 0, 80);
        ft.reassign(&k, k.hash(), 1, 2);
        assert_eq!(ft.get_mut(&k, k.hash(), 1).unwrap().backend, 2);
        assert_eq!((ft.active(1), ft.active(2)), (2, 3));
        let mut freed = 0;
        for _ in 0..ft.capacity() {
            freed += ft.sweep(200, 1);
        }
        assert_eq!(freed, 5);
        assert_eq!((ft.active(1), ft.active(2), ft.len()), (0, 0, 0));
    }
}
