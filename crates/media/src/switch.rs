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
use crate::rewrite::{NackTarget, RewriteConfig, Rewriter, Rewritten, Vp8Ids};
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
    pub fn new(ssrc: u32, initial_sequence_number: u16, initial_timestamp: u32, config: SwitchConfig) -> Self {
        Self {
            config,
            rewriter: Rewriter::new(ssrc, initial_sequence_number, initial_timestamp, config.rewrite),
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
    /// `info` comes from the source's [`crate::keyframe::FrameInspector`];
    /// `vp8` carries the VP8 picture identifiers of the packet, if any.
    pub fn handle_packet(
        &mut self,
        source: PublicationId,
        header: &RtpHeader,
        info: &PacketInfo,
        vp8: Option<Vp8Ids>,
        now: Instant,
    ) -> SwitchOutcome {
        let mut switched = false;
        if self.pending() == Some(source) && info.keyframe_start {
            self.rewriter.start_epoch(source, header, now);
            self.current = Some(source);
            self.pending = None;
            switched = true;
        } else if self.current == Some(source)
            && self.rewriter.source_ssrc().is_some_and(|s| s != header.ssrc)
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
        if self.current != Some(source) {
            return SwitchOutcome::Drop;
        }
        match self.rewriter.rewrite(source, header, vp8, now) {
            Some(rewritten) => SwitchOutcome::Forward { rewritten, switched },
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
        self.pending.map(|p| p.last_request + self.config.keyframe_retry)
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
