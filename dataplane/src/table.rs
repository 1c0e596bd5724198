//! A fixed-capacity hash table with per-entry expiry, used for flows and for persistence.
//!
//! Buckets are one cache line of `N` slots; a key lives in one of `PROBE_BUCKETS` consecutive
//! buckets from its home. Nothing is allocated after `new`. Lookups treat expired entries as
//! absent; inserts reuse empty or expired slots in the probe window and report `Full` when there
//! are none, so the caller can fall back to stateless forwarding instead of dropping.
//!
//! What a slot holds is the caller's (`Slot`): the flow table packs three flows into a line so
//! that nearly every flow is found in the one line its lookup prefetched (`flow::FlowSlot`).

/// Buckets searched for a key: bounds the work per packet.
pub const PROBE_BUCKETS: usize = 4;

/// Buckets the sweep asks for ahead of the one it looks at.
const SWEEP_AHEAD: usize = 8;

/// Called with the address and length of a table's memory before its first write; returns
/// whether the advice was taken (e.g. `dpdk_bindings::advise_huge_pages`).
pub type MemoryAdvice = fn(usize, usize) -> bool;

/// Time in milliseconds on a wrapping 32-bit clock (49 days per lap; ages compare wrapping).
pub type Millis = u32;

/// Whether a deadline has passed (at `expires` itself, the entry is gone).
#[inline]
fn expired(expires: Millis, now: Millis) -> bool {
    now.wrapping_sub(expires) as i32 >= 0
}

/// One slot of a table: a key, what goes with it, whether it is in use and until when.
pub trait Slot: Copy + Default {
    type Key;
    /// In use (live or expired but not yet reclaimed).
    fn is_used(&self) -> bool;
    /// In use and holding `key`.
    fn holds(&self, key: &Self::Key) -> bool;
    fn expires(&self) -> Millis;
    /// Mark unused.
    fn free(&mut self);
}

/// What a persistence slot holds besides its key.
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
/// Only a SYN seen so far: the entry lives only for the short SYN timeout, so that spoofed SYNs
/// cannot hold the table for a whole idle timeout.
pub const FLAG_EMBRYONIC: u8 = 0x04;

/// A slot of a key of any type and an `Entry`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyedSlot<K> {
    pub key: K,
    pub entry: Entry,
}

impl<K: Copy + Default + Eq> KeyedSlot<K> {
    /// A used slot.
    pub fn new(key: K, mut entry: Entry) -> Self {
        entry.flags |= FLAG_USED;
        KeyedSlot { key, entry }
    }
}

impl<K: Copy + Default + Eq> Slot for KeyedSlot<K> {
    type Key = K;
    #[inline(always)]
    fn is_used(&self) -> bool {
        self.entry.flags & FLAG_USED != 0
    }
    #[inline(always)]
    fn holds(&self, key: &K) -> bool {
        self.is_used() && self.key == *key
    }
    #[inline(always)]
    fn expires(&self) -> Millis {
        self.entry.expires
    }
    #[inline(always)]
    fn free(&mut self) {
        self.entry.flags = 0;
    }
}

#[derive(Clone, Copy)]
#[repr(align(64))]
struct Bucket<S, const N: usize> {
    slots: [S; N],
}

/// Outcome of an insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert<S> {
    /// Stored in a free slot.
    Stored,
    /// Stored in place of an expired entry (returned, so its owner can be accounted).
    Reclaimed(S),
    /// Every slot in the probe window holds a live entry.
    Full,
}

/// A table of `N` slots per 64-byte bucket.
pub struct Table<S, const N: usize> {
    buckets: Box<[Bucket<S, N>]>,
    mask: usize,
    len: usize,
    sweep_cursor: usize,
}

impl<S: Slot, const N: usize> Table<S, N> {
    /// Buckets are one cache line: a slot type too big for `N` per line is a build error here.
    const ONE_LINE: () =
        assert!(std::mem::size_of::<Bucket<S, N>>() == 64, "a bucket must be one cache line");

    /// A table of `capacity` rounded up to a power of two buckets, each of `N` slots: it holds
    /// at least `capacity` entries with its load at or under one in `N`.
    pub fn new(capacity: usize) -> Self {
        Self::with_memory_advice(capacity, None)
    }

