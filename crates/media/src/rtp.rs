//! Minimal RTP fixed-header handling (RFC 3550 §5.1).
//!
//! The WebRTC stack usually hands us parsed headers already; this module is
//! for the places that see raw packets (tests, the network emulator, a
//! future plain-RTP ingest) and for patching the three fields the rewriter
//! changes (sequence number, timestamp, SSRC) in place without copying the
//! payload.

use std::ops::Range;

/// Why a buffer is not a usable RTP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtpError {
    /// Fewer bytes than the header (fixed part, CSRCs, extension) claims.
    Truncated,
    /// Version field is not 2.
    BadVersion(u8),
    /// The padding count is larger than the payload.
    BadPadding,
}

impl std::fmt::Display for RtpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RtpError::Truncated => write!(f, "truncated RTP packet"),
            RtpError::BadVersion(v) => write!(f, "RTP version {v} is not 2"),
            RtpError::BadPadding => write!(f, "RTP padding longer than payload"),
        }
    }
}

impl std::error::Error for RtpError {}

/// The fields of an RTP header that forwarding cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub payload_type: u8,
    pub marker: bool,
    pub sequence_number: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

/// A parsed view of a raw RTP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedRtp {
    pub header: RtpHeader,
    /// Byte range of the payload inside the original buffer (padding removed).
    pub payload: Range<usize>,
}

const FIXED_HEADER: usize = 12;

impl RtpHeader {
    /// Parses a raw RTP packet; never panics, whatever the bytes.
    pub fn parse(buf: &[u8]) -> Result<ParsedRtp, RtpError> {
        if buf.len() < FIXED_HEADER {
            return Err(RtpError::Truncated);
        }
        let version = buf[0] >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion(version));
        }
        let padding = buf[0] & 0x20 != 0;
        let extension = buf[0] & 0x10 != 0;
        let csrc_count = usize::from(buf[0] & 0x0f);
        let header = RtpHeader {
            marker: buf[1] & 0x80 != 0,
            payload_type: buf[1] & 0x7f,
            sequence_number: u16::from_be_bytes([buf[2], buf[3]]),
            timestamp: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
            ssrc: u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
        };
        let mut start = FIXED_HEADER + 4 * csrc_count;
        if extension {
            let ext = buf.get(start..start + 4).ok_or(RtpError::Truncated)?;
            let words = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
            start += 4 + 4 * words;
        }
        if start > buf.len() {
            return Err(RtpError::Truncated);
        }
        let mut end = buf.len();
        if padding {
            let pad = usize::from(buf[end - 1]);
            if pad == 0 || start + pad > end {
                return Err(RtpError::BadPadding);
            }
            end -= pad;
        }
        Ok(ParsedRtp {
            header,
            payload: start..end,
        })
    }

    /// Serialises a minimal header (no CSRCs, no extension) followed by `payload`.
    pub fn to_packet(&self, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED_HEADER + payload.len());
        out.push(0x80);
        out.push(u8::from(self.marker) << 7 | (self.payload_type & 0x7f));
        out.extend_from_slice(&self.sequence_number.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// Overwrites sequence number, timestamp and SSRC of a raw packet in place.
    pub fn patch_in_place(
        buf: &mut [u8],
        sequence_number: u16,
        timestamp: u32,
        ssrc: u32,
    ) -> Result<(), RtpError> {
        if buf.len() < FIXED_HEADER {
            return Err(RtpError::Truncated);
        }
        buf[2..4].copy_from_slice(&sequence_number.to_be_bytes());
        buf[4..8].copy_from_slice(&timestamp.to_be_bytes());
        buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let h = RtpHeader {
            payload_type: 102,
            marker: true,
            sequence_number: 65535,
            timestamp: 0xdead_beef,
            ssrc: 42,
        };
        let pkt = h.to_packet(&[1, 2, 3]);
        let parsed = RtpHeader::parse(&pkt).expect("valid");
        assert_eq!(parsed.header, h);
        assert_eq!(&pkt[parsed.payload], &[1, 2, 3]);
    }

    #[test]
    fn extension_csrc_and_padding() {
        let mut pkt = vec![0xb1, 96, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        pkt.extend_from_slice(&[0, 0, 0, 9]); // one CSRC
        pkt.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // one-word extension
        pkt.extend_from_slice(&[7, 7]); // payload
        pkt.extend_from_slice(&[0, 0, 3]); // three bytes padding
        let parsed = RtpHeader::parse(&pkt).expect("valid");
        assert_eq!(&pkt[parsed.payload], &[7, 7]);
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(RtpHeader::parse(&[0x80; 5]), Err(RtpError::Truncated));
        assert_eq!(RtpHeader::parse(&[0; 12]), Err(RtpError::BadVersion(0)));
        let mut pkt = vec![0xa0, 96, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 1, 200];
        assert_eq!(RtpHeader::parse(&pkt), Err(RtpError::BadPadding));
        pkt[0] = 0x90; // extension bit without extension bytes
        assert_eq!(RtpHeader::parse(&pkt), Err(RtpError::Truncated));
        pkt[0] = 0x8f; // 15 CSRCs
        assert_eq!(RtpHeader::parse(&pkt), Err(RtpError::Truncated));
    }

    #[test]
    fn patch() {
        let h = RtpHeader {
            payload_type: 96,
            marker: false,
            sequence_number: 1,
            timestamp: 2,
            ssrc: 3,
        };
        let mut pkt = h.to_packet(&[9]);
        RtpHeader::patch_in_place(&mut pkt, 10, 20, 30).expect("long enough");
        let parsed = RtpHeader::parse(&pkt).expect("valid");
        assert_eq!(parsed.header.sequence_number, 10);
        assert_eq!(parsed.header.timestamp, 20);
        assert_eq!(parsed.header.ssrc, 30);
    }
}
