//! A Program arriving from another node: the stream node's side of the
//! uplink a conference node opens with [`Fanout::add_uplink`](crate::fanout::Fanout::add_uplink).
//!
//! One receive-only str0m `Rtc` (ICE-lite, RTP mode) whose packets come out
//! as the same [`ProgramMedia`] units a local Room's Program gives, so the
//! packager, the recorder and the WebRTC viewers cannot tell the difference.
//! Keyframe requests go back upstream as PLI. Sans-IO: datagrams, time and
//! requests in; datagrams, Program units and events out.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::format::Codec as RtcCodec;
use str0m::media::{KeyframeRequestKind, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

use crate::fanout::CONNECT_TIMEOUT;
use crate::keyframe::Codec;
use crate::room::{Datagram, ProgramMedia};
use crate::rtp::RtpHeader;

/// Program units that may wait for the shell before the oldest go.
const UNIT_QUEUE: usize = 2048;

/// Why an uplink's offer was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestError {
    /// Not SDP, or str0m refused it.
    Sdp(String),
    /// The offer does not send both a video and an audio track this side
    /// can take (H.264 and Opus).
    Unsuitable(&'static str),
}

impl std::fmt::Display for IngestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IngestError::Sdp(e) => write!(f, "invalid SDP offer: {e}"),
            IngestError::Unsuitable(why) => write!(f, "the offer cannot carry a Program: {why}"),
        }
    }
}

impl std::error::Error for IngestError {}

/// What happened to the uplink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestEvent {
    /// ICE and DTLS are up.
    Connected,
    /// ICE gave up, or never completed in time: the Program has stopped
    /// arriving and the broadcast should end.
    Disconnected,
}

/// One Program received from a conference node.
pub struct ProgramIngest {
    rtc: Rtc,
    local_addr: SocketAddr,
    timeout: Instant,
    connected: bool,
    connect_by: Instant,
    given_up: bool,
    video_mid: Option<Mid>,
    audio_mid: Option<Mid>,
    transmits: VecDeque<Datagram>,
    units: VecDeque<ProgramMedia>,
    events: VecDeque<IngestEvent>,
}

impl ProgramIngest {
    /// Accepts an uplink's offer (it must send video and audio) on the
    /// socket at `local_addr` (the one host candidate) and returns the SDP
    /// answer.
    pub fn new(local_addr: SocketAddr, offer: &str, now: Instant) -> Result<(Self, String), IngestError> {
        str0m::crypto::from_feature_flags().install_process_default();
        let offer = SdpOffer::from_sdp_string(offer).map_err(|e| IngestError::Sdp(e.to_string()))?;
        let config = crate::dtls::peer_config();
        let mut rtc =
            config.set_ice_lite(true).set_rtp_mode(true).clear_codecs().enable_h264(true).enable_opus(true, false).build(now);
        let candidate = Candidate::host(local_addr, "udp").map_err(|e| IngestError::Sdp(e.to_string()))?;
        rtc.add_local_candidate(candidate);
        let answer = rtc.sdp_api().accept_offer(offer).map_err(|e| IngestError::Sdp(e.to_string()))?;
        let mut ingest = ProgramIngest {
            rtc,
            local_addr,
            timeout: now,
            connected: false,
            connect_by: now + CONNECT_TIMEOUT,
            given_up: false,
            video_mid: None,
            audio_mid: None,
            transmits: VecDeque::new(),
            units: VecDeque::new(),
            events: VecDeque::new(),
        };
        let answer_text = answer.to_sdp_string();
        for mid in answer_mids(&answer_text) {
            let Some(media) = ingest.rtc.media(mid) else { continue };
            if !media.direction().is_receiving() {
                continue;
            }
            match media.kind() {
                MediaKind::Video => ingest.video_mid.get_or_insert(mid),
                MediaKind::Audio => ingest.audio_mid.get_or_insert(mid),
            };
        }
        let has_codec = |mid: Option<Mid>, codec: RtcCodec| {
            mid.and_then(|m| ingest.rtc.media(m)).is_some_and(|m| {
                m.remote_pts().iter().any(|pt| ingest.rtc.codec_config().find(|p| p.pt() == *pt).is_some_and(|p| p.spec().codec == codec))
            })
        };
        if ingest.video_mid.is_none() {
            return Err(IngestError::Unsuitable("no video m-line that sends"));
        }
        if ingest.audio_mid.is_none() {
            return Err(IngestError::Unsuitable("no audio m-line that sends"));
        }
        if !has_codec(ingest.video_mid, RtcCodec::H264) {
            return Err(IngestError::Unsuitable("no H.264 video"));
        }
        if !has_codec(ingest.audio_mid, RtcCodec::Opus) {
            return Err(IngestError::Unsuitable("no Opus audio"));
        }
        ingest.drain(now);
        Ok((ingest, answer_text))
    }

