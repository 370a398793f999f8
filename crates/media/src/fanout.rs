//! Program viewers over WebRTC (WHEP): the Program, fanned out as it is.
//!
//! Each viewer is one receive-only browser peer with its own str0m `Rtc`
//! (ICE-lite, RTP mode), like a Participant that publishes nothing. The
//! Program's video arrives already rewritten into one continuous stream, so
//! a viewer only needs its own sequence numbers and timestamps (random
//! starts) and must begin at a keyframe; the audio is the room's full mix,
//! one shared encode written to every viewer. Nothing is decoded or encoded
//! here. Sans-IO like [`crate::room::Room`]: datagrams, time and Program
//! media in; datagrams and events out.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec as RtcCodec;
use str0m::media::{Direction, MediaKind, Mid, Pt};
use str0m::net::Receive;
use str0m::rtp::{Extension, ExtensionMap, RtpWrite, SeqNo};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

use crate::keyframe::{Codec, FrameInspector};
use crate::netem::SeededRng;
use crate::room::{host_candidates, local_for, send_pt, Datagram, ProgramMedia, Transport};
use crate::rtp::RtpHeader;
use crate::seq::SeqUnwrapper;

/// Identifies one viewer within a [`Fanout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ViewerId(pub u64);

impl std::fmt::Display for ViewerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "viewer {}", self.0)
    }
}

/// Why a viewer's offer was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FanoutError {
    /// Not SDP, or str0m refused it.
    Sdp(String),
    /// The offer cannot receive the Program (no video or audio m-line that
    /// receives, or no codec in common).
    Unsuitable(&'static str),
    /// Too many viewers on this Fanout.
    Full,
    UnknownViewer(ViewerId),
}

impl std::fmt::Display for FanoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FanoutError::Sdp(e) => write!(f, "invalid SDP offer: {e}"),
            FanoutError::Unsuitable(why) => write!(f, "the offer cannot receive the broadcast: {why}"),
            FanoutError::Full => write!(f, "this broadcast has as many low-latency viewers as it can take"),
            FanoutError::UnknownViewer(v) => write!(f, "{v} is not watching"),
        }
    }
}

impl std::error::Error for FanoutError {}

/// What happened to the viewers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FanoutEvent {
    /// ICE and DTLS are up; media flows from the next keyframe.
    Connected(ViewerId),
    /// ICE gave up; the shell should remove the viewer.
    Disconnected(ViewerId),
}

/// Keyframe requests for the Program source, at most this often: many
/// viewers joining at once must not flood the camera with PLIs.
const KEYFRAME_INTERVAL: Duration = Duration::from_millis(500);
/// A video frame's packets are held until its last one (marker bit, or
/// the next frame's first) and then written to every viewer at once, so each
/// viewer is drained once per frame rather than once per packet; a frame
/// cannot be decoded before its last packet anyway. Held at most this long.
const FRAME_HOLD: Duration = Duration::from_millis(20);
/// A viewer whose ICE and DTLS are not up by then is given up
/// (`FanoutEvent::Disconnected`).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

struct Viewer {
    rtc: Rtc,
    timeout: Instant,
    dirty: bool,
    pending_send: bool,
    connected: bool,
    connect_by: Instant,
    /// `Disconnected` was reported (once is enough).
    given_up: bool,
    video_mid: Option<Mid>,
    audio_mid: Option<Mid>,
    h264_pt: Option<Pt>,
    vp8_pt: Option<Pt>,
    audio_pt: Option<Pt>,
    /// Video is written from the first keyframe on, so the picture never
    /// starts broken.
    started: bool,
    /// Maps the Program's sequence numbers onto this viewer's stream.
    video_seq: SeqUnwrapper,
    video_seq_offset: u16,
    video_ts_offset: u32,
    audio_seq: u64,
    audio_ts_offset: u32,
    /// An uplink's offer, until the other node answers it.
    pending: Option<SdpPendingOffer>,
}

