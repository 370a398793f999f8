//! Split nodes: a Room's Program leaves a conference node through a
//! [`Fanout`] uplink, arrives at a stream node as a [`ProgramIngest`], and is
//! fanned out there to a WebRTC viewer; keyframe requests travel back. Driven
//! faster than real time through an in-memory network.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::media::Direction;
use str0m::net::{Protocol, Receive};
use str0m::Input;

use confcast_media::fanout::{Fanout, FanoutEvent, ViewerId};
use confcast_media::program_ingest::{IngestError, IngestEvent, ProgramIngest};
use confcast_media::room::{Datagram, Room};
use confcast_media::{ParticipantId, Receiver, Role, RouterConfig};
use confcast_mixer::MixerConfig;

#[path = "support/program_peer.rs"]
mod program_peer;
use program_peer::Peer;

const HOST: ParticipantId = ParticipantId(1);
const UPLINK: ViewerId = ViewerId(1);

struct World {
    now: Instant,
    conference: SocketAddr,
    uplink_addr: SocketAddr,
    stream: SocketAddr,
    room: Room,
    uplink: Fanout,
    ingest: ProgramIngest,
    viewers: Fanout,
    host: Peer,
    viewer: Option<Peer>,
    net: VecDeque<Datagram>,
    ingest_events: Vec<IngestEvent>,
    uplink_events: Vec<FanoutEvent>,
    units_in: usize,
    source_keyframe_requests: u32,
}

impl World {
    fn new(t0: Instant) -> Self {
        let conference: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
        let uplink_addr: SocketAddr = "127.0.0.1:40002".parse().expect("addr");
        let stream: SocketAddr = "127.0.0.2:40000".parse().expect("addr");
        let mut room = Room::new(conference, RouterConfig::default(), MixerConfig::default(), 7, t0).expect("room");
        let (mut host, offer, pending) = Peer::new("127.0.0.1:40001".parse().expect("addr"), Direction::SendRecv, true, t0);
        let answer = room.join(HOST, Role::Host, &offer, t0).expect("join");
        host.accept(pending, &answer);
        room.set_program(true, t0);
        let mut uplink = Fanout::new(uplink_addr, 10, 5);
        let offer = uplink.add_uplink(UPLINK, t0).expect("uplink offer");
        let (ingest, answer) = ProgramIngest::new(stream, &offer, t0).expect("ingest accepts the uplink");
        uplink.accept_uplink_answer(UPLINK, &answer, t0).expect("uplink accepts the answer");
        World {
            now: t0,
            conference,
            uplink_addr,
            stream,
            room,
            uplink,
            ingest,
            viewers: Fanout::new(stream, 10, 6),
            host,
            viewer: None,
            net: VecDeque::new(),
            ingest_events: Vec::new(),
            uplink_events: Vec::new(),
            units_in: 0,
            source_keyframe_requests: 0,
        }
    }

    fn add_viewer(&mut self) {
        let (mut peer, offer, pending) = Peer::new("127.0.0.3:42000".parse().expect("addr"), Direction::RecvOnly, false, self.now);
        let answer = self.viewers.add_viewer(ViewerId(7), &offer, self.now).expect("viewer");
        peer.accept(pending, &answer);
        self.viewer = Some(peer);
    }

    fn run_until(&mut self, end: Instant) {
        while self.now < end {
            let now = self.now;
            self.host.drain(&mut self.net);
            if let Some(v) = &mut self.viewer {
                v.drain(&mut self.net);
            }
            while let Some(d) = self.room.poll_transmit() {
                self.net.push_back(d);
            }
            while let Some(unit) = self.room.poll_program() {
                self.uplink.push(&unit, now);
            }
            if self.uplink.take_keyframe_request(now) {
                self.source_keyframe_requests += 1;
                self.room.with_router(now, |r, now| r.handle_keyframe_request(Receiver::Program, now)).ok();
            }
            while let Some(d) = self.uplink.poll_transmit() {
                self.net.push_back(d);
            }
            while let Some(e) = self.uplink.poll_event() {
                self.uplink_events.push(e);
            }
            while let Some(unit) = self.ingest.poll_program() {
                self.units_in += 1;
                self.viewers.push(&unit, now);
            }
            if self.viewers.take_keyframe_request(now) {
                self.ingest.request_keyframe(now);
            }
            while let Some(e) = self.ingest.poll_event() {
                self.ingest_events.push(e);
            }
            while let Some(d) = self.ingest.poll_transmit() {
                self.net.push_back(d);
            }
            while let Some(d) = self.viewers.poll_transmit() {
                self.net.push_back(d);
            }
            if let Some(d) = self.net.pop_front() {
                if d.destination == self.conference {
                    self.room.handle_datagram(d.source, &d.contents, now).expect("room input");
                } else if d.destination == self.uplink_addr {
                    self.uplink.handle_datagram(d.source, &d.contents, now);
                } else if d.destination == self.stream {
                    // One socket on the stream node: the ingest first, then the viewers.
                    if !self.ingest.handle_datagram(d.source, &d.contents, now) {
                        self.viewers.handle_datagram(d.source, &d.contents, now);
                    }
                } else {
                    let peer = if d.destination == self.host.addr { Some(&mut self.host) } else { self.viewer.as_mut() };
                    if let Some(peer) = peer.filter(|p| p.addr == d.destination) {
                        let contents = d.contents.as_slice().try_into().expect("datagram");
                        let input = Input::Receive(now, Receive { proto: Protocol::Udp, source: d.source, destination: d.destination, contents });
                        peer.rtc.handle_input(input).expect("peer input");
                    }
                }
                continue;
            }
            if self.host.camera_tick(now) {
                continue;
            }
            let next = [self.host.timeout, self.host.next_frame, self.ingest.poll_timeout()]
                .into_iter()
                .chain(self.viewer.as_ref().map(|v| v.timeout))
                .chain(self.room.poll_timeout())
                .chain(self.uplink.poll_timeout())
                .chain(self.viewers.poll_timeout())
                .min()
                .expect("a timer");
            self.now = self.now.max(next).max(self.now + Duration::from_micros(100)).min(end);
            let now = self.now;
            self.host.rtc.handle_input(Input::Timeout(now)).expect("host timeout");
            if let Some(v) = &mut self.viewer {
                v.rtc.handle_input(Input::Timeout(now)).expect("viewer timeout");
            }
            self.room.handle_timeout(now);
            self.uplink.handle_timeout(now);
            self.ingest.handle_timeout(now);
            self.viewers.handle_timeout(now);
        }
    }
}

