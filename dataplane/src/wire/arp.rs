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

/// The fields of an Ethernet/IPv4 ARP packet, to be written with `emit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRepr {
    pub operation: u16,
    pub sender_mac: [u8; 6],
    pub sender_ip: [u8; 4],
    pub target_mac: [u8; 6],
    pub target_ip: [u8; 4],
}

impl ArpRepr {
    /// Write the packet into the first `LEN` bytes of `out`.
    pub fn emit(&self, out: &mut [u8]) {
        let [o0, o1] = self.operation.to_be_bytes();
        // htype Ethernet, ptype IPv4, hlen 6, plen 4
        out[0..8].copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4, o0, o1]);
        out[8..14].copy_from_slice(&self.sender_mac);
        out[14..18].copy_from_slice(&self.sender_ip);
        out[18..24].copy_from_slice(&self.target_mac);
        out[24..28].copy_from_slice(&self.target_ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read() {
        let mut b = [0u8; LEN];
        ArpRepr {
            operation: OP_REQUEST,
            sender_mac: [2, 0, 0, 0, 0, 1],
            sender_ip: [10, 0, 0, 1],
            target_mac: [0; 6],
            target_ip: [10, 0, 0, 9],
        }
        .emit(&mut b);
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
