use super::{be16, mac, WireError};

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
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

/// Set destination and source MAC in place.
#[inline]
pub fn set_macs(frame: &mut [u8], dst: [u8; 6], src: [u8; 6]) {
    frame[0..6].copy_from_slice(&dst);
    frame[6..12].copy_from_slice(&src);
}

#[cfg(test)]
mod tests {
    use super::*;

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
