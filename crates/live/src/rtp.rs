//! H.264 RTP depacketiser (RFC 6184, non-interleaved mode: single NAL unit
//! packets, STAP-A and FU-A) producing the Annex-B access units that
//! [`crate::LivePackager::push_video`] takes.
//!
//! Packets must arrive in order (after the jitter buffer). An access unit
//! with a lost packet is dropped whole and counted; the caller should then
//! ask for a keyframe.

use std::fmt;

/// Why an RTP payload was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtpH264Error {
    Empty,
    /// A length or FU header pointing past the payload, or an empty NAL.
    Truncated,
    /// Forbidden bit set, reserved type, or an interleaved-mode packet
    /// (STAP-B, MTAP16, MTAP24, FU-B).
    Unsupported(u8),
}

impl fmt::Display for RtpH264Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RtpH264Error::Empty => write!(f, "empty RTP payload"),
            RtpH264Error::Truncated => write!(f, "truncated RTP payload"),
            RtpH264Error::Unsupported(t) => write!(f, "unsupported NAL unit type {t}"),
        }
    }
}

impl std::error::Error for RtpH264Error {}

/// One reassembled access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepacketizedUnit {
    /// RTP timestamp extended to 64 bits (wraps unrolled).
    pub timestamp: u64,
    /// Annex-B byte stream (4-byte start codes).
    pub annex_b: Vec<u8>,
}

/// Counters of the depacketiser.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DepacketizerCounters {
    pub packets: u64,
    pub units: u64,
    /// Access units dropped because a packet was lost, a fragment was
    /// inconsistent, or the unit grew past the size cap.
    pub dropped_units: u64,
    pub invalid_packets: u64,
}

/// Reassembles H.264 access units from RTP payloads.
#[derive(Debug)]
pub struct H264Depacketizer {
    max_unit_bytes: usize,
    current: Option<u32>,
    buf: Vec<u8>,
    fu_open: bool,
    corrupt: bool,
    last_seq: Option<u16>,
    last_ts: Option<u32>,
    extended: u64,
    counters: DepacketizerCounters,
}

const START_CODE: [u8; 4] = [0, 0, 0, 1];

impl H264Depacketizer {
    /// `max_unit_bytes` caps one access unit (bigger ones are dropped).
    pub fn new(max_unit_bytes: usize) -> Self {
        Self {
            max_unit_bytes,
            current: None,
            buf: Vec::new(),
            fu_open: false,
            corrupt: false,
            last_seq: None,
            last_ts: None,
            extended: 0,
            counters: DepacketizerCounters::default(),
        }
    }

    pub fn counters(&self) -> DepacketizerCounters {
        self.counters
    }

    fn extend(&mut self, ts: u32) -> u64 {
        match self.last_ts {
            None => self.extended = u64::from(ts),
            Some(prev) => {
                let diff = ts.wrapping_sub(prev) as i32;
                self.extended = self.extended.wrapping_add_signed(i64::from(diff));
            }
        }
        self.last_ts = Some(ts);
        self.extended
    }

    fn finish(&mut self) -> Option<DepacketizedUnit> {
        let ts = self.current.take()?;
        let data = std::mem::take(&mut self.buf);
        let corrupt = std::mem::replace(&mut self.corrupt, false) || self.fu_open;
        self.fu_open = false;
        if corrupt || data.is_empty() {
            self.counters.dropped_units += 1;
            return None;
        }
        self.counters.units += 1;
        let timestamp = self.extend(ts);
        Some(DepacketizedUnit {
            timestamp,
            annex_b: data,
        })
    }

