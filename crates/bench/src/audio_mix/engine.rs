//! The synthetic participants' media: every client peer (a str0m `Rtc` and
//! its own UDP socket) is driven by ONE task, on a thread of its own (so
//! signalling and HTTP work cannot delay its sending).
//!
//! Time is cut into 1 ms slots; each peer belongs to one of 20 slots of the
//! 20 ms packet period (talkers all to the first, so their latency markers
//! leave together), and in its slot it sends its packet and serves its
//! timers. Received datagrams are handled as they come (one stream per
//! socket, merged, so only sockets with data are looked at).

use std::collections::{HashSet, VecDeque};
use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{SelectAll, Stream, StreamExt as _};
use str0m::format::Codec;
use str0m::media::{Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use super::sound::{GapDetector, Sound, FRAME, GAP_START, LOOP_FRAMES, SILENT_LEVEL, TALK_LEVEL};

/// Slots per 20 ms packet period.
const SLOTS: u64 = 20;
/// Gap send times kept to match the listener's detections against.
const GAPS_KEPT: usize = 16;

/// One participant handed to the engine once its offer was answered.
pub struct NewPeer {
    pub rtc: Rtc,
    /// Bound, non-blocking; registered with the engine's own reactor.
    pub socket: std::net::UdpSocket,
    /// Its audio m-line.
    pub mid: Mid,
    /// `Some(t)`: talker `t` (plays `Sound::talkers[t]`); `None`: silent.
    pub talker: Option<usize>,
    /// Decode what it hears and look for the latency marker.
    pub probe: bool,
    /// The server's answer asked for Opus DTX (`usedtx=1`): while silent,
    /// send as a browser then does (`Sound::dtx_silence`).
    pub dtx: bool,
    /// Told when ICE and DTLS are up.
    pub connected: oneshot::Sender<()>,
}

/// Counters since the engine started (or since the window opened).
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub peers: usize,
    pub connected: usize,
    pub disconnected: usize,
    pub sent: u64,
    pub received: u64,
    pub received_bytes: u64,
    /// Datagrams the kernel refused, and packets str0m refused to write.
    pub send_errors: u64,
    pub write_errors: u64,
    pub refused_destinations: u64,
    /// Peers sending with DTX (their answer asked for it).
    pub dtx_peers: usize,
    /// How late the load generator ran its 1 ms slots in the window (its
    /// own sending jitter): worst and 99th percentile.
    pub slot_late_max: Duration,
    pub slot_late_p99: Duration,
    /// Longest single step of the loop in the window (a stall inside it).
    pub longest_step: Duration,
    /// Worst time, in the window, from a talker packet's nominal send
    /// instant to the moment it was handed to the kernel.
    pub talker_send_late_max: Duration,
    /// Datagrams received, and those no peer's `Rtc` accepted.
    pub datagrams: u64,
    pub not_accepted: u64,
    /// Distinct audio payloads received since the window opened.
    pub distinct_payloads: u64,
    /// Latency marker: end-to-end delays (listener-measured) since the
    /// window opened.
    pub e2e: Vec<Duration>,
    pub at: Option<Instant>,
}

enum Command {
    Add(Box<NewPeer>),
    OpenWindow,
    Snapshot(oneshot::Sender<Snapshot>),
}

/// Handle to the engine task; dropping it stops the task and closes every
/// socket.
pub struct Engine {
    commands: Option<mpsc::UnboundedSender<Command>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Engine {
    /// `allowed`: the only address the peers may send to (the server's).
    pub fn start(sound: Arc<Sound>, allowed: IpAddr) -> Engine {
        let (commands, rx) = mpsc::unbounded_channel();
        let state = State {
            sound,
            allowed,
            peers: Vec::new(),
            buckets: (0..SLOTS).map(|_| Vec::new()).collect(),
            gaps: VecDeque::new(),
            distinct: None,
            e2e: Vec::new(),
            late: vec![0; 1001],
            counters: Snapshot::default(),
        };
        let thread = std::thread::Builder::new().name("audio-mix-peers".into()).spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            runtime.block_on(state.run(rx));
        });
        Engine { commands: Some(commands), thread: thread.ok() }
    }

    fn send(&self, command: Command) -> anyhow::Result<()> {
        self.commands
            .as_ref()
            .and_then(|c| c.send(command).ok())
            .ok_or_else(|| anyhow::anyhow!("the media engine stopped"))
    }

    pub fn add(&self, peer: NewPeer) -> anyhow::Result<()> {
        self.send(Command::Add(Box::new(peer)))
    }

    /// Starts counting distinct payloads and latency markers.
    pub fn open_window(&self) -> anyhow::Result<()> {
        self.send(Command::OpenWindow)
    }

    pub async fn snapshot(&self) -> anyhow::Result<Snapshot> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Snapshot(tx))?;
        Ok(rx.await?)
    }
}

