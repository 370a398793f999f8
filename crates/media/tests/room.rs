//! str0m client peers connect through a `Room` in memory: the host's H.264
//! reaches the others and depacketizes into the same frames, a keyframe
//! request from a receiver reaches the sender, and a switch to another
//! publisher is seamless for a real WebRTC receive stack.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::SdpAnswer;
use str0m::format::Codec as RtcCodec;
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

use confcast_media::netem::SeededRng;
use confcast_media::room::{Datagram, Room, RoomEvent};
use confcast_mixer::MixerConfig;
use confcast_media::{Choice, ParticipantId, Receiver, Role, RouterConfig};

const HOST: ParticipantId = ParticipantId(1);
const GUEST: ParticipantId = ParticipantId(2);
const VIEWER: ParticipantId = ParticipantId(3);

struct Client {
    id: ParticipantId,
    rtc: Rtc,
    addr: SocketAddr,
    timeout: Instant,
    video: Mid,
    events: Vec<Event>,
    /// Publishes a camera (30 fps) once connected.
    camera: bool,
    frame: u32,
    next_frame: Instant,
    keyframe_wanted: bool,
    keyframes_sent: Vec<u32>,
}

impl Client {
    fn drain(&mut self, net: &mut VecDeque<Datagram>) {
        loop {
            match self.rtc.poll_output().expect("client output") {
                Output::Timeout(t) => {
                    self.timeout = t;
                    return;
                }
                Output::Transmit(t) => net.push_back(t.into()),
                Output::Event(e) => self.events.push(e),
            }
        }
    }

    fn h264_pt(&self) -> Pt {
        let remote = self
            .rtc
            .media(self.video)
            .expect("video")
            .remote_pts()
            .to_vec();
        self.rtc
            .codec_config()
            .params()
            .iter()
            .find(|p| {
                p.spec().codec == RtcCodec::H264
                    && p.spec().format.packetization_mode == Some(1)
                    && remote.contains(&p.pt())
            })
            .map(|p| p.pt())
            .expect("H.264 negotiated")
    }

    /// Sends the next camera frame if it is due.
    fn camera_tick(&mut self, now: Instant) -> bool {
        if !self.camera || !self.rtc.is_connected() || now < self.next_frame {
            return false;
        }
        if self
            .events
            .iter()
            .any(|e| matches!(e, Event::KeyframeRequest(_)))
        {
            self.keyframe_wanted = true;
        }
        self.events
            .retain(|e| !matches!(e, Event::KeyframeRequest(_)));
        let key = std::mem::take(&mut self.keyframe_wanted);
        if key {
            self.keyframes_sent.push(self.frame);
        }
        let pt = self.h264_pt();
        let au = access_unit(self.id, self.frame, key);
        let rtp_time = MediaTime::from_90khz(u64::from(self.frame) * 3000);
        let writer = self.rtc.writer(self.video).expect("writer");
        writer.write(pt, now, rtp_time, au).expect("write frame");
        self.frame += 1;
        self.next_frame = now + Duration::from_millis(33);
        true
    }

    /// Frames the client decoded: (publisher, frame number, has SPS, contiguous).
    fn received(&self) -> Vec<(u64, u32, bool, bool)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::MediaData(d) if d.mid == self.video => {
                    let (who, frame) = frame_of(&d.data)?;
                    let sps = d.data.windows(5).any(|w| w == [0, 0, 0, 1, 0x67]);
                    Some((who, frame, sps, d.contiguous))
                }
                _ => None,
            })
            .collect()
    }
}

