//! A fixed-capacity hash table with per-entry expiry, used for flows and for persistence.
//!
//! Buckets are one cache line of two slots; a key lives in one of `PROBE_BUCKETS` consecutive
//! buckets from its home. Nothing is allocated after `new`. Lookups treat expired entries as
//! absent; inserts reuse empty or expired slots in the probe window and report `Full` when there
//! are none, so the caller can fall back to stateless forwarding instead of dropping.

/// Buckets searched for a key (8 slots): bounds the work per packet.
pub const PROBE_BUCKETS: usize = 4;
const SLOTS: usize = 2;

/// Called with the address and length of a table's memory before its first write; returns
/// whether the advice was taken (e.g. `dpdk_bindings::advise_huge_pages`).
pub type MemoryAdvice = fn(usize, usize) -> bool;

/// Time in milliseconds on a wrapping 32-bit clock (49 days per lap; ages compare wrapping).
pub type Millis = u32;

#[inline]
fn expired(expires: Millis, now: Millis) -> bool {
    now.wrapping_sub(expires) as i32 >= 0
}

/// What a slot holds besides its key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Entry {
    pub backend: u32,
    pub service: u16,
    pub flags: u8,
    pub expires: Millis,
}

pub const FLAG_USED: u8 = 0x01;
/// The client sent FIN or RST: the entry lives only for the short closing timeout.
pub const FLAG_CLOSING: u8 = 0x02;

#[derive(Clone, Copy, Default)]
struct Slot<K> {
    key: K,
    entry: Entry,
}

#[derive(Clone, Copy)]
#[repr(align(64))]
struct Bucket<K> {
    slots: [Slot<K>; SLOTS],
}

/// Outcome of an insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    /// Stored in a free slot.
    Stored,
    /// Stored in place of an expired entry (returned, so its owner can be accounted).
    Reclaimed(Entry),
    /// Every slot in the probe window holds a live entry.
    Full,
}

pub struct Table<K> {
    buckets: Box<[Bucket<K>]>,
    mask: usize,
    len: usize,
    sweep_cursor: usize,
}

impl<K: Copy + Default + Eq> Table<K> {
    /// A table that holds at least `capacity` entries: `capacity` rounded up to a power of two
    /// buckets of two slots, so the load stays at or under one half.
    pub fn new(capacity: usize) -> Self {
        Self::with_memory_advice(capacity, None)
    }

    /// As `new`, and `advise(address, bytes)` is called on the bucket memory after it is
    /// reserved and before it is first written, when the kernel still decides how to back it
    /// (the appliance asks for huge pages there: see `WorkerConfig::memory_advice`).
    pub fn with_memory_advice(capacity: usize, advise: Option<MemoryAdvice>) -> Self {
        let n = capacity.max(PROBE_BUCKETS).next_power_of_two();
        let mut buckets: Vec<Bucket<K>> = Vec::with_capacity(n);
        if let Some(advise) = advise {
            advise(buckets.as_ptr() as usize, n * std::mem::size_of::<Bucket<K>>());
        }
        buckets.resize(n, Bucket { slots: [Slot::default(); SLOTS] });
        Table { buckets: buckets.into_boxed_slice(), mask: n - 1, len: 0, sweep_cursor: 0 }
    }

    /// Entries the table was sized for (half its slots).
    pub fn capacity(&self) -> usize {
        self.buckets.len()
    }

