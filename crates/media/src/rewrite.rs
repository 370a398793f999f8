//! RTP rewriting: one continuous outgoing stream across source switches.
//!
//! A receiver's decoder and jitter buffer must not notice that the video
//! comes from different Publications over time. Each outgoing Subscription
//! stream therefore has its own SSRC, and per *epoch* (the span during which
//! one source is forwarded) a sequence-number offset and a timestamp offset:
//!
//! - sequence numbers: the first packet of a new epoch gets `last + 1`;
//!   within an epoch `out = in + offset`, so gaps from real loss stay gaps
//!   (the receiver NACKs them) and no gap is created by the switch itself;
//! - timestamps: the first frame of a new epoch lands the wall-clock time
//!   since the last forwarded packet (at least one frame interval) after the
//!   last forwarded frame, so playout timing stays smooth;
//! - packets of the new source older than the switch point, and any packet
//!   of the old source, are dropped: they would collide with numbers already
//!   used.
//!
//! The last few epochs are remembered (bounded), so a NACK from the receiver
//! maps back to the right Publication and original sequence number, and a
//! retransmission of a packet sent before a switch keeps its outgoing number.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::ids::PublicationId;
use crate::rtp::RtpHeader;
use crate::seq::SeqUnwrapper;
use crate::vp8::Vp8Ids;

/// The header to send for a forwarded packet (payload unchanged, except for
/// VP8 identifiers, see [`crate::vp8::rewrite_descriptor`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewritten {
    pub header: RtpHeader,
    pub vp8: Option<Vp8Ids>,
}

/// Where to ask for a retransmission of a packet the receiver reported lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NackTarget {
    pub publication: PublicationId,
    pub ssrc: u32,
    pub sequence_number: u16,
}

/// Tunables of a [`Rewriter`].
#[derive(Debug, Clone, Copy)]
pub struct RewriteConfig {
    /// RTP clock rate of the video (90 kHz for all video codecs in WebRTC).
    pub clock_rate: u32,
    /// Smallest timestamp advance at a switch (one frame at 30 fps).
    pub min_switch_gap: Duration,
    /// How far back (in packets) NACKs are mapped and late copies forwarded.
    pub history: usize,
}

impl Default for RewriteConfig {
    fn default() -> Self {
        Self {
            clock_rate: 90_000,
            min_switch_gap: Duration::from_micros(33_333),
            history: 2048,
        }
    }
}

#[derive(Debug, Clone)]
struct Epoch {
    source: PublicationId,
    source_ssrc: u32,
    unwrapper: SeqUnwrapper,
    first_in_ext: u64,
    /// Exclusive end of the forwarded input range once the epoch is closed.
    end_in_ext: Option<u64>,
    /// `out_ext = in_ext + seq_offset` (may be negative).
    seq_offset: i64,
    ts_offset: u32,
    picture_id_offset: Option<u16>,
    tl0_offset: Option<u8>,
}

impl Epoch {
    fn out_of(&self, in_ext: u64) -> Option<u64> {
        u64::try_from(in_ext as i64 + self.seq_offset).ok()
    }

    fn first_out_ext(&self) -> Option<u64> {
        self.out_of(self.first_in_ext)
    }

    fn contains_in(&self, in_ext: u64) -> bool {
        in_ext >= self.first_in_ext && self.end_in_ext.is_none_or(|end| in_ext < end)
    }

