use super::{be16, mac, WireError};

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const ETHERTYPE_VLAN: u16 = 0x8100;
pub const HEADER_LEN: usize = 14;

/// An Ethernet II frame with at most one 802.1Q tag.
#[derive(Debug, Clone, Copy)]
pub struct EthernetFrame<'a> {
    buf: &'a [u8],
    header_len: usize,
}

impl<'a> EthernetFrame<'a> {
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, WireError> {
        if buf.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let header_len = if be16(buf, 12) == ETHERTYPE_VLAN { HEADER_LEN + 4 } else { HEADER_LEN };
        if buf.len() < header_len {
            return Err(WireError::Truncated);
        }
        Ok(EthernetFrame { buf, header_len })
    }

    pub fn dst(&self) -> [u8; 6] {
        mac(self.buf, 0)
    }

    pub fn src(&self) -> [u8; 6] {
        mac(self.buf, 6)
    }

    /// The 802.1Q tag control information, if the frame is tagged.
    pub fn vlan_tci(&self) -> Option<u16> {
        (self.header_len > HEADER_LEN).then(|| be16(self.buf, 14))
    }

    /// The ethertype of the payload (after the tag, if any).
    pub fn ethertype(&self) -> u16 {
        be16(self.buf, self.header_len - 2)
    }

    /// Bytes before the payload: 14, or 18 with a tag.
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.header_len..]
    }
}

/// A MAC address, written `aa:bb:cc:dd:ee:ff` in configuration files and tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// The group bit: broadcast and multicast addresses, never a host's own.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 != 0
    }

    /// An address a single host can have: not multicast, broadcast or all zeros.
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast() && *self != MacAddr::ZERO
    }
}

impl std::fmt::Display for MacAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
    }
}

impl std::str::FromStr for MacAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a MAC address (aa:bb:cc:dd:ee:ff)");
        let mut m = [0u8; 6];
        let mut parts = s.split(':');
        for b in m.iter_mut() {
            let p = parts.next().filter(|p| p.len() == 2).ok_or_else(bad)?;
            *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(MacAddr(m))
    }
}

/// Whether a frame's destination MAC is `mac` (`false` for a frame too short to have one).
#[inline(always)]
pub fn dst_is(frame: &[u8], mac: [u8; 6]) -> bool {
    match frame.first_chunk::<6>() {
        // Two integer compares rather than a byte-slice comparison.
        Some(d) => {
            u32::from_ne_bytes([d[0], d[1], d[2], d[3]])
                == u32::from_ne_bytes([mac[0], mac[1], mac[2], mac[3]])
                && u16::from_ne_bytes([d[4], d[5]]) == u16::from_ne_bytes([mac[4], mac[5]])
        }
        None => false,
    }
}

/// Set destination and source MAC in place from the twelve bytes they take in the header (a
/// frame too short to have both is left alone).
#[inline(always)]
pub fn set_mac_pair(frame: &mut [u8], macs: [u8; 12]) {
    if let Some(m) = frame.first_chunk_mut::<12>() {
        *m = macs;
    }
}

/// Set destination and source MAC in place (a frame too short to have both is left alone).
#[inline]
pub fn set_macs(frame: &mut [u8], dst: [u8; 6], src: [u8; 6]) {
    if let Some(m) = frame.first_chunk_mut::<12>() {
        m[..6].copy_from_slice(&dst);
        m[6..].copy_from_slice(&src);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_text_round_trips_and_bad_text_is_refused() {
        let m: MacAddr = "02:00:0a:ff:00:01".parse().unwrap();
        assert_eq!(m, MacAddr([2, 0, 0x0a, 0xff, 0, 1]));
        assert_eq!(m.to_string(), "02:00:0a:ff:00:01");
        assert!(m.is_unicast());
        assert!(!MacAddr::BROADCAST.is_unicast() && !MacAddr::ZERO.is_unicast());
        assert!(!"01:00:5e:00:00:01".parse::<MacAddr>().unwrap().is_unicast(), "multicast");
        for bad in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:01:02",
            "2:0:0:0:0:1",
            "02-00-00-00-00-01",
            "zz:00:00:00:00:01",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn untagged_and_tagged() {
        let mut f = [0u8; 60];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let e = EthernetFrame::new_checked(&f).unwrap();
        assert_eq!((e.header_len(), e.ethertype(), e.vlan_tci()), (14, ETHERTYPE_IPV4, None));
        f[12..18].copy_from_slice(&[0x81, 0x00, 0x00, 0x64, 0x08, 0x06]);
        let e = EthernetFrame::new_checked(&f).unwrap();
        assert_eq!((e.header_len(), e.ethertype(), e.vlan_tci()), (18, ETHERTYPE_ARP, Some(100)));
        assert_eq!(EthernetFrame::new_checked(&f[..16]).err(), Some(WireError::Truncated));
        assert_eq!(EthernetFrame::new_checked(&f[..13]).err(), Some(WireError::Truncated));
    }
}
