//! A small read-only open-addressing map from u64 keys to u32 values, built once per snapshot:
//! VIPs, LB addresses and service keys are looked up per packet without hashing overhead.

use crate::flow::mix64;

#[derive(Debug, Clone)]
pub struct U64Map {
    keys: Box<[u64]>,
    vals: Box<[u32]>,
    used: Box<[bool]>,
    mask: usize,
}

impl U64Map {
    /// Build from pairs; a later duplicate key replaces an earlier one.
    pub fn build(pairs: &[(u64, u32)]) -> U64Map {
        let size = (pairs.len() * 2).max(8).next_power_of_two();
        let mut m = U64Map {
            keys: vec![0; size].into_boxed_slice(),
            vals: vec![0; size].into_boxed_slice(),
            used: vec![false; size].into_boxed_slice(),
            mask: size - 1,
        };
        for &(k, v) in pairs {
            let mut i = mix64(k) as usize & m.mask;
            while m.used[i] && m.keys[i] != k {
                i = (i + 1) & m.mask;
            }
            m.keys[i] = k;
            m.vals[i] = v;
            m.used[i] = true;
        }
        m
    }

    #[inline]
    pub fn get(&self, k: u64) -> Option<u32> {
        let mut i = mix64(k) as usize & self.mask;
        // At most half full, so an empty slot ends every probe.
        while self.used[i] {
            if self.keys[i] == k {
                return Some(self.vals[i]);
            }
            i = (i + 1) & self.mask;
        }
        None
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
