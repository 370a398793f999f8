//! Opus packet duration from the TOC byte (RFC 6716 §3.1).

use std::fmt;

/// Why an Opus packet was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpusError {
    /// Zero-length packet.
    Empty,
    /// Code 3 packet without its frame-count byte, or with zero frames.
    BadFrameCount,
    /// More than 120 ms of audio in one packet (RFC 6716 §3.2.5).
    TooLong,
}

impl fmt::Display for OpusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpusError::Empty => write!(f, "empty Opus packet"),
            OpusError::BadFrameCount => write!(f, "invalid Opus frame count"),
            OpusError::TooLong => write!(f, "Opus packet longer than 120 ms"),
        }
    }
}

impl std::error::Error for OpusError {}

/// Samples at 48 kHz in one Opus packet.
pub fn packet_samples_48k(packet: &[u8]) -> Result<u32, OpusError> {
    let toc = *packet.first().ok_or(OpusError::Empty)?;
    let config = toc >> 3;
    let frame = match config {
        // SILK-only: 10, 20, 40, 60 ms
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        // Hybrid: 10, 20 ms
        12..=15 => [480, 960][usize::from(config % 2)],
        // CELT-only: 2.5, 5, 10, 20 ms
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    };
    let frames = match toc & 0x03 {
        0 => 1,
        1 | 2 => 2,
        _ => {
            let count = packet.get(1).ok_or(OpusError::BadFrameCount)? & 0x3f;
            if count == 0 {
                return Err(OpusError::BadFrameCount);
            }
            u32::from(count)
        }
    };
    let total = frame * frames;
    if total > 5760 {
        return Err(OpusError::TooLong);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        // config 31 (CELT FB 20 ms), code 0
        assert_eq!(packet_samples_48k(&[0xf8, 1, 2]), Ok(960));
        // config 1 (SILK NB 20 ms), code 1: two frames
        assert_eq!(packet_samples_48k(&[0x09, 1]), Ok(1920));
        // config 3 (SILK NB 60 ms), code 3 with 2 frames = 120 ms
        assert_eq!(packet_samples_48k(&[0x1b, 0x02]), Ok(5760));
        assert_eq!(packet_samples_48k(&[0x1b, 0x03]), Err(OpusError::TooLong));
        assert_eq!(packet_samples_48k(&[0x1b]), Err(OpusError::BadFrameCount));
        assert_eq!(
            packet_samples_48k(&[0x1b, 0x00]),
            Err(OpusError::BadFrameCount)
        );
        assert_eq!(packet_samples_48k(&[]), Err(OpusError::Empty));
        // DTX: TOC only
        assert_eq!(packet_samples_48k(&[0xf8]), Ok(960));
    }
}
