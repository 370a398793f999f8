//! WHEP viewers of a Program: str0m peers receive the host's camera and the
//! mix through a [`Fanout`], starting at a keyframe, driven faster than real
//! time through an in-memory network.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::media::{Direction, MediaKind};
use str0m::net::{Protocol, Receive};
use str0m::{Input, Rtc};

use confcast_media::fanout::{Fanout, FanoutError, FanoutEvent, ViewerId};
use confcast_media::room::{Datagram, ProgramMedia, Room};
use confcast_media::{Codec, ParticipantId, Receiver, Role, RouterConfig, RtpHeader};
use confcast_mixer::MixerConfig;

#[path = "support/program_peer.rs"]
mod program_peer;
use program_peer::Peer;

const HOST: ParticipantId = ParticipantId(1);

/// Every `every`th video packet to `viewer` is lost; its retransmission
/// (another SSRC, or the same sequence number again) is not.
struct Lossy {
    viewer: SocketAddr,
    every: u32,
    seen: u32,
    ssrc: Option<[u8; 4]>,
    lost: Vec<[u8; 2]>,
}

struct World {
    now: Instant,
    conference: SocketAddr,
    viewing: SocketAddr,
    room: Room,
    fanout: Fanout,
    host: Peer,
    viewers: Vec<(ViewerId, Peer)>,
    events: Vec<FanoutEvent>,
    net: VecDeque<Datagram>,
    keyframe_requests: u32,
    /// Video sent to one viewer loses packets.
    lossy: Option<Lossy>,
}

impl World {
    fn new(t0: Instant, max_viewers: usize) -> Self {
        let conference: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
        let viewing: SocketAddr = "127.0.0.1:41000".parse().expect("addr");
        let mut room = Room::new(conference, RouterConfig::default(), MixerConfig::default(), 7, t0).expect("room");
        let (mut host, offer, pending) = Peer::new("127.0.0.1:40001".parse().expect("addr"), Direction::SendRecv, true, t0);
        let answer = room.join(HOST, Role::Host, &offer, t0).expect("join");
        host.accept(pending, &answer);
        room.set_program(true, t0);
        World {
            now: t0,
            conference,
            viewing,
            room,
            fanout: Fanout::new(viewing, max_viewers, 99),
            host,
            viewers: Vec::new(),
            events: Vec::new(),
            net: VecDeque::new(),
            keyframe_requests: 0,
            lossy: None,
        }
    }

    fn offer_viewer(&mut self, n: u64) -> Result<(), FanoutError> {
        let addr: SocketAddr = format!("127.0.0.1:{}", 42000 + n).parse().expect("addr");
        let (mut peer, offer, pending) = Peer::new(addr, Direction::RecvOnly, false, self.now);
        let answer = self.fanout.add_viewer(ViewerId(n), &offer, self.now)?;
        peer.accept(pending, &answer);
        self.viewers.push((ViewerId(n), peer));
        Ok(())
    }

    fn viewer(&self, n: u64) -> &Peer {
        &self.viewers.iter().find(|(id, _)| *id == ViewerId(n)).expect("viewer").1
    }