    fn append(&mut self, bytes: &[u8]) {
        if self.buf.len() + bytes.len() > self.max_unit_bytes {
            self.corrupt = true;
            self.buf.clear();
        } else if !self.corrupt {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Feeds one RTP packet's payload. Returns the access units completed by
    /// it: the previous one when the timestamp changes without a marker, and
    /// this one when the marker bit is set.
    pub fn push(
        &mut self,
        sequence: u16,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> Result<Vec<DepacketizedUnit>, RtpH264Error> {
        self.counters.packets += 1;
        let mut out = Vec::new();
        if self.current.is_some_and(|t| t != timestamp) {
            out.extend(self.finish());
        }
        if let Some(prev) = self.last_seq
            && sequence != prev.wrapping_add(1)
        {
            // Lost (or reordered) packet: the unit in progress is broken.
            if self.current.is_some() {
                self.corrupt = true;
            }
            self.fu_open = false;
        }
        self.last_seq = Some(sequence);
        if self.current.is_none() {
            self.current = Some(timestamp);
        }

        if let Err(e) = self.payload(payload) {
            self.counters.invalid_packets += 1;
            self.corrupt = true;
            if marker {
                out.extend(self.finish());
            }
            return if out.is_empty() { Err(e) } else { Ok(out) };
        }
        if marker {
            out.extend(self.finish());
        }
        Ok(out)
    }

    fn payload(&mut self, payload: &[u8]) -> Result<(), RtpH264Error> {
        let header = *payload.first().ok_or(RtpH264Error::Empty)?;
        if header & 0x80 != 0 {
            return Err(RtpH264Error::Unsupported(header & 0x1f));
        }
        match header & 0x1f {
            t @ 1..=23 => {
                let _ = t;
                if self.fu_open {
                    self.corrupt = true;
                    self.fu_open = false;
                }
                self.append(&START_CODE);
                self.append(payload);
            }
            24 => {
                let mut rest = &payload[1..];
                if rest.is_empty() {
                    return Err(RtpH264Error::Truncated);
                }
                // Validate first, then append, so a bad STAP-A adds nothing.
                let mut nals = Vec::new();
                while !rest.is_empty() {
                    let [hi, lo, tail @ ..] = rest else {
                        return Err(RtpH264Error::Truncated);
                    };
                    let len = usize::from(u16::from_be_bytes([*hi, *lo]));
                    if len == 0 || len > tail.len() {
                        return Err(RtpH264Error::Truncated);
                    }
                    nals.push(&tail[..len]);
                    rest = &tail[len..];
                }
                for nal in nals {
                    self.append(&START_CODE);
                    self.append(nal);
                }
            }
            28 => {
                let [indicator, fu, data @ ..] = payload else {
                    return Err(RtpH264Error::Truncated);
                };
                let start = fu & 0x80 != 0;
                let end = fu & 0x40 != 0;
                let kind = fu & 0x1f;
                if kind == 0 || kind > 23 {
                    return Err(RtpH264Error::Unsupported(kind));
                }
                if start {
                    if self.fu_open {
                        self.corrupt = true;
                    }
                    self.append(&START_CODE);
                    self.append(&[(indicator & 0xe0) | kind]);
                    self.fu_open = true;
                } else if !self.fu_open {
                    // Middle or end without a start: its start was lost.
                    self.corrupt = true;
                    return Ok(());
                }
                self.append(data);
                if end {
                    self.fu_open = false;
                }
            }
            t => return Err(RtpH264Error::Unsupported(t)),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_nal_and_stap_a() {
        let mut d = H264Depacketizer::new(1 << 20);
        // STAP-A with SPS and PPS, then a single IDR NAL with the marker.
        let stap = [24, 0, 3, 0x67, 1, 2, 0, 2, 0x68, 3];
        assert!(
            d.push(1, 1000, false, &stap)
                .expect("valid test input")
                .is_empty()
        );
        let units = d
            .push(2, 1000, true, &[0x65, 9, 9])
            .expect("valid test input");
        assert_eq!(
            units,
            vec![DepacketizedUnit {
                timestamp: 1000,
                annex_b: vec![
                    0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 9, 9
                ],
            }]
        );
    }

    #[test]
    fn fu_a_reassembles() {
        let mut d = H264Depacketizer::new(1 << 20);
        assert!(
            d.push(10, 5, false, &[0x7c, 0x85, 1, 2])
                .expect("valid test input")
                .is_empty()
        );
        assert!(
            d.push(11, 5, false, &[0x7c, 0x05, 3])
                .expect("valid test input")
                .is_empty()
        );
        let units = d
            .push(12, 5, true, &[0x7c, 0x45, 4])
            .expect("valid test input");
        assert_eq!(units[0].annex_b, vec![0, 0, 0, 1, 0x65, 1, 2, 3, 4]);
    }

    #[test]
    fn lost_fragment_drops_the_unit() {
        let mut d = H264Depacketizer::new(1 << 20);
        d.push(10, 5, false, &[0x7c, 0x85, 1, 2])
            .expect("valid test input");
        // 11 lost
        assert!(
            d.push(12, 5, true, &[0x7c, 0x45, 4])
                .expect("valid test input")
                .is_empty()
        );
        assert_eq!(d.counters().dropped_units, 1);
        // The next unit is fine again.
        let units = d
            .push(13, 3005, true, &[0x41, 7])
            .expect("valid test input");
        assert_eq!(units.len(), 1);
    }

    #[test]
    fn missing_marker_flushes_on_new_timestamp_and_wraps() {
        let mut d = H264Depacketizer::new(1 << 20);
        assert!(
            d.push(1, u32::MAX - 10, false, &[0x41, 1])
                .expect("valid test input")
                .is_empty()
        );
        let units = d
            .push(2, 3000 - 11, true, &[0x41, 2])
            .expect("valid test input");
        assert_eq!(units.len(), 2);
        assert_eq!(units[0].timestamp, u64::from(u32::MAX - 10));
        assert_eq!(units[1].timestamp, u64::from(u32::MAX - 10) + 3000);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut d = H264Depacketizer::new(64);
        assert_eq!(d.push(1, 0, false, &[]), Err(RtpH264Error::Empty));
        assert_eq!(
            d.push(2, 0, false, &[24, 0, 9, 1]),
            Err(RtpH264Error::Truncated)
        );
        assert_eq!(d.push(3, 0, false, &[28]), Err(RtpH264Error::Truncated));
        assert_eq!(
            d.push(4, 0, false, &[25, 1]),
            Err(RtpH264Error::Unsupported(25))
        );
        assert_eq!(
            d.push(5, 0, false, &[0x80]),
            Err(RtpH264Error::Unsupported(0))
        );
        // Oversized unit is dropped.
        let mut d = H264Depacketizer::new(8);
        assert!(
            d.push(1, 0, true, &[0x41; 20])
                .expect("valid test input")
                .is_empty()
        );
        assert_eq!(d.counters().dropped_units, 1);
        let mut state = 1u32;
        let mut d = H264Depacketizer::new(1 << 16);
        for i in 0..5000u16 {
            let mut p = Vec::new();
            for _ in 0..(state % 30) {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                p.push((state >> 16) as u8);
            }
            let _ = d.push(i, state % 7, state.is_multiple_of(3), &p);
        }
    }
}