/// An Annex-B access unit whose bytes name publisher and frame (no start-code emulation).
fn access_unit(who: ParticipantId, frame: u32, key: bool) -> Vec<u8> {
    let mut au = Vec::new();
    let tag = format!("p{}-frame-{frame:06}-", who.0);
    if key {
        for nal in [
            confcast_media::synth::sps_nal(66, 640, 480),
            vec![0x68, 0xce, 0x3c, 0x80],
        ] {
            au.extend_from_slice(&[0, 0, 0, 1]);
            au.extend_from_slice(&nal);
        }
    }
    au.extend_from_slice(&[0, 0, 0, 1, if key { 0x65 } else { 0x41 }]);
    let size = if key { 3000 } else { 400 };
    while au.len() < size {
        au.extend_from_slice(tag.as_bytes());
    }
    au
}

fn frame_of(data: &[u8]) -> Option<(u64, u32)> {
    let text = String::from_utf8_lossy(data);
    let i = text.find("-frame-")?;
    let who = text.get(i - 1..i)?.parse().ok()?;
    let frame = text.get(i + 7..i + 13)?.parse().ok()?;
    Some((who, frame))
}

struct World {
    now: Instant,
    server: SocketAddr,
    room: Room,
    clients: Vec<Client>,
    net: VecDeque<Datagram>,
    events: Vec<RoomEvent>,
    /// Share of datagrams the network drops (both directions), with its dice.
    loss: f64,
    dice: SeededRng,
    dropped: u64,
}

impl World {
    fn new(t0: Instant) -> Self {
        let server: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
        Self {
            now: t0,
            server,
            room: Room::new(server, RouterConfig::default(), MixerConfig::default(), 42, t0).expect("room"),
            clients: Vec::new(),
            net: VecDeque::new(),
            events: Vec::new(),
            loss: 0.0,
            dice: SeededRng::new(1234),
            dropped: 0,
        }
    }