    fn run_until(&mut self, end: Instant) {
        while self.now < end {
            self.host.drain(&mut self.net);
            for (_, v) in &mut self.viewers {
                v.drain(&mut self.net);
            }
            while let Some(d) = self.room.poll_transmit() {
                self.net.push_back(d);
            }
            let now = self.now;
            // As the server does: every unit at hand written, then sent once.
            while let Some(unit) = self.room.poll_program() {
                self.fanout.write(&unit, now);
            }
            self.fanout.send_written(now);
            if self.fanout.take_keyframe_request(now) {
                self.keyframe_requests += 1;
                self.room.with_router(now, |r, now| r.handle_keyframe_request(Receiver::Program, now)).ok();
            }
            while let Some(d) = self.fanout.poll_transmit() {
                self.net.push_back(d);
            }
            while let Some(e) = self.fanout.poll_event() {
                self.events.push(e);
            }
            if let Some(d) = self.net.pop_front() {
                // Video (the mix's packets are far smaller; the SSRC is in
                // the clear) to the lossy viewer.
                if let Some(lossy) = &mut self.lossy
                    && d.source == self.viewing
                    && d.destination == lossy.viewer
                    && d.contents.len() > 300
                    && let Some(ssrc) = d.contents.get(8..12).and_then(|s| <[u8; 4]>::try_from(s).ok())
                    && *lossy.ssrc.get_or_insert(ssrc) == ssrc
                    && !lossy.lost.contains(&[d.contents[2], d.contents[3]])
                {
                    lossy.seen += 1;
                    if lossy.seen % lossy.every == 0 {
                        lossy.lost.push([d.contents[2], d.contents[3]]);
                        continue;
                    }
                }
                if d.destination == self.conference {
                    self.room.handle_datagram(d.source, &d.contents, now).expect("room input");
                } else if d.destination == self.viewing {
                    self.fanout.handle_datagram(d.source, &d.contents, now);
                } else {
                    let peer = if d.destination == self.host.addr {
                        Some(&mut self.host)
                    } else {
                        self.viewers.iter_mut().map(|(_, v)| v).find(|v| v.addr == d.destination)
                    };
                    if let Some(peer) = peer {
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
            let next = [self.host.timeout, self.host.next_frame]
                .into_iter()
                .chain(self.viewers.iter().map(|(_, v)| v.timeout))
                .chain(self.room.poll_timeout())
                .chain(self.fanout.poll_timeout())
                .min()
                .expect("a timer");
            self.now = self.now.max(next).max(self.now + Duration::from_micros(100)).min(end);
            let now = self.now;
            self.host.rtc.handle_input(Input::Timeout(now)).expect("host timeout");
            for (_, v) in &mut self.viewers {
                v.rtc.handle_input(Input::Timeout(now)).expect("viewer timeout");
            }
            self.room.handle_timeout(now);
            self.fanout.handle_timeout(now);
        }
    }
}

#[test]
fn viewers_get_the_program_from_a_keyframe_on_with_the_mix() {
    let t0 = Instant::now();
    let mut w = World::new(t0, 10);
    w.run_until(t0 + Duration::from_millis(500));
    w.offer_viewer(1).expect("viewer 1");
    w.run_until(t0 + Duration::from_secs(3));
    // A second viewer arrives mid-stream, between the camera's keyframes.
    w.offer_viewer(2).expect("viewer 2");
    let joined = w.now;
    w.run_until(joined + Duration::from_secs(2));

    assert!(w.events.contains(&FanoutEvent::Connected(ViewerId(1))));
    assert!(w.events.contains(&FanoutEvent::Connected(ViewerId(2))));
    for n in [1, 2] {
        let frames = w.viewer(n).frames();
        assert!(frames.len() > 30, "viewer {n} got {} frames", frames.len());
        assert!(frames[0].1, "viewer {n} starts at a keyframe: {:?}", frames[0]);
        assert!(frames.iter().all(|f| f.2), "viewer {n} sees one contiguous stream");
        assert!(frames.windows(2).all(|p| p[1].0 == p[0].0 + 1), "viewer {n}: no frame missing");
        let audio = w.viewer(n).audio_frames();
        assert!(audio > 50, "viewer {n} got {audio} mix frames");
    }
    // The late viewer did not wait for the camera's 2 s keyframe cycle: its
    // arrival asked the camera for a keyframe.
    assert!(w.keyframe_requests >= 2, "{} keyframe requests", w.keyframe_requests);
    let first_late = w.viewer(2).frames().len();
    assert!(first_late > 45, "viewer 2 got {first_late} frames in 2 s");

    // DELETE: the viewer is gone, the other one keeps watching.
    w.fanout.remove_viewer(ViewerId(1)).expect("remove");
    assert_eq!(w.fanout.remove_viewer(ViewerId(1)), Err(FanoutError::UnknownViewer(ViewerId(1))));
    let before = w.viewer(2).frames().len();
    let now = w.now;
    w.run_until(now + Duration::from_secs(1));
    assert!(w.viewer(2).frames().len() > before + 20);
    assert_eq!(w.fanout.len(), 1);
}

#[test]
fn lost_video_is_retransmitted() {
    let t0 = Instant::now();
    let mut w = World::new(t0, 10);
    w.run_until(t0 + Duration::from_millis(500));
    w.offer_viewer(1).expect("viewer 1");
    w.offer_viewer(2).expect("viewer 2");
    w.run_until(t0 + Duration::from_secs(2));
    let lossy: SocketAddr = "127.0.0.1:42001".parse().expect("addr");
    w.lossy = Some(Lossy { viewer: lossy, every: 4, seen: 0, ssrc: None, lost: Vec::new() });
    w.run_until(t0 + Duration::from_secs(5));
    let lost = w.lossy.take().map(|l| l.seen / l.every).expect("lossy");
    assert!(lost > 20, "{lost} video packets lost");
    w.run_until(t0 + Duration::from_secs(6));

    let frames = w.viewer(1).frames();
    assert!(frames.len() > 100, "viewer 1 got {} frames", frames.len());
    // A retransmission that comes after the next frame is too late for the
    // viewer's depacketizer, so a few frames do go missing; without NACK and
    // RTX every lost packet would cost a frame.
    let missing: u32 = frames.windows(2).map(|p| p[1].0.saturating_sub(p[0].0 + 1)).sum();
    assert!(missing * 2 < lost, "{missing} frames missing for {lost} packets lost");
    let other = w.viewer(2).frames();
    assert!(other.windows(2).all(|p| p[1].0 == p[0].0 + 1), "viewer 2 lost nothing");
    assert!(other.len() >= frames.len(), "the other viewer is not held back");
}

#[test]
fn a_frame_is_held_until_its_last_packet_or_not_long() {
    let t0 = Instant::now();
    let mut fanout = Fanout::new("127.0.0.1:41000".parse().expect("addr"), 1, 1);
    let unit = |sequence_number: u16, timestamp: u32, marker: bool| ProgramMedia::Video {
        header: RtpHeader { payload_type: 96, marker, sequence_number, timestamp, ssrc: 1 },
        codec: Codec::H264,
        payload: vec![0x41, 0x9a, 0x00],
    };
    assert_eq!(fanout.poll_timeout(), None);
    fanout.push(&unit(1, 3000, false), t0);
    let t1 = t0 + Duration::from_millis(5);
    fanout.push(&unit(2, 3000, false), t1);
    // Held from the first packet on, at most 20 ms.
    assert_eq!(fanout.poll_timeout(), Some(t0 + Duration::from_millis(20)));
    fanout.push(&unit(3, 3000, true), t1);
    assert_eq!(fanout.poll_timeout(), None, "the frame's last packet releases it");
    // A frame whose last packet never comes goes out after the hold.
    fanout.push(&unit(4, 6000, false), t1);
    let due = fanout.poll_timeout().expect("held");
    fanout.handle_timeout(due);
    assert_eq!(fanout.poll_timeout(), None);
    // ... or when the next frame begins.
    fanout.push(&unit(5, 9000, false), due);
    fanout.push(&unit(6, 12000, false), due + Duration::from_millis(15));
    assert_eq!(fanout.poll_timeout(), Some(due + Duration::from_millis(35)));
}

#[test]
fn unsuitable_offers_are_refused_with_a_reason() {
    let t0 = Instant::now();
    let mut fanout = Fanout::new("127.0.0.1:41000".parse().expect("addr"), 1, 1);
    assert!(matches!(fanout.add_viewer(ViewerId(1), "not sdp", t0), Err(FanoutError::Sdp(_))));
    assert!(matches!(fanout.add_viewer(ViewerId(1), "", t0), Err(FanoutError::Sdp(_))));

    // Audio only: no picture to receive.
    let mut rtc = Rtc::builder().build(t0);
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    let (offer, _) = change.apply().expect("offer");
    let refused = fanout.add_viewer(ViewerId(2), &offer.to_sdp_string(), t0);
    assert!(matches!(refused, Err(FanoutError::Unsuitable(_))), "{refused:?}");

    // A "viewer" that only sends cannot receive the Program either.
    let mut rtc = Rtc::builder().build(t0);
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
    let (offer, _) = change.apply().expect("offer");
    let refused = fanout.add_viewer(ViewerId(3), &offer.to_sdp_string(), t0);
    assert!(matches!(refused, Err(FanoutError::Unsuitable(_))), "{refused:?}");
    assert!(fanout.is_empty(), "nothing was kept from refused offers");

    // Full: the limit holds.
    let good = |t0| {
        let mut rtc = Rtc::builder().build(t0);
        let mut change = rtc.sdp_api();
        change.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
        change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
        change.apply().expect("offer").0.to_sdp_string()
    };
    fanout.add_viewer(ViewerId(4), &good(t0), t0).expect("first viewer");
    assert_eq!(fanout.add_viewer(ViewerId(5), &good(t0), t0), Err(FanoutError::Full));
}

#[test]
fn a_viewer_that_never_connects_is_given_up() {
    let t0 = Instant::now();
    let mut fanout = Fanout::new("127.0.0.1:41000".parse().expect("addr"), 4, 1);
    let mut rtc = Rtc::builder().build(t0);
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    let offer = change.apply().expect("offer").0.to_sdp_string();
    fanout.add_viewer(ViewerId(1), &offer, t0).expect("viewer");
    let mut now = t0;
    let mut events = Vec::new();
    while now < t0 + confcast_media::fanout::CONNECT_TIMEOUT + Duration::from_secs(1) {
        // Once the only viewer is given up there is nothing left to wait for.
        let Some(next) = fanout.poll_timeout() else { break };
        now = next.max(now + Duration::from_millis(10));
        fanout.handle_timeout(now);
        events.extend(std::iter::from_fn(|| fanout.poll_event()));
    }
    assert_eq!(events, vec![FanoutEvent::Disconnected(ViewerId(1))]);
}

#[test]
fn garbage_datagrams_are_not_taken() {
    let t0 = Instant::now();
    let mut fanout = Fanout::new("127.0.0.1:41000".parse().expect("addr"), 4, 1);
    let from: SocketAddr = "127.0.0.1:5555".parse().expect("addr");
    for junk in [&[][..], &[0u8; 1][..], &[0x80; 1500][..], b"GET / HTTP/1.1\r\n\r\n"] {
        assert!(!fanout.handle_datagram(from, junk, t0));
    }
}
