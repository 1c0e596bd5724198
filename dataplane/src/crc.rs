//! CRC32C (Castagnoli), the flow hash: one instruction per 8 bytes of key where the build's CPU
//! baseline has one (SSE4.2 on x86-64, which Debian's DPDK already requires), and a table
//! otherwise. Both give the same value, so instances built for
//! different CPUs still agree on every flow's backend (docs/performance.md, "CPU baseline").

/// The reflected Castagnoli polynomial, as the CPU instructions use it.
const POLY: u32 = 0x82f6_3b78;

/// CRC32C of `v`'s 8 bytes (little-endian order) continuing from `crc`, with no pre- or
/// post-inversion: exactly what `crc32q` and `crc32cx` compute.
#[inline(always)]
pub fn crc32c_u64(crc: u32, v: u64) -> u32 {
    // safe_arch offers the instruction, safely, only when the build enables SSE4.2.
    #[cfg(all(target_arch = "x86_64", target_feature = "sse4.2"))]
    {
        safe_arch::crc32_u64(crc as u64, v) as u32
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse4.2")))]
    {
        soft_u64(crc, v)
    }
}

/// The table-driven CRC32C the instructions replace (and the test's reference).
pub fn soft_u64(mut crc: u32, v: u64) -> u32 {
    for b in v.to_le_bytes() {
        crc = TABLE[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

static TABLE: [u32; 256] = table();

const fn table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The standard check value: CRC32C("123456789") with the usual inversions is 0xe3069283.
    #[test]
    fn matches_the_standard_check_value() {
        let data = b"123456789";
        let mut crc = !0u32;
        for b in data {
            crc = TABLE[((crc ^ *b as u32) & 0xff) as usize] ^ (crc >> 8);
        }
        assert_eq!(!crc, 0xe306_9283);
    }

    /// The instruction (when the build has it) and the table agree on every input tried.
    #[test]
    fn instruction_and_table_agree() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..100_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            assert_eq!(crc32c_u64(i, x), soft_u64(i, x), "crc {i:#x}, word {x:#x}");
        }
    }
}