    /// Live-or-not-yet-swept entries.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Memory of the slots, in bytes.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.buckets)
    }

    /// Start pulling the key's home bucket into cache. A prefetch, unlike a load, retires at
    /// once: the CPU goes on with other packets while the miss is served.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        mem_prefetch::prefetch_write_data::<_, 3>(&self.buckets[hash as usize & self.mask]);
    }

    /// The live entry for `key`, with mutable access to refresh it.
    #[inline(always)]
    pub fn get_mut(&mut self, key: &K, hash: u64, now: Millis) -> Option<&mut Entry> {
        let (b, s) = self.find(key, hash)?;
        let e = &mut self.buckets[b].slots[s].entry;
        if expired(e.expires, now) {
            return None;
        }
        Some(e)
    }

    #[inline(always)]
    fn find(&self, key: &K, hash: u64) -> Option<(usize, usize)> {
        let home = hash as usize;
        for i in 0..PROBE_BUCKETS {
            let b = (home + i) & self.mask;
            for (s, slot) in self.buckets[b].slots.iter().enumerate() {
                if slot.entry.flags & FLAG_USED != 0 && slot.key == *key {
                    return Some((b, s));
                }
            }
        }
        None
    }

    /// Store `key` → `entry` (the caller has checked that no live entry exists for it). An
    /// expired entry of the same key is overwritten in place.
    #[inline]
    pub fn insert(&mut self, key: K, hash: u64, mut entry: Entry, now: Millis) -> Insert {
        entry.flags |= FLAG_USED;
        let home = hash as usize;
        let mut reuse: Option<(usize, usize)> = None;
        for i in 0..PROBE_BUCKETS {
            let b = (home + i) & self.mask;
            for s in 0..SLOTS {
                let slot = &self.buckets[b].slots[s];
                if slot.entry.flags & FLAG_USED == 0 {
                    if reuse.is_none() {
                        reuse = Some((b, s));
                    }
                } else if slot.key == key || (reuse.is_none() && expired(slot.entry.expires, now)) {
                    // Same key (expired) or an expired entry we may take over.
                    let old = slot.entry;
                    self.buckets[b].slots[s] = Slot { key, entry };
                    return Insert::Reclaimed(old);
                }
            }
        }
        match reuse {
            Some((b, s)) => {
                self.buckets[b].slots[s] = Slot { key, entry };
                self.len += 1;
                Insert::Stored
            }
            None => Insert::Full,
        }
    }

    /// Remove `key`; returns what it held.
    pub fn remove(&mut self, key: &K, hash: u64) -> Option<Entry> {
        let (b, s) = self.find(key, hash)?;
        let e = self.buckets[b].slots[s].entry;
        self.buckets[b].slots[s].entry.flags = 0;
        self.len -= 1;
        Some(e)
    }

    /// Free expired entries in the next `max_buckets` buckets, calling `on_expire` for each.
    /// Called between bursts: bounded work that visits the whole table over time.
    pub fn sweep(&mut self, now: Millis, max_buckets: usize, mut on_expire: impl FnMut(&K, &Entry)) -> usize {
        let mut freed = 0;
        for _ in 0..max_buckets.min(self.buckets.len()) {
            let b = self.sweep_cursor;
            self.sweep_cursor = (self.sweep_cursor + 1) & self.mask;
            for slot in self.buckets[b].slots.iter_mut() {
                if slot.entry.flags & FLAG_USED != 0 && expired(slot.entry.expires, now) {
                    on_expire(&slot.key, &slot.entry);
                    slot.entry.flags = 0;
                    self.len -= 1;
                    freed += 1;
                }
            }
        }
        freed
    }

    /// Visit every live entry (control-plane queries such as `dsrlb ctl flows`).
    pub fn for_each_live(&self, now: Millis, mut f: impl FnMut(&K, &Entry)) {
        for b in self.buckets.iter() {
            for slot in &b.slots {
                if slot.entry.flags & FLAG_USED != 0 && !expired(slot.entry.expires, now) {
                    f(&slot.key, &slot.entry);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(backend: u32, expires: Millis) -> Entry {
        Entry { backend, service: 0, flags: 0, expires }
    }

    #[test]
    fn bucket_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Bucket<crate::flow::FlowKey>>(), 64);
    }

    #[test]
    fn insert_get_expire_remove() {
        let mut t: Table<u64> = Table::new(16);
        assert_eq!(t.insert(7, 7, e(1, 100), 0), Insert::Stored);
        assert_eq!(t.get_mut(&7, 7, 50).unwrap().backend, 1);
        assert!(t.get_mut(&7, 7, 100).is_none(), "expired at its deadline");
        assert_eq!(t.len(), 1, "still occupying until swept or reused");
        assert!(matches!(t.insert(7, 7, e(2, 300), 100), Insert::Reclaimed(old) if old.backend == 1));
        assert_eq!(t.get_mut(&7, 7, 150).unwrap().backend, 2);
        assert_eq!(t.remove(&7, 7).unwrap().backend, 2);
        assert!(t.is_empty());
    }

    #[test]
    fn full_window_then_reclaim_expired() {
        let mut t: Table<u64> = Table::new(4); // 4 buckets, 8 slots: one probe window
        for k in 0..8u64 {
            assert_eq!(t.insert(k, 0, e(k as u32, 1000), 0), Insert::Stored);
        }
        assert_eq!(t.insert(99, 0, e(9, 1000), 0), Insert::Full);
        for k in 0..8u64 {
            assert_eq!(t.get_mut(&k, 0, 1).unwrap().backend, k as u32);
        }
        assert!(matches!(t.insert(99, 0, e(9, 5000), 1000), Insert::Reclaimed(_)));
        assert_eq!(t.get_mut(&99, 0, 1001).unwrap().backend, 9);
    }

    #[test]
    fn sweep_visits_everything_in_bounded_steps() {
        let mut t: Table<u64> = Table::new(64);
        for k in 0..40u64 {
            let expires = if k % 2 == 0 { 10 } else { 1000 };
            t.insert(k, k.wrapping_mul(0x9e3779b97f4a7c15), e(0, expires), 0);
        }
        let mut seen = 0;
        let mut steps = 0;
        while steps * 8 < t.capacity() {
            seen += t.sweep(20, 8, |_, _| {});
            steps += 1;
        }
        assert_eq!(seen, 20);
        assert_eq!(t.len(), 20);
    }

    #[test]
    fn clock_wraps() {
        let mut t: Table<u64> = Table::new(8);
        let now = u32::MAX - 5;
        t.insert(1, 1, e(3, now.wrapping_add(100)), now);
        assert!(t.get_mut(&1, 1, now.wrapping_add(50)).is_some());
        assert!(t.get_mut(&1, 1, now.wrapping_add(100)).is_none());
    }
}
