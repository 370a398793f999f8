//! A Room as str0m drives it: one `Rtc` per Participant around the [`Router`].
//!
//! Still sans-IO: the shell hands in datagrams received on the server's one
//! UDP socket and the current time, and sends the datagrams this returns.
//! Each Participant's `Rtc` is ICE-lite and in RTP mode, so str0m handles
//! ICE, DTLS, SRTP, RTCP, NACK/RTX, while packets stay packets: incoming
//! `Event::RtpPacket`s go to the Router, and its [`Forward`]s are written with
//! `StreamTx::write_rtp` on the receiver's own video stream, on the mid the
//! browser offered (sendrecv), so switching never renegotiates.
//!
//! Audio is mixed, not forwarded: each Participant's microphone packets go
//! into the Room's [`Mixer`], and every 20 ms tick the mix meant for each
//! Participant (everyone but themselves) is written on the audio mid they
//! offered. The mixer's dominant speaker drives the Router's automatic video
//! selection.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use confcast_mixer::{AudioLevel, AudioPacket, ListenerId, Mixer, MixerConfig, MixerEvent, SourceId, Tick};

use str0m::change::SdpOffer;
use str0m::format::Codec as RtcCodec;
use str0m::media::{KeyframeRequestKind, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive, TcpType, Transmit};
use str0m::rtp::{RtpWrite, SeqNo};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcError};

use crate::ids::{ParticipantId, PublicationId};
use crate::keyframe::{Codec, VideoParams};
use crate::netem::SeededRng;
use crate::opus_dtx::OpusDtx as _;
use crate::router::{
    Forward, Receiver, Router, RouterConfig, RouterError, RouterOutput, StreamInit,
};
use crate::rtp::RtpHeader;
use crate::selection::{Role, SelectionEvent};
use crate::seq::SeqUnwrapper;

/// Why a Room call failed.
#[derive(Debug)]
pub enum RoomError {
    /// The offer is not valid SDP, or str0m refused it.
    Sdp(String),
    /// The server's own address cannot be a host candidate.
    Candidate(String),
    Rtc(RtcError),
    Router(RouterError),
    /// The audio mixer could not be created (an Opus encoder failed).
    Mixer(String),
    UnknownParticipant(ParticipantId),
}

impl std::fmt::Display for RoomError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RoomError::Sdp(e) => write!(f, "invalid SDP: {e}"),
            RoomError::Candidate(e) => write!(f, "host candidate: {e}"),
            RoomError::Rtc(e) => write!(f, "WebRTC: {e}"),
            RoomError::Router(e) => e.fmt(f),
            RoomError::Mixer(e) => write!(f, "audio mixer: {e}"),
            RoomError::UnknownParticipant(p) => write!(f, "{p} is not in the room"),
        }
    }
}

impl std::error::Error for RoomError {}

impl From<RtcError> for RoomError {
    fn from(e: RtcError) -> Self {
        RoomError::Rtc(e)
    }
}

impl From<RouterError> for RoomError {
    fn from(e: RouterError) -> Self {
        RoomError::Router(e)
    }
}

/// A packet to send: a datagram from the server's UDP socket or, with
/// `Transport::Tcp`, one framed onto the ICE-TCP connection of `destination`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub contents: Vec<u8>,
    pub transport: Transport,
}

/// How a packet travels: UDP, or ICE-TCP (RFC 6544, passive on the server).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Transport {
    #[default]
    Udp,
    Tcp,
}

impl Transport {
    pub(crate) fn protocol(self) -> Protocol {
        match self {
            Transport::Udp => Protocol::Udp,
            Transport::Tcp => Protocol::Tcp,
        }
    }
}

impl From<Transmit> for Datagram {
    fn from(t: Transmit) -> Self {
        let transport = if t.proto == Protocol::Udp { Transport::Udp } else { Transport::Tcp };
        Datagram { source: t.source, destination: t.destination, contents: t.contents.into(), transport }
    }
}

