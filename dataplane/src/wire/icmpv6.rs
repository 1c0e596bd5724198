//! ICMPv6: the message types dsrlb reads or writes, neighbour discovery's solicitations and
//! advertisements (RFC 4861) with their link-layer address options, and the checksum over the
//! IPv6 pseudo-header.

use super::{be16, ipv6::ip16, WireError};
use crate::checksum;

pub const DEST_UNREACHABLE: u8 = 1;
pub const PACKET_TOO_BIG: u8 = 2;
pub const TIME_EXCEEDED: u8 = 3;
pub const PARAMETER_PROBLEM: u8 = 4;
pub const ECHO_REQUEST: u8 = 128;
pub const ECHO_REPLY: u8 = 129;
pub const ROUTER_SOLICIT: u8 = 133;
pub const ROUTER_ADVERT: u8 = 134;
pub const NEIGHBOR_SOLICIT: u8 = 135;
pub const NEIGHBOR_ADVERT: u8 = 136;
pub const REDIRECT: u8 = 137;
pub const HEADER_LEN: usize = 8;

/// Neighbour discovery options.
pub const OPT_SOURCE_LL: u8 = 1;
pub const OPT_TARGET_LL: u8 = 2;
/// Advertisement flags (first byte after the checksum).
pub const NA_ROUTER: u8 = 0x80;
pub const NA_SOLICITED: u8 = 0x40;
pub const NA_OVERRIDE: u8 = 0x20;
/// A solicitation or advertisement: header, reserved/flags, target address.
pub const ND_LEN: usize = 24;
/// Neighbour discovery only from the link itself (RFC 4861: hop limit 255 on sending, checked
/// on receipt), so that nothing from beyond a router can poison the neighbour table.
pub const ND_HOP_LIMIT: u8 = 255;

/// An ICMPv6 message. For error messages the body starts with as much of the packet that caused
/// the error as fits.
#[derive(Debug, Clone, Copy)]
pub struct Icmpv6Message<'a> {
    buf: &'a [u8],
}

impl<'a> Icmpv6Message<'a> {
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, WireError> {
        if buf.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Icmpv6Message { buf })
    }

    pub fn msg_type(&self) -> u8 {
        self.buf[0]
    }

    pub fn code(&self) -> u8 {
        self.buf[1]
    }

    pub fn is_error(&self) -> bool {
        self.msg_type() < 128
    }

    /// The MTU of a Packet Too Big.
    pub fn mtu(&self) -> u32 {
        u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]])
    }

    /// The echo identifier and sequence number.
    pub fn echo_ident(&self) -> u16 {
        be16(self.buf, 4)
    }

    pub fn echo_seq(&self) -> u16 {
        be16(self.buf, 6)
    }

    /// The packet an error message quotes.
    pub fn embedded(&self) -> &'a [u8] {
        &self.buf[HEADER_LEN..]
    }

    pub fn bytes(&self) -> &'a [u8] {
        self.buf
    }
}

/// A neighbour solicitation or advertisement, read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdRepr {
    /// `NEIGHBOR_SOLICIT` or `NEIGHBOR_ADVERT`.
    pub msg_type: u8,
    /// Advertisement flags (`NA_*`); 0 for a solicitation.
    pub flags: u8,
    pub target: [u8; 16],
    /// The source (solicitation) or target (advertisement) link-layer address option.
    pub link_addr: Option<[u8; 6]>,
}

impl NdRepr {
    /// Read a solicitation or advertisement from its ICMPv6 bytes (`msg`: type to the end).
    /// Options are walked with their lengths checked; one of length zero is malformed.
    pub fn parse(msg: &[u8]) -> Result<NdRepr, WireError> {
        if msg.len() < ND_LEN {
            return Err(WireError::Truncated);
        }
        let msg_type = msg[0];
        if msg_type != NEIGHBOR_SOLICIT && msg_type != NEIGHBOR_ADVERT || msg[1] != 0 {
            return Err(WireError::BadVersion);
        }
        let want = if msg_type == NEIGHBOR_SOLICIT { OPT_SOURCE_LL } else { OPT_TARGET_LL };
        let mut link_addr = None;
        let mut opts = &msg[ND_LEN..];
        while opts.len() >= 2 {
            let len = opts[1] as usize * 8;
            if len == 0 || len > opts.len() {
                return Err(WireError::BadHeaderLength);
            }
            if opts[0] == want && len >= 8 {
                link_addr = Some([opts[2], opts[3], opts[4], opts[5], opts[6], opts[7]]);
            }
            opts = &opts[len..];
        }
        Ok(NdRepr {
            msg_type,
            flags: if msg_type == NEIGHBOR_ADVERT { msg[4] & 0xe0 } else { 0 },
            target: ip16(msg, 8),
            link_addr,
        })
    }