    fn rewrite_vp8(
        &mut self,
        ids: Vp8Ids,
        last_picture_id: Option<u16>,
        last_tl0: Option<u8>,
    ) -> Vp8Ids {
        let picture_id = ids.picture_id.map(|id| {
            let modulus: u16 = if ids.picture_id_15bit { 0x8000 } else { 0x80 };
            let offset = *self.picture_id_offset.get_or_insert_with(|| {
                let next = last_picture_id.map_or(id, |p| p.wrapping_add(1));
                next.wrapping_sub(id)
            });
            id.wrapping_add(offset) % modulus
        });
        let tl0_pic_idx = ids.tl0_pic_idx.map(|idx| {
            let offset = *self.tl0_offset.get_or_insert_with(|| {
                let next = last_tl0.map_or(idx, |p| p.wrapping_add(1));
                next.wrapping_sub(idx)
            });
            idx.wrapping_add(offset)
        });
        Vp8Ids {
            picture_id,
            picture_id_15bit: ids.picture_id_15bit,
            tl0_pic_idx,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct LastOut {
    ext_seq: u64,
    timestamp: u32,
    at: Instant,
}

/// Rewrites the packets of whichever source currently feeds one Subscription.
///
/// Besides the current epoch, the last few closed epochs are kept (bounded by
/// [`MAX_EPOCHS`] and by `history` packets): they map NACKed numbers back to
/// their source, and let retransmissions of packets already forwarded before
/// a switch reach the receiver again under their original outgoing numbers.
#[derive(Debug, Clone)]
pub struct Rewriter {
    ssrc: u32,
    config: RewriteConfig,
    next_ext_seq: u64,
    initial_timestamp: u32,
    last: Option<LastOut>,
    last_picture_id: Option<u16>,
    last_tl0: Option<u8>,
    /// Oldest first; the last one is current while `active`.
    epochs: VecDeque<Epoch>,
    active: bool,
}

/// Closed epochs remembered for NACK mapping and retransmissions.
pub const MAX_EPOCHS: usize = 16;

/// Timestamp advances are capped well below half the u32 space so they are
/// always read as "forward" by receivers.
const MAX_TS_GAP: u64 = 1 << 30;

impl Rewriter {
    /// `ssrc`, `initial_sequence_number` and `initial_timestamp` should be
    /// random (RFC 3550 §5.1); the I/O shell picks them.
    pub fn new(
        ssrc: u32,
        initial_sequence_number: u16,
        initial_timestamp: u32,
        config: RewriteConfig,
    ) -> Self {
        Self {
            ssrc,
            config,
            // One full cycle in, so `ext - 1` never underflows.
            next_ext_seq: (1 << 16) + u64::from(initial_sequence_number),
            initial_timestamp,
            last: None,
            last_picture_id: None,
            last_tl0: None,
            epochs: VecDeque::new(),
            active: false,
        }
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    fn current(&self) -> Option<&Epoch> {
        self.epochs.back().filter(|_| self.active)
    }

    /// The Publication currently forwarded, if any.
    pub fn source(&self) -> Option<PublicationId> {
        self.current().map(|e| e.source)
    }

    /// The SSRC of the Publication currently forwarded, if any.
    pub fn source_ssrc(&self) -> Option<u32> {
        self.current().map(|e| e.source_ssrc)
    }

    /// The sequence number of the newest packet sent, if any.
    pub fn last_sequence_number(&self) -> Option<u16> {
        self.last.map(|l| (l.ext_seq & 0xffff) as u16)
    }

    /// The timestamp of the newest packet sent, if any.
    pub fn last_timestamp(&self) -> Option<u32> {
        self.last.map(|l| l.timestamp)
    }

    /// Starts forwarding `source` at `first` (a keyframe start): its packet
    /// gets the next sequence number and a timestamp after the last frame.
    pub fn start_epoch(&mut self, source: PublicationId, first: &RtpHeader, now: Instant) {
        self.stop();
        let mut unwrapper = SeqUnwrapper::new();
        let first_in_ext = unwrapper.unwrap(u64::from(first.sequence_number));
        let out_ext = match self.last {
            Some(l) => l.ext_seq + 1,
            None => self.next_ext_seq,
        };
        let out_ts = match self.last {
            Some(l) => {
                let gap = now
                    .saturating_duration_since(l.at)
                    .max(self.config.min_switch_gap);
                let ticks = (gap.as_nanos() * u128::from(self.config.clock_rate) + 500_000_000)
                    / 1_000_000_000;
                let ticks = u64::try_from(ticks)
                    .unwrap_or(MAX_TS_GAP)
                    .clamp(1, MAX_TS_GAP);
                l.timestamp.wrapping_add(ticks as u32)
            }
            None => self.initial_timestamp,
        };
        self.epochs.push_back(Epoch {
            source,
            source_ssrc: first.ssrc,
            unwrapper,
            first_in_ext,
            end_in_ext: None,
            seq_offset: out_ext as i64 - first_in_ext as i64,
            ts_offset: out_ts.wrapping_sub(first.timestamp),
            picture_id_offset: None,
            tl0_offset: None,
        });
        while self.epochs.len() > MAX_EPOCHS {
            self.epochs.pop_front();
        }
        self.active = true;
    }

    /// Stops forwarding; later packets are dropped (except retransmissions of
    /// packets already sent) until the next [`Rewriter::start_epoch`].
    pub fn stop(&mut self) {
        if !self.active {
            return;
        }
        self.active = false;
        let next_out = self.last.map_or(self.next_ext_seq, |l| l.ext_seq + 1);
        if let Some(e) = self.epochs.back_mut() {
            // Everything not yet sent from this source is cut off here.
            let end = (next_out as i64 - e.seq_offset).max(e.first_in_ext as i64);
            e.end_in_ext = Some(end as u64);
        }
    }

    /// Rewrites one packet of `source`, or returns `None` if it must be dropped
    /// (not the current source, another SSRC, or older than the switch point).
    pub fn rewrite(
        &mut self,
        source: PublicationId,
        header: &RtpHeader,
        vp8: Option<Vp8Ids>,
        now: Instant,
    ) -> Option<Rewritten> {
        let (last_pid, last_tl0) = (self.last_picture_id, self.last_tl0);
        let active = self.active;
        let n = self.epochs.len();
        // Current epoch first.
        if active
            && let Some(e) = self.epochs.back_mut()
            && e.source == source
            && e.source_ssrc == header.ssrc
        {
            let in_ext = e.unwrapper.unwrap(u64::from(header.sequence_number));
            if in_ext >= e.first_in_ext {
                let out_ext = e.out_of(in_ext)?;
                let timestamp = header.timestamp.wrapping_add(e.ts_offset);
                let vp8 = vp8.map(|ids| e.rewrite_vp8(ids, last_pid, last_tl0));
                if self.last.is_none_or(|l| out_ext > l.ext_seq) {
                    self.last = Some(LastOut {
                        ext_seq: out_ext,
                        timestamp,
                        at: now,
                    });
                    if let Some(ids) = vp8 {
                        self.last_picture_id = ids.picture_id.or(self.last_picture_id);
                        self.last_tl0 = ids.tl0_pic_idx.or(self.last_tl0);
                    }
                }
                return Some(self.finish(header, out_ext, timestamp, vp8));
            }
        }
        // A late copy (reordered or retransmitted) of a packet sent in an
        // earlier epoch: same outgoing numbers as the first time.
        let last_ext = self.last?.ext_seq;
        let skip = usize::from(active);
        let (out_ext, timestamp, vp8) = self
            .epochs
            .iter_mut()
            .take(n - skip)
            .rev()
            .filter(|e| e.source == source && e.source_ssrc == header.ssrc)
            .find_map(|e| {
                let in_ext = e.unwrapper.peek(u64::from(header.sequence_number));
                if !e.contains_in(in_ext) {
                    return None;
                }
                let out_ext = e.out_of(in_ext)?;
                let ts = header.timestamp.wrapping_add(e.ts_offset);
                // Offsets are fixed once set; a closed epoch never sets new ones.
                let vp8 = vp8.map(|ids| Vp8Ids {
                    picture_id: ids.picture_id.zip(e.picture_id_offset).map(|(id, o)| {
                        let modulus: u16 = if ids.picture_id_15bit { 0x8000 } else { 0x80 };
                        id.wrapping_add(o) % modulus
                    }),
                    picture_id_15bit: ids.picture_id_15bit,
                    tl0_pic_idx: ids
                        .tl0_pic_idx
                        .zip(e.tl0_offset)
                        .map(|(i, o)| i.wrapping_add(o)),
                });
                Some((out_ext, ts, vp8))
            })?;
        if out_ext > last_ext || out_ext + (self.config.history as u64) <= last_ext {
            return None;
        }
        Some(self.finish(header, out_ext, timestamp, vp8))
    }

    fn finish(
        &self,
        header: &RtpHeader,
        out_ext: u64,
        timestamp: u32,
        vp8: Option<Vp8Ids>,
    ) -> Rewritten {
        Rewritten {
            header: RtpHeader {
                payload_type: header.payload_type,
                marker: header.marker,
                sequence_number: (out_ext & 0xffff) as u16,
                timestamp,
                ssrc: self.ssrc,
            },
            vp8,
        }
    }

    /// Maps one sequence number the receiver reported lost back to its source.
    ///
    /// Works for holes the switch did not create: packets lost between the
    /// publisher and the server map back too, so the NACK reaches the
    /// publisher. Numbers older than `history` packets are not mapped.
    pub fn lookup(&self, sequence_number: u16) -> Option<NackTarget> {
        let last = self.last?.ext_seq;
        // Extend relative to the newest packet sent: NACKs refer to the past.
        let back = (last as u16).wrapping_sub(sequence_number);
        let out_ext = last.checked_sub(u64::from(back))?;
        if out_ext + (self.config.history as u64) <= last {
            return None;
        }
        let e = self
            .epochs
            .iter()
            .rev()
            .find(|e| e.first_out_ext().is_some_and(|f| f <= out_ext))?;
        let in_ext = u64::try_from(out_ext as i64 - e.seq_offset).ok()?;
        if !e.contains_in(in_ext) {
            return None;
        }
        Some(NackTarget {
            publication: e.source,
            ssrc: e.source_ssrc,
            sequence_number: (in_ext & 0xffff) as u16,
        })
    }

    /// Maps a receiver's NACK list back to (Publication, original sequence number) pairs.
    /// Unknown or too old numbers are skipped: the receiver will ask for a keyframe instead.
    pub fn map_nack(&self, sequence_numbers: impl IntoIterator<Item = u16>) -> Vec<NackTarget> {
        sequence_numbers
            .into_iter()
            .filter_map(|s| self.lookup(s))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(ssrc: u32, seq: u16, ts: u32, marker: bool) -> RtpHeader {
        RtpHeader {
            payload_type: 102,
            marker,
            sequence_number: seq,
            timestamp: ts,
            ssrc,
        }
    }

    const A: PublicationId = PublicationId(1);
    const B: PublicationId = PublicationId(2);

    #[test]
    fn continuity_across_switch_with_wrap() {
        let t0 = Instant::now();
        let mut r = Rewriter::new(99, 65534, u32::MAX - 1000, RewriteConfig::default());
        r.start_epoch(A, &hdr(1, 100, 5000, false), t0);
        let out: Vec<_> = (0..4u16)
            .map(|i| {
                r.rewrite(A, &hdr(1, 100 + i, 5000, i == 3), None, t0)
                    .expect("forwarded")
                    .header
            })
            .collect();
        let seqs: Vec<u16> = out.iter().map(|h| h.sequence_number).collect();
        assert_eq!(seqs, vec![65534, 65535, 0, 1]);
        assert!(
            out.iter()
                .all(|h| h.ssrc == 99 && h.timestamp == u32::MAX - 1000)
        );
        let t1 = t0 + Duration::from_millis(100);
        r.start_epoch(B, &hdr(2, 40000, 77, false), t1);
        let first = r
            .rewrite(B, &hdr(2, 40000, 77, false), None, t1)
            .expect("fwd");
        assert_eq!(first.header.sequence_number, 2);
        // 100 ms at 90 kHz after the last frame, wrapping the u32.
        assert_eq!(first.header.timestamp, (u32::MAX - 1000).wrapping_add(9000));
        // Old source is dropped after the switch.
        assert!(r.rewrite(A, &hdr(1, 104, 8000, false), None, t1).is_none());
        // A packet of the new source from before the switch point is dropped.
        assert!(r.rewrite(B, &hdr(2, 39999, 77, false), None, t1).is_none());
        // A retransmission of a packet A sent before the switch keeps its number.
        let again = r
            .rewrite(A, &hdr(1, 102, 5000, false), None, t1)
            .expect("late copy");
        assert_eq!(
            (again.header.sequence_number, again.header.timestamp),
            (0, u32::MAX - 1000)
        );
        // Real loss stays a gap.
        let after_loss = r
            .rewrite(B, &hdr(2, 40003, 3077, true), None, t1)
            .expect("fwd");
        assert_eq!(after_loss.header.sequence_number, 5);
        assert_eq!(
            after_loss.header.timestamp,
            first.header.timestamp.wrapping_add(3000)
        );
    }

    #[test]
    fn immediate_switch_advances_one_frame() {
        let t0 = Instant::now();
        let mut r = Rewriter::new(9, 0, 0, RewriteConfig::default());
        r.start_epoch(A, &hdr(1, 0, 0, true), t0);
        r.rewrite(A, &hdr(1, 0, 0, true), None, t0).expect("fwd");
        r.start_epoch(B, &hdr(2, 0, 0, true), t0);
        let h = r
            .rewrite(B, &hdr(2, 0, 0, true), None, t0)
            .expect("fwd")
            .header;
        assert_eq!(h.timestamp, 3000);
        assert_eq!(h.sequence_number, 1);
    }

    #[test]
    fn nack_maps_back_across_epochs() {
        let t0 = Instant::now();
        let mut r = Rewriter::new(9, 65530, 0, RewriteConfig::default());
        r.start_epoch(A, &hdr(1, 10, 0, false), t0);
        for s in 10..15 {
            r.rewrite(A, &hdr(1, s, 0, false), None, t0);
        }
        r.start_epoch(B, &hdr(2, 500, 0, false), t0);
        for s in 500..505 {
            r.rewrite(B, &hdr(2, s, 0, false), None, t0);
        }
        let mapped = r.map_nack([65531, 65535, 0, 3, 4]);
        let got: Vec<_> = mapped
            .iter()
            .map(|t| (t.publication, t.sequence_number))
            .collect();
        assert_eq!(got, vec![(A, 11), (B, 500), (B, 501), (B, 504)]);
    }

    #[test]
    fn nack_for_upstream_hole_maps_to_source() {
        let t0 = Instant::now();
        let mut r = Rewriter::new(9, 0, 0, RewriteConfig::default());
        r.start_epoch(A, &hdr(1, 65534, 0, false), t0);
        r.rewrite(A, &hdr(1, 65534, 0, false), None, t0);
        // 65535 and 0 never arrived from the publisher.
        r.rewrite(A, &hdr(1, 1, 0, false), None, t0);
        let got: Vec<u16> = r
            .map_nack([1, 2])
            .iter()
            .map(|t| t.sequence_number)
            .collect();
        assert_eq!(got, vec![65535, 0]);
        // Numbers never sent are not mapped.
        assert!(r.lookup(4).is_none());
        r.stop();
        assert_eq!(r.lookup(2).map(|t| t.sequence_number), Some(0));
    }

    #[test]
    fn history_is_bounded() {
        let t0 = Instant::now();
        let config = RewriteConfig {
            history: 16,
            ..Default::default()
        };
        let mut r = Rewriter::new(9, 0, 0, config);
        r.start_epoch(A, &hdr(1, 0, 0, false), t0);
        for s in 0..100 {
            r.rewrite(A, &hdr(1, s, 0, false), None, t0);
        }
        assert!(r.lookup(10).is_none());
        assert_eq!(r.lookup(99).map(|t| t.sequence_number), Some(99));
        assert_eq!(r.lookup(84).map(|t| t.sequence_number), Some(84));
        assert!(r.lookup(83).is_none());
    }

    #[test]
    fn vp8_picture_ids_continue() {
        let t0 = Instant::now();
        let mut r = Rewriter::new(9, 0, 0, RewriteConfig::default());
        let ids = |p: u16, t: u8| {
            Some(Vp8Ids {
                picture_id: Some(p),
                picture_id_15bit: true,
                tl0_pic_idx: Some(t),
            })
        };
        r.start_epoch(A, &hdr(1, 0, 0, false), t0);
        r.rewrite(A, &hdr(1, 0, 0, false), ids(0x7fff, 255), t0);
        r.start_epoch(B, &hdr(2, 0, 0, false), t0);
        let out = r
            .rewrite(B, &hdr(2, 0, 0, false), ids(1234, 9), t0)
            .expect("fwd");
        let v = out.vp8.expect("ids");
        assert_eq!(v.picture_id, Some(0));
        assert_eq!(v.tl0_pic_idx, Some(0));
        let out = r
            .rewrite(B, &hdr(2, 1, 0, false), ids(1235, 10), t0)
            .expect("fwd");
        assert_eq!(out.vp8.and_then(|v| v.picture_id), Some(1));
    }
}