    /// As `new`, and `advise(address, bytes)` is called on the bucket memory after it is
    /// reserved and before it is first written, when the kernel still decides how to back it
    /// (the appliance asks for huge pages there: see `WorkerConfig::memory_advice`).
    pub fn with_memory_advice(capacity: usize, advise: Option<MemoryAdvice>) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::ONE_LINE;
        let n = capacity.max(PROBE_BUCKETS).next_power_of_two();
        let mut buckets: Vec<Bucket<S, N>> = Vec::with_capacity(n);
        if let Some(advise) = advise {
            advise(buckets.as_ptr() as usize, n * std::mem::size_of::<Bucket<S, N>>());
        }
        buckets.resize(n, Bucket { slots: [S::default(); N] });
        Table { buckets: buckets.into_boxed_slice(), mask: n - 1, len: 0, sweep_cursor: 0 }
    }

    /// Entries the table was sized for (one per bucket).
    pub fn capacity(&self) -> usize {
        self.buckets.len()
    }

    /// Slots in all: what the table can hold at most.
    pub fn slots(&self) -> usize {
        self.buckets.len() * N
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

    /// The live slot holding `key`, with mutable access to refresh it.
    #[inline(always)]
    pub fn get_mut(&mut self, key: &S::Key, hash: u64, now: Millis) -> Option<&mut S> {
        let (b, s) = self.find(key, hash)?;
        let slot = &mut self.buckets[b].slots[s];
        if expired(slot.expires(), now) {
            return None;
        }
        Some(slot)
    }

    /// The live slot holding `key` if it is in its home bucket, the one line `prefetch` asked
    /// for and where nearly every key lives; `None` when it is not there, even if it is live
    /// further on (a caller that must find it asks `get_mut`). One line, searched without going
    /// back to the table for the slot it found.
    #[inline(always)]
    pub fn get_home_mut(&mut self, key: &S::Key, hash: u64, now: Millis) -> Option<&mut S> {
        let bucket = self.buckets.get_mut(hash as usize & self.mask)?;
        bucket.slots.iter_mut().find(|slot| slot.holds(key)).filter(|slot| !expired(slot.expires(), now))
    }

    #[inline(always)]
    fn find(&self, key: &S::Key, hash: u64) -> Option<(usize, usize)> {
        let home = hash as usize;
        for i in 0..PROBE_BUCKETS {
            let b = (home + i) & self.mask;
            for (s, slot) in self.buckets[b].slots.iter().enumerate() {
                if slot.holds(key) {
                    return Some((b, s));
                }
            }
        }
        None
    }

    /// Store `slot` (used, holding `key`; the caller has checked that no live entry exists for
    /// it). An expired entry of the same key is overwritten in place.
    #[inline]
    pub fn insert(&mut self, key: &S::Key, hash: u64, slot: S, now: Millis) -> Insert<S> {
        let home = hash as usize;
        let mut reuse: Option<(usize, usize)> = None;
        for i in 0..PROBE_BUCKETS {
            let b = (home + i) & self.mask;
            for s in 0..N {
                let old = self.buckets[b].slots[s];
                if !old.is_used() {
                    if reuse.is_none() {
                        reuse = Some((b, s));
                    }
                } else if old.holds(key) || (reuse.is_none() && expired(old.expires(), now)) {
                    // Same key (expired) or an expired entry we may take over.
                    self.buckets[b].slots[s] = slot;
                    return Insert::Reclaimed(old);
                }
            }
        }
        match reuse {
            Some((b, s)) => {
                self.buckets[b].slots[s] = slot;
                self.len += 1;
                Insert::Stored
            }
            None => Insert::Full,
        }
    }

    /// Remove `key`; returns what its slot held.
    pub fn remove(&mut self, key: &S::Key, hash: u64) -> Option<S> {
        let (b, s) = self.find(key, hash)?;
        let old = self.buckets[b].slots[s];
        self.buckets[b].slots[s].free();
        self.len -= 1;
        Some(old)
    }

    /// Free expired entries in the next `max_buckets` buckets, calling `on_expire` for each.
    /// Called between bursts: bounded work that visits the whole table over time.
    pub fn sweep(&mut self, now: Millis, max_buckets: usize, mut on_expire: impl FnMut(&S)) -> usize {
        if self.len == 0 {
            // Nothing to free: an empty table (often one family's) costs no memory reads.
            return 0;
        }
        let mut freed = 0;
        for _ in 0..max_buckets.min(self.buckets.len()) {
            let b = self.sweep_cursor;
            self.sweep_cursor = (self.sweep_cursor + 1) & self.mask;
            // The sweep reads the table line after line, mostly from memory: asked for a few
            // lines ahead, they arrive while this one is looked at, instead of one miss after
            // another (the hardware's stream prefetch stops at every 4 KiB page).
            mem_prefetch::prefetch_write_data::<_, 3>(&self.buckets[(b + SWEEP_AHEAD) & self.mask]);
            for slot in self.buckets[b].slots.iter_mut() {
                if slot.is_used() && expired(slot.expires(), now) {
                    on_expire(slot);
                    slot.free();
                    self.len -= 1;
                    freed += 1;
                }
            }
        }
        freed
    }

    /// Visit every live entry (control-plane queries).
    pub fn for_each_live(&self, now: Millis, mut f: impl FnMut(&S)) {
        for b in self.buckets.iter() {
            for slot in &b.slots {
                if slot.is_used() && !expired(slot.expires(), now) {
                    f(slot);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type T = Table<KeyedSlot<u64>, 2>;

    fn e(k: u64, backend: u32, expires: Millis) -> KeyedSlot<u64> {
        KeyedSlot::new(k, Entry { backend, service: 0, flags: 0, expires })
    }

    #[test]
    fn buckets_are_one_cache_line() {
        assert_eq!(std::mem::size_of::<Bucket<KeyedSlot<u64>, 2>>(), 64);
        assert_eq!(std::mem::size_of::<Bucket<crate::flow::FlowSlot, 3>>(), 64);
    }

    /// Share of `n` flows that sit in their home bucket, the line their lookup prefetches, in a
    /// table of `n` buckets (one flow per bucket: the configured size) of slot type `S`.
    fn home_share<S: Slot<Key = K>, K, const N: usize>(n: usize, key: impl Fn(u32) -> (K, S, u64)) -> f64 {
        let mut t: Table<S, N> = Table::new(n);
        let mut home = 0;
        for i in 0..n as u32 {
            let (k, slot, hash) = key(i);
            // A flow whose probe window is full is not stored at all (forwarded statelessly).
            t.insert(&k, hash, slot, 0);
            home += usize::from(t.find(&k, hash).map(|(b, _)| b) == Some(hash as usize & t.mask));
        }
        home as f64 / n as f64
    }

    /// The reason for 20-byte flow slots, three to a line: at the configured load nearly every
    /// flow is in the line its lookup prefetched, where two 32-byte slots left one in eight a
    /// line further on (docs/performance.md quotes these figures).
    #[test]
    fn three_slot_buckets_keep_flows_home() {
        use crate::flow::{FlowKey, FlowSlot};
        let n = 1 << 18;
        let flow = |i: u32| {
            FlowKey::new(
                6,
                (0x6400_0000 + i).to_be_bytes(),
                [10, 0, 0, 100],
                (i as u16).wrapping_add(1024),
                80,
            )
        };
        let three = home_share::<FlowSlot, _, 3>(n, |i| {
            let k = flow(i);
            (k.id(0), FlowSlot::new(k.id(0), 1, 0, 1000), k.hash())
        });
        let two = home_share::<KeyedSlot<FlowKey>, _, 2>(n, |i| {
            let k = flow(i);
            (k, KeyedSlot::new(k, Entry { backend: 1, service: 0, flags: 0, expires: 1000 }), k.hash())
        });
        println!("flows in their home bucket at one flow per bucket: three 20-byte slots {three:.3}, two 32-byte slots {two:.3}");
        assert!(three > 0.97, "{three}");
        assert!(two < 0.9, "{two}");
    }

    #[test]
    fn insert_get_expire_remove() {
        let mut t = T::new(16);
        assert_eq!(t.insert(&7, 7, e(7, 1, 100), 0), Insert::Stored);
        assert_eq!(t.get_mut(&7, 7, 50).unwrap().entry.backend, 1);
        assert!(t.get_mut(&7, 7, 100).is_none(), "expired at its deadline");
        assert_eq!(t.len(), 1, "still occupying until swept or reused");
        assert!(
            matches!(t.insert(&7, 7, e(7, 2, 300), 100), Insert::Reclaimed(old) if old.entry.backend == 1)
        );
        assert_eq!(t.get_mut(&7, 7, 150).unwrap().entry.backend, 2);
        assert_eq!(t.remove(&7, 7).unwrap().entry.backend, 2);
        assert!(t.is_empty());
    }

    #[test]
    fn full_window_then_reclaim_expired() {
        let mut t = T::new(4); // 4 buckets, 8 slots: one probe window
        for k in 0..8u64 {
            assert_eq!(t.insert(&k, 0, e(k, k as u32, 1000), 0), Insert::Stored);
        }
        assert_eq!(t.insert(&99, 0, e(99, 9, 1000), 0), Insert::Full);
        for k in 0..8u64 {
            assert_eq!(t.get_mut(&k, 0, 1).unwrap().entry.backend, k as u32);
        }
        assert!(matches!(t.insert(&99, 0, e(99, 9, 5000), 1000), Insert::Reclaimed(_)));
        assert_eq!(t.get_mut(&99, 0, 1001).unwrap().entry.backend, 9);
    }

    /// `get_home_mut` finds what `get_mut` finds in the key's home bucket, and nothing else: a
    /// key pushed to the next bucket, or expired, is not its answer.
    #[test]
    fn home_lookup_answers_only_for_the_home_bucket() {
        let mut t = T::new(4); // 2 slots a bucket: the third key of one hash goes a bucket on
        for k in 0..3u64 {
            assert_eq!(t.insert(&k, 1, e(k, k as u32, 1000), 0), Insert::Stored);
        }
        for k in 0..2u64 {
            assert_eq!(t.get_home_mut(&k, 1, 1).unwrap().entry.backend, k as u32);
        }
        assert!(t.get_home_mut(&2, 1, 1).is_none(), "live, but in the next bucket");
        assert_eq!(t.get_mut(&2, 1, 1).unwrap().entry.backend, 2);
        assert!(t.get_home_mut(&0, 1, 1000).is_none(), "expired at its deadline");
        assert!(t.get_home_mut(&9, 1, 1).is_none(), "never stored");
    }

    #[test]
    fn sweep_visits_everything_in_bounded_steps() {
        let mut t = T::new(64);
        for k in 0..40u64 {
            let expires = if k % 2 == 0 { 10 } else { 1000 };
            t.insert(&k, k.wrapping_mul(0x9e3779b97f4a7c15), e(k, 0, expires), 0);
        }
        let mut seen = 0;
        let mut steps = 0;
        while steps * 8 < t.capacity() {
            seen += t.sweep(20, 8, |_| {});
            steps += 1;
        }
        assert_eq!(seen, 20);
        assert_eq!(t.len(), 20);
    }

    /// The empty-table shortcut leaves the cursor where it was (what it saves, the reads, is
    /// the bench's to show): a table refilled after it is still swept whole.
    #[test]
    fn a_refill_after_the_table_empties_is_swept_whole() {
        let mut t = T::new(64);
        t.insert(&1, 1, e(1, 0, 10), 0);
        assert_eq!((0..t.capacity()).map(|_| t.sweep(20, 1, |_| {})).sum::<usize>(), 1);
        assert_eq!(t.sweep(20, t.capacity(), |_| panic!("nothing to free")), 0);
        for k in 0..30u64 {
            t.insert(&k, k.wrapping_mul(0x9e3779b97f4a7c15), e(k, 0, 30), 20);
        }
        let mut freed = 0;
        for _ in 0..t.capacity() / 4 {
            freed += t.sweep(40, 4, |_| {});
        }
        assert_eq!((freed, t.len()), (30, 0));
    }

    #[test]
    fn clock_wraps() {
        let mut t = T::new(8);
        let now = u32::MAX - 5;
        t.insert(&1, 1, e(1, 3, now.wrapping_add(100)), now);
        assert!(t.get_mut(&1, 1, now.wrapping_add(50)).is_some());
        assert!(t.get_mut(&1, 1, now.wrapping_add(100)).is_none());
    }
}
