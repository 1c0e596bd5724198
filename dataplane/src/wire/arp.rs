use super::{be16, ip4, mac, WireError};

pub const OP_REQUEST: u16 = 1;
pub const OP_REPLY: u16 = 2;
pub const LEN: usize = 28;

/// An ARP packet for IPv4 over Ethernet (the only kind dsrlb answers or resolves with).
#[derive(Debug, Clone, Copy)]
pub struct ArpPacket<'a> {
    buf: &'a [u8],
}

impl<'a> ArpPacket<'a> {
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, WireError> {
        if buf.len() < LEN {
            return Err(WireError::Truncated);
        }
        // htype Ethernet, ptype IPv4, hlen 6, plen 4
        if be16(buf, 0) != 1 || be16(buf, 2) != 0x0800 || buf[4] != 6 || buf[5] != 4 {
            return Err(WireError::BadVersion);
        }
        Ok(ArpPacket { buf })
    }

    pub fn operation(&self) -> u16 {
        be16(self.buf, 6)
    }

    pub fn sender_mac(&self) -> [u8; 6] {
        mac(self.buf, 8)
    }

    pub fn sender_ip(&self) -> [u8; 4] {
        ip4(self.buf, 14)
    }

    pub fn target_mac(&self) -> [u8; 6] {
        mac(self.buf, 18)
    }

    pub fn target_ip(&self) -> [u8; 4] {
        ip4(self.buf, 24)
    }
}

/// Write an ARP packet (Ethernet/IPv4) into `out[..28]`.
pub fn write(out: &mut [u8], op: u16, sha: [u8; 6], spa: [u8; 4], tha: [u8; 6], tpa: [u8; 4]) {
    out[0..8].copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, op as u8]);
    out[8..14].copy_from_slice(&sha);
    out[14..18].copy_from_slice(&spa);
    out[18..24].copy_from_slice(&tha);
    out[24..28].copy_from_slice(&tpa);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read() {
        let mut b = [0u8; LEN];
        write(&mut b, OP_REQUEST, [2, 0, 0, 0, 0, 1], [10, 0, 0, 1], [0; 6], [10, 0, 0, 9]);
        let a = ArpPacket::new_checked(&b).unwrap();
        assert_eq!(a.operation(), OP_REQUEST);
        assert_eq!(a.sender_ip(), [10, 0, 0, 1]);
        assert_eq!(a.target_ip(), [10, 0, 0, 9]);
        assert_eq!(a.sender_mac(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(a.target_mac(), [0; 6]);
        b[1] = 6;
        assert!(ArpPacket::new_checked(&b).is_err());
        assert!(ArpPacket::new_checked(&b[..27]).is_err());
    }
}
