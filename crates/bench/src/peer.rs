//! The synthetic participants' media side: every client peer (one str0m
//! `Rtc` and one UDP socket each) runs in ONE thread, driven by one `mio`
//! poll loop and one timer heap, so the generator costs as little CPU as a
//! full WebRTC stack per participant allows.
//!
//! Clients are in RTP mode: publishers packetise the H.264 clip themselves
//! (see `h264_clip`) and write packets with `write_rtp`, receivers see every
//! forwarded packet as `Event::RtpPacket`. That makes the latency
//! measurement per packet:
//!
//! - send side: when a publisher hands an SRTP datagram of its video stream
//!   to the kernel, the RTP header (in the clear under SRTP) gives its
//!   sequence number, which maps to the payload hash written under it; the
//!   realtime clock just before `send_to` is stored for that hash;
//! - receive side: every client socket has `SO_TIMESTAMPNS`, so each
//!   datagram carries the kernel's arrival time; the decrypted payload's hash
//!   finds the send time. The difference is the path through the server
//!   (two loopback hops, both in-kernel) and excludes any queueing inside
//!   this generator.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{ErrorKind, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, SockaddrStorage};
use str0m::media::{Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{ExtensionValues, RtpWrite};
use str0m::{Event, IceConnectionState, Input, Output, Rtc};

use crate::h264_clip::{Clip, TICKS_PER_FRAME};

/// An Opus packet of 20 ms digital silence (TOC 0xF8: CELT fullband 20 ms).
const OPUS_SILENCE: [u8; 3] = [0xf8, 0xff, 0xfe];
const AUDIO_INTERVAL: Duration = Duration::from_millis(20);
const FRAME_INTERVAL: Duration = Duration::from_nanos(33_333_333);
/// Sequence numbers remembered per publisher to map sent datagrams to payloads.
const RING: usize = 4096;
/// A frame more than this late is skipped (the schedule resumes from now).
const MAX_LATE: Duration = Duration::from_millis(100);
/// The loop looks at its command channel at least this often.
const COMMAND_POLL: Duration = Duration::from_millis(5);

/// Realtime clock in nanoseconds since the epoch: the clock of `SO_TIMESTAMPNS`.
fn realtime_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// The key is already a hash: use it as is.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type SentTable = HashMap<u64, u64, BuildHasherDefault<IdHasher>>;

/// What a publisher is doing.
struct Publisher {
    /// Index into the engine's per-publisher send tables.
    slot: usize,
    ssrc: u32,
    pt: Pt,
    position: usize,
    next_seq: u64,
    timestamp: u32,
    next_frame: Option<Instant>,
    keyframe_wanted: bool,
    /// (sequence number, payload hash) of recently written packets.
    ring: Vec<(u16, u64)>,
}

/// Counters of one client, cumulative.
#[derive(Clone, Default, Debug)]
pub struct PeerCounters {
    /// The participant's number (join plan order).
    pub participant: usize,
    pub connected: bool,
    pub connected_at: Option<Instant>,
    /// When the first video packet arrived.
    pub first_video_at: Option<Instant>,
    pub video_packets: u64,
    pub video_bytes: u64,
    /// Highest extended sequence number of the received video stream.
    pub video_seq_max: Option<u64>,
    pub audio_packets: u64,
    pub audio_sent: u64,
    pub frames_sent: u64,
    pub frames_skipped: u64,
    pub keyframe_requests: u64,
    pub keyframes_sent: u64,
    pub latency_matched: u64,
    pub latency_unmatched: u64,
    /// Video packets that arrived after a higher sequence number: repairs
    /// (RTX after a NACK) or reordered.
    pub video_late: u64,
    pub ice_disconnects: u64,
    pub broken: bool,
}

/// A client peer, ready to run: SDP done, ICE/DTLS not yet.
pub struct Peer {
    pub index: usize,
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    video_mid: Mid,
    audio_mid: Mid,
    audio_pt: Pt,
    /// Which publisher's video this client is meant to receive.
    watching: Option<usize>,
    publisher: Option<Publisher>,
    send_audio: bool,
    rtc_timeout: Instant,
    next_audio: Option<Instant>,
    audio_seq: u64,
    audio_ts: u32,
    scheduled: Option<Instant>,
    counters: PeerCounters,
}

impl Peer {
    /// `publisher`: the publisher slot when this client publishes video.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        index: usize,
        rtc: Rtc,
        socket: std::net::UdpSocket,
        video_mid: Mid,
        audio_mid: Mid,
        video_pt: Pt,
        audio_pt: Pt,
        watching: Option<usize>,
        publisher: Option<usize>,
        send_audio: bool,
    ) -> anyhow::Result<Peer> {
        let local = socket.local_addr()?;
        socket.set_nonblocking(true)?;
        nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::ReceiveTimestampns, &true)?;
        let socket = UdpSocket::from_std(socket);
        let seed = index as u64 * 7919 + 17;
        let publisher = publisher.map(|slot| Publisher {
            slot,
            ssrc: 0,
            pt: video_pt,
            position: 0,
            next_seq: seed % 30_000,
            timestamp: (seed as u32).wrapping_mul(2_654_435_761),
            next_frame: None,
            keyframe_wanted: false,
            ring: vec![(0, 0); RING],
        });
        Ok(Peer {
            index,
            rtc,
            socket,
            local,
            video_mid,
            audio_mid,
            audio_pt,
            watching,
            publisher,
            send_audio,
            rtc_timeout: Instant::now(),
            next_audio: None,
            audio_seq: (seed * 3) % 30_000,
            audio_ts: (seed as u32).wrapping_mul(40_503),
            scheduled: None,
            counters: PeerCounters { participant: index, ..PeerCounters::default() },
        })
    }

    fn next_wake(&self) -> Instant {
        let mut wake = self.rtc_timeout;
        if let Some(t) = self.next_audio {
            wake = wake.min(t);
        }
        if let Some(t) = self.publisher.as_ref().and_then(|p| p.next_frame) {
            wake = wake.min(t);
        }
        wake
    }
}

