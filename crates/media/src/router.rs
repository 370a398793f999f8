//! The sans-IO forwarding core of one Room: selection, switching, rewriting
//! and keyframe/NACK plumbing wired together.
//!
//! The I/O shell owns the WebRTC peers; for every Room it owns one
//! `Router` and feeds it: membership and requests (from signalling), RTP
//! packets of Publications, PLI/FIR and NACK from receivers, the active
//! speaker (from the audio mixer), and time. It gets back the packets to
//! send to each receiver ([`Forward`]) and [`RouterOutput`]s: keyframe
//! requests and NACKs to send to publishers, selection events to tell the
//! clients, and the Program's video parameters for the broadcast packager.

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::continuity::GapDetector;
use crate::ids::{ParticipantId, PublicationId};
use crate::keyframe::{Codec, FrameInspector, PacketInfo, VideoParams};
use crate::keyframe_request::KeyframeRequestThrottle;
use crate::rtp::RtpHeader;
use crate::selection::{
    Actor, Choice, Role, Selection, SelectionConfig, SelectionError, SelectionEvent,
};
use crate::switch::{SwitchConfig, SwitchOutcome, Switcher};
use crate::vp8::{self, Vp8Ids};

/// Who receives a forwarded packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Receiver {
    Participant(ParticipantId),
    /// The broadcast output.
    Program,
}

/// Identity of a receiver's outgoing video stream (random, chosen by the shell).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamInit {
    pub ssrc: u32,
    pub initial_sequence_number: u16,
    pub initial_timestamp: u32,
}

/// One packet to send to one receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    pub receiver: Receiver,
    /// Header to send: the receiver's SSRC, continuous numbering.
    pub header: RtpHeader,
    pub codec: Codec,
    /// VP8 picture identifiers to write into the payload, if any.
    pub vp8: Option<Vp8Ids>,
    /// First packet after a switch to a new source.
    pub switched: bool,
}

impl Forward {
    /// The payload to send, shared with every receiver that can take it as
    /// it came (a reference count, not a copy); a copy only where VP8
    /// identifiers are rewritten.
    pub fn shared_payload(&self, original: &std::sync::Arc<[u8]>) -> std::sync::Arc<[u8]> {
        match self.payload(original) {
            Cow::Borrowed(_) => original.clone(),
            Cow::Owned(copy) => copy.into(),
        }
    }

    /// The payload to send: the original, or a copy with VP8 identifiers rewritten.
    pub fn payload<'a>(&self, original: &'a [u8]) -> Cow<'a, [u8]> {
        match self.vp8 {
            Some(ids) => {
                let mut copy = original.to_vec();
                match vp8::rewrite_descriptor(&mut copy, ids.picture_id, ids.tl0_pic_idx) {
                    Ok(()) => Cow::Owned(copy),
                    Err(_) => Cow::Borrowed(original),
                }
            }
            None => Cow::Borrowed(original),
        }
    }
}

/// Things for the shell to do besides sending forwarded packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouterOutput {
    /// Send a PLI (or FIR) to the publisher of `publication`.
    RequestKeyframe { publication: PublicationId },
    /// Ask the publisher (or its RTX cache) to resend these packets.
    Nack {
        publication: PublicationId,
        ssrc: u32,
        sequence_numbers: Vec<u16>,
    },
    /// The Program's video now has these parameters (new init segment if changed).
    ProgramVideoParams { params: VideoParams },
    /// Tell clients about a selection change.
    Selection(SelectionEvent),
}

/// Why a router call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterError {
    Selection(SelectionError),
    UnknownPublication(PublicationId),
    UnknownReceiver(Receiver),
}

impl From<SelectionError> for RouterError {
    fn from(e: SelectionError) -> Self {
        RouterError::Selection(e)
    }
}

impl std::fmt::Display for RouterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RouterError::Selection(e) => e.fmt(f),
            RouterError::UnknownPublication(p) => write!(f, "unknown {p}"),
            RouterError::UnknownReceiver(r) => write!(f, "unknown receiver {r:?}"),
        }
    }
}