/// One Program's WebRTC viewers.
pub struct Fanout {
    local_addr: SocketAddr,
    /// The ICE-TCP listener's address, when there is one.
    tcp_addr: Option<SocketAddr>,
    max_viewers: usize,
    viewers: BTreeMap<ViewerId, Viewer>,
    by_addr: HashMap<SocketAddr, ViewerId>,
    dirty: Vec<ViewerId>,
    timers: BinaryHeap<Reverse<(Instant, ViewerId)>>,
    rng: SeededRng,
    inspector: Option<FrameInspector>,
    transmits: VecDeque<Datagram>,
    events: VecDeque<FanoutEvent>,
    /// A viewer waits for a keyframe (or asked for one by PLI).
    keyframe_wanted: bool,
    last_keyframe_request: Option<Instant>,
    /// The current frame's video packets, until its last ([`FRAME_HOLD`]).
    held: Vec<(RtpHeader, Codec, Arc<[u8]>)>,
    held_since: Option<Instant>,
}

impl Fanout {
    /// `local_addr`: the socket viewers send to (the one host candidate).
    pub fn new(local_addr: SocketAddr, max_viewers: usize, seed: u64) -> Self {
        str0m::crypto::from_feature_flags().install_process_default();
        Self {
            local_addr,
            tcp_addr: None,
            max_viewers,
            viewers: BTreeMap::new(),
            by_addr: HashMap::new(),
            dirty: Vec::new(),
            timers: BinaryHeap::new(),
            rng: SeededRng::new(seed),
            inspector: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            keyframe_wanted: false,
            last_keyframe_request: None,
            held: Vec::new(),
            held_since: None,
        }
    }

    pub fn len(&self) -> usize {
        self.viewers.len()
    }

    /// Offers a passive ICE-TCP host candidate at `addr` (besides UDP) to
    /// the viewers who arrive from now on.
    pub fn set_tcp_candidate(&mut self, addr: Option<SocketAddr>) {
        self.tcp_addr = addr;
    }

    pub fn is_empty(&self) -> bool {
        self.viewers.is_empty()
    }

    /// Accepts a viewer's offer (it must receive video and audio) and
    /// returns the SDP answer.
    pub fn add_viewer(&mut self, id: ViewerId, offer: &str, now: Instant) -> Result<String, FanoutError> {
        if self.viewers.len() >= self.max_viewers {
            return Err(FanoutError::Full);
        }
        let offer_text = offer;
        let offer = SdpOffer::from_sdp_string(offer).map_err(|e| FanoutError::Sdp(e.to_string()))?;
        let config = crate::dtls::peer_config().set_extension_map(viewer_extensions());
        let mut rtc = config
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_h264(true)
            .enable_vp8(true)
            .enable_opus(true, false)
            .build(now);
        for candidate in host_candidates(self.local_addr, self.tcp_addr).map_err(FanoutError::Sdp)? {
            rtc.add_local_candidate(candidate);
        }
        let answer = rtc.sdp_api().accept_offer(offer).map_err(|e| FanoutError::Sdp(e.to_string()))?;
        let mut viewer = self.new_viewer(rtc, None, now);
        // str0m reports m-lines (MediaAdded) only once connected; the
        // offer's own a=mid lines name them now, and str0m's view of each
        // (kind, our direction) decides.
        for mid in offer_mids(offer_text) {
            let Some(media) = viewer.rtc.media(mid) else { continue };
            match media.kind() {
                MediaKind::Video => viewer.video_mid.get_or_insert(mid),
                MediaKind::Audio => viewer.audio_mid.get_or_insert(mid),
            };
        }
        let sends = |mid: Option<Mid>| mid.and_then(|m| viewer.rtc.media(m)).is_some_and(|m| m.direction().is_sending());
        if !sends(viewer.video_mid) {
            return Err(FanoutError::Unsuitable("no video m-line that receives"));
        }
        if !sends(viewer.audio_mid) {
            return Err(FanoutError::Unsuitable("no audio m-line that receives"));
        }
        if let Some(mid) = viewer.video_mid {
            viewer.h264_pt = send_pt(&viewer.rtc, mid, RtcCodec::H264);
            viewer.vp8_pt = send_pt(&viewer.rtc, mid, RtcCodec::Vp8);
        }
        if viewer.h264_pt.is_none() && viewer.vp8_pt.is_none() {
            return Err(FanoutError::Unsuitable("no video codec in common (H.264 packetization-mode 1 or VP8)"));
        }
        viewer.audio_pt = viewer.audio_mid.and_then(|mid| send_pt(&viewer.rtc, mid, RtcCodec::Opus));
        if viewer.audio_pt.is_none() {
            return Err(FanoutError::Unsuitable("no audio codec in common (Opus)"));
        }
        self.admit(id, viewer, now);
        Ok(answer.to_sdp_string())
    }