/// The server's host candidates: its UDP address and, when ICE-TCP is on,
/// its passive TCP address.
pub(crate) fn host_candidates(udp: SocketAddr, tcp: Option<SocketAddr>) -> Result<Vec<Candidate>, String> {
    let mut candidates = vec![Candidate::host(udp, "udp").map_err(|e| e.to_string())?];
    if let Some(tcp) = tcp {
        candidates.push(Candidate::builder().tcp().host(tcp).tcptype(TcpType::Passive).build().map_err(|e| e.to_string())?);
    }
    Ok(candidates)
}

/// The address a packet came to: the UDP socket's or the ICE-TCP listener's.
pub(crate) fn local_for(transport: Transport, udp: SocketAddr, tcp: Option<SocketAddr>) -> Option<SocketAddr> {
    match transport {
        Transport::Udp => Some(udp),
        Transport::Tcp => tcp,
    }
}

/// What happened in the Room, for signalling and the packager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomEvent {
    /// ICE and DTLS are up for this Participant.
    Connected(ParticipantId),
    /// ICE gave up; the shell should `leave` this Participant.
    Disconnected(ParticipantId),
    Selection(SelectionEvent),
    ProgramVideoParams(VideoParams),
    /// A Participant started or stopped talking (from the mixer).
    Talking { participant: ParticipantId, talking: bool },
    /// The loudest speaker changed.
    DominantSpeaker(Option<ParticipantId>),
}

/// The broadcast output of a Room, for the streaming side: the host's current
/// video forwarded as RTP (already rewritten into one continuous stream) and
/// the room's full audio mix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgramMedia {
    Video { header: RtpHeader, codec: Codec, payload: Vec<u8> },
    /// One 20 ms Opus frame of the full mix; `rtp_timestamp` counts at 48 kHz.
    Audio { rtp_timestamp: u32, payload: std::sync::Arc<[u8]> },
}

/// How many program units may wait for the shell before the oldest go.
const PROGRAM_QUEUE: usize = 2048;

struct Peer {
    rtc: Rtc,
    timeout: Instant,
    /// Queued in `Room::dirty`: its output must be drained.
    dirty: bool,
    /// Media was written since the last `Timeout` input. str0m's pacer only
    /// releases written packets on a timeout, so the drain feeds one first:
    /// packets leave in the same pass instead of waiting for a timer wake-up.
    pending_send: bool,
    video_mid: Option<Mid>,
    audio_mid: Option<Mid>,
    /// Payload types to send with, found once per peer (negotiation does
    /// not change without a renegotiation, which this server never does).
    audio_pt: Option<Pt>,
    h264_pt: Option<Pt>,
    vp8_pt: Option<Pt>,
    publication: PublicationId,
    published: bool,
    /// Extends the Router's 16-bit numbers for `write_rtp`, starting at ROC 0
    /// so SRTP needs no out-of-band rollover counter.
    out_seq: SeqUnwrapper,
    /// The same for the outgoing audio stream.
    audio_out_seq: SeqUnwrapper,
    /// Random offsets added to the mixer's per-listener numbering, which
    /// starts at zero.
    audio_seq_offset: u16,
    audio_ts_offset: u32,
}

/// The str0m-driven Room.
pub struct Room {
    local_addr: SocketAddr,
    /// The ICE-TCP listener's address, when there is one (a second host candidate).
    tcp_addr: Option<SocketAddr>,
    router: Router,
    mixer: Mixer,
    peers: BTreeMap<ParticipantId, Peer>,
    /// Peers whose output must be drained: only those touched by an input,
    /// so one packet costs the peers it concerns, not the whole room.
    dirty: Vec<ParticipantId>,
    /// Every peer's next timeout, earliest first (stale entries are skipped
    /// lazily), so timers cost O(log n) instead of a scan of the room.
    timers: BinaryHeap<Reverse<(Instant, ParticipantId)>>,
    /// The peer each remote address belongs to, learned from its packets.
    by_addr: HashMap<SocketAddr, ParticipantId>,
    rng: SeededRng,
    transmits: VecDeque<Datagram>,
    events: VecDeque<RoomEvent>,
    next_publication: u64,
    /// Whether the Program is on air (its media is kept for the shell).
    program_on: bool,
    program: VecDeque<ProgramMedia>,
    program_dropped: u64,
    /// When the datagram being handled reached the machine (the kernel's
    /// stamp), if the shell knows: the mixer's jitter buffers measure from
    /// it. str0m gets the time the datagram was read, which never goes back.
    arrival: Option<Instant>,
}