impl std::error::Error for RouterError {}

/// Tunables of a [`Router`].
#[derive(Debug, Clone, Copy)]
pub struct RouterConfig {
    pub selection: SelectionConfig,
    pub switch: SwitchConfig,
    /// At most one keyframe request per Publication this often.
    pub keyframe_min_interval: Duration,
    /// Incoming holes not repaired within this window trigger a keyframe
    /// request (`None` disables it).
    pub repair_window: Option<Duration>,
    /// Larger incoming holes trigger a keyframe request at once.
    pub max_missing: usize,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            selection: SelectionConfig::default(),
            switch: SwitchConfig::default(),
            keyframe_min_interval: Duration::from_millis(300),
            repair_window: Some(Duration::from_millis(250)),
            max_missing: 256,
        }
    }
}

#[derive(Debug, Clone)]
struct Source {
    inspector: FrameInspector,
    gaps: Option<GapDetector>,
}

/// The forwarding core of one Room.
#[derive(Debug, Clone)]
pub struct Router {
    config: RouterConfig,
    selection: Selection,
    switchers: BTreeMap<Receiver, Switcher>,
    sources: BTreeMap<PublicationId, Source>,
    throttle: KeyframeRequestThrottle,
    outputs: VecDeque<RouterOutput>,
}

impl Router {
    /// `program`: the outgoing stream identity of the Program.
    pub fn new(config: RouterConfig, program: StreamInit) -> Self {
        let mut switchers = BTreeMap::new();
        switchers.insert(Receiver::Program, Self::switcher(config, program));
        Self {
            config,
            selection: Selection::new(config.selection),
            switchers,
            sources: BTreeMap::new(),
            throttle: KeyframeRequestThrottle::new(config.keyframe_min_interval),
            outputs: VecDeque::new(),
        }
    }

    fn switcher(config: RouterConfig, s: StreamInit) -> Switcher {
        Switcher::new(
            s.ssrc,
            s.initial_sequence_number,
            s.initial_timestamp,
            config.switch,
        )
    }

    pub fn selection(&self) -> &Selection {
        &self.selection
    }

    /// The source a receiver's Subscription forwards right now (may lag the
    /// selection until the new source's keyframe arrives).
    pub fn forwarding(&self, receiver: Receiver) -> Option<PublicationId> {
        self.switchers.get(&receiver).and_then(Switcher::current)
    }

    pub fn switcher_of(&self, receiver: Receiver) -> Option<&Switcher> {
        self.switchers.get(&receiver)
    }

    // ----- membership and requests -----

    pub fn join(
        &mut self,
        participant: ParticipantId,
        role: Role,
        stream: StreamInit,
        now: Instant,
    ) -> Result<(), RouterError> {
        self.selection.join(participant, role)?;
        self.switchers.insert(
            Receiver::Participant(participant),
            Self::switcher(self.config, stream),
        );
        self.apply(now);
        Ok(())
    }

    pub fn leave(&mut self, participant: ParticipantId, now: Instant) -> Result<(), RouterError> {
        let video = self.selection.video_of(participant);
        self.selection.leave(participant)?;
        self.switchers.remove(&Receiver::Participant(participant));
        if let Some(p) = video {
            self.remove_source(p);
        }
        self.apply(now);
        Ok(())
    }

    pub fn set_role(
        &mut self,
        participant: ParticipantId,
        role: Role,
        now: Instant,
    ) -> Result<(), RouterError> {
        self.selection.set_role(participant, role)?;
        self.apply(now);
        Ok(())
    }

    /// `participant` publishes camera video as `publication` in `codec`.
    pub fn publish_video(
        &mut self,
        participant: ParticipantId,
        publication: PublicationId,
        codec: Codec,
        now: Instant,
    ) -> Result<(), RouterError> {
        let previous = self.selection.video_of(participant);
        self.selection.publish_video(participant, publication)?;
        if let Some(p) = previous.filter(|p| *p != publication) {
            self.remove_source(p);
        }
        self.sources.insert(
            publication,
            Source {
                inspector: FrameInspector::new(codec),
                gaps: self
                    .config
                    .repair_window
                    .map(|w| GapDetector::new(w, self.config.max_missing)),
            },
        );
        self.apply(now);
        Ok(())
    }

