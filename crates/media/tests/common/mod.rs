//! A deterministic Room simulation: synthetic publishers, a Router, links
//! through the seeded network emulator, and recorded receiver streams.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use confcast_media::netem::{Netem, NetemConfig};
use confcast_media::synth::{SynthPacket, SyntheticVideo, decode_marker};
use confcast_media::{
    Codec, FrameInspector, ParticipantId, PublicationId, Receiver, Role, Router, RouterConfig,
    RouterOutput, RtpHeader, SelectionEvent, StreamInit,
};

pub const FRAME: Duration = Duration::from_micros(33_333);

/// A packet as a receiver got it.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub header: RtpHeader,
    pub payload: Vec<u8>,
    /// (frame number, source SSRC) decoded from the payload.
    pub origin: (u64, u32),
    pub switched: bool,
}

pub struct Publisher {
    pub publication: PublicationId,
    pub video: SyntheticVideo,
    /// Honour keyframe requests only from this time on (simulates a slow encoder).
    pub keyframes_from: Option<Instant>,
    pub keyframe_pending: bool,
    pub uplink: Netem<SynthPacket>,
    /// Every packet ever sent, by SSRC and sequence number (an RTX cache).
    pub sent: BTreeMap<u16, SynthPacket>,
}

pub struct Sim {
    pub t0: Instant,
    pub now: Instant,
    pub router: Router,
    pub publishers: BTreeMap<ParticipantId, Publisher>,
    pub received: BTreeMap<Receiver, Vec<Received>>,
    pub downlink: BTreeMap<Receiver, Netem<(RtpHeader, Vec<u8>, bool)>>,
    pub keyframe_requests: Vec<(Instant, PublicationId)>,
    pub nacks: Vec<(PublicationId, u32, Vec<u16>)>,
    pub events: Vec<SelectionEvent>,
    pub outputs: Vec<RouterOutput>,
    /// Ground truth per receiver: outgoing sequence number → (source SSRC, source sequence number).
    pub forwarded: BTreeMap<Receiver, BTreeMap<u16, (u32, u16)>>,
    pub uplink_config: NetemConfig,
    pub downlink_config: NetemConfig,
    seed: u64,
}

pub fn stream(n: u64) -> StreamInit {
    StreamInit {
        ssrc: 0x1000 + n as u32,
        initial_sequence_number: 65530,
        initial_timestamp: u32::MAX - 5000,
    }
}

impl Sim {
    pub fn new(seed: u64) -> Self {
        Self::with_config(
            seed,
            RouterConfig::default(),
            NetemConfig::default(),
            NetemConfig::default(),
        )
    }

    pub fn with_config(
        seed: u64,
        config: RouterConfig,
        uplink: NetemConfig,
        downlink: NetemConfig,
    ) -> Self {
        let t0 = Instant::now();
        let mut sim = Self {
            t0,
            now: t0,
            router: Router::new(config, stream(0)),
            publishers: BTreeMap::new(),
            received: BTreeMap::new(),
            downlink: BTreeMap::new(),
            keyframe_requests: Vec::new(),
            nacks: Vec::new(),
            events: Vec::new(),
            outputs: Vec::new(),
            forwarded: BTreeMap::new(),
            uplink_config: uplink,
            downlink_config: downlink,
            seed,
        };
        sim.downlink
            .insert(Receiver::Program, Netem::new(downlink, seed ^ 0xffff));
        sim
    }

    /// Joins `p` and, if `codec` is given, publishes its video.
    pub fn join(&mut self, p: ParticipantId, role: Role, codec: Option<Codec>) {
        self.router
            .join(p, role, stream(p.0), self.now)
            .expect("join");
        self.downlink.insert(
            Receiver::Participant(p),
            Netem::new(
                self.downlink_config,
                self.seed.wrapping_mul(31).wrapping_add(p.0),
            ),
        );
        if let Some(codec) = codec {
            let publication = PublicationId(p.0 * 100);
            // Sources start near the wrap of both counters.
            let video = SyntheticVideo::new(
                codec,
                0xa000 + p.0 as u32,
                65500 - p.0 as u16 * 7,
                u32::MAX - 20_000 * p.0 as u32,
            );
            self.publishers.insert(
                p,
                Publisher {
                    publication,
                    video,
                    keyframes_from: None,
                    keyframe_pending: false,
                    uplink: Netem::new(self.uplink_config, self.seed.wrapping_add(p.0)),
                    sent: BTreeMap::new(),
                },
            );
            self.router
                .publish_video(p, publication, codec, self.now)
                .expect("publish");
        }
        self.drain();
    }

    pub fn publisher_by_publication(
        &mut self,
        publication: PublicationId,
    ) -> Option<&mut Publisher> {
        self.publishers
            .values_mut()
            .find(|p| p.publication == publication)
    }

    /// Handles the router's outputs like an I/O shell would.
    pub fn drain(&mut self) {
        while let Some(o) = self.router.poll_output() {
            match &o {
                RouterOutput::RequestKeyframe { publication } => {
                    self.keyframe_requests.push((self.now, *publication));
                    if let Some(p) = self.publisher_by_publication(*publication) {
                        p.keyframe_pending = true;
                    }
                }
                RouterOutput::Nack {
                    publication,
                    ssrc,
                    sequence_numbers,
                } => {
                    self.nacks
                        .push((*publication, *ssrc, sequence_numbers.clone()));
                    let now = self.now;
                    if let Some(p) = self.publisher_by_publication(*publication) {
                        for s in sequence_numbers {
                            if let Some(pkt) = p.sent.get(s).cloned() {
                                p.uplink.send(now, pkt);
                            }
                        }
                    }
                }
                RouterOutput::Selection(e) => self.events.push(*e),
                RouterOutput::ProgramVideoParams { .. } => {}
            }
            self.outputs.push(o);
        }
    }

