//! Flow keys, the hash every stage agrees on, and the per-worker flow table with the active-flow
//! count per backend that least-connections scheduling reads.

use crate::table::{Insert, MemoryAdvice, Millis, Slot, Table, FLAG_USED};

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

    /// What the flow table stores of this flow once `service` is known to own it.
    #[inline]
    pub fn id(&self, service: u16) -> FlowId {
        FlowId { src: (self.addrs >> 32) as u32, ports: (self.rest >> 16) as u32, service }
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

/// What the flow table keeps of a flow's key: the client's address, both ports, and the service
/// in place of the VIP and protocol. A service is one VIP, protocol and port (or every port of
/// one VIP and protocol) and its id is stable across reloads, so with the ports it names one
/// 5-tuple — in 10 bytes instead of 13, which is what lets three flows share a cache line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowId {
    pub src: u32,
    /// source port << 16 | destination port (both 0 for a fragment: see `FlowKey`).
    pub ports: u32,
    pub service: u16,
}

/// One flow in the table: 20 bytes, three to a 64-byte bucket. With the table at its usual load
/// (one flow per bucket or less) nearly every flow sits in its home bucket, the one line the
/// pipeline prefetches; two 32-byte slots per line left many more a line further on, each a
/// cache miss nothing had prefetched (`table::tests::three_slot_buckets_keep_flows_home`
/// measures both; docs/performance.md has the figures).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct FlowSlot {
    src: u32,
    ports: u32,
    pub backend: u32,
    pub expires: Millis,
    service: u16,
    /// `table::FLAG_USED`, `table::FLAG_CLOSING`.
    pub flags: u8,
}

impl FlowSlot {
    /// A used slot for flow `id`.
    pub fn new(id: FlowId, backend: u32, flags: u8, expires: Millis) -> Self {
        FlowSlot {
            src: id.src,
            ports: id.ports,
            backend,
            expires,
            service: id.service,
            flags: flags | FLAG_USED,
        }
    }

    pub fn id(&self) -> FlowId {
        FlowId { src: self.src, ports: self.ports, service: self.service }
    }
}

impl Slot for FlowSlot {
    type Key = FlowId;
    #[inline(always)]
    fn is_used(&self) -> bool {
        self.flags & FLAG_USED != 0
    }
    #[inline(always)]
    fn holds(&self, id: &FlowId) -> bool {
        self.is_used() && self.src == id.src && self.ports == id.ports && self.service == id.service
    }
    #[inline(always)]
    fn expires(&self) -> Millis {
        self.expires
    }
    #[inline(always)]
    fn free(&mut self) {
        self.flags = 0;
    }
}

/// Flow slots per bucket (one cache line).
pub const FLOWS_PER_BUCKET: usize = 3;

pub struct FlowTable {
    table: Table<FlowSlot, FLOWS_PER_BUCKET>,
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

    /// Flows the table was sized for (one per bucket; it holds up to three times as many).
    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// Flows the table can hold at most.
    pub fn slots(&self) -> usize {
        self.table.slots()
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

    /// The live flow `id` (`hash` is its `FlowKey::hash`), to read and refresh in place.
    #[inline(always)]
    pub fn get_mut(&mut self, id: &FlowId, hash: u64, now: Millis) -> Option<&mut FlowSlot> {
        self.table.get_mut(id, hash, now)
    }

    fn release(&mut self, backend: u32) {
        if let Some(a) = self.active.get_mut(backend as usize) {
            *a = a.saturating_sub(1);
        }
    }

    /// Insert a new flow (no live one has its id); `Full` means forward it statelessly.
    #[inline]
    pub fn insert(&mut self, slot: FlowSlot, hash: u64, now: Millis) -> Insert<FlowSlot> {
        let r = self.table.insert(&slot.id(), hash, slot, now);
        match r {
            Insert::Stored => self.take(slot.backend),
            Insert::Reclaimed(old) => {
                self.release(old.backend);
                self.take(slot.backend);
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
    pub fn reassign(&mut self, id: &FlowId, hash: u64, now: Millis, backend: u32) {
        let Some(e) = self.table.get_mut(id, hash, now) else { return };
        let old = std::mem::replace(&mut e.backend, backend);
        self.release(old);
        self.take(backend);
    }

    pub fn remove(&mut self, id: &FlowId, hash: u64) -> Option<FlowSlot> {
        let e = self.table.remove(id, hash)?;
        self.release(e.backend);
        Some(e)
    }

    /// Bounded incremental expiry: entries freed, and of those the ones that had seen only a
    /// SYN.
    pub fn sweep(&mut self, now: Millis, max_buckets: usize) -> (usize, usize) {
        let active = &mut self.active;
        let mut embryonic = 0;
        let freed = self.table.sweep(now, max_buckets, |e| {
            if let Some(a) = active.get_mut(e.backend as usize) {
                *a = a.saturating_sub(1);
            }
            embryonic += usize::from(e.flags & crate::table::FLAG_EMBRYONIC != 0);
        });
        (freed, embryonic)
    }

    pub fn for_each_live(&self, now: Millis, f: impl FnMut(&FlowSlot)) {
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
    fn id_keeps_client_ports_and_service() {
        let k = FlowKey::new(17, [10, 0, 0, 1], [10, 0, 0, 100], 40000, 53);
        let id = k.id(7);
        assert_eq!(id, FlowId { src: 0x0a00_0001, ports: 40000 << 16 | 53, service: 7 });
        let slot = FlowSlot::new(id, 3, 0, 100);
        assert_eq!((slot.id(), slot.backend, slot.expires), (id, 3, 100));
        assert!(slot.holds(&id));
        assert!(!slot.holds(&k.id(8)), "another service");
        assert!(
            !slot.holds(&FlowKey::new(17, [10, 0, 0, 1], [10, 0, 0, 100], 40000, 54).id(7)),
            "another port"
        );
        assert_eq!(std::mem::size_of::<FlowSlot>(), 20);
    }

    #[test]
    fn active_counts_follow_inserts_moves_and_expiry() {
        let mut ft = FlowTable::new(64, 4);
        for i in 0..5u16 {
            let k = FlowKey::new(6, [1, 1, 1, 1], [2, 2, 2, 2], i, 80);
            ft.insert(FlowSlot::new(k.id(0), if i < 3 { 1 } else { 2 }, 0, 100), k.hash(), 0);
        }
        assert_eq!((ft.active(1), ft.active(2)), (3, 2));
        let k = FlowKey::new(6, [1, 1, 1, 1], [2, 2, 2, 2], 0, 80);
        ft.reassign(&k.id(0), k.hash(), 1, 2);
        assert_eq!(ft.get_mut(&k.id(0), k.hash(), 1).unwrap().backend, 2);
        assert_eq!((ft.active(1), ft.active(2)), (2, 3));
        let mut freed = 0;
        for _ in 0..ft.capacity() {
            freed += ft.sweep(200, 1).0;
        }
        assert_eq!(freed, 5);
        assert_eq!((ft.active(1), ft.active(2), ft.len()), (0, 0, 0));
    }
}