impl Drop for Engine {
    /// Closing the command channel ends the loop; every socket closes.
    fn drop(&mut self) {
        self.commands.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Peer {
    rtc: Rtc,
    /// Receiving side, on the engine's reactor.
    socket: Arc<UdpSocket>,
    /// The same socket for sending straight away (tokio's `try_send_to`
    /// refuses until the reactor has seen the socket writable once).
    tx: std::net::UdpSocket,
    local: SocketAddr,
    mid: Mid,
    pt: Option<Pt>,
    talker: Option<usize>,
    probe: Option<Probe>,
    /// Where in the DTX cycle this peer starts (peers are spread over it,
    /// like independent microphones); `None`: no DTX.
    dtx: Option<usize>,
    connected: bool,
    notify: Option<oneshot::Sender<()>>,
    timeout: Instant,
    dead: bool,
}

struct Probe {
    decoder: opus::Decoder,
    detector: GapDetector,
    pcm: Vec<i16>,
}

type Datagram = (usize, Instant, SocketAddr, Vec<u8>);

struct State {
    sound: Arc<Sound>,
    allowed: IpAddr,
    peers: Vec<Peer>,
    buckets: Vec<Vec<usize>>,
    /// When the talkers sent their latency-marker packets.
    gaps: VecDeque<Instant>,
    distinct: Option<HashSet<u64>>,
    e2e: Vec<Duration>,
    /// Slot lateness in the window, in 100 µs steps (last: 100 ms or more).
    late: Vec<u64>,
    counters: Snapshot,
}

fn receiver(index: usize, socket: Arc<UdpSocket>) -> Pin<Box<dyn Stream<Item = Datagram> + Send>> {
    Box::pin(futures_util::stream::unfold(socket, move |socket| async move {
        let mut buffer = vec![0u8; 2048];
        match socket.recv_from(&mut buffer).await {
            Ok((n, from)) => {
                buffer.truncate(n);
                Some(((index, Instant::now(), from, buffer), socket))
            }
            // E.g. an ICMP error reported on the socket: keep listening.
            Err(_) => Some(((index, Instant::now(), SocketAddr::from(([0, 0, 0, 0], 0)), Vec::new()), socket)),
        }
    }))
}

impl State {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut incoming: SelectAll<Pin<Box<dyn Stream<Item = Datagram> + Send>>> = SelectAll::new();
        let start = tokio::time::Instant::now();
        let mut slot: u64 = 0;
        loop {
            let due = start + Duration::from_millis(slot);
            let step = Instant::now();
            tokio::select! {
                biased;
                command = commands.recv() => match command {
                    Some(Command::Add(peer)) => {
                        if let Some(index) = self.add(*peer) {
                            incoming.push(receiver(index, self.peers[index].socket.clone()));
                        }
                    }
                    Some(Command::OpenWindow) => {
                        self.distinct = Some(HashSet::new());
                        self.e2e.clear();
                        self.late.fill(0);
                        self.counters.longest_step = Duration::ZERO;
                        self.counters.talker_send_late_max = Duration::ZERO;
                    }
                    Some(Command::Snapshot(reply)) => {
                        let mut s = self.counters.clone();
                        s.peers = self.peers.len();
                        s.connected = self.peers.iter().filter(|p| p.connected && !p.dead).count();
                        s.dtx_peers = self.peers.iter().filter(|p| p.dtx.is_some()).count();
                        s.distinct_payloads = self.distinct.as_ref().map_or(0, |d| d.len() as u64);
                        s.e2e = self.e2e.clone();
                        let total: u64 = self.late.iter().sum();
                        let step = |i: usize| Duration::from_micros(i as u64 * 100);
                        s.slot_late_max = step(self.late.iter().rposition(|&n| n > 0).unwrap_or(0));
                        let mut seen = 0;
                        for (i, &n) in self.late.iter().enumerate() {
                            seen += n;
                            if seen * 100 >= total * 99 {
                                s.slot_late_p99 = step(i);
                                break;
                            }
                        }
                        s.at = Some(Instant::now());
                        let _ = reply.send(s);
                    }
                    None => break,
                },
                () = tokio::time::sleep_until(due) => {
                    let now = Instant::now();
                    if self.distinct.is_some() {
                        let late = tokio::time::Instant::now().saturating_duration_since(due);
                        self.late[(late.as_micros() as usize / 100).min(1000)] += 1;
                    }
                    self.slot(slot, now);
                    if self.distinct.is_some() && slot % SLOTS == 0 {
                        // The talkers' bucket: their packets are out now.
                        let late = tokio::time::Instant::now().saturating_duration_since(due);
                        self.counters.talker_send_late_max = self.counters.talker_send_late_max.max(late);
                    }
                    slot += 1;
                    // Far behind (the machine stalled): resume from now
                    // rather than bursting.
                    let behind = tokio::time::Instant::now().saturating_duration_since(start + Duration::from_millis(slot));
                    if behind > Duration::from_millis(100) {
                        slot += behind.as_millis() as u64 / SLOTS * SLOTS;
                    }
                }
                Some((index, at, from, data)) = incoming.next(), if !incoming.is_empty() => {
                    if !data.is_empty() {
                        self.receive(index, at, from, &data);
                    }
                }
            }
            if self.distinct.is_some() {
                self.counters.longest_step = self.counters.longest_step.max(step.elapsed());
            }
        }
    }

    fn add(&mut self, new: NewPeer) -> Option<usize> {
        let index = self.peers.len();
        let local = new.socket.local_addr().ok()?;
        new.socket.set_nonblocking(true).ok()?;
        let tx = new.socket.try_clone().ok()?;
        let socket = UdpSocket::from_std(new.socket).ok()?;
        let probe = (new.probe && self.sound.marker()).then(|| opus::Decoder::new(48_000, opus::Channels::Mono).ok()).flatten().map(|decoder| Probe {
            decoder,
            detector: GapDetector::default(),
            pcm: vec![0; 5760],
        });
        self.peers.push(Peer {
            rtc: new.rtc,
            socket: Arc::new(socket),
            tx,
            local,
            mid: new.mid,
            pt: None,
            talker: new.talker,
            probe,
            dtx: new.dtx.then_some(index * 7),
            connected: false,
            notify: Some(new.connected),
            timeout: Instant::now(),
            dead: false,
        });
        let bucket = if new.talker.is_some() { 0 } else { index as u64 % SLOTS };
        self.buckets[bucket as usize].push(index);
        // Start ICE at once.
        self.service(index, Instant::now());
        Some(index)
    }

    /// Slot `slot` (ms since start): the peers of this slot send their
    /// packet of frame `slot / 20` and serve their timers.
    fn slot(&mut self, slot: u64, now: Instant) {
        let bucket = (slot % SLOTS) as usize;
        let frame = slot / SLOTS;
        let members = std::mem::take(&mut self.buckets[bucket]);
        let mut marked = false;
        for &i in &members {
            if self.peers[i].connected && !self.peers[i].dead {
                let sent = self.write_audio(i, frame, now);
                if sent && self.peers[i].talker.is_some() && frame % LOOP_FRAMES == GAP_START && !marked {
                    marked = true;
                    if self.gaps.len() >= GAPS_KEPT {
                        self.gaps.pop_front();
                    }
                    self.gaps.push_back(now);
                }
            }
            self.service(i, now);
        }
        self.buckets[bucket] = members;
    }

    fn write_audio(&mut self, i: usize, frame: u64, now: Instant) -> bool {
        let sound = &self.sound;
        let peer = &mut self.peers[i];
        // The level tells the truth, as a browser's would: the marker's
        // silent packets say silence.
        let (payload, level, voice) = match peer.talker {
            Some(t) if frame % LOOP_FRAMES < GAP_START => {
                (sound.talkers[t][(frame % LOOP_FRAMES) as usize].clone(), TALK_LEVEL, true)
            }
            Some(t) => (sound.talkers[t][(frame % LOOP_FRAMES) as usize].clone(), SILENT_LEVEL, false),
            None => match peer.dtx {
                Some(start) if !sound.dtx_silence.is_empty() => {
                    let cycle = &sound.dtx_silence;
                    // Nothing this frame: the RTP clock runs on regardless.
                    let Some(p) = &cycle[(frame as usize + start) % cycle.len()] else { return false };
                    (p.clone(), SILENT_LEVEL, false)
                }
                _ => (sound.silence.clone(), SILENT_LEVEL, false),
            },
        };
        if peer.pt.is_none() {
            peer.pt = peer.rtc.writer(peer.mid).and_then(|w| {
                w.payload_params().find(|p| p.spec().codec == Codec::Opus).map(|p| p.pt())
            });
        }
        let Some(pt) = peer.pt else { return false };
        let Some(writer) = peer.rtc.writer(peer.mid) else { return false };
        let time = MediaTime::new(frame * FRAME as u64, Frequency::FORTY_EIGHT_KHZ);
        match writer.audio_level(level, voice).write(pt, now, time, payload) {
            Ok(()) => {
                self.counters.sent += 1;
                true
            }
            Err(_) => {
                self.counters.write_errors += 1;
                false
            }
        }
    }

    fn service(&mut self, i: usize, now: Instant) {
        let peer = &mut self.peers[i];
        if peer.dead {
            return;
        }
        if peer.timeout <= now && peer.rtc.handle_input(Input::Timeout(now)).is_err() {
            peer.dead = true;
            return;
        }
        self.drain(i);
    }

    fn receive(&mut self, i: usize, at: Instant, from: SocketAddr, data: &[u8]) {
        let peer = &mut self.peers[i];
        if peer.dead {
            return;
        }
        let Ok(contents) = data.try_into() else { return };
        let input = Input::Receive(at, Receive { proto: Protocol::Udp, source: from, destination: peer.local, contents });
        self.counters.datagrams += 1;
        if !peer.rtc.accepts(&input) {
            self.counters.not_accepted += 1;
            return;
        }
        if peer.rtc.handle_input(input).is_err() {
            peer.dead = true;
            return;
        }
        self.drain(i);
    }

    fn drain(&mut self, i: usize) {
        // str0m sends a packet just written only after a timeout it asks
        // for at once; without serving that here the packet would wait for
        // this peer's next slot, 20 ms late.
        let mut due_now = 0;
        loop {
            let peer = &mut self.peers[i];
            let output = match peer.rtc.poll_output() {
                Ok(o) => o,
                Err(_) => {
                    peer.dead = true;
                    return;
                }
            };
            match output {
                Output::Timeout(t) => {
                    peer.timeout = t;
                    let now = Instant::now();
                    if t <= now && due_now < 4 {
                        due_now += 1;
                        if peer.rtc.handle_input(Input::Timeout(now)).is_err() {
                            peer.dead = true;
                            return;
                        }
                        continue;
                    }
                    return;
                }
                Output::Transmit(t) => {
                    // Only ever to the server under test.
                    if t.destination.ip() != self.allowed {
                        self.counters.refused_destinations += 1;
                        continue;
                    }
                    if peer.tx.send_to(&t.contents, t.destination).is_err() {
                        self.counters.send_errors += 1;
                    }
                }
                Output::Event(event) => self.event(i, event),
            }
        }
    }

    fn event(&mut self, i: usize, event: Event) {
        let peer = &mut self.peers[i];
        match event {
            Event::Connected => {
                peer.connected = true;
                if let Some(n) = peer.notify.take() {
                    let _ = n.send(());
                }
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                if peer.connected {
                    self.counters.disconnected += 1;
                }
                peer.dead = true;
            }
            Event::MediaData(data) => {
                if peer.rtc.media(data.mid).is_none_or(|m| m.kind() != MediaKind::Audio) {
                    return;
                }
                self.counters.received += 1;
                self.counters.received_bytes += data.data.len() as u64;
                if let Some(distinct) = &mut self.distinct {
                    let mut h = DefaultHasher::new();
                    data.data.hash(&mut h);
                    distinct.insert(h.finish());
                }
                let Some(probe) = &mut peer.probe else { return };
                let Ok(n) = probe.decoder.decode(&data.data, &mut probe.pcm, false) else { return };
                let Some(offset) = probe.detector.push(&probe.pcm[..n]) else { return };
                let onset = data.network_time + Duration::from_secs_f64(offset as f64 / 48_000.0);
                // The latest marker sent before the silence was heard.
                if let Some(sent) = self.gaps.iter().rev().find(|&&g| g <= onset)
                    && self.distinct.is_some()
                {
                    let delay = onset - *sent;
                    if delay < Duration::from_millis(900) {
                        self.e2e.push(delay);
                    }
                }
            }
            _ => {}
        }
    }
}
