use super::{be16, WireError};

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_ACK: u8 = 0x10;
pub const TCP_MIN_LEN: usize = 20;
pub const UDP_LEN: usize = 8;
/// Checksum offsets within each header.
pub const TCP_CHECKSUM: usize = 16;
pub const UDP_CHECKSUM: usize = 6;

#[derive(Debug, Clone, Copy)]
pub struct TcpHeader<'a> {
    buf: &'a [u8],
}

impl<'a> TcpHeader<'a> {
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, WireError> {
        if buf.len() < TCP_MIN_LEN {
            return Err(WireError::Truncated);
        }
        let off = ((buf[12] >> 4) as usize) * 4;
        if off < TCP_MIN_LEN || off > buf.len() {
            return Err(WireError::BadHeaderLength);
        }
        Ok(TcpHeader { buf })
    }

    pub fn src_port(&self) -> u16 {
        be16(self.buf, 0)
    }

    pub fn dst_port(&self) -> u16 {
        be16(self.buf, 2)
    }

    pub fn flags(&self) -> u8 {
        self.buf[13]
    }

    pub fn header_len(&self) -> usize {
        ((self.buf[12] >> 4) as usize) * 4
    }

    pub fn checksum(&self) -> u16 {
        be16(self.buf, TCP_CHECKSUM)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct UdpHeader<'a> {
    buf: &'a [u8],
}

impl<'a> UdpHeader<'a> {
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, WireError> {
        if buf.len() < UDP_LEN {
            return Err(WireError::Truncated);
        }
        let len = be16(buf, 4) as usize;
        if len < UDP_LEN || len > buf.len() {
            return Err(WireError::BadTotalLength);
        }
        Ok(UdpHeader { buf })
    }

    pub fn src_port(&self) -> u16 {
        be16(self.buf, 0)
    }

    pub fn dst_port(&self) -> u16 {
        be16(self.buf, 2)
    }

    pub fn length(&self) -> usize {
        be16(self.buf, 4) as usize
    }

    pub fn checksum(&self) -> u16 {
        be16(self.buf, UDP_CHECKSUM)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_and_udp() {
        let mut t = [0u8; 24];
        t[0..4].copy_from_slice(&[0x30, 0x39, 0x00, 0x50]);
        t[12] = 6 << 4;
        t[13] = TCP_SYN | TCP_ACK;
        let h = TcpHeader::new_checked(&t).unwrap();
        assert_eq!((h.src_port(), h.dst_port(), h.flags(), h.header_len()), (12345, 80, 0x12, 24));
        t[12] = 7 << 4;
        assert_eq!(TcpHeader::new_checked(&t).err(), Some(WireError::BadHeaderLength));
        let mut u = [0u8; 12];
        u[0..6].copy_from_slice(&[0, 53, 0x04, 0x00, 0, 12]);
        let h = UdpHeader::new_checked(&u).unwrap();
        assert_eq!((h.src_port(), h.dst_port(), h.length()), (53, 1024, 12));
        u[5] = 13;
        assert!(UdpHeader::new_checked(&u).is_err());
    }
}
