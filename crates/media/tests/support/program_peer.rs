//! A str0m peer for Program tests: the host's camera (a synthetic H.264
//! picture whose frames carry their number) or a receive-only viewer.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use confcast_media::room::Datagram;
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind, MediaTime, Mid};
use str0m::{Candidate, Event, Output, Rtc};

/// A str0m peer: the host's camera, or a receive-only viewer.
pub struct Peer {
    pub rtc: Rtc,
    pub addr: SocketAddr,
    pub timeout: Instant,
    video: Mid,
    audio: Mid,
    pub events: Vec<Event>,
    camera: bool,
    frame: u32,
    pub next_frame: Instant,
    keyframe_due: bool,
}

impl Peer {
    pub fn new(addr: SocketAddr, direction: Direction, camera: bool, now: Instant) -> (Self, String, str0m::change::SdpPendingOffer) {
        let mut rtc = Rtc::builder().build(now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").expect("candidate"));
        let mut change = rtc.sdp_api();
        let audio = change.add_media(MediaKind::Audio, direction, None, None, None);
        let video = change.add_media(MediaKind::Video, direction, None, None, None);
        let (offer, pending) = change.apply().expect("offer");
        let peer = Peer { rtc, addr, timeout: now, video, audio, events: Vec::new(), camera, frame: 0, next_frame: now, keyframe_due: true };
        (peer, offer.to_sdp_string(), pending)
    }

    pub fn accept(&mut self, pending: str0m::change::SdpPendingOffer, answer: &str) {
        let answer = SdpAnswer::from_sdp_string(answer).expect("answer");
        self.rtc.sdp_api().accept_answer(pending, answer).expect("accept answer");
    }

    pub fn drain(&mut self, net: &mut VecDeque<Datagram>) {
        loop {
            match self.rtc.poll_output().expect("peer output") {
                Output::Timeout(t) => {
                    self.timeout = t;
                    return;
                }
                Output::Transmit(t) => net.push_back(t.into()),
                Output::Event(e) => self.events.push(e),
            }
        }
    }

    /// Sends the next camera frame (30 fps; a keyframe when asked or every 2 s).
    pub fn camera_tick(&mut self, now: Instant) -> bool {
        if !self.camera || !self.rtc.is_connected() || now < self.next_frame {
            return false;
        }
        if self.events.iter().any(|e| matches!(e, Event::KeyframeRequest(_))) {
            self.keyframe_due = true;
        }
        self.events.retain(|e| !matches!(e, Event::KeyframeRequest(_)));
        let key = std::mem::take(&mut self.keyframe_due) || self.frame % 60 == 0;
        let pt = self
            .rtc
            .codec_config()
            .params()
            .iter()
            .find(|p| p.spec().codec == str0m::format::Codec::H264 && p.spec().format.packetization_mode == Some(1))
            .map(|p| p.pt())
            .expect("H.264");
        let au = access_unit(self.frame, key);
        let writer = self.rtc.writer(self.video).expect("writer");
        writer.write(pt, now, MediaTime::from_90khz(u64::from(self.frame) * 3000), au).expect("write");
        self.frame += 1;
        self.next_frame = now + Duration::from_millis(33);
        true
    }

    /// Video frames received: (frame number, has SPS, contiguous).
    pub fn frames(&self) -> Vec<(u32, bool, bool)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::MediaData(d) if d.mid == self.video => {
                    let text = String::from_utf8_lossy(&d.data);
                    let i = text.find("-frame-")?;
                    let frame = text.get(i + 7..i + 13)?.parse().ok()?;
                    Some((frame, d.data.windows(5).any(|w| w == [0, 0, 0, 1, 0x67]), d.contiguous))
                }
                _ => None,
            })
            .collect()
    }

    pub fn audio_frames(&self) -> usize {
        self.events.iter().filter(|e| matches!(e, Event::MediaData(d) if d.mid == self.audio)).count()
    }
}

pub fn access_unit(frame: u32, key: bool) -> Vec<u8> {
    let mut au = Vec::new();
    if key {
        for nal in [confcast_media::synth::sps_nal(66, 640, 480), vec![0x68, 0xce, 0x3c, 0x80]] {
            au.extend_from_slice(&[0, 0, 0, 1]);
            au.extend_from_slice(&nal);
        }
    }
    au.extend_from_slice(&[0, 0, 0, 1, if key { 0x65 } else { 0x41 }]);
    let tag = format!("host-frame-{frame:06}-");
    while au.len() < if key { 3000 } else { 400 } {
        au.extend_from_slice(tag.as_bytes());
    }
    au
}

