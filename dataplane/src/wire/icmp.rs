use super::{be16, WireError};

pub const ECHO_REPLY: u8 = 0;
pub const DEST_UNREACHABLE: u8 = 3;
pub const ECHO_REQUEST: u8 = 8;
pub const TIME_EXCEEDED: u8 = 11;
pub const PARAMETER_PROBLEM: u8 = 12;
pub const CODE_FRAG_NEEDED: u8 = 4;
pub const HEADER_LEN: usize = 8;

/// An ICMP message. For error messages (unreachable, time exceeded, parameter problem) the body
/// starts with the IP header of the packet that caused the error, then at least 8 bytes of it.
#[derive(Debug, Clone, Copy)]
pub struct IcmpMessage<'a> {
    buf: &'a [u8],
}

impl<'a> IcmpMessage<'a> {
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, WireError> {
        if buf.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(IcmpMessage { buf })
    }

    pub fn msg_type(&self) -> u8 {
        self.buf[0]
    }

    pub fn code(&self) -> u8 {
        self.buf[1]
    }

    pub fn checksum(&self) -> u16 {
        be16(self.buf, 2)
    }

    /// Next-hop MTU of a "fragmentation needed" message (RFC 1191).
    pub fn next_hop_mtu(&self) -> u16 {
        be16(self.buf, 6)
    }

    pub fn is_error(&self) -> bool {
        matches!(self.msg_type(), DEST_UNREACHABLE | TIME_EXCEEDED | PARAMETER_PROBLEM)
    }

    /// The embedded packet of an error message (its IP header and what follows).
    pub fn embedded(&self) -> &'a [u8] {
        &self.buf[HEADER_LEN..]
    }
}