/// What the engine measured; the latency histogram covers the time since
/// the previous snapshot.
pub struct Snapshot {
    pub peers: Vec<PeerCounters>,
    /// Forwarding latency of video packets arriving in order, nanoseconds.
    pub latency: Histogram<u64>,
    /// The same for packets arriving after a higher sequence number.
    pub latency_late: Histogram<u64>,
    /// CPU time of the engine thread so far.
    pub thread_cpu: Duration,
    pub send_would_block: u64,
    pub send_errors: u64,
    pub loop_iterations: u64,
}

pub enum Command {
    Add(Box<Peer>),
    /// Publishers start sending video (staggered over one frame interval).
    StartVideo,
    Snapshot(mpsc::Sender<Snapshot>),
    Stop,
}

/// Handle on the engine thread.
pub struct Engine {
    pub commands: mpsc::Sender<Command>,
    pub connected: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Engine {
    pub fn start(clip: Arc<Clip>, publishers: usize) -> anyhow::Result<Engine> {
        let (commands, receiver) = mpsc::channel();
        let connected = Arc::new(AtomicUsize::new(0));
        let state = EngineState {
            poll: Poll::new()?,
            commands: receiver,
            peers: Vec::new(),
            heap: BinaryHeap::new(),
            shared: Shared {
                clip,
                sent: (0..publishers).map(|_| SentTable::default()).collect(),
                latency: Histogram::new(3)?,
                latency_late: Histogram::new(3)?,
                connected: connected.clone(),
                send_would_block: 0,
                send_errors: 0,
                rx_ns: None,
                video_started: false,
                silence: Arc::from(&OPUS_SILENCE[..]),
            },
            loop_iterations: 0,
            buffer: vec![0u8; 2048],
        };
        let thread = std::thread::Builder::new().name("peers".into()).spawn(move || state.run())?;
        Ok(Engine { commands, connected, thread: Some(thread) })
    }

    pub fn snapshot(&self) -> anyhow::Result<Snapshot> {
        let (tx, rx) = mpsc::channel();
        self.commands.send(Command::Snapshot(tx)).map_err(|_| anyhow::anyhow!("the peer thread stopped"))?;
        Ok(rx.recv()?)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Shared {
    clip: Arc<Clip>,
    /// Per publisher: payload hash -> realtime ns of its latest send.
    sent: Vec<SentTable>,
    latency: Histogram<u64>,
    latency_late: Histogram<u64>,
    connected: Arc<AtomicUsize>,
    send_would_block: u64,
    send_errors: u64,
    /// Kernel arrival time of the datagram being processed.
    rx_ns: Option<u64>,
    video_started: bool,
    silence: Arc<[u8]>,
}

struct EngineState {
    poll: Poll,
    commands: mpsc::Receiver<Command>,
    peers: Vec<Peer>,
    heap: BinaryHeap<Reverse<(Instant, usize)>>,
    shared: Shared,
    loop_iterations: u64,
    buffer: Vec<u8>,
}

impl EngineState {
    fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            self.loop_iterations += 1;
            loop {
                match self.commands.try_recv() {
                    Ok(Command::Add(peer)) => self.add(*peer),
                    Ok(Command::StartVideo) => self.start_video(),
                    Ok(Command::Snapshot(reply)) => {
                        let _ = reply.send(self.snapshot());
                    }
                    Ok(Command::Stop) | Err(mpsc::TryRecvError::Disconnected) => return,
                    Err(mpsc::TryRecvError::Empty) => break,
                }
            }
            self.run_due(Instant::now());
            let now = Instant::now();
            let wait = self
                .heap
                .peek()
                .map_or(COMMAND_POLL, |Reverse((t, _))| t.saturating_duration_since(now).min(COMMAND_POLL));
            if let Err(error) = self.poll.poll(&mut events, Some(wait))
                && error.kind() != ErrorKind::Interrupted
            {
                eprintln!("poll failed: {error}");
                return;
            }
            for event in &events {
                self.read(event.token().0);
            }
        }
    }

    fn add(&mut self, mut peer: Peer) {
        let i = self.peers.len();
        peer.index = i;
        if let Err(error) = self.poll.registry().register(&mut peer.socket, Token(i), Interest::READABLE) {
            eprintln!("cannot register a client socket: {error}");
            return;
        }
        if let Some(publisher) = &mut peer.publisher {
            publisher.ssrc = peer
                .rtc
                .direct_api()
                .stream_tx_by_mid(peer.video_mid, None)
                .map_or(0, |s| *s.ssrc());
        }
        self.peers.push(peer);
        let now = Instant::now();
        let _ = self.peers[i].rtc.handle_input(Input::Timeout(now));
        drain(&mut self.peers[i], &mut self.shared, now);
        self.schedule(i, now);
    }

    fn start_video(&mut self) {
        self.shared.video_started = true;
        let now = Instant::now();
        let publishers = self.peers.iter().filter(|p| p.publisher.is_some()).count().max(1) as u32;
        for i in 0..self.peers.len() {
            if let Some(publisher) = &mut self.peers[i].publisher {
                let offset = FRAME_INTERVAL * publisher.slot as u32 / publishers;
                publisher.next_frame = Some(now + offset);
                self.schedule(i, now);
            }
        }
    }

    fn snapshot(&mut self) -> Snapshot {
        let fresh = Histogram::new(3).expect("3 significant figures is valid");
        Snapshot {
            peers: self.peers.iter().map(|p| p.counters.clone()).collect(),
            latency: std::mem::replace(&mut self.shared.latency, fresh.clone()),
            latency_late: std::mem::replace(&mut self.shared.latency_late, fresh),
            thread_cpu: thread_cpu().unwrap_or_default(),
            send_would_block: self.shared.send_would_block,
            send_errors: self.shared.send_errors,
            loop_iterations: self.loop_iterations,
        }
    }

    /// Puts peer `i` on the timer heap for its next wake-up (stale entries
    /// are skipped when they come up).
    fn schedule(&mut self, i: usize, now: Instant) {
        let peer = &mut self.peers[i];
        // Never in the past: what is due now runs in this or the next pass.
        let wake = peer.next_wake().max(now + Duration::from_micros(50));
        if peer.scheduled != Some(wake) {
            peer.scheduled = Some(wake);
            self.heap.push(Reverse((wake, i)));
        }
    }

    fn run_due(&mut self, now: Instant) {
        while let Some(&Reverse((t, i))) = self.heap.peek() {
            if t > now {
                break;
            }
            self.heap.pop();
            if self.peers[i].scheduled != Some(t) {
                continue;
            }
            self.peers[i].scheduled = None;
            self.service(i, now);
            self.schedule(i, now);
        }
    }

    /// Timers of one peer: str0m's own, audio, video.
    fn service(&mut self, i: usize, now: Instant) {
        let peer = &mut self.peers[i];
        if peer.counters.broken {
            peer.rtc_timeout = now + Duration::from_secs(3600);
            return;
        }
        let mut wrote = false;
        if peer.next_audio.is_some_and(|t| t <= now) {
            write_audio(peer, &self.shared.silence, now);
            wrote = true;
        }
        if self.shared.video_started
            && peer.publisher.as_ref().and_then(|p| p.next_frame).is_some_and(|t| t <= now)
        {
            write_frame(peer, &self.shared.clip, now);
            wrote = true;
        }
        if wrote || peer.rtc_timeout <= now {
            if peer.rtc.handle_input(Input::Timeout(now)).is_err() {
                peer.counters.broken = true;
            }
            drain(peer, &mut self.shared, now);
        }
    }

    /// Reads every datagram waiting on peer `i`'s socket.
    fn read(&mut self, i: usize) {
        let Some(peer) = self.peers.get_mut(i) else { return };
        let fd = peer.socket.as_raw_fd();
        let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
        loop {
            let (len, source, rx_ns) = {
                let mut iov = [IoSliceMut::new(&mut self.buffer)];
                match recvmsg::<SockaddrStorage>(fd, &mut iov, Some(cmsg.as_mut_slice()), MsgFlags::empty()) {
                    Ok(msg) => {
                        let mut rx_ns = None;
                        if let Ok(cmsgs) = msg.cmsgs() {
                            for c in cmsgs {
                                if let ControlMessageOwned::ScmTimestampns(ts) = c {
                                    rx_ns = Some(ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64);
                                }
                            }
                        }
                        let source = msg.address.and_then(|a| a.as_sockaddr_in().map(|v4| SocketAddr::V4((*v4).into())));
                        (msg.bytes, source, rx_ns)
                    }
                    Err(nix::errno::Errno::EAGAIN) => break,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => break,
                }
            };
            let Some(source) = source else { continue };
            if peer.counters.broken {
                continue;
            }
            let now = Instant::now();
            let Ok(contents) = self.buffer[..len].try_into() else { continue };
            let input = Input::Receive(now, Receive { proto: Protocol::Udp, source, destination: peer.local, contents });
            if peer.rtc.handle_input(input).is_err() {
                continue;
            }
            self.shared.rx_ns = rx_ns;
            drain(peer, &mut self.shared, now);
            self.shared.rx_ns = None;
        }
        self.schedule(i, Instant::now());
    }
}

/// CPU time (user + system) of the calling thread.
fn thread_cpu() -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat")?;
    crate::process::cpu_from_stat(&stat)
}