impl Room {
    /// `local_addr`: the server's UDP socket (its one host candidate);
    /// `seed`: for the outgoing streams' initial numbers.
    pub fn new(
        local_addr: SocketAddr,
        config: RouterConfig,
        mixer: MixerConfig,
        seed: u64,
        now: Instant,
    ) -> Result<Self, RoomError> {
        str0m::crypto::from_feature_flags().install_process_default();
        let mut rng = SeededRng::new(seed);
        let program = Self::stream_init(&mut rng);
        let mixer = Mixer::new(mixer, now).map_err(|e| RoomError::Mixer(e.to_string()))?;
        Ok(Self {
            local_addr,
            tcp_addr: None,
            router: Router::new(config, program),
            mixer,
            peers: BTreeMap::new(),
            dirty: Vec::new(),
            timers: BinaryHeap::new(),
            by_addr: HashMap::new(),
            rng,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_publication: 1,
            program_on: false,
            program: VecDeque::new(),
            program_dropped: 0,
            arrival: None,
        })
    }

    fn stream_init(rng: &mut SeededRng) -> StreamInit {
        StreamInit {
            // str0m picks the real SSRC of each send stream.
            ssrc: rng.next_u64() as u32,
            // Small start, far from the 16-bit wrap only by chance: any value works.
            initial_sequence_number: rng.next_u64() as u16,
            initial_timestamp: rng.next_u64() as u32,
        }
    }

    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Offers a passive ICE-TCP host candidate at `addr` (besides UDP) to
    /// the Participants who join from now on; `None` stops offering it.
    pub fn set_tcp_candidate(&mut self, addr: Option<SocketAddr>) {
        self.tcp_addr = addr;
    }

    pub fn mixer(&self) -> &Mixer {
        &self.mixer
    }

    /// Starts or stops keeping the Program's media for [`Room::poll_program`].
    /// Starting asks the Program's source for a keyframe, so the packager
    /// can begin at once.
    pub fn set_program(&mut self, on: bool, now: Instant) {
        if on && !self.program_on {
            let _ = self.router.handle_keyframe_request(Receiver::Program, now);
            self.pump(now);
        }
        self.program_on = on;
        if !on {
            self.program.clear();
        }
    }

    /// The next unit of Program media, while the Program is on.
    pub fn poll_program(&mut self) -> Option<ProgramMedia> {
        self.program.pop_front()
    }

    /// Program units dropped because the shell did not take them in time.
    pub fn program_dropped(&self) -> u64 {
        self.program_dropped
    }

    fn keep_program(&mut self, media: ProgramMedia) {
        if self.program.len() >= PROGRAM_QUEUE {
            self.program.pop_front();
            self.program_dropped += 1;
        }
        self.program.push_back(media);
    }

    /// Number of Participants with a peer connection.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Applies a selection request (watch, lock, …) and acts on its effects.
    pub fn with_router<T>(&mut self, now: Instant, f: impl FnOnce(&mut Router, Instant) -> T) -> T {
        let out = f(&mut self.router, now);
        self.pump(now);
        out
    }