#[test]
fn the_program_crosses_to_the_stream_node_and_reaches_its_viewers() {
    let t0 = Instant::now();
    let mut world = World::new(t0);
    world.run_until(t0 + Duration::from_secs(2));
    assert!(world.ingest.is_connected(), "the uplink connects");
    assert_eq!(world.ingest_events, vec![IngestEvent::Connected]);
    assert!(world.uplink_events.contains(&FanoutEvent::Connected(UPLINK)));
    assert!(world.units_in > 50, "Program units arrive at the stream node: {}", world.units_in);

    // A viewer of the stream node arrives late: its keyframe request goes
    // upstream (stream fanout -> ingest PLI -> uplink -> Room), so its
    // picture starts with a keyframe well before the camera's own 2 s one.
    let requests_before = world.source_keyframe_requests;
    world.add_viewer();
    let joined = world.now;
    world.run_until(joined + Duration::from_millis(1500));
    assert!(world.source_keyframe_requests > requests_before, "the source was asked for a keyframe");
    let viewer = world.viewer.as_ref().expect("viewer");
    let frames = viewer.frames();
    assert!(frames.len() > 20, "the viewer gets the picture: {} frames", frames.len());
    let (first, has_sps, _) = frames[0];
    assert!(has_sps, "the first frame is a keyframe");
    assert!(first < 60 + 60, "started within about a second of joining (frame {first})");
    assert!(frames.iter().all(|(_, _, contiguous)| *contiguous), "no gaps");
    assert!(viewer.audio_frames() > 40, "the viewer hears the mix: {}", viewer.audio_frames());
}

#[test]
fn the_stream_node_hears_when_the_uplink_is_gone() {
    let t0 = Instant::now();
    let mut world = World::new(t0);
    world.run_until(t0 + Duration::from_secs(1));
    assert!(world.ingest.is_connected());
    // The conference node stops (its uplink is removed without a word).
    world.uplink.remove_viewer(UPLINK).expect("remove");
    world.run_until(t0 + Duration::from_secs(40));
    assert_eq!(world.ingest_events.last(), Some(&IngestEvent::Disconnected));
}

#[test]
fn an_uplink_that_never_connects_is_given_up() {
    let t0 = Instant::now();
    let stream: SocketAddr = "127.0.0.2:40000".parse().expect("addr");
    let mut uplink = Fanout::new("127.0.0.1:40002".parse().expect("addr"), 10, 5);
    let offer = uplink.add_uplink(UPLINK, t0).expect("offer");
    let (mut ingest, _answer) = ProgramIngest::new(stream, &offer, t0).expect("ingest");
    let later = t0 + Duration::from_secs(30);
    ingest.handle_timeout(later);
    assert_eq!(ingest.poll_event(), Some(IngestEvent::Disconnected));
    assert_eq!(ingest.poll_event(), None, "told once");
}

#[test]
fn offers_that_cannot_carry_a_program_are_refused() {
    let t0 = Instant::now();
    let stream: SocketAddr = "127.0.0.2:40000".parse().expect("addr");
    assert!(matches!(ProgramIngest::new(stream, "not sdp", t0), Err(IngestError::Sdp(_))));
    // A receive-only offer sends nothing.
    let (_, offer, _) = Peer::new("127.0.0.3:42000".parse().expect("addr"), Direction::RecvOnly, false, t0);
    assert!(matches!(ProgramIngest::new(stream, &offer, t0), Err(IngestError::Unsuitable(_))));
    // An answer to an uplink that is not SDP is refused, and so is a second one.
    let mut uplink = Fanout::new("127.0.0.1:40002".parse().expect("addr"), 10, 5);
    let offer = uplink.add_uplink(UPLINK, t0).expect("offer");
    assert!(uplink.accept_uplink_answer(UPLINK, "garbage", t0).is_err());
    let (_ingest, answer) = ProgramIngest::new(stream, &offer, t0).expect("ingest");
    assert!(uplink.accept_uplink_answer(UPLINK, &answer, t0).is_err(), "the offer was used up by the failed attempt");
}