fn write_audio(peer: &mut Peer, silence: &Arc<[u8]>, now: Instant) {
    let Some(due) = peer.next_audio else { return };
    let ext = ExtensionValues { audio_level: Some(-127), voice_activity: Some(false), ..ExtensionValues::default() };
    let mut api = peer.rtc.direct_api();
    if let Some(stream) = api.stream_tx_by_mid(peer.audio_mid, None) {
        stream.write_rtp(
            RtpWrite::new(peer.audio_pt, peer.audio_seq.into(), peer.audio_ts, now, silence.clone()).ext_vals(ext),
        );
        peer.audio_seq += 1;
        peer.audio_ts = peer.audio_ts.wrapping_add(960);
        peer.counters.audio_sent += 1;
    }
    let mut next = due + AUDIO_INTERVAL;
    if next + MAX_LATE < now {
        next = now + AUDIO_INTERVAL;
    }
    peer.next_audio = Some(next);
}

fn write_frame(peer: &mut Peer, clip: &Clip, now: Instant) {
    let Some(publisher) = &mut peer.publisher else { return };
    let Some(due) = publisher.next_frame else { return };
    if std::mem::take(&mut publisher.keyframe_wanted) {
        let next = clip.next_keyframe(publisher.position);
        if next != publisher.position {
            // Frames between here and the keyframe are skipped; the
            // timestamp still advances per frame sent, like a live encoder.
            publisher.position = next;
        }
    }
    let frame = &clip.frames[publisher.position];
    if frame.keyframe {
        peer.counters.keyframes_sent += 1;
    }
    let mut api = peer.rtc.direct_api();
    if let Some(stream) = api.stream_tx_by_mid(peer.video_mid, None) {
        for packet in &frame.packets {
            let seq = publisher.next_seq;
            publisher.next_seq += 1;
            publisher.ring[(seq as usize) % RING] = (seq as u16, packet.hash);
            stream.write_rtp(
                RtpWrite::new(publisher.pt, seq.into(), publisher.timestamp, now, packet.payload.clone())
                    .marker(packet.marker)
                    .nackable(true),
            );
        }
    }
    peer.counters.frames_sent += 1;
    publisher.timestamp = publisher.timestamp.wrapping_add(TICKS_PER_FRAME);
    publisher.position = (publisher.position + 1) % clip.frames.len();
    let mut next = due + FRAME_INTERVAL;
    if next + MAX_LATE < now {
        peer.counters.frames_skipped += 1;
        next = now + FRAME_INTERVAL;
    }
    publisher.next_frame = Some(next);
}

