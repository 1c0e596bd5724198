//! Internet checksums: full computation (RFC 1071) for headers we build, incremental update
//! (RFC 1624, eqn. 3) for fields we change in place.

/// One's-complement sum of `data` (odd length padded with zero), not yet folded.
#[inline]
pub fn sum(data: &[u8], mut acc: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc = acc.wrapping_add(u16::from_be_bytes([c[0], c[1]]) as u32);
    }
    if let [b] = chunks.remainder() {
        acc = acc.wrapping_add((*b as u32) << 8);
    }
    acc
}

/// Fold a 32-bit sum into 16 bits (`fold16`) and complement it.
#[inline]
pub fn finish(acc: u32) -> u16 {
    !fold16(acc)
}

/// A one's-complement sum kept in 64 bits (wider words, RFC 1071 2(C)) folded to the 32 bits
/// `finish` takes. The first fold leaves at most 0x1_ffff_fffe; the second then fits 32 bits.
#[inline(always)]
pub fn fold32(sum: u64) -> u32 {
    let s = (sum & 0xffff_ffff) + (sum >> 32);
    ((s & 0xffff_ffff) + (s >> 32)) as u32
}

/// The checksum of `data`, ready to store.
pub fn checksum(data: &[u8]) -> u16 {
    finish(sum(data, 0))
}

/// Pseudo-header sum for TCP/UDP over IPv4.
pub fn pseudo_header(src: [u8; 4], dst: [u8; 4], proto: u8, l4_len: u16) -> u32 {
    let mut acc = sum(&src, 0);
    acc = sum(&dst, acc);
    acc + proto as u32 + l4_len as u32
}

/// RFC 1624: HC' = ~(~HC + ~m + m') for one changed 16-bit word.
#[inline]
pub fn update16(csum: u16, old: u16, new: u16) -> u16 {
    apply(csum, delta16(old, new))
}

/// RFC 1624 for a changed 32-bit field (e.g. an IPv4 address), as two 16-bit words.
#[inline]
pub fn update32(csum: u16, old: [u8; 4], new: [u8; 4]) -> u16 {
    apply(csum, delta32(old, new))
}

/// The `~m + m'` term of RFC 1624 for a changed 16-bit word; deltas add up, so several changed
/// fields cost one fold in `apply`.
#[inline]
pub fn delta16(old: u16, new: u16) -> u32 {
    (!old as u32) + new as u32
}

/// `delta16` over the two words of a changed 32-bit field.
#[inline]
pub fn delta32(old: [u8; 4], new: [u8; 4]) -> u32 {
    delta16(u16::from_be_bytes([old[0], old[1]]), u16::from_be_bytes([new[0], new[1]]))
        + delta16(u16::from_be_bytes([old[2], old[3]]), u16::from_be_bytes([new[2], new[3]]))
}

/// `delta32` in the byte order the CPU loads a field in (little-endian words), for a checksum
/// that is read, updated and stored in that order too: RFC 1071 2(B), the sum of byte-swapped
/// words is the byte-swapped sum. The rewrites on the forwarding path work this way, so that
/// no word is swapped on its way in or out.
#[inline]
pub fn delta32_le(old: [u8; 4], new: [u8; 4]) -> u32 {
    delta16(u16::from_le_bytes([old[0], old[1]]), u16::from_le_bytes([new[0], new[1]]))
        + delta16(u16::from_le_bytes([old[2], old[3]]), u16::from_le_bytes([new[2], new[3]]))
}

/// A sum or delta (or sum of deltas) folded to 16 bits, to keep: one's-complement arithmetic is
/// modulo 0xffff, so `apply` gives the same checksum for it as for the unfolded delta. Two folds
/// always suffice: the first leaves at most 0x1fffe, the second at most 0xffff.
#[inline]
pub fn fold16(delta: u32) -> u16 {
    let d = (delta & 0xffff) + (delta >> 16);
    ((d & 0xffff) + (d >> 16)) as u16
}

/// A checksum after changes whose deltas sum to `delta` (at most a few dozen deltas, so the
/// sum cannot overflow).
#[inline]
pub fn apply(csum: u16, delta: u32) -> u16 {
    finish(!csum as u32 + delta)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folded delta gives every checksum what the unfolded one gives.
    #[test]
    fn folded_deltas_apply_alike() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..100_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let (csum, delta) = (rng as u16, (rng >> 16) as u32 % (40 * 0x1_0000));
            assert_eq!(apply(csum, fold16(delta) as u32), apply(csum, delta), "{csum:#x} {delta:#x}");
        }
        assert_eq!(fold16(0x1_fffe), 0xffff);
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3 example bytes: sum 0xddf2, checksum 0x220d.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&d), 0x220d);
    }

    #[test]
    fn incremental_matches_full() {
        let mut hdr =
            [0x45, 0x00, 0x00, 0x54, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        let c = checksum(&hdr);
        hdr[10..12].copy_from_slice(&c.to_be_bytes());
        let old = [hdr[16], hdr[17], hdr[18], hdr[19]];
        let new = [192, 168, 7, 200];
        hdr[16..20].copy_from_slice(&new);
        let inc = update32(c, old, new);
        hdr[10..12].fill(0);
        assert_eq!(inc, checksum(&hdr));
        let old_w = u16::from_be_bytes([hdr[0], hdr[1]]);
        hdr[1] = 0xb9;
        let inc2 = update16(inc, old_w, u16::from_be_bytes([hdr[0], hdr[1]]));
        assert_eq!(inc2, checksum(&hdr));
    }

    proptest::proptest! {
        /// The little-endian delta updates a checksum read little-endian to exactly what a
        /// fresh computation over the changed bytes gives (stored back little-endian), for a
        /// 4-byte field anywhere on a word boundary.
        #[test]
        fn little_endian_delta_matches_a_fresh_checksum(
            mut data in proptest::collection::vec(0u8.., 48..=48),
            at in 0usize..16,
            new4: [u8; 4],
        ) {
            let at = at * 2;
            let read_le = |c: u16| u16::from_le_bytes(c.to_be_bytes());
            let c = checksum(&data);
            let old4: [u8; 4] = crate::wire::fixed(&data, at);
            data[at..at + 4].copy_from_slice(&new4);
            let c4 = apply(read_le(c), delta32_le(old4, new4));
            proptest::prop_assert_eq!(c4.to_le_bytes(), checksum(&data).to_be_bytes());
        }
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(checksum(&[0x01]), !0x0100);
    }
}
