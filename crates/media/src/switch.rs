//! Keyframe-gated switching of one Subscription between sources.
//!
//! A receiver has exactly one outgoing video. Switching it to another
//! Publication cannot happen at an arbitrary packet: the receiver's decoder
//! needs a keyframe to start decoding the new picture sequence. So a switch
//! request only records a *pending* source and asks that Publication for a
//! keyframe; the old source keeps being forwarded (or nothing, if there was
//! none) until a packet that starts a keyframe arrives from the pending one.
//! Then the rewriter opens a new epoch at exactly that packet. If no usable
//! keyframe arrives within `keyframe_retry`, the request is repeated.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::ids::PublicationId;
use crate::keyframe::PacketInfo;
use crate::rewrite::{NackTarget, RewriteConfig, Rewriter, Rewritten};
use crate::rtp::RtpHeader;

/// Tunables of a [`Switcher`].
#[derive(Debug, Clone, Copy)]
pub struct SwitchConfig {
    /// Ask again if a pending switch has seen no keyframe for this long.
    pub keyframe_retry: Duration,
    pub rewrite: RewriteConfig,
}

impl Default for SwitchConfig {
    fn default() -> Self {
        Self {
            keyframe_retry: Duration::from_secs(1),
            rewrite: RewriteConfig::default(),
        }
    }
}

/// What to do with one incoming packet for this Subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwitchOutcome {
    /// Send the payload with this header.
    Forward {
        rewritten: Rewritten,
        /// This packet is the first one of a newly switched-to source.
        switched: bool,
    },
    /// Not for this receiver (other source, too late, or waiting for a keyframe).
    Drop,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    publication: PublicationId,
    last_request: Instant,
}

/// The switching state machine of one Subscription.
#[derive(Debug, Clone)]
pub struct Switcher {
    config: SwitchConfig,
    rewriter: Rewriter,
    current: Option<PublicationId>,
    pending: Option<Pending>,
    keyframe_requests: VecDeque<PublicationId>,
}

impl Switcher {
    /// See [`Rewriter::new`] for the meaning of the initial values.
    pub fn new(
        ssrc: u32,
        initial_sequence_number: u16,
        initial_timestamp: u32,
        config: SwitchConfig,
    ) -> Self {
        Self {
            config,
            rewriter: Rewriter::new(
                ssrc,
                initial_sequence_number,
                initial_timestamp,
                config.rewrite,
            ),
            current: None,
            pending: None,
            keyframe_requests: VecDeque::new(),
        }
    }

    /// The source being forwarded now.
    pub fn current(&self) -> Option<PublicationId> {
        self.current
    }

    /// The source waited for (a keyframe has been requested from it).
    pub fn pending(&self) -> Option<PublicationId> {
        self.pending.map(|p| p.publication)
    }

    /// The source this Subscription is heading to: pending if any, else current.
    pub fn target(&self) -> Option<PublicationId> {
        self.pending().or(self.current)
    }

    pub fn rewriter(&self) -> &Rewriter {
        &self.rewriter
    }

    /// Sets the source the receiver should see. `None` stops the video at once
    /// (no keyframe is needed to show nothing).
    pub fn switch_to(&mut self, target: Option<PublicationId>, now: Instant) {
        match target {
            None => {
                self.current = None;
                self.pending = None;
                self.rewriter.stop();
            }
            Some(t) if self.current == Some(t) && self.rewriter.source().is_some() => {
                // Back to what is already flowing: cancel any pending switch.
                self.pending = None;
            }
            Some(t) if self.pending() == Some(t) => {}
            Some(t) => {
                self.pending = Some(Pending {
                    publication: t,
                    last_request: now,
                });
                self.keyframe_requests.push_back(t);
            }
        }
    }

    /// Offers one packet of `source` to this Subscription.
    ///
    /// `info` comes from the source's [`crate::keyframe::FrameInspector`].
    pub fn handle_packet(
        &mut self,
        source: PublicationId,
        header: &RtpHeader,
        info: &PacketInfo,
        now: Instant,
    ) -> SwitchOutcome {
        let mut switched = false;
        if self.pending() == Some(source) && info.keyframe_start {
            self.rewriter.start_epoch(source, header, now);
            self.current = Some(source);
            self.pending = None;
            switched = true;
        } else if self.current == Some(source)
            && self
                .rewriter
                .source_ssrc()
                .is_some_and(|s| s != header.ssrc)
        {
            // The Publication restarted with a new SSRC (e.g. renegotiation):
            // its sequence numbers are unrelated, so resync at a keyframe.
            if info.keyframe_start {
                self.rewriter.start_epoch(source, header, now);
                self.pending = None;
            } else if self.pending.is_none() {
                self.pending = Some(Pending {
                    publication: source,
                    last_request: now,
                });
                self.keyframe_requests.push_back(source);
            }
        }
        // Packets of other sources only pass if they are late copies of
        // packets already sent (the rewriter knows its past epochs).
        match self.rewriter.rewrite(source, header, info.vp8, now) {
            Some(rewritten) => SwitchOutcome::Forward {
                rewritten,
                switched,
            },
            None => SwitchOutcome::Drop,
        }
    }