    /// Bytes `emit` writes: the message and one link-layer address option.
    pub fn len(&self) -> usize {
        ND_LEN + if self.link_addr.is_some() { 8 } else { 0 }
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Write the message into `out` (`len()` bytes); the checksum is left to `fill_checksum`.
    pub fn emit(&self, out: &mut [u8]) {
        out[..ND_LEN].fill(0);
        out[0] = self.msg_type;
        out[4] = self.flags;
        out[8..24].copy_from_slice(&self.target);
        if let Some(mac) = self.link_addr {
            out[24] = if self.msg_type == NEIGHBOR_SOLICIT { OPT_SOURCE_LL } else { OPT_TARGET_LL };
            out[25] = 1;
            out[26..32].copy_from_slice(&mac);
        }
    }
}

/// The one's-complement sum of the IPv6 pseudo-header (RFC 8200 §8.1), not yet folded.
pub fn pseudo_header(src: [u8; 16], dst: [u8; 16], next_header: u8, len: u32) -> u32 {
    let mut acc = checksum::sum(&src, 0);
    acc = checksum::sum(&dst, acc);
    acc.wrapping_add(len >> 16).wrapping_add(len & 0xffff).wrapping_add(next_header as u32)
}

/// Compute and store the checksum of an ICMPv6 message (`msg`, type to the end) sent from `src`
/// to `dst`.
pub fn fill_checksum(msg: &mut [u8], src: [u8; 16], dst: [u8; 16]) {
    msg[2] = 0;
    msg[3] = 0;
    let acc = checksum::sum(msg, pseudo_header(src, dst, super::ipv6::NH_ICMPV6, msg.len() as u32));
    let c = checksum::finish(acc);
    msg[2..4].copy_from_slice(&c.to_be_bytes());
}

/// Whether an ICMPv6 message's checksum is right.
pub fn checksum_ok(msg: &[u8], src: [u8; 16], dst: [u8; 16]) -> bool {
    let acc = checksum::sum(msg, pseudo_header(src, dst, super::ipv6::NH_ICMPV6, msg.len() as u32));
    checksum::finish(acc) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solicitation_and_advertisement_round_trip_with_checksums() {
        let src = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe, 0, 0, 2];
        let dst =
            crate::wire::ipv6::solicited_node([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11]);
        for (t, flags) in [(NEIGHBOR_SOLICIT, 0), (NEIGHBOR_ADVERT, NA_SOLICITED | NA_OVERRIDE)] {
            let nd = NdRepr { msg_type: t, flags, target: [9; 16], link_addr: Some([2, 0, 0, 0, 0, 2]) };
            let mut m = vec![0u8; nd.len()];
            nd.emit(&mut m);
            fill_checksum(&mut m, src, dst);
            assert!(checksum_ok(&m, src, dst));
            assert_eq!(NdRepr::parse(&m), Ok(nd));
            m[10] ^= 1;
            assert!(!checksum_ok(&m, src, dst));
        }
    }

    #[test]
    fn malformed_options_are_refused() {
        let nd = NdRepr { msg_type: NEIGHBOR_SOLICIT, flags: 0, target: [9; 16], link_addr: Some([2; 6]) };
        let mut m = vec![0u8; nd.len()];
        nd.emit(&mut m);
        m[25] = 0; // an option of length zero would loop forever
        assert!(NdRepr::parse(&m).is_err());
        m[25] = 2; // longer than what is there
        assert!(NdRepr::parse(&m).is_err());
        assert!(NdRepr::parse(&m[..20]).is_err());
    }
}