    /// Accepts a Participant's offer and returns the SDP answer.
    pub fn join(
        &mut self,
        participant: ParticipantId,
        role: Role,
        offer: &str,
        now: Instant,
    ) -> Result<String, RoomError> {
        if self.peers.contains_key(&participant) {
            return Err(
                RouterError::Selection(crate::selection::SelectionError::AlreadyJoined(
                    participant,
                ))
                .into(),
            );
        }
        let offer = SdpOffer::from_sdp_string(offer).map_err(|e| RoomError::Sdp(e.to_string()))?;
        // H.264 first: browsers then send H.264, VP8 stays the fallback.
        let config = crate::dtls::peer_config();
        let mut rtc = config
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_h264(true)
            .enable_vp8(true)
            .enable_opus_dtx()
            .build(now);
        for candidate in host_candidates(self.local_addr, self.tcp_addr).map_err(RoomError::Candidate)? {
            rtc.add_local_candidate(candidate);
        }
        let answer = rtc.sdp_api().accept_offer(offer)?;
        let stream = Self::stream_init(&mut self.rng);
        self.router.join(participant, role, stream, now)?;
        let publication = PublicationId(self.next_publication);
        self.next_publication += 1;
        self.mixer.add_source(SourceId(participant.0));
        self.mixer.add_listener(ListenerId(participant.0), Some(SourceId(participant.0)));
        let audio_seq_offset = self.rng.next_u64() as u16;
        let audio_ts_offset = self.rng.next_u64() as u32;
        self.peers.insert(
            participant,
            Peer {
                rtc,
                timeout: now,
                dirty: false,
                pending_send: false,
                video_mid: None,
                audio_mid: None,
                audio_pt: None,
                h264_pt: None,
                vp8_pt: None,
                publication,
                published: false,
                out_seq: SeqUnwrapper::new(),
                audio_out_seq: SeqUnwrapper::new(),
                audio_seq_offset,
                audio_ts_offset,
            },
        );
        self.touch(participant);
        self.pump(now);
        Ok(answer.to_sdp_string())
    }

    /// Removes a Participant (socket closed, ICE failed, replaced).
    pub fn leave(&mut self, participant: ParticipantId, now: Instant) -> Result<(), RoomError> {
        let mut peer = self
            .peers
            .remove(&participant)
            .ok_or(RoomError::UnknownParticipant(participant))?;
        peer.rtc.disconnect();
        self.by_addr.retain(|_, p| *p != participant);
        self.dirty.retain(|p| *p != participant);
        self.mixer.remove_listener(ListenerId(participant.0));
        self.mixer.remove_source(SourceId(participant.0));
        self.router.leave(participant, now)?;
        self.pump(now);
        Ok(())
    }

    /// A datagram arrived on the server's socket. Returns whether one of this
    /// Room's peers took it; unknown senders are ignored (browsers may send
    /// STUN before their `join` is processed, and the shell serves several
    /// Rooms from one socket).
    pub fn handle_datagram(
        &mut self,
        source: SocketAddr,
        contents: &[u8],
        now: Instant,
    ) -> Result<bool, RoomError> {
        self.handle_packet(Transport::Udp, source, contents, now)
    }

    /// [`Room::handle_datagram`] for either transport: a packet de-framed
    /// from an ICE-TCP connection comes with `Transport::Tcp`.
    pub fn handle_packet(
        &mut self,
        transport: Transport,
        source: SocketAddr,
        contents: &[u8],
        now: Instant,
    ) -> Result<bool, RoomError> {
        self.handle_packet_arrived(transport, source, contents, now, now)
    }

    /// [`Room::handle_packet`] for a datagram read at `now` that reached
    /// the machine at `arrival` (it waited in the socket meanwhile).
    pub fn handle_packet_arrived(
        &mut self,
        transport: Transport,
        source: SocketAddr,
        contents: &[u8],
        now: Instant,
        arrival: Instant,
    ) -> Result<bool, RoomError> {
        self.arrival = Some(arrival.min(now));
        let handled = self.handle_read_packet(transport, source, contents, now);
        self.arrival = None;
        handled
    }

