//! A small read-only open-addressing map from u64 keys to u32 values, built once per snapshot:
//! VIPs, LB addresses and service keys are looked up per packet without hashing overhead.

/// Marks an empty entry; no real key uses it (keys are addresses, protocols and ports packed
/// into at most 56 bits).
const EMPTY: u64 = u64::MAX;

#[derive(Debug, Clone)]
pub struct U64Map {
    entries: Box<[(u64, u32)]>,
    shift: u32,
}

impl U64Map {
    /// Build from pairs; a later duplicate key replaces an earlier one.
    pub fn build(pairs: &[(u64, u32)]) -> U64Map {
        let size = (pairs.len() * 2).max(8).next_power_of_two();
        let mut m =
            U64Map { entries: vec![(EMPTY, 0); size].into_boxed_slice(), shift: 64 - size.trailing_zeros() };
        for &(k, v) in pairs {
            debug_assert_ne!(k, EMPTY);
            let mut i = m.slot(k);
            while m.entries[i].0 != EMPTY && m.entries[i].0 != k {
                i = (i + 1) & (size - 1);
            }
            m.entries[i] = (k, v);
        }
        m
    }

    /// Fibonacci hashing: one multiply, the top bits index the table.
    #[inline]
    fn slot(&self, k: u64) -> usize {
        (k.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize
    }

    #[inline]
    pub fn get(&self, k: u64) -> Option<u32> {
        let mask = self.entries.len() - 1;
        let mut i = self.slot(k);
        // At most half full, so an empty entry ends every probe.
        loop {
            let (key, val) = self.entries[i];
            if key == k {
                return Some(val);
            }
            if key == EMPTY {
                return None;
            }
            i = (i + 1) & mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_and_miss() {
        let pairs: Vec<(u64, u32)> = (0..100).map(|i| (i * 1_000_003, i as u32)).collect();
        let m = U64Map::build(&pairs);
        for (k, v) in &pairs {
            assert_eq!(m.get(*k), Some(*v));
        }
        assert_eq!(m.get(7), None);
        assert_eq!(U64Map::build(&[]).get(0), None);
    }
}