    /// Whether the datagram is the uplink's (then it was handled).
    pub fn handle_datagram(&mut self, source: SocketAddr, contents: &[u8], now: Instant) -> bool {
        let Ok(contents) = contents.try_into() else { return false };
        let input = Input::Receive(now, Receive { proto: Protocol::Udp, source, destination: self.local_addr, contents });
        if !self.rtc.accepts(&input) {
            return false;
        }
        // A broken packet must not stop the broadcast.
        let _ = self.rtc.handle_input(input);
        self.drain(now);
        true
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.connected && now >= self.connect_by {
            self.give_up();
        }
        if now >= self.timeout {
            let _ = self.rtc.handle_input(Input::Timeout(now));
            self.drain(now);
        }
    }

    pub fn poll_timeout(&self) -> Instant {
        if self.connected || self.given_up { self.timeout } else { self.timeout.min(self.connect_by) }
    }

    /// Asks the conference node for a keyframe (PLI).
    pub fn request_keyframe(&mut self, now: Instant) {
        let Some(mid) = self.video_mid else { return };
        let mut api = self.rtc.direct_api();
        let ssrcs: Vec<_> = api.stream_rx_by_mid(mid, None).map(|rx| rx.ssrc()).into_iter().collect();
        for ssrc in ssrcs {
            if let Some(rx) = api.stream_rx(&ssrc) {
                rx.request_keyframe(KeyframeRequestKind::Pli);
            }
        }
        let _ = self.rtc.handle_input(Input::Timeout(now));
        self.drain(now);
    }

    pub fn poll_transmit(&mut self) -> Option<Datagram> {
        self.transmits.pop_front()
    }

    /// The next Program unit received, in arrival order.
    pub fn poll_program(&mut self) -> Option<ProgramMedia> {
        self.units.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<IngestEvent> {
        self.events.pop_front()
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    fn give_up(&mut self) {
        if !std::mem::replace(&mut self.given_up, true) {
            self.events.push_back(IngestEvent::Disconnected);
        }
    }

    fn drain(&mut self, now: Instant) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.timeout = t;
                    return;
                }
                Ok(Output::Transmit(t)) => self.transmits.push_back(t.into()),
                Ok(Output::Event(event)) => match event {
                    Event::Connected => {
                        self.connected = true;
                        self.events.push_back(IngestEvent::Connected);
                    }
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => self.give_up(),
                    Event::RtpPacket(packet) => self.unit(&packet),
                    _ => {}
                },
                Err(_) => {
                    // A broken peer: nothing more will come; the shell ends it.
                    self.timeout = now + Duration::from_secs(3600);
                    self.give_up();
                    return;
                }
            }
        }
    }

    fn unit(&mut self, packet: &str0m::rtp::RtpPacket) {
        let mid = self.rtc.direct_api().stream_rx(&packet.header.ssrc).map(|rx| rx.mid());
        let media = if mid.is_some() && mid == self.audio_mid {
            ProgramMedia::Audio { rtp_timestamp: packet.header.timestamp, payload: Arc::from(&packet.payload[..]) }
        } else if mid.is_some() && mid == self.video_mid {
            let is_h264 = self
                .rtc
                .codec_config()
                .find(|p| p.pt() == packet.header.payload_type)
                .is_some_and(|p| p.spec().codec == RtcCodec::H264);
            if !is_h264 {
                return;
            }
            let header = RtpHeader {
                payload_type: *packet.header.payload_type,
                marker: packet.header.marker,
                sequence_number: packet.header.sequence_number,
                timestamp: packet.header.timestamp,
                ssrc: *packet.header.ssrc,
            };
            ProgramMedia::Video { header, codec: Codec::H264, payload: packet.payload.to_vec() }
        } else {
            return;
        };
        if self.units.len() >= UNIT_QUEUE {
            self.units.pop_front();
        }
        self.units.push_back(media);
    }
}

/// The `a=mid:` values of an SDP text, in order.
fn answer_mids(sdp: &str) -> impl Iterator<Item = Mid> + '_ {
    sdp.lines().filter_map(|line| line.trim_end().strip_prefix("a=mid:")).filter(|mid| !mid.is_empty() && mid.len() <= 16).map(Mid::from)
}
