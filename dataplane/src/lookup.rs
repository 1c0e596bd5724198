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

/// IPv6 keys in a `U64Map`: 128-bit addresses (with protocol and port) do not fit in 64 bits,
/// so the map is keyed by their hash and every hit is checked against the address. Two
/// different addresses with one hash are refused when built, so a lookup never answers for the
/// wrong one.
#[derive(Debug, Clone)]
pub struct AddrMap6 {
    map: U64Map,
    /// (address, value), indexed by the map.
    entries: Vec<([u8; 16], u32)>,
}

/// `U64Map` reserves one key.
#[inline]
fn usable(k: u64) -> u64 {
    if k == EMPTY {
        EMPTY - 1
    } else {
        k
    }
}

impl AddrMap6 {
    /// From (address, key, value); a repeated (address, key) keeps the last value. `None` if
    /// two addresses share a key.
    pub fn build(items: &[([u8; 16], u64, u32)]) -> Option<AddrMap6> {
        let mut entries: Vec<([u8; 16], u32)> = Vec::new();
        let mut keys: Vec<(u64, [u8; 16], usize)> = Vec::new();
        for &(a, k, v) in items {
            let k = usable(k);
            match keys.iter().find(|(key, _, _)| *key == k) {
                Some((_, addr, at)) if *addr == a => entries[*at].1 = v,
                Some(_) => return None,
                None => {
                    keys.push((k, a, entries.len()));
                    entries.push((a, v));
                }
            }
        }
        let pairs: Vec<(u64, u32)> = keys.iter().map(|(k, _, at)| (*k, *at as u32)).collect();
        Some(AddrMap6 { map: U64Map::build(&pairs), entries })
    }

    /// From (address, value), keyed by the address alone.
    pub fn build_addrs(items: &[([u8; 16], u32)]) -> Option<AddrMap6> {
        let with_keys: Vec<([u8; 16], u64, u32)> =
            items.iter().map(|&(a, v)| (a, crate::flow::fold16(a), v)).collect();
        Self::build(&with_keys)
    }

    /// The value for `addr` looked up by `key` (what it was built with).
    #[inline]
    pub fn get(&self, addr: [u8; 16], key: u64) -> Option<u32> {
        let at = self.map.get(usable(key))? as usize;
        let (a, v) = self.entries[at];
        (a == addr).then_some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_keys_are_checked_against_the_address() {
        let a = [1u8; 16];
        let b = [2u8; 16];
        let m = AddrMap6::build(&[(a, 7, 1), (b, 8, 2), (a, 7, 3)]).unwrap();
        assert_eq!(m.get(a, 7), Some(3), "a repeat keeps the last value");
        assert_eq!(m.get(b, 8), Some(2));
        assert_eq!(m.get(b, 7), None, "the key of another address");
        assert!(AddrMap6::build(&[(a, 7, 1), (b, 7, 2)]).is_none(), "two addresses, one key");
        let m = AddrMap6::build_addrs(&[(a, 4)]).unwrap();
        assert_eq!(m.get(a, crate::flow::fold16(a)), Some(4));
    }

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