/// Polls a peer until str0m has nothing more: sends its datagrams, handles
/// its events.
fn drain(peer: &mut Peer, shared: &mut Shared, now: Instant) {
    loop {
        match peer.rtc.poll_output() {
            Ok(Output::Timeout(t)) => {
                peer.rtc_timeout = t;
                return;
            }
            Ok(Output::Transmit(t)) => {
                let sent_ns = realtime_ns();
                if let Some(publisher) = &peer.publisher {
                    note_video_send(publisher, &t.contents, sent_ns, &mut shared.sent);
                }
                match peer.socket.send_to(&t.contents, t.destination) {
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => shared.send_would_block += 1,
                    Err(_) => shared.send_errors += 1,
                }
            }
            Ok(Output::Event(event)) => handle_event(peer, shared, event, now),
            Err(_) => {
                peer.counters.broken = true;
                peer.rtc_timeout = now + Duration::from_secs(3600);
                return;
            }
        }
    }
}

/// When `datagram` is an RTP packet of the publisher's video stream, stores
/// its send time under the hash of the payload written with that number.
fn note_video_send(publisher: &Publisher, datagram: &[u8], sent_ns: u64, sent: &mut [SentTable]) {
    if datagram.len() < 12 || datagram[0] >> 6 != 2 {
        return;
    }
    // RTCP (RFC 5761): payload types 64..=95 once the marker bit is masked.
    if (64..=95).contains(&(datagram[1] & 0x7f)) {
        return;
    }
    let ssrc = u32::from_be_bytes([datagram[8], datagram[9], datagram[10], datagram[11]]);
    if ssrc != publisher.ssrc {
        return;
    }
    let seq = u16::from_be_bytes([datagram[2], datagram[3]]);
    let (ring_seq, hash) = publisher.ring[(seq as usize) % RING];
    if ring_seq == seq
        && let Some(table) = sent.get_mut(publisher.slot)
    {
        table.insert(hash, sent_ns);
    }
}