    /// Repeats the keyframe request of a pending switch that timed out.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(p) = self.pending.as_mut()
            && now.saturating_duration_since(p.last_request) >= self.config.keyframe_retry
        {
            p.last_request = now;
            self.keyframe_requests.push_back(p.publication);
        }
    }

    /// When [`Switcher::handle_timeout`] should run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending
            .map(|p| p.last_request + self.config.keyframe_retry)
    }

    /// Next Publication this Subscription wants a keyframe from (unthrottled;
    /// feed it to a [`crate::keyframe_request::KeyframeRequestThrottle`]).
    pub fn poll_keyframe_request(&mut self) -> Option<PublicationId> {
        self.keyframe_requests.pop_front()
    }

    /// The receiver lost packets: which source packets to ask for again.
    pub fn map_nack(&self, sequence_numbers: impl IntoIterator<Item = u16>) -> Vec<NackTarget> {
        self.rewriter.map_nack(sequence_numbers)
    }

    /// The receiver asked for a keyframe (PLI/FIR): which Publication to ask.
    /// During a pending switch that is the pending source, whose keyframe
    /// will be the next thing the receiver decodes.
    pub fn keyframe_source(&self) -> Option<PublicationId> {
        self.target()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: PublicationId = PublicationId(1);
    const B: PublicationId = PublicationId(2);

    fn hdr(ssrc: u32, seq: u16, ts: u32) -> RtpHeader {
        RtpHeader {
            payload_type: 102,
            marker: false,
            sequence_number: seq,
            timestamp: ts,
            ssrc,
        }
    }

    fn key() -> PacketInfo {
        PacketInfo {
            frame_start: true,
            keyframe: true,
            keyframe_start: true,
            ..Default::default()
        }
    }

    fn delta() -> PacketInfo {
        PacketInfo::default()
    }

    fn forwarded(o: SwitchOutcome) -> Option<(u16, bool)> {
        match o {
            SwitchOutcome::Forward {
                rewritten,
                switched,
            } => Some((rewritten.header.sequence_number, switched)),
            SwitchOutcome::Drop => None,
        }
    }

    #[test]
    fn waits_for_keyframe_and_keeps_old_source_meanwhile() {
        let t0 = Instant::now();
        let mut s = Switcher::new(9, 100, 0, SwitchConfig::default());
        s.switch_to(Some(A), t0);
        assert_eq!(s.poll_keyframe_request(), Some(A));
        assert_eq!(s.poll_keyframe_request(), None);
        assert_eq!(
            forwarded(s.handle_packet(A, &hdr(1, 5, 0), &delta(), t0)),
            None
        );
        assert_eq!(
            forwarded(s.handle_packet(A, &hdr(1, 6, 0), &key(), t0)),
            Some((100, true))
        );
        assert_eq!(
            forwarded(s.handle_packet(A, &hdr(1, 7, 0), &delta(), t0)),
            Some((101, false))
        );

        s.switch_to(Some(B), t0);
        assert_eq!(s.pending(), Some(B));
        assert_eq!(s.poll_keyframe_request(), Some(B));
        // B's inter frames are not forwarded, A's still are.
        assert_eq!(
            forwarded(s.handle_packet(B, &hdr(2, 50, 0), &delta(), t0)),
            None
        );
        assert_eq!(
            forwarded(s.handle_packet(A, &hdr(1, 8, 0), &delta(), t0)),
            Some((102, false))
        );
        assert_eq!(
            forwarded(s.handle_packet(B, &hdr(2, 51, 0), &key(), t0)),
            Some((103, true))
        );
        assert_eq!(s.current(), Some(B));
        assert_eq!(
            forwarded(s.handle_packet(A, &hdr(1, 9, 0), &delta(), t0)),
            None
        );
    }

    #[test]
    fn retries_keyframe_request() {
        let t0 = Instant::now();
        let mut s = Switcher::new(9, 0, 0, SwitchConfig::default());
        s.switch_to(Some(A), t0);
        assert_eq!(s.poll_keyframe_request(), Some(A));
        assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(1)));
        s.handle_timeout(t0 + Duration::from_millis(999));
        assert_eq!(s.poll_keyframe_request(), None);
        s.handle_timeout(t0 + Duration::from_secs(1));
        assert_eq!(s.poll_keyframe_request(), Some(A));
        s.handle_packet(A, &hdr(1, 0, 0), &key(), t0);
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn switching_back_cancels_pending_and_none_is_immediate() {
        let t0 = Instant::now();
        let mut s = Switcher::new(9, 0, 0, SwitchConfig::default());
        s.switch_to(Some(A), t0);
        s.handle_packet(A, &hdr(1, 0, 0), &key(), t0);
        s.switch_to(Some(B), t0);
        s.switch_to(Some(A), t0);
        assert_eq!(s.pending(), None);
        assert_eq!(s.current(), Some(A));
        s.switch_to(None, t0);
        assert_eq!(s.current(), None);
        assert_eq!(
            forwarded(s.handle_packet(A, &hdr(1, 1, 0), &key(), t0)),
            None
        );
    }

    #[test]
    fn source_ssrc_change_resyncs_at_keyframe() {
        let t0 = Instant::now();
        let mut s = Switcher::new(9, 0, 0, SwitchConfig::default());
        s.switch_to(Some(A), t0);
        s.poll_keyframe_request();
        assert_eq!(
            forwarded(s.handle_packet(A, &hdr(1, 10, 0), &key(), t0)),
            Some((0, true))
        );
        // New SSRC, unrelated numbering: dropped until its keyframe.
        assert_eq!(
            forwarded(s.handle_packet(A, &hdr(3, 9000, 0), &delta(), t0)),
            None
        );
        assert_eq!(s.poll_keyframe_request(), Some(A));
        assert_eq!(
            forwarded(s.handle_packet(A, &hdr(3, 9001, 0), &key(), t0)).map(|f| f.0),
            Some(1)
        );
        assert_eq!(
            forwarded(s.handle_packet(A, &hdr(3, 9002, 0), &delta(), t0)).map(|f| f.0),
            Some(2)
        );
    }
}