    /// Advances one frame interval: every publisher sends a frame.
    pub fn step(&mut self) {
        let now = self.now;
        for p in self.publishers.values_mut() {
            if p.keyframe_pending && p.keyframes_from.is_none_or(|t| now >= t) {
                p.video.request_keyframe();
                p.keyframe_pending = false;
            }
            for pkt in p.video.next_frame() {
                p.sent.insert(pkt.header.sequence_number, pkt.clone());
                p.uplink.send(now, pkt);
            }
        }
        self.deliver_until(now + FRAME);
    }

    /// Runs the links and the router's timers until `end`.
    pub fn deliver_until(&mut self, end: Instant) {
        loop {
            let next_uplink = self
                .publishers
                .values()
                .filter_map(|p| p.uplink.poll_timeout())
                .min();
            let next_downlink = self
                .downlink
                .values()
                .filter_map(|d| d.poll_timeout())
                .min();
            let next_timer = self.router.poll_timeout();
            let next = [next_uplink, next_downlink, next_timer]
                .into_iter()
                .flatten()
                .min();
            let Some(t) = next.filter(|t| *t <= end) else {
                break;
            };
            self.now = self.now.max(t);
            let now = self.now;
            let ids: Vec<ParticipantId> = self.publishers.keys().copied().collect();
            for id in ids {
                while let Some(pkt) = self
                    .publishers
                    .get_mut(&id)
                    .and_then(|p| p.uplink.poll(now))
                {
                    let publication = self.publishers[&id].publication;
                    let forwards = self
                        .router
                        .handle_rtp(publication, &pkt.header, &pkt.payload, now)
                        .expect("known publication");
                    for f in forwards {
                        let truth = (pkt.header.ssrc, pkt.header.sequence_number);
                        let previous = self
                            .forwarded
                            .entry(f.receiver)
                            .or_default()
                            .insert(f.header.sequence_number, truth);
                        assert!(
                            previous.is_none_or(|p| p == truth),
                            "outgoing number {} reused for another packet",
                            f.header.sequence_number
                        );
                        let payload = f.payload(&pkt.payload).into_owned();
                        if let Some(link) = self.downlink.get_mut(&f.receiver) {
                            link.send(now, (f.header, payload, f.switched));
                        }
                    }
                }
            }
            let receivers: Vec<Receiver> = self.downlink.keys().copied().collect();
            for r in receivers {
                while let Some((header, payload, switched)) =
                    self.downlink.get_mut(&r).and_then(|l| l.poll(now))
                {
                    let origin = decode_marker(&payload).expect("synthetic payload");
                    self.received.entry(r).or_default().push(Received {
                        at: now,
                        header,
                        payload,
                        origin,
                        switched,
                    });
                }
            }
            if next_timer.is_some_and(|t| t <= now) {
                self.router.handle_timeout(now);
            }
            self.drain();
        }
        self.now = end;
        self.router.handle_timeout(end);
        self.drain();
    }

    pub fn steps(&mut self, n: usize) {
        for _ in 0..n {
            self.step();
        }
    }

    pub fn received(&self, r: Receiver) -> &[Received] {
        self.received.get(&r).map(Vec::as_slice).unwrap_or_default()
    }
}

/// Checks a receiver's stream on a loss-free, in-order link: one SSRC,
/// consecutive sequence numbers, timestamps advancing, every source change
/// at a keyframe start and after a complete frame. Returns the origin SSRCs
/// in the order they were shown.
pub fn check_clean_stream(stream: &[Received], codec: Codec) -> Vec<u32> {
    let mut inspector = FrameInspector::new(codec);
    let mut origins = Vec::new();
    let mut prev: Option<&Received> = None;
    for r in stream {
        let info = inspector
            .inspect(r.header.sequence_number, r.header.timestamp, &r.payload)
            .expect("valid payload");
        match prev {
            None => {
                assert!(info.keyframe_start, "stream must start with a keyframe");
                origins.push(r.origin.1);
            }
            Some(p) => {
                assert_eq!(r.header.ssrc, p.header.ssrc, "one outgoing SSRC");
                assert_eq!(
                    r.header.sequence_number,
                    p.header.sequence_number.wrapping_add(1),
                    "sequence numbers continuous"
                );
                let dt = r.header.timestamp.wrapping_sub(p.header.timestamp);
                assert!(dt < 0x8000_0000, "timestamps never go back");
                if r.origin.1 != p.origin.1 {
                    assert!(r.switched, "source change flagged");
                    assert!(
                        info.keyframe_start,
                        "source changes only at a keyframe start"
                    );
                    assert!(p.header.marker, "previous frame was complete");
                    assert!(
                        dt >= 2999,
                        "new source lands at least one frame later, got {dt}"
                    );
                    let wall = r.at.saturating_duration_since(p.at).as_secs_f64() * 90_000.0;
                    assert!(
                        (f64::from(dt) - wall.max(3000.0)).abs() <= 2.0,
                        "ts gap {dt} ≈ wall {wall}"
                    );
                    origins.push(r.origin.1);
                } else {
                    assert!(!r.switched);
                    if r.origin.0 == p.origin.0 {
                        assert_eq!(dt, 0, "same frame, same timestamp");
                    } else {
                        assert_eq!(
                            dt,
                            3000 * (r.origin.0 - p.origin.0) as u32,
                            "frame spacing kept"
                        );
                    }
                }
            }
        }
        prev = Some(r);
    }
    origins
}