fn handle_event(peer: &mut Peer, shared: &mut Shared, event: Event, now: Instant) {
    match event {
        Event::Connected if !peer.counters.connected => {
            peer.counters.connected = true;
            peer.counters.connected_at = Some(now);
            shared.connected.fetch_add(1, Ordering::Relaxed);
            if peer.send_audio {
                // Spread the participants' audio over the 20 ms tick.
                let offset = Duration::from_micros((peer.index as u64 * 7919) % 20_000);
                peer.next_audio = Some(now + offset);
            }
        }
        Event::IceConnectionStateChange(IceConnectionState::Disconnected) => peer.counters.ice_disconnects += 1,
        Event::RtpPacket(packet) => {
            if packet.header.payload_type == peer.audio_pt {
                peer.counters.audio_packets += 1;
                return;
            }
            let counters = &mut peer.counters;
            counters.first_video_at.get_or_insert(now);
            counters.video_packets += 1;
            counters.video_bytes += packet.payload.len() as u64;
            let seq = *packet.seq_no;
            let late = counters.video_seq_max.is_some_and(|m| seq < m);
            if late {
                counters.video_late += 1;
            }
            counters.video_seq_max = Some(counters.video_seq_max.map_or(seq, |m| m.max(seq)));
            let (Some(rx_ns), Some(source)) = (shared.rx_ns, peer.watching) else { return };
            let hash = crate::h264_clip::payload_hash(&packet.payload);
            match shared.sent.get(source).and_then(|t| t.get(&hash)) {
                Some(&sent_ns) if rx_ns >= sent_ns => {
                    let histogram = if late { &mut shared.latency_late } else { &mut shared.latency };
                    let _ = histogram.record(rx_ns - sent_ns);
                    counters.latency_matched += 1;
                }
                _ => counters.latency_unmatched += 1,
            }
        }
        Event::KeyframeRequest(request) if request.mid == peer.video_mid => {
            if let Some(publisher) = &mut peer.publisher {
                publisher.keyframe_wanted = true;
                peer.counters.keyframe_requests += 1;
            }
        }
        _ => {}
    }
}

/// One receiving peer's figures over a measuring window.
pub struct Received {
    pub video_kbps: f64,
    pub audio_pps: f64,
    pub lost: u64,
    pub expected: u64,
}

/// Each peer's figures between two snapshots `secs` apart.
pub fn received(start: &[PeerCounters], end: &[PeerCounters], secs: f64) -> Vec<Received> {
    end.iter()
        .enumerate()
        .map(|(i, e)| {
            let s = start.get(i).cloned().unwrap_or_default();
            let packets = e.video_packets - s.video_packets;
            let expected = match (s.video_seq_max, e.video_seq_max) {
                (Some(a), Some(b)) => b - a,
                (None, Some(_)) => packets,
                _ => 0,
            };
            Received {
                video_kbps: (e.video_bytes - s.video_bytes) as f64 * 8.0 / secs / 1000.0,
                audio_pps: (e.audio_packets - s.audio_packets) as f64 / secs,
                lost: expected.saturating_sub(packets),
                expected,
            }
        })
        .collect()
}