    /// A viewer (or uplink) around `rtc`, with its own random sequence and
    /// timestamp starts; not connected yet.
    fn new_viewer(&mut self, rtc: Rtc, pending: Option<SdpPendingOffer>, now: Instant) -> Viewer {
        Viewer {
            rtc,
            timeout: now,
            dirty: false,
            pending_send: false,
            connected: false,
            connect_by: now + CONNECT_TIMEOUT,
            given_up: false,
            video_mid: None,
            audio_mid: None,
            h264_pt: None,
            vp8_pt: None,
            audio_pt: None,
            started: false,
            video_seq: SeqUnwrapper::new(),
            video_seq_offset: self.rng.next_u64() as u16,
            video_ts_offset: self.rng.next_u64() as u32,
            audio_seq: u64::from(self.rng.next_u64() as u16),
            audio_ts_offset: self.rng.next_u64() as u32,
            pending,
        }
    }

    /// Starts driving a new viewer: its connect deadline, its first output.
    fn admit(&mut self, id: ViewerId, viewer: Viewer, now: Instant) {
        self.viewers.insert(id, viewer);
        self.timers.push(Reverse((now + CONNECT_TIMEOUT, id)));
        self.touch(id);
        self.pump(now);
    }

    /// Adds an uplink: the Program pushed to a stream node (as a WHIP
    /// client), which takes it like any viewer does, except that this side
    /// makes the offer and, being a full ICE agent, leads the connectivity
    /// checks. Returns the offer; [`accept_uplink_answer`](Self::accept_uplink_answer)
    /// completes it.
    pub fn add_uplink(&mut self, id: ViewerId, now: Instant) -> Result<String, FanoutError> {
        let config = crate::dtls::peer_config();
        let mut rtc = config.set_rtp_mode(true).clear_codecs().enable_h264(true).enable_opus(true, false).build(now);
        let candidate = Candidate::host(self.local_addr, "udp").map_err(|e| FanoutError::Sdp(e.to_string()))?;
        rtc.add_local_candidate(candidate);
        let mut changes = rtc.sdp_api();
        let video_mid = changes.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
        let audio_mid = changes.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let (offer, pending) = changes.apply().ok_or(FanoutError::Unsuitable("nothing to offer"))?;
        let mut viewer = self.new_viewer(rtc, Some(pending), now);
        viewer.video_mid = Some(video_mid);
        viewer.audio_mid = Some(audio_mid);
        self.admit(id, viewer, now);
        Ok(offer.to_sdp_string())
    }

    /// The stream node's answer to an uplink's offer. Refused (and the
    /// uplink left waiting to be removed) when it is not SDP or cannot take
    /// H.264 and Opus.
    pub fn accept_uplink_answer(&mut self, id: ViewerId, answer: &str, now: Instant) -> Result<(), FanoutError> {
        let viewer = self.viewers.get_mut(&id).ok_or(FanoutError::UnknownViewer(id))?;
        let pending = viewer.pending.take().ok_or(FanoutError::Sdp("no offer is waiting for an answer".to_owned()))?;
        let answer = SdpAnswer::from_sdp_string(answer).map_err(|e| FanoutError::Sdp(e.to_string()))?;
        viewer.rtc.sdp_api().accept_answer(pending, answer).map_err(|e| FanoutError::Sdp(e.to_string()))?;
        viewer.h264_pt = viewer.video_mid.and_then(|mid| send_pt(&viewer.rtc, mid, RtcCodec::H264));
        viewer.audio_pt = viewer.audio_mid.and_then(|mid| send_pt(&viewer.rtc, mid, RtcCodec::Opus));
        if viewer.h264_pt.is_none() {
            return Err(FanoutError::Unsuitable("the answer takes no H.264 video"));
        }
        if viewer.audio_pt.is_none() {
            return Err(FanoutError::Unsuitable("the answer takes no Opus audio"));
        }
        self.touch(id);
        self.pump(now);
        Ok(())
    }