    pub fn unpublish_video(
        &mut self,
        participant: ParticipantId,
        now: Instant,
    ) -> Result<(), RouterError> {
        let video = self.selection.video_of(participant);
        self.selection.unpublish_video(participant)?;
        if let Some(p) = video {
            self.remove_source(p);
        }
        self.apply(now);
        Ok(())
    }

    pub fn watch(
        &mut self,
        participant: ParticipantId,
        choice: Choice,
        now: Instant,
    ) -> Result<(), RouterError> {
        self.selection.watch(participant, choice, now)?;
        self.apply(now);
        Ok(())
    }

    pub fn lock(
        &mut self,
        actor: Actor,
        designated: ParticipantId,
        now: Instant,
    ) -> Result<(), RouterError> {
        self.selection.lock(actor, designated, now)?;
        self.apply(now);
        Ok(())
    }

    pub fn designate(
        &mut self,
        actor: Actor,
        designated: ParticipantId,
        now: Instant,
    ) -> Result<(), RouterError> {
        self.selection.designate(actor, designated, now)?;
        self.apply(now);
        Ok(())
    }

    pub fn unlock(&mut self, actor: Actor, now: Instant) -> Result<(), RouterError> {
        self.selection.unlock(actor, now)?;
        self.apply(now);
        Ok(())
    }

    /// From the audio mixer: the dominant speaker changed.
    pub fn set_active_speaker(
        &mut self,
        speaker: Option<ParticipantId>,
        now: Instant,
    ) -> Result<(), RouterError> {
        self.selection.set_active_speaker(speaker)?;
        self.apply(now);
        Ok(())
    }

    // ----- media -----

    /// One RTP packet of `publication` arrived. Returns what to send to whom;
    /// the payload of each [`Forward`] is `payload` (see [`Forward::payload`]).
    pub fn handle_rtp(
        &mut self,
        publication: PublicationId,
        header: &RtpHeader,
        payload: &[u8],
        now: Instant,
    ) -> Result<Vec<Forward>, RouterError> {
        let source = self
            .sources
            .get_mut(&publication)
            .ok_or(RouterError::UnknownPublication(publication))?;
        // A malformed payload is still forwarded as opaque bytes, but never
        // becomes a switch point.
        let info = source
            .inspector
            .inspect(header.sequence_number, header.timestamp, payload)
            .unwrap_or(PacketInfo::default());
        let codec = source.inspector.codec();
        let params = source.inspector.params();
        if source
            .gaps
            .as_mut()
            .is_some_and(|g| g.on_packet(header.sequence_number, now))
        {
            self.request_keyframe(publication, now);
        }
        if info.keyframe_start {
            self.throttle.keyframe_received(publication);
        }
        let mut out = Vec::new();
        for (receiver, switcher) in &mut self.switchers {
            if let SwitchOutcome::Forward {
                rewritten,
                switched,
            } = switcher.handle_packet(publication, header, &info, now)
            {
                if *receiver == Receiver::Program
                    && (switched || info.params_changed)
                    && let Some(params) = params
                {
                    self.outputs
                        .push_back(RouterOutput::ProgramVideoParams { params });
                }
                out.push(Forward {
                    receiver: *receiver,
                    header: rewritten.header,
                    codec,
                    vp8: rewritten.vp8,
                    switched,
                });
            }
        }
        Ok(out)
    }

    /// A receiver sent PLI or FIR: ask its source (throttled). Browsers send
    /// no periodic keyframes, so every such request matters.
    pub fn handle_keyframe_request(
        &mut self,
        receiver: Receiver,
        now: Instant,
    ) -> Result<(), RouterError> {
        let switcher = self
            .switchers
            .get(&receiver)
            .ok_or(RouterError::UnknownReceiver(receiver))?;
        if let Some(p) = switcher.keyframe_source() {
            self.request_keyframe(p, now);
        }
        Ok(())
    }