    fn join(&mut self, id: ParticipantId, role: Role, camera: bool) {
        let addr: SocketAddr = format!("127.0.0.1:{}", 40000 + id.0).parse().expect("addr");
        let mut rtc = Rtc::builder().build(self.now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").expect("candidate"));
        let mut change = rtc.sdp_api();
        change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let video = change.add_media(MediaKind::Video, Direction::SendRecv, None, None, None);
        let (offer, pending) = change.apply().expect("offer");
        let answer = self
            .room
            .join(id, role, &offer.to_sdp_string(), self.now)
            .expect("join");
        assert!(answer.contains("H264"), "server offers H.264");
        rtc.sdp_api()
            .accept_answer(
                pending,
                SdpAnswer::from_sdp_string(&answer).expect("answer"),
            )
            .expect("accept answer");
        self.clients.push(Client {
            id,
            rtc,
            addr,
            timeout: self.now,
            video,
            events: Vec::new(),
            camera,
            frame: 0,
            next_frame: self.now,
            keyframe_wanted: true,
            keyframes_sent: Vec::new(),
        });
    }

    fn client(&mut self, id: ParticipantId) -> &mut Client {
        self.clients
            .iter_mut()
            .find(|c| c.id == id)
            .expect("client")
    }

    /// Runs the in-memory network and all timers until `end`.
    fn run_until(&mut self, end: Instant) {
        while self.now < end {
            for c in &mut self.clients {
                c.drain(&mut self.net);
            }
            while let Some(d) = self.room.poll_transmit() {
                self.net.push_back(d);
            }
            while let Some(e) = self.room.poll_event() {
                self.events.push(e);
            }
            if let Some(d) = self.net.pop_front() {
                if self.loss > 0.0 && (self.dice.below(1_000_000) as f64) < self.loss * 1_000_000.0 {
                    self.dropped += 1;
                    continue;
                }
                if d.destination == self.server {
                    self.room
                        .handle_datagram(d.source, &d.contents, self.now)
                        .expect("room input");
                } else if let Some(c) = self.clients.iter_mut().find(|c| c.addr == d.destination) {
                    let input = Input::Receive(
                        self.now,
                        Receive {
                            proto: Protocol::Udp,
                            source: d.source,
                            destination: d.destination,
                            contents: d.contents.as_slice().try_into().expect("datagram"),
                        },
                    );
                    c.rtc.handle_input(input).expect("client input");
                }
                continue;
            }
            let now = self.now;
            if self.clients.iter_mut().any(|c| c.camera_tick(now)) {
                continue;
            }
            let next = self
                .clients
                .iter()
                .flat_map(|c| [c.timeout, if c.camera { c.next_frame } else { c.timeout }])
                .chain(self.room.poll_timeout())
                .min()
                .expect("some timer");
            self.now = self
                .now
                .max(next)
                .max(self.now + Duration::from_micros(100))
                .min(end);
            let now = self.now;
            for c in &mut self.clients {
                c.rtc
                    .handle_input(Input::Timeout(now))
                    .expect("client timeout");
            }
            self.room.handle_timeout(now);
        }
    }
}

#[test]
fn forwards_h264_between_two_str0m_peers() {
    let t0 = Instant::now();
    let mut w = World::new(t0);
    w.join(HOST, Role::Host, true);
    w.join(GUEST, Role::Member, false);
    w.run_until(t0 + Duration::from_secs(4));
    // The guest's decoder "breaks" and asks for a keyframe.
    let guest = w.client(GUEST);
    let mut api = guest.rtc.direct_api();
    let ssrc = api
        .stream_rx_by_mid(guest.video, None)
        .map(|s| s.ssrc())
        .expect("receiving video");
    api.stream_rx(&ssrc)
        .expect("stream")
        .request_keyframe(KeyframeRequestKind::Pli);
    let asked_at = w.client(HOST).frame;
    w.run_until(t0 + Duration::from_secs(8));

    let connected: Vec<_> = w
        .events
        .iter()
        .filter(|e| matches!(e, RoomEvent::Connected(_)))
        .collect();
    assert_eq!(connected.len(), 2);
    let sent = w.client(HOST).frame;
    assert!(sent > 200, "host sent {sent} frames");
    let received = w.client(GUEST).received();
    let first = received.first().expect("guest got video");
    assert!(first.2, "first forwarded frame is a keyframe");
    assert!(received.windows(2).all(|w| w[1].1 > w[0].1), "in order");
    assert!(
        received.len() as u32 + first.1 + 2 >= sent,
        "{} of {sent}",
        received.len()
    );
    assert!(received.iter().all(|r| r.0 == HOST.0 && r.3));
    // The guest's PLI went through the Room to the host, who sent a new keyframe.
    let keys = w.client(HOST).keyframes_sent.clone();
    let answered = keys
        .iter()
        .find(|k| **k >= asked_at)
        .expect("keyframe after PLI");
    assert!(
        *answered <= asked_at + 2,
        "keyframe at {answered}, asked at {asked_at}"
    );
    assert!(received.iter().any(|(_, f, key, _)| f == answered && *key));
    assert!(w.events.iter().any(
        |e| matches!(e, RoomEvent::ProgramVideoParams(p) if (p.width, p.height) == (640, 480))
    ));
}

#[test]
fn switching_publishers_is_seamless_for_a_str0m_receiver() {
    let t0 = Instant::now();
    let mut w = World::new(t0);
    w.join(HOST, Role::Host, true);
    w.join(GUEST, Role::Member, true);
    w.join(VIEWER, Role::Member, false);
    w.run_until(t0 + Duration::from_secs(3));
    let mut rng = SeededRng::new(7);
    let mut expected = vec![HOST.0];
    for i in 0..6 {
        let target = if i % 2 == 0 { GUEST } else { HOST };
        let now = w.now;
        w.room
            .with_router(now, |r, now| {
                r.watch(VIEWER, Choice::Participant(target), now)
            })
            .expect("watch");
        expected.push(target.0);
        w.run_until(now + Duration::from_millis(1500 + rng.below(1000)));
        assert_eq!(
            w.room.router().forwarding(Receiver::Participant(VIEWER)),
            w.room.router().selection().video_of(target)
        );
    }
    let received = w.client(VIEWER).received();
    // Runs of frames per publisher, in the order the viewer chose them.
    let mut runs: Vec<u64> = Vec::new();
    for r in &received {
        if runs.last() != Some(&r.0) {
            runs.push(r.0);
            assert!(r.2, "each run starts with a keyframe: {r:?}");
        }
    }
    assert_eq!(runs, expected);
    // str0m's depacketizer saw one continuous stream: no frame flagged as non-contiguous.
    assert!(received.iter().all(|r| r.3), "contiguous");
    assert!(received.len() > 200, "{}", received.len());
    // Frames of one publisher stay in order.
    for who in [HOST.0, GUEST.0] {
        let frames: Vec<u32> = received
            .iter()
            .filter(|r| r.0 == who)
            .map(|r| r.1)
            .collect();
        assert!(frames.windows(2).all(|w| w[1] > w[0]));
    }
}

#[test]
fn garbage_datagrams_do_not_disturb_the_room() {
    let t0 = Instant::now();
    let mut w = World::new(t0);
    w.join(HOST, Role::Host, true);
    w.join(GUEST, Role::Member, false);
    w.run_until(t0 + Duration::from_secs(2));
    let mut rng = SeededRng::new(99);
    let sources = [
        w.client(HOST).addr,
        w.client(GUEST).addr,
        "127.0.0.1:49999".parse().expect("addr"),
    ];
    for _ in 0..2000 {
        let len = rng.below(300) as usize;
        let mut bytes = rng.bytes(len);
        // Some look like RTP/RTCP, some like STUN or DTLS.
        if let Some(b) = bytes.first_mut() {
            *b = [0x80, 0x00, 0x16, 0x90][rng.below(4) as usize];
        }
        let source = sources[rng.below(3) as usize];
        w.room
            .handle_datagram(source, &bytes, w.now)
            .expect("never an error");
    }
    let before = w.client(GUEST).received().len();
    w.run_until(t0 + Duration::from_secs(4));
    assert!(
        w.client(GUEST).received().len() > before + 40,
        "video keeps flowing"
    );
}

#[test]
fn lock_and_the_designated_participant_leaving_through_the_room() {
    let t0 = Instant::now();
    let mut w = World::new(t0);
    w.join(HOST, Role::Host, true);
    w.join(GUEST, Role::Member, true);
    w.join(VIEWER, Role::Member, false);
    w.run_until(t0 + Duration::from_secs(3));

    let now = w.now;
    w.room
        .with_router(now, |r, now| r.lock(confcast_media::Actor::Participant(HOST), GUEST, now))
        .expect("the host locks to the guest");
    w.run_until(now + Duration::from_secs(2));
    let last = *w.client(VIEWER).received().last().expect("video");
    assert_eq!(last.0, GUEST.0, "the viewer sees the designated guest");

    // The viewer's own choice is refused while locked, and nothing changes.
    let now = w.now;
    let refused = w.room.with_router(now, |r, now| r.watch(VIEWER, Choice::Participant(HOST), now));
    assert!(
        matches!(refused, Err(confcast_media::RouterError::Selection(confcast_media::SelectionError::Locked { .. }))),
        "{refused:?}"
    );
    w.run_until(now + Duration::from_secs(1));
    assert_eq!(w.client(VIEWER).received().last().expect("video").0, GUEST.0);

    // The designated guest leaves: everyone falls back to the host, and is told.
    let now = w.now;
    w.room.leave(GUEST, now).expect("leave");
    w.run_until(now + Duration::from_secs(2));
    assert!(w.events.iter().any(|e| matches!(
        e,
        RoomEvent::Selection(confcast_media::SelectionEvent::DesignatedLeft { participant, .. }) if *participant == GUEST
    )));
    let received = w.client(VIEWER).received();
    assert_eq!(received.last().expect("video").0, HOST.0, "fallback to the host");
    assert!(received.iter().all(|r| r.3), "contiguous through lock and fallback");
}

#[test]
fn seeded_packet_loss_is_recovered_by_nack_and_rtx() {
    let t0 = Instant::now();
    let mut w = World::new(t0);
    w.join(HOST, Role::Host, true);
    w.join(VIEWER, Role::Member, false);
    w.run_until(t0 + Duration::from_secs(2));
    let before = w.client(VIEWER).received().len();
    let sent_before = w.client(HOST).frame;

    // 5% of datagrams lost on every leg, publisher to server and server to viewer.
    w.loss = 0.05;
    w.run_until(t0 + Duration::from_secs(12));
    w.loss = 0.0;
    w.run_until(t0 + Duration::from_secs(13));

    let sent = w.client(HOST).frame - sent_before;
    let received = w.client(VIEWER).received();
    let during = &received[before..];
    eprintln!("sent {sent}, arrived {}, dropped {}", during.len(), w.dropped);
    assert!(w.dropped > 100, "the network dropped {} datagrams", w.dropped);
    // Without retransmission about one frame in twenty would be lost (and the
    // rest of its group undecodable); NACK/RTX brings nearly all of them back.
    assert!(
        during.len() as f64 >= f64::from(sent) * 0.98,
        "{} of {sent} frames arrived with {} datagrams dropped",
        during.len(),
        w.dropped
    );
    let contiguous = during.iter().filter(|r| r.3).count();
    assert!(
        contiguous as f64 >= during.len() as f64 * 0.97,
        "{contiguous} of {} frames contiguous",
        during.len()
    );
}

#[test]
fn the_program_carries_the_hosts_view_and_the_full_mix_while_on_air() {
    let t0 = Instant::now();
    let mut w = World::new(t0);
    w.join(HOST, Role::Host, true);
    w.join(GUEST, Role::Member, true);
    w.run_until(t0 + Duration::from_secs(2));
    assert!(w.room.poll_program().is_none(), "nothing is kept while off air");

    let now = w.now;
    w.room.set_program(true, now);
    w.run_until(now + Duration::from_secs(2));
    let mut video = Vec::new();
    let mut audio = 0;
    while let Some(unit) = w.room.poll_program() {
        match unit {
            confcast_media::room::ProgramMedia::Video { header, payload, .. } => video.push((header, payload)),
            confcast_media::room::ProgramMedia::Audio { payload, .. } => {
                assert!(!payload.is_empty());
                audio += 1;
            }
        }
    }
    // 2 s of 20 ms mix frames; with nobody speaking and nothing chosen the
    // Program shows the host (docs/forwarding.md, rule 5).
    assert!((90..=110).contains(&audio), "{audio} audio frames");
    assert!(video.len() > 40, "{} video packets", video.len());
    let first = confcast_media::h264::inspect_payload(&video[0].1).expect("H.264");
    assert!(first.has_sps || first.idr_start, "the program starts at a keyframe: {first:?}");
    let shows = |v: &[(confcast_media::RtpHeader, Vec<u8>)], who: ParticipantId| {
        String::from_utf8_lossy(&v.last().expect("video").1).contains(&format!("p{}-frame", who.0))
    };
    assert!(shows(&video, HOST), "the program shows the host");

    // The host locks everyone to the guest: the Program follows, seamlessly.
    let now = w.now;
    w.room.with_router(now, |r, now| r.lock(confcast_media::Actor::Participant(HOST), GUEST, now)).expect("lock");
    w.run_until(now + Duration::from_secs(2));
    while let Some(unit) = w.room.poll_program() {
        if let confcast_media::room::ProgramMedia::Video { header, payload, .. } = unit {
            video.push((header, payload));
        }
    }
    assert!(shows(&video, GUEST), "the program shows the designated guest");
    assert!(video.windows(2).all(|p| p[1].0.sequence_number == p[0].0.sequence_number.wrapping_add(1)), "continuous");

    w.room.set_program(false, w.now);
    let now = w.now;
    w.run_until(now + Duration::from_secs(1));
    assert!(w.room.poll_program().is_none(), "off air again");
}