    /// Ends a viewer's session (WHEP DELETE, ICE failure).
    pub fn remove_viewer(&mut self, id: ViewerId) -> Result<(), FanoutError> {
        let mut viewer = self.viewers.remove(&id).ok_or(FanoutError::UnknownViewer(id))?;
        viewer.rtc.disconnect();
        self.by_addr.retain(|_, v| *v != id);
        self.dirty.retain(|v| *v != id);
        Ok(())
    }

    /// A datagram from one of the viewers; `false` if none of them sent it.
    pub fn handle_datagram(&mut self, source: SocketAddr, contents: &[u8], now: Instant) -> bool {
        self.handle_packet(Transport::Udp, source, contents, now)
    }

    /// [`Fanout::handle_datagram`] for either transport (ICE-TCP frames
    /// come with `Transport::Tcp`).
    pub fn handle_packet(&mut self, transport: Transport, source: SocketAddr, contents: &[u8], now: Instant) -> bool {
        let Some(destination) = local_for(transport, self.local_addr, self.tcp_addr) else { return false };
        let Ok(contents) = contents.try_into() else { return false };
        let input = Input::Receive(now, Receive { proto: transport.protocol(), source, destination, contents });
        let known = self.by_addr.get(&source).copied().filter(|id| self.viewers.get(id).is_some_and(|v| v.rtc.accepts(&input)));
        let id = match known {
            Some(id) => id,
            None => match self.viewers.iter().find(|(_, v)| v.rtc.accepts(&input)) {
                Some((id, _)) => {
                    self.by_addr.insert(source, *id);
                    *id
                }
                None => return false,
            },
        };
        if let Some(viewer) = self.viewers.get_mut(&id) {
            // A broken packet from one viewer must not disturb the others.
            let _ = viewer.rtc.handle_input(input);
        }
        self.touch(id);
        self.pump(now);
        true
    }

    /// Sends one unit of the Program to every connected viewer:
    /// [`write`](Self::write) then [`send_written`](Self::send_written).
    pub fn push(&mut self, media: &ProgramMedia, now: Instant) {
        self.write(media, now);
        self.send_written(now);
    }

    /// Writes one unit of the Program to every connected viewer's stream;
    /// nothing leaves until [`send_written`](Self::send_written). Writing
    /// all the units at hand and then sending them drains each viewer's
    /// `Rtc` once for the lot instead of once per unit. A video packet that
    /// does not end its frame is held until the one that does (at most
    /// [`FRAME_HOLD`]; see [`poll_timeout`](Self::poll_timeout)).
    pub fn write(&mut self, media: &ProgramMedia, now: Instant) {
        match media {
            ProgramMedia::Video { header, codec, payload } => {
                if self.held.first().is_some_and(|(held, held_codec, _)| held.timestamp != header.timestamp || held_codec != codec) {
                    // The frame before lost its last packet on the way in.
                    self.release_held(now);
                }
                self.held.push((*header, *codec, Arc::from(payload.as_slice())));
                self.held_since.get_or_insert(now);
                if header.marker {
                    self.release_held(now);
                }
            }
            ProgramMedia::Audio { rtp_timestamp, payload } => {
                for (id, viewer) in &mut self.viewers {
                    let (true, Some(mid), Some(pt)) = (viewer.connected, viewer.audio_mid, viewer.audio_pt) else { continue };
                    viewer.audio_seq += 1;
                    let timestamp = rtp_timestamp.wrapping_add(viewer.audio_ts_offset);
                    let mut api = viewer.rtc.direct_api();
                    let Some(stream) = api.stream_tx_by_mid(mid, None) else { continue };
                    stream.write_rtp(RtpWrite::new(pt, viewer.audio_seq.into(), timestamp, now, payload.clone()).nackable(false));
                    mark_written(viewer, *id, &mut self.dirty);
                }
            }
        }
    }