    /// A receiver sent a NACK for outgoing sequence numbers: map them back to
    /// the sources' numbers. The resulting [`RouterOutput::Nack`]s are queued.
    pub fn handle_nack(
        &mut self,
        receiver: Receiver,
        sequence_numbers: &[u16],
    ) -> Result<(), RouterError> {
        let switcher = self
            .switchers
            .get(&receiver)
            .ok_or(RouterError::UnknownReceiver(receiver))?;
        let mut grouped: BTreeMap<(PublicationId, u32), Vec<u16>> = BTreeMap::new();
        for t in switcher.map_nack(sequence_numbers.iter().copied()) {
            grouped
                .entry((t.publication, t.ssrc))
                .or_default()
                .push(t.sequence_number);
        }
        for ((publication, ssrc), sequence_numbers) in grouped {
            self.outputs.push_back(RouterOutput::Nack {
                publication,
                ssrc,
                sequence_numbers,
            });
        }
        Ok(())
    }

    /// Drives timers: keyframe retries, deferred keyframe requests, unrepaired holes.
    pub fn handle_timeout(&mut self, now: Instant) {
        for s in self.switchers.values_mut() {
            s.handle_timeout(now);
        }
        let holes: Vec<PublicationId> = self
            .sources
            .iter_mut()
            .filter_map(|(id, s)| {
                s.gaps
                    .as_mut()
                    .is_some_and(|g| g.handle_timeout(now))
                    .then_some(*id)
            })
            .collect();
        for p in holes {
            self.request_keyframe(p, now);
        }
        self.collect_keyframe_requests(now);
        while let Some(p) = self.throttle.poll(now) {
            self.outputs
                .push_back(RouterOutput::RequestKeyframe { publication: p });
        }
    }

    /// When [`Router::handle_timeout`] should run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let switchers = self.switchers.values().filter_map(Switcher::poll_timeout);
        let gaps = self
            .sources
            .values()
            .filter_map(|s| s.gaps.as_ref().and_then(GapDetector::poll_timeout));
        switchers
            .chain(gaps)
            .chain(self.throttle.poll_timeout())
            .min()
    }

    /// Next thing for the shell to do.
    pub fn poll_output(&mut self) -> Option<RouterOutput> {
        self.outputs.pop_front()
    }

    // ----- internals -----

    fn remove_source(&mut self, publication: PublicationId) {
        self.sources.remove(&publication);
        self.throttle.remove(publication);
    }

    fn request_keyframe(&mut self, publication: PublicationId, now: Instant) {
        if self.sources.contains_key(&publication) && self.throttle.request(publication, now) {
            self.outputs
                .push_back(RouterOutput::RequestKeyframe { publication });
        }
    }

    fn collect_keyframe_requests(&mut self, now: Instant) {
        let mut wanted = Vec::new();
        for s in self.switchers.values_mut() {
            while let Some(p) = s.poll_keyframe_request() {
                wanted.push(p);
            }
        }
        for p in wanted {
            self.request_keyframe(p, now);
        }
    }

    /// Applies selection changes to the switchers and queues them for clients.
    fn apply(&mut self, now: Instant) {
        while let Some(event) = self.selection.poll_event() {
            match event {
                SelectionEvent::SubscriptionChanged { receiver, source } => {
                    if let Some(s) = self.switchers.get_mut(&Receiver::Participant(receiver)) {
                        s.switch_to(source, now);
                    }
                }
                SelectionEvent::ProgramChanged { source } => {
                    if let Some(s) = self.switchers.get_mut(&Receiver::Program) {
                        s.switch_to(source, now);
                    }
                }
                _ => {}
            }
            self.outputs.push_back(RouterOutput::Selection(event));
        }
        self.collect_keyframe_requests(now);
    }
}
