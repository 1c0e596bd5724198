//! Flow keys, the hash every stage agrees on, and the per-worker flow tables (one per address
//! family, each with the active-flow count per backend that least-connections scheduling reads).

use crate::crc::crc32c_u64;
use crate::table::{Insert, MemoryAdvice, Millis, Slot, Table, FLAG_USED};

/// The 5-tuple of a client→VIP flow (ports are 0 for fragmented datagrams, which are
/// scheduled on addresses only so every fragment lands on the same backend). Packed in two
/// words so that comparing and hashing keys is two operations each, and laid out as the bytes
/// lie in the IPv4 and TCP/UDP headers (read as little-endian words), so that keying a packet is
/// two loads: addresses, then ports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// source address, then destination address, as on the wire
    addrs: u64,
    /// source port, then destination port, as on the wire; protocol << 32
    rest: u64,
}

impl FlowKey {
    pub const ZERO: FlowKey = FlowKey { addrs: 0, rest: 0 };

    #[inline]
    pub fn new(proto: u8, src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Self {
        let [s0, s1, s2, s3] = src;
        let [d0, d1, d2, d3] = dst;
        let ([p0, p1], [q0, q1]) = (sport.to_be_bytes(), dport.to_be_bytes());
        FlowKey::from_wire(
            u64::from_le_bytes([s0, s1, s2, s3, d0, d1, d2, d3]),
            u32::from_le_bytes([p0, p1, q0, q1]),
            proto,
        )
    }

    /// The key from the header's words: the 8 bytes of source and destination address and the 4
    /// of source and destination port, each read little-endian, and the protocol.
    #[inline(always)]
    pub fn from_wire(addrs: u64, ports: u32, proto: u8) -> Self {
        FlowKey { addrs, rest: ports as u64 | (proto as u64) << 32 }
    }

    pub fn src(&self) -> [u8; 4] {
        (self.addrs as u32).to_le_bytes()
    }

    pub fn dst(&self) -> [u8; 4] {
        ((self.addrs >> 32) as u32).to_le_bytes()
    }

    pub fn sport(&self) -> u16 {
        let [a, b, _, _] = (self.rest as u32).to_le_bytes();
        u16::from_be_bytes([a, b])
    }

    pub fn dport(&self) -> u16 {
        let [_, _, a, b] = (self.rest as u32).to_le_bytes();
        u16::from_be_bytes([a, b])
    }

    pub fn proto(&self) -> u8 {
        (self.rest >> 32) as u8
    }

    /// What the flow table stores of this flow once `service` is known to own it.
    #[inline]
    pub fn id(&self, service: u16) -> FlowId {
        FlowId { src: self.addrs as u32, ports: self.rest as u32, service }
    }

    /// The flow's hash: the flow table's bucket index and Maglev's slot both come from it, so it
    /// must be the same on every worker and instance (no per-process seed). CRC32C over the two
    /// words (two instructions on the appliance's CPU baseline, `crc`), then `spread`.
    #[inline]
    pub fn hash(&self) -> u64 {
        spread(crc32c_u64(crc32c_u64(FLOW_SEED, self.addrs), self.rest))
    }
}

/// Where every flow hash starts (any constant would do; all instances must use the same).
const FLOW_SEED: u32 = 0x243f_6a88;

/// A CRC is linear: keys that differ in a pattern (a client's consecutive ports, a subnet's
/// consecutive addresses) map to a pattern of values, and their low bits — the flow table's
/// bucket — bunched: at one flow per bucket 94 % of such flows sat in their home bucket where
/// random placement gives 97.6 % (`table::tests::three_slot_buckets_keep_flows_home`). One
/// multiplication spreads every bit of the CRC over the result.
#[inline(always)]
fn spread(crc: u32) -> u64 {
    let x = (crc as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^ (x >> 32)
}

/// An IPv6 address as two words, for hashing.
#[inline(always)]
fn halves(a: [u8; 16]) -> [u64; 2] {
    let v = u128::from_ne_bytes(a);
    [v as u64, (v >> 64) as u64]
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
    /// The client's address, as `FlowKey` holds it.
    pub src: u32,
    /// Source and destination port, as `FlowKey` holds them (both 0 for a fragment).
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

/// What a flow table needs of its slots besides `Slot`: the backend a flow goes to and its
/// state flags.
pub trait FlowEntry: Slot {
    fn backend(&self) -> u32;
    fn backend_mut(&mut self) -> &mut u32;
    fn expires_mut(&mut self) -> &mut Millis;
    fn flags(&self) -> u8;
    /// The key this slot holds.
    fn key(&self) -> Self::Key;
}

impl FlowEntry for FlowSlot {
    #[inline(always)]
    fn backend(&self) -> u32 {
        self.backend
    }
    #[inline(always)]
    fn backend_mut(&mut self) -> &mut u32 {
        &mut self.backend
    }
    #[inline(always)]
    fn expires_mut(&mut self) -> &mut Millis {
        &mut self.expires
    }
    #[inline(always)]
    fn flags(&self) -> u8 {
        self.flags
    }
    fn key(&self) -> FlowId {
        self.id()
    }
}

/// Flow slots per bucket (one cache line).
pub const FLOWS_PER_BUCKET: usize = 3;
/// IPv6 flow slots per bucket: a 32-byte slot (the client's 16-byte address) leaves room for two.
pub const FLOWS6_PER_BUCKET: usize = 2;

/// The IPv4 flow table.
pub type FlowTable = FlowTableOf<FlowSlot, FLOWS_PER_BUCKET>;
/// The IPv6 flow table.
pub type FlowTable6 = FlowTableOf<FlowSlot6, FLOWS6_PER_BUCKET>;

pub struct FlowTableOf<S, const N: usize> {
    table: Table<S, N>,
    /// Live flows this worker holds per backend id (least-connections input).
    active: Vec<u32>,
}

impl<S: FlowEntry, const N: usize> FlowTableOf<S, N> {
    pub fn new(capacity: usize, backend_ids: usize) -> Self {
        Self::with_memory_advice(capacity, backend_ids, None)
    }

    pub fn with_memory_advice(capacity: usize, backend_ids: usize, advise: Option<MemoryAdvice>) -> Self {
        FlowTableOf { table: Table::with_memory_advice(capacity, advise), active: vec![0; backend_ids] }
    }

    /// Grow the per-backend counts when a configuration adds backend ids (between bursts).
    pub fn ensure_backends(&mut self, n: usize) {
        if self.active.len() < n {
            self.active.resize(n, 0);
        }
    }

    /// Flows the table was sized for (one per bucket; it holds up to `N` times as many).
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

    /// Every backend's count, by id.
    #[inline]
    pub fn active_counts(&self) -> &[u32] {
        &self.active
    }

    /// Start pulling the key's home bucket into cache before the packet is processed.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        self.table.prefetch(hash)
    }

    /// The live flow `id` (`hash` is its key's hash), to read and refresh in place.
    #[inline(always)]
    pub fn get_mut(&mut self, id: &S::Key, hash: u64, now: Millis) -> Option<&mut S> {
        self.table.get_mut(id, hash, now)
    }

    /// `get_mut` for a flow in its home bucket only (`Table::get_home_mut`): `None` may mean
    /// "live, but elsewhere".
    #[inline(always)]
    pub fn get_home_mut(&mut self, id: &S::Key, hash: u64, now: Millis) -> Option<&mut S> {
        self.table.get_home_mut(id, hash, now)
    }

    fn release(&mut self, backend: u32) {
        if let Some(a) = self.active.get_mut(backend as usize) {
            *a = a.saturating_sub(1);
        }
    }

    /// Insert a new flow (no live one has its id); `Full` means forward it statelessly.
    #[inline]
    pub fn insert(&mut self, slot: S, hash: u64, now: Millis) -> Insert<S> {
        let r = self.table.insert(&slot.key(), hash, slot, now);
        match r {
            Insert::Stored => self.take(slot.backend()),
            Insert::Reclaimed(old) => {
                self.release(old.backend());
                self.take(slot.backend());
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
    pub fn reassign(&mut self, id: &S::Key, hash: u64, now: Millis, backend: u32) {
        let Some(e) = self.table.get_mut(id, hash, now) else { return };
        let old = std::mem::replace(e.backend_mut(), backend);
        self.release(old);
        self.take(backend);
    }

    pub fn remove(&mut self, id: &S::Key, hash: u64) -> Option<S> {
        let e = self.table.remove(id, hash)?;
        self.release(e.backend());
        Some(e)
    }

    /// Bounded incremental expiry: entries freed, and of those the ones that had seen only a
    /// SYN.
    pub fn sweep(&mut self, now: Millis, max_buckets: usize) -> (usize, usize) {
        let active = &mut self.active;
        let mut embryonic = 0;
        let freed = self.table.sweep(now, max_buckets, |e| {
            if let Some(a) = active.get_mut(e.backend() as usize) {
                *a = a.saturating_sub(1);
            }
            embryonic += usize::from(e.flags() & crate::table::FLAG_EMBRYONIC != 0);
        });
        (freed, embryonic)
    }

    pub fn for_each_live(&self, now: Millis, f: impl FnMut(&S)) {
        self.table.for_each_live(now, f)
    }
}

/// The 5-tuple of a client→VIP IPv6 flow (ports 0 for fragments, as for IPv4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FlowKey6 {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
}

impl FlowKey6 {
    pub fn new(proto: u8, src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16) -> Self {
        FlowKey6 { src, dst, sport, dport, proto }
    }

    /// As `FlowKey::hash`: the same on every worker and instance.
    #[inline]
    pub fn hash(&self) -> u64 {
        let rest = ((self.sport as u64) << 32) | ((self.dport as u64) << 16) | self.proto as u64;
        let [s0, s1] = halves(self.src);
        let [d0, d1] = halves(self.dst);
        let h = crc32c_u64(crc32c_u64(FLOW_SEED, s0), s1);
        spread(crc32c_u64(crc32c_u64(crc32c_u64(h, d0), d1), rest))
    }

    #[inline]
    pub fn id(&self, service: u16) -> FlowId6 {
        FlowId6 { src: words(self.src), ports: ((self.sport as u32) << 16) | self.dport as u32, service }
    }
}

/// 16 bytes as four native words (compared, not interpreted).
#[inline]
fn words(a: [u8; 16]) -> [u32; 4] {
    [
        u32::from_ne_bytes([a[0], a[1], a[2], a[3]]),
        u32::from_ne_bytes([a[4], a[5], a[6], a[7]]),
        u32::from_ne_bytes([a[8], a[9], a[10], a[11]]),
        u32::from_ne_bytes([a[12], a[13], a[14], a[15]]),
    ]
}

/// An IPv6 address folded to 64 bits for hashing (both halves mixed, so neither is lost).
#[inline]
pub fn fold16(a: [u8; 16]) -> u64 {
    let v = u128::from_be_bytes(a);
    mix64((v >> 64) as u64) ^ (v as u64)
}

/// Hash of one IPv6 address (source- or destination-IP scheduling and persistence).
#[inline]
pub fn hash_addr6(a: [u8; 16]) -> u64 {
    mix64(fold16(a) ^ 0x1319_8a2e_0370_7344)
}

/// What the IPv6 flow table keeps of a flow's key, as `FlowId` does for IPv4.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowId6 {
    pub src: [u32; 4],
    pub ports: u32,
    pub service: u16,
}

/// One IPv6 flow in the table: 32 bytes, two to a 64-byte bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct FlowSlot6 {
    src: [u32; 4],
    ports: u32,
    pub backend: u32,
    pub expires: Millis,
    service: u16,
    pub flags: u8,
}

impl FlowSlot6 {
    pub fn new(id: FlowId6, backend: u32, flags: u8, expires: Millis) -> Self {
        FlowSlot6 {
            src: id.src,
            ports: id.ports,
            backend,
            expires,
            service: id.service,
            flags: flags | FLAG_USED,
        }
    }

    pub fn id(&self) -> FlowId6 {
        FlowId6 { src: self.src, ports: self.ports, service: self.service }
    }
}

impl Slot for FlowSlot6 {
    type Key = FlowId6;
    #[inline(always)]
    fn is_used(&self) -> bool {
        self.flags & FLAG_USED != 0
    }
    #[inline(always)]
    fn holds(&self, id: &FlowId6) -> bool {
        self.is_used() && self.ports == id.ports && self.service == id.service && self.src == id.src
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

impl FlowEntry for FlowSlot6 {
    #[inline(always)]
    fn backend(&self) -> u32 {
        self.backend
    }
    #[inline(always)]
    fn backend_mut(&mut self) -> &mut u32 {
        &mut self.backend
    }
    #[inline(always)]
    fn expires_mut(&mut self) -> &mut Millis {
        &mut self.expires
    }
    #[inline(always)]
    fn flags(&self) -> u8 {
        self.flags
    }
    fn key(&self) -> FlowId6 {
        self.id()
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
        assert_eq!(
            id,
            FlowId {
                src: u32::from_le_bytes([10, 0, 0, 1]),
                ports: u32::from_le_bytes([0x9c, 0x40, 0, 53]),
                service: 7
            }
        );
        assert_eq!(
            (k.src(), k.dst(), k.sport(), k.dport(), k.proto()),
            ([10, 0, 0, 1], [10, 0, 0, 100], 40000, 53, 17)
        );
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
    fn ipv6_slots_are_32_bytes_and_keys_tell_flows_apart() {
        assert_eq!(std::mem::size_of::<FlowSlot6>(), 32);
        let a = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
        let vip = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];
        let k = FlowKey6::new(6, a, vip, 40000, 80);
        assert_eq!(k.hash(), FlowKey6::new(6, a, vip, 40000, 80).hash());
        let mut b = a;
        b[0] ^= 1; // the high half matters too
        assert_ne!(k.hash(), FlowKey6::new(6, b, vip, 40000, 80).hash());
        let mut ft = FlowTable6::new(64, 4);
        ft.insert(FlowSlot6::new(k.id(3), 2, 0, 100), k.hash(), 0);
        assert_eq!(ft.get_mut(&k.id(3), k.hash(), 1).map(|e| e.backend), Some(2));
        let other = FlowKey6::new(6, b, vip, 40000, 80);
        assert!(ft.get_mut(&other.id(3), other.hash(), 1).is_none());
        assert_eq!(ft.active(2), 1);
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