    /// Writes the held video packets (a frame, or what arrived of it).
    fn release_held(&mut self, now: Instant) {
        self.held_since = None;
        let frame = std::mem::take(&mut self.held);
        self.write_frame(&frame, now);
        self.held = frame;
        self.held.clear();
    }

    /// Writes a frame's video packets to every connected viewer that has
    /// started (or starts now, at a keyframe), one viewer after the other:
    /// each viewer's stream is looked up once per frame. The payloads are
    /// shared by every viewer and their retransmission caches, not copied
    /// per viewer.
    fn write_frame(&mut self, packets: &[(RtpHeader, Codec, Arc<[u8]>)], now: Instant) {
        let mut starts = Vec::with_capacity(packets.len());
        for (header, codec, payload) in packets {
            let inspector = self.inspector.get_or_insert_with(|| FrameInspector::new(*codec));
            if inspector.codec() != *codec {
                *inspector = FrameInspector::new(*codec);
            }
            starts.push(inspector.inspect(header.sequence_number, header.timestamp, payload).is_ok_and(|info| info.keyframe_start));
        }
        let mut waiting = false;
        for (id, viewer) in &mut self.viewers {
            let (true, Some(mid)) = (viewer.connected, viewer.video_mid) else { continue };
            let mut api = viewer.rtc.direct_api();
            let Some(stream) = api.stream_tx_by_mid(mid, None) else { continue };
            let mut wrote = false;
            for ((header, codec, payload), keyframe_start) in packets.iter().zip(&starts) {
                if !viewer.started {
                    if !keyframe_start {
                        waiting = true;
                        continue;
                    }
                    viewer.started = true;
                }
                let Some(pt) = (match codec {
                    Codec::H264 => viewer.h264_pt,
                    Codec::Vp8 => viewer.vp8_pt,
                }) else {
                    continue;
                };
                let seq16 = header.sequence_number.wrapping_add(viewer.video_seq_offset);
                // The unwrapper starts one cycle in; SRTP wants the first ROC to be 0.
                let seq: SeqNo = viewer.video_seq.unwrap(u64::from(seq16)).saturating_sub(1 << 16).into();
                let timestamp = header.timestamp.wrapping_add(viewer.video_ts_offset);
                stream.write_rtp(RtpWrite::new(pt, seq, timestamp, now, payload.clone()).marker(header.marker).nackable(true));
                wrote = true;
            }
            if wrote {
                mark_written(viewer, *id, &mut self.dirty);
            }
        }
        if waiting {
            self.keyframe_wanted = true;
        }
    }

    /// Sends what [`write`](Self::write) wrote: each viewer written to gets
    /// one Timeout input (str0m releases written packets on a Timeout) and
    /// is drained, so the packets are ready in
    /// [`poll_transmit`](Self::poll_transmit).
    pub fn send_written(&mut self, now: Instant) {
        self.pump(now);
    }

    /// Whether the Program's source should send a keyframe now (a viewer
    /// waits for one, or asked by PLI); rate limited.
    pub fn take_keyframe_request(&mut self, now: Instant) -> bool {
        if !self.keyframe_wanted {
            return false;
        }
        if self.last_keyframe_request.is_some_and(|at| now.saturating_duration_since(at) < KEYFRAME_INTERVAL) {
            return false;
        }
        self.keyframe_wanted = false;
        self.last_keyframe_request = Some(now);
        true
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.held_since.is_some_and(|since| since + FRAME_HOLD <= now) {
            self.release_held(now);
        }
        while let Some(Reverse((at, id))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(viewer) = self.viewers.get_mut(&id) else { continue };
            if !viewer.connected && viewer.connect_by <= now && !std::mem::replace(&mut viewer.given_up, true) {
                self.events.push_back(FanoutEvent::Disconnected(id));
            }
            if viewer.timeout == at {
                viewer.pending_send = true;
                self.touch(id);
            }
        }
        self.pump(now);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let held = self.held_since.map(|since| since + FRAME_HOLD);
        self.timers.peek().map(|Reverse((at, _))| *at).into_iter().chain(held).min()
    }