    fn handle_read_packet(
        &mut self,
        transport: Transport,
        source: SocketAddr,
        contents: &[u8],
        now: Instant,
    ) -> Result<bool, RoomError> {
        let Some(destination) = local_for(transport, self.local_addr, self.tcp_addr) else {
            return Ok(false);
        };
        let Ok(contents) = contents.try_into() else {
            return Ok(false);
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: transport.protocol(),
                source,
                destination,
                contents,
            },
        );
        let known = self
            .by_addr
            .get(&source)
            .copied()
            .filter(|id| self.peers.get(id).is_some_and(|p| p.rtc.accepts(&input)));
        let id = match known {
            Some(id) => id,
            // First packet from this address (or the peer moved): ask each.
            None => match self.peers.iter().find(|(_, p)| p.rtc.accepts(&input)) {
                Some((id, _)) => {
                    self.by_addr.insert(source, *id);
                    *id
                }
                None => return Ok(false),
            },
        };
        if let Some(peer) = self.peers.get_mut(&id) {
            // A broken packet from one peer must not stop the Room.
            let _ = peer.rtc.handle_input(input);
        }
        self.touch(id);
        self.pump(now);
        Ok(true)
    }

    /// Drives every peer's and the Router's timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Peers that get the mix are drained (with a Timeout input) by `pump`.
        while let Some(tick) = self.mixer.tick(now) {
            self.deliver_audio(&tick, now);
        }
        while let Some(Reverse((at, id))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if let Some(peer) = self.peers.get_mut(&id)
                && peer.timeout == at
            {
                peer.pending_send = true;
                self.touch(id);
            }
        }
        self.router.handle_timeout(now);
        self.pump(now);
    }

    /// When [`Room::handle_timeout`] should run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        // The heap may hold stale entries; they only make an early wake-up.
        let peers = self.timers.peek().map(|Reverse((at, _))| *at);
        peers.into_iter().chain(self.router.poll_timeout()).chain(Some(self.mixer.next_tick_at())).min()
    }

    pub fn poll_transmit(&mut self) -> Option<Datagram> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<RoomEvent> {
        self.events.pop_front()
    }

    /// Marks a peer whose output must be drained by the next `pump`.
    fn touch(&mut self, id: ParticipantId) {
        if let Some(peer) = self.peers.get_mut(&id)
            && !peer.dirty
        {
            peer.dirty = true;
            self.dirty.push(id);
        }
    }

    /// Drains the touched peers' `Rtc`s until `Timeout` and acts on their
    /// events (which may touch more peers), until quiet.
    fn pump(&mut self, now: Instant) {
        for _ in 0..16 {
            let mut events = Vec::new();
            for id in std::mem::take(&mut self.dirty) {
                let Some(peer) = self.peers.get_mut(&id) else { continue };
                peer.dirty = false;
                if std::mem::take(&mut peer.pending_send) {
                    let _ = peer.rtc.handle_input(Input::Timeout(now));
                }
                loop {
                    match peer.rtc.poll_output() {
                        Ok(Output::Timeout(t)) => {
                            if t != peer.timeout {
                                peer.timeout = t;
                                self.timers.push(Reverse((t, id)));
                            }
                            break;
                        }
                        Ok(Output::Transmit(t)) => self.transmits.push_back(t.into()),
                        Ok(Output::Event(e)) => events.push((id, e)),
                        Err(_) => {
                            // The peer is broken; it stays silent until it leaves.
                            peer.timeout = now + std::time::Duration::from_secs(3600);
                            self.timers.push(Reverse((peer.timeout, id)));
                            break;
                        }
                    }
                }
            }
            self.router_outputs();
            if events.is_empty() && self.dirty.is_empty() {
                return;
            }
            for (id, e) in events {
                self.handle_event(id, e, now);
            }
        }
    }

    fn handle_event(&mut self, id: ParticipantId, event: Event, now: Instant) {
        match event {
            Event::Connected => self.events.push_back(RoomEvent::Connected(id)),
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.events.push_back(RoomEvent::Disconnected(id));
            }
            Event::MediaAdded(m) => {
                if let Some(peer) = self.peers.get_mut(&id) {
                    match m.kind {
                        MediaKind::Video => peer.video_mid.get_or_insert(m.mid),
                        MediaKind::Audio => peer.audio_mid.get_or_insert(m.mid),
                    };
                }
            }
            Event::RtpPacket(pkt) => self.handle_rtp(id, &pkt, now),
            Event::KeyframeRequest(req) => {
                let is_video = self
                    .peers
                    .get(&id)
                    .is_some_and(|p| p.video_mid == Some(req.mid));
                if is_video {
                    let _ = self
                        .router
                        .handle_keyframe_request(Receiver::Participant(id), now);
                }
            }
            _ => {}
        }
    }

    fn handle_rtp(&mut self, id: ParticipantId, pkt: &str0m::rtp::RtpPacket, now: Instant) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let ssrc = pkt.header.ssrc;
        let rx_mid = peer.rtc.direct_api().stream_rx(&ssrc).map(|s| s.mid());
        if rx_mid.is_some() && rx_mid == peer.audio_mid {
            self.push_audio(id, pkt, now);
            return;
        }
        let Some(mid) = peer.video_mid else { return };
        if rx_mid != Some(mid) {
            return;
        }
        let publication = peer.publication;
        if !peer.published {
            let codec = peer
                .rtc
                .codec_config()
                .find(|p| p.pt() == pkt.header.payload_type)
                .and_then(|p| match p.spec().codec {
                    RtcCodec::H264 => Some(Codec::H264),
                    RtcCodec::Vp8 => Some(Codec::Vp8),
                    _ => None,
                });
            let Some(codec) = codec else { return };
            if self
                .router
                .publish_video(id, publication, codec, now)
                .is_err()
            {
                return;
            }
            peer.published = true;
        }
        let header = RtpHeader {
            payload_type: *pkt.header.payload_type,
            marker: pkt.header.marker,
            sequence_number: pkt.header.sequence_number,
            timestamp: pkt.header.timestamp,
            ssrc: *ssrc,
        };
        let Ok(forwards) = self
            .router
            .handle_rtp(publication, &header, &pkt.payload, now)
        else {
            return;
        };
        for f in forwards {
            self.write(&f, &pkt.payload, now);
        }
    }

    /// Hands a microphone packet to the mixer. Packets that are not Opus are
    /// dropped (and counted by the mixer as corrupt if they get that far).
    fn push_audio(&mut self, id: ParticipantId, pkt: &str0m::rtp::RtpPacket, now: Instant) {
        let Some(peer) = self.peers.get(&id) else { return };
        let is_opus = peer
            .rtc
            .codec_config()
            .find(|p| p.pt() == pkt.header.payload_type)
            .is_some_and(|p| p.spec().codec == RtcCodec::Opus);
        if !is_opus {
            return;
        }
        // str0m reports the RFC 6464 level as -dBov (0 loudest, -127 silence).
        let level = pkt.header.ext_vals.audio_level.map(|level| AudioLevel {
            dbov: level.unsigned_abs().min(127),
            voice: pkt.header.ext_vals.voice_activity.unwrap_or(true),
        });
        let packet = AudioPacket {
            seq: pkt.header.sequence_number,
            timestamp: pkt.header.timestamp,
            level,
            payload: pkt.payload.to_vec(),
        };
        let arrival = self.arrival.unwrap_or(now);
        self.mixer.push_packet(SourceId(id.0), packet, arrival);
    }

    /// Sends every Participant their mix from one mixer tick, and acts on the
    /// mixer's speaker events.
    fn deliver_audio(&mut self, tick: &Tick, now: Instant) {
        let mut written = Vec::with_capacity(tick.routes.len());
        for route in &tick.routes {
            let Some(payload) = tick.shared_payload(route) else { continue };
            let Some(peer) = self.peers.get_mut(&ParticipantId(route.listener.0)) else {
                continue;
            };
            let Some(mid) = peer.audio_mid else { continue };
            if peer.audio_pt.is_none() {
                peer.audio_pt = send_pt(&peer.rtc, mid, RtcCodec::Opus);
            }
            let Some(pt) = peer.audio_pt else { continue };
            let seq16 = route.seq.wrapping_add(peer.audio_seq_offset);
            let ext = peer.audio_out_seq.unwrap(u64::from(seq16));
            let seq: SeqNo = ext.saturating_sub(1 << 16).into();
            let timestamp = route.timestamp.wrapping_add(peer.audio_ts_offset);
            let mut api = peer.rtc.direct_api();
            let Some(stream) = api.stream_tx_by_mid(mid, None) else { continue };
            // The frame's nominal time, so sender reports stay right when
            // the timer fires late.
            stream.write_rtp(RtpWrite::new(pt, seq, timestamp, tick.at, payload.clone()).marker(route.switched).nackable(false));
            peer.pending_send = true;
            written.push(ParticipantId(route.listener.0));
        }
        for id in written {
            self.touch(id);
        }
        for event in &tick.events {
            match *event {
                MixerEvent::TalkingStarted { source } => self
                    .events
                    .push_back(RoomEvent::Talking { participant: ParticipantId(source.0), talking: true }),
                MixerEvent::TalkingStopped { source } => self
                    .events
                    .push_back(RoomEvent::Talking { participant: ParticipantId(source.0), talking: false }),
                MixerEvent::DominantSpeakerChanged { current, .. } => {
                    let speaker = current.map(|s| ParticipantId(s.0));
                    // The speaker may have left in this same tick; then there is
                    // simply no one to follow.
                    let _ = self.router.set_active_speaker(speaker, now);
                    self.events.push_back(RoomEvent::DominantSpeaker(speaker));
                }
            }
        }
        if self.program_on {
            if let Some(payload) = &tick.program.payload {
                let media = ProgramMedia::Audio { rtp_timestamp: tick.program.rtp_timestamp, payload: payload.clone() };
                self.keep_program(media);
            }
        }
    }

    /// Writes one forwarded packet on the receiver's video send stream.
    fn write(&mut self, f: &Forward, payload: &std::sync::Arc<[u8]>, now: Instant) {
        let Receiver::Participant(r) = f.receiver else {
            if self.program_on {
                let payload = f.payload(payload).into_owned();
                self.keep_program(ProgramMedia::Video { header: f.header, codec: f.codec, payload });
            }
            return;
        };
        let Some(peer) = self.peers.get_mut(&r) else {
            return;
        };
        let Some(mid) = peer.video_mid else { return };
        let cached = match f.codec {
            Codec::H264 => &mut peer.h264_pt,
            Codec::Vp8 => &mut peer.vp8_pt,
        };
        if cached.is_none() {
            let wanted = match f.codec {
                Codec::H264 => RtcCodec::H264,
                Codec::Vp8 => RtcCodec::Vp8,
            };
            *cached = send_pt(&peer.rtc, mid, wanted);
        }
        let Some(pt) = *cached else {
            return;
        };
        let ext = peer.out_seq.unwrap(u64::from(f.header.sequence_number));
        // The unwrapper starts one cycle in; SRTP wants the first ROC to be 0.
        let seq: SeqNo = ext.saturating_sub(1 << 16).into();
        let data = f.shared_payload(payload);
        let mut api = peer.rtc.direct_api();
        let Some(stream) = api.stream_tx_by_mid(mid, None) else {
            return;
        };
        stream.write_rtp(
            RtpWrite::new(pt, seq, f.header.timestamp, now, data)
                .marker(f.header.marker)
                .nackable(true),
        );
        peer.pending_send = true;
        self.touch(r);
    }

    fn router_outputs(&mut self) {
        while let Some(o) = self.router.poll_output() {
            match o {
                RouterOutput::RequestKeyframe { publication } => {
                    let publisher = self.router.selection().publisher_of(publication);
                    if let Some(id) = publisher
                        && let Some(peer) = self.peers.get_mut(&id)
                        && let Some(mid) = peer.video_mid
                        && let Some(rx) = peer.rtc.direct_api().stream_rx_by_mid(mid, None)
                    {
                        rx.request_keyframe(KeyframeRequestKind::Pli);
                        self.touch(id);
                    }
                }
                // str0m generates NACKs for incoming streams and answers the
                // receivers' NACKs from its RTX cache.
                RouterOutput::Nack { .. } => {}
                RouterOutput::ProgramVideoParams { params } => {
                    self.events.push_back(RoomEvent::ProgramVideoParams(params));
                }
                RouterOutput::Selection(e) => self.events.push_back(RoomEvent::Selection(e)),
            }
        }
    }
}

/// The receiver's payload type for `codec` on `mid` (H.264: packetization-mode 1).
pub(crate) fn send_pt(rtc: &Rtc, mid: Mid, wanted: RtcCodec) -> Option<Pt> {
    let media = rtc.media(mid)?;
    let remote = media.remote_pts();
    rtc.codec_config()
        .params()
        .iter()
        .filter(|p| remote.contains(&p.pt()) && p.spec().codec == wanted)
        .find(|p| wanted != RtcCodec::H264 || p.spec().format.packetization_mode == Some(1))
        .map(|p| p.pt())
}