    pub fn poll_transmit(&mut self) -> Option<Datagram> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<FanoutEvent> {
        self.events.pop_front()
    }

    fn touch(&mut self, id: ViewerId) {
        if let Some(viewer) = self.viewers.get_mut(&id)
            && !viewer.dirty
        {
            viewer.dirty = true;
            self.dirty.push(id);
        }
    }

    /// Drains the touched viewers' `Rtc`s (after a Timeout input when media
    /// was written, so it leaves now) and acts on their events.
    fn pump(&mut self, now: Instant) {
        for id in std::mem::take(&mut self.dirty) {
            let Some(viewer) = self.viewers.get_mut(&id) else { continue };
            viewer.dirty = false;
            if std::mem::take(&mut viewer.pending_send) {
                let _ = viewer.rtc.handle_input(Input::Timeout(now));
            }
            loop {
                match viewer.rtc.poll_output() {
                    Ok(Output::Timeout(t)) => {
                        if t != viewer.timeout {
                            viewer.timeout = t;
                            self.timers.push(Reverse((t, id)));
                        }
                        break;
                    }
                    Ok(Output::Transmit(t)) => self.transmits.push_back(t.into()),
                    Ok(Output::Event(event)) => match event {
                        Event::Connected => {
                            viewer.connected = true;
                            self.keyframe_wanted = true;
                            self.events.push_back(FanoutEvent::Connected(id));
                        }
                        Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                            if !std::mem::replace(&mut viewer.given_up, true) {
                                self.events.push_back(FanoutEvent::Disconnected(id));
                            }
                        }
                        Event::KeyframeRequest(_) => self.keyframe_wanted = true,
                        Event::MediaAdded(m) => note_media(viewer, m),
                        _ => {}
                    },
                    Err(_) => {
                        // A broken peer stays silent until it is removed.
                        viewer.timeout = now + Duration::from_secs(3600);
                        self.timers.push(Reverse((viewer.timeout, id)));
                        break;
                    }
                }
            }
        }
    }
}

/// The RTP header extensions a viewer may negotiate: str0m's standard set
/// without the two that only serve the receiver's bandwidth estimation
/// (transport-wide sequence numbers and absolute send time). Nothing here
/// adapts to a viewer's bandwidth (the Program is forwarded as it is), and
/// with transport-cc a viewer sends feedback many times a second that would
/// be received, decrypted and matched against every packet sent to it.
fn viewer_extensions() -> ExtensionMap {
    let mut extensions = ExtensionMap::empty();
    for (id, extension) in ExtensionMap::standard().iter() {
        if !matches!(extension, Extension::TransportSequenceNumber | Extension::AbsoluteSendTime) {
            extensions.set(id, extension.clone());
        }
    }
    extensions
}

/// A viewer was written to: it needs a Timeout input and draining.
fn mark_written(viewer: &mut Viewer, id: ViewerId, dirty: &mut Vec<ViewerId>) {
    viewer.pending_send = true;
    if !std::mem::replace(&mut viewer.dirty, true) {
        dirty.push(id);
    }
}

fn note_media(viewer: &mut Viewer, media: str0m::media::MediaAdded) {
    match media.kind {
        MediaKind::Video => viewer.video_mid.get_or_insert(media.mid),
        MediaKind::Audio => viewer.audio_mid.get_or_insert(media.mid),
    };
}

/// The `a=mid:` values of an SDP text, in order.
fn offer_mids(sdp: &str) -> impl Iterator<Item = Mid> + '_ {
    sdp.lines().filter_map(|line| line.trim_end().strip_prefix("a=mid:")).filter(|mid| !mid.is_empty() && mid.len() <= 16).map(Mid::from)
}
