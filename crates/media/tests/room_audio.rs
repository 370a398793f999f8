//! Audio through a `Room` with real WebRTC stacks on both ends: three str0m
//! client peers each send an Opus-encoded sine tone with the RFC 6464 level
//! extension, the Room mixes, and what every client receives is decoded with
//! a real Opus decoder and checked by frequency: everyone hears the others and
//! not themselves (mix-minus), at K+1 encodes per tick at most.

use std::collections::VecDeque;
use std::f64::consts::PI;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::SdpAnswer;
use str0m::format::Codec as RtcCodec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

use confcast_media::room::{Datagram, Room, RoomEvent};
use confcast_media::{ParticipantId, Role, RouterConfig};
use confcast_mixer::{MixerConfig, MixerStats, SourceId, SourceStats};

const A: ParticipantId = ParticipantId(1);
const B: ParticipantId = ParticipantId(2);
const C: ParticipantId = ParticipantId(3);
const TONES: [(ParticipantId, f64); 3] = [(A, 440.0), (B, 660.0), (C, 880.0)];

const FRAME: Duration = Duration::from_millis(20);
const FRAME_SAMPLES: usize = 960;
/// Tone amplitude (full scale 1.0): -15 dBov RMS.
const AMPLITUDE: f64 = 0.25;

/// A browser-like participant: sends a microphone tone every 20 ms once
/// connected, and keeps every audio packet it receives.
struct Client {
    id: ParticipantId,
    rtc: Rtc,
    addr: SocketAddr,
    timeout: Instant,
    audio: Mid,
    freq: f64,
    encoder: opus::Encoder,
    phase: f64,
    /// Sends encoded digital silence flagged -127 dBov, no voice.
    muted: bool,
    frames_sent: u64,
    next_frame: Instant,
    /// Received audio: (extended RTP sequence number, Opus payload).
    received: Vec<(u64, Vec<u8>)>,
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
                Output::Event(Event::MediaData(d)) if d.mid == self.audio => {
                    self.received.push((**d.seq_range.start(), d.data.to_vec()));
                }
                Output::Event(_) => {}
            }
        }
    }

    fn opus_pt(&self) -> Pt {
        let remote = self
            .rtc
            .media(self.audio)
            .expect("audio media")
            .remote_pts()
            .to_vec();
        self.rtc
            .codec_config()
            .params()
            .iter()
            .find(|p| p.spec().codec == RtcCodec::Opus && remote.contains(&p.pt()))
            .map(|p| p.pt())
            .expect("Opus negotiated")
    }

    /// When the next microphone frame is due (only once connected).
    fn next_audio(&self) -> Option<Instant> {
        self.rtc.is_connected().then_some(self.next_frame)
    }

    /// Sends the next 20 ms microphone frame if it is due.
    fn audio_tick(&mut self, now: Instant) -> bool {
        if !self.rtc.is_connected() {
            return false;
        }
        if self.frames_sent == 0 {
            self.next_frame = now;
        }
        if now < self.next_frame {
            return false;
        }
        let step = 2.0 * PI * self.freq / 48_000.0;
        let pcm: Vec<i16> = (0..FRAME_SAMPLES)
            .map(|_| {
                self.phase = (self.phase + step) % (2.0 * PI);
                if self.muted {
                    0
                } else {
                    (self.phase.sin() * AMPLITUDE * 32767.0) as i16
                }
            })
            .collect();
        let payload = self.encoder.encode_vec(&pcm, 1500).expect("opus encode");
        // str0m takes the RFC 6464 level as -dBov (0 loudest, -127 silence).
        let (level, voice) = if self.muted {
            (-127, false)
        } else {
            (-(db(AMPLITUDE / 2f64.sqrt()).abs().round() as i8), true)
        };
        let pt = self.opus_pt();
        let rtp_time = MediaTime::new(
            self.frames_sent * FRAME_SAMPLES as u64,
            Frequency::FORTY_EIGHT_KHZ,
        );
        self.rtc
            .writer(self.audio)
            .expect("audio writer")
            .audio_level(level, voice)
            .write(pt, now, rtp_time, payload)
            .expect("write audio");
        self.frames_sent += 1;
        self.next_frame += FRAME;
        true
    }

    /// Everything received, decoded in sequence order (48 kHz mono).
    fn decoded(&self) -> Vec<i16> {
        let mut packets = self.received.clone();
        packets.sort_by_key(|p| p.0);
        let mut decoder = opus::Decoder::new(48_000, opus::Channels::Mono).expect("decoder");
        let mut pcm = Vec::with_capacity(packets.len() * FRAME_SAMPLES);
        for (i, (seq, payload)) in packets.iter().enumerate() {
            if i > 0 {
                assert_eq!(
                    *seq,
                    packets[i - 1].0 + 1,
                    "{}: audio sequence numbers continue",
                    self.id
                );
            }
            let mut frame = [0i16; FRAME_SAMPLES];
            let n = decoder
                .decode(payload, &mut frame, false)
                .expect("the mix decodes");
            assert_eq!(n, FRAME_SAMPLES, "20 ms packets");
            pcm.extend_from_slice(&frame);
        }
        pcm
    }
}

struct World {
    now: Instant,
    server: SocketAddr,
    room: Room,
    clients: Vec<Client>,
    net: VecDeque<Datagram>,
    events: Vec<RoomEvent>,
    /// The mixer's counters after every Room timer run that produced ticks.
    stats: Vec<MixerStats>,
    /// Every `.0`th datagram to the server waits `.1` before the Room reads
    /// it (a busy server loop); `.2`: the Room is told when it arrived.
    read_late: Option<(u64, Duration, bool)>,
    to_server: u64,
    /// Datagrams waiting to be read: (read at, arrived at, datagram).
    unread: VecDeque<(Instant, Instant, Datagram)>,
}

impl World {
    fn new(t0: Instant) -> Self {
        let server: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
        let room = Room::new(
            server,
            RouterConfig::default(),
            MixerConfig::default(),
            42,
            t0,
        )
        .expect("room");
        Self {
            now: t0,
            server,
            stats: vec![room.mixer().stats().clone()],
            room,
            clients: Vec::new(),
            net: VecDeque::new(),
            events: Vec::new(),
            read_late: None,
            to_server: 0,
            unread: VecDeque::new(),
        }
    }

    /// Hands the Room a datagram that reached it at `arrived`.
    fn deliver(&mut self, d: &Datagram, arrived: Instant) {
        let told = match self.read_late {
            Some((_, _, true)) => arrived,
            _ => self.now,
        };
        self.room
            .handle_packet_arrived(d.transport, d.source, &d.contents, self.now, told)
            .expect("room input");
    }

    fn join(&mut self, id: ParticipantId, role: Role, freq: f64) {
        let addr: SocketAddr = format!("127.0.0.1:{}", 40000 + id.0).parse().expect("addr");
        let mut rtc = Rtc::builder().build(self.now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").expect("candidate"));
        let mut change = rtc.sdp_api();
        let audio = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        change.add_media(MediaKind::Video, Direction::SendRecv, None, None, None);
        let (offer, pending) = change.apply().expect("offer");
        let answer = self
            .room
            .join(id, role, &offer.to_sdp_string(), self.now)
            .expect("join");
        assert!(answer.contains("opus"), "server answers with Opus");
        rtc.sdp_api()
            .accept_answer(
                pending,
                SdpAnswer::from_sdp_string(&answer).expect("answer"),
            )
            .expect("accept answer");
        let mut encoder = opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip)
            .expect("encoder");
        encoder
            .set_bitrate(opus::Bitrate::Bits(32_000))
            .expect("bitrate");
        self.clients.push(Client {
            id,
            rtc,
            addr,
            timeout: self.now,
            audio,
            freq,
            encoder,
            phase: 0.0,
            muted: false,
            frames_sent: 0,
            next_frame: self.now,
            received: Vec::new(),
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
            if self.unread.front().is_some_and(|(at, _, _)| *at <= self.now) {
                if let Some((_, arrived, d)) = self.unread.pop_front() {
                    self.deliver(&d, arrived);
                }
                continue;
            }
            if let Some(d) = self.net.pop_front() {
                if d.destination == self.server {
                    self.to_server += 1;
                    match self.read_late {
                        Some((every, wait, _)) if self.to_server % every == 0 => {
                            self.unread.push_back((self.now + wait, self.now, d));
                        }
                        // Keeps the order: nothing overtakes a datagram still unread.
                        _ if !self.unread.is_empty() => self.unread.push_back((self.now, self.now, d)),
                        _ => self.deliver(&d, self.now),
                    }
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
            if self.clients.iter_mut().any(|c| c.audio_tick(now)) {
                continue;
            }
            let next = self
                .clients
                .iter()
                .flat_map(|c| [Some(c.timeout), c.next_audio()])
                .flatten()
                .chain(self.room.poll_timeout())
                .chain(self.unread.front().map(|(at, _, _)| *at))
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
            let stats = self.room.mixer().stats();
            if stats.ticks != self.stats.last().map_or(0, |s| s.ticks) {
                self.stats.push(stats.clone());
            }
        }
    }

    fn source_stats(&self, id: ParticipantId) -> SourceStats {
        self.room
            .mixer()
            .source_stats(SourceId(id.0))
            .expect("source")
    }

    /// Mixer counter increase over the ticks after `from` (an index into
    /// `stats`): (ticks, encodes, decodes).
    fn counted_since(&self, from: usize) -> (u64, u64, u64) {
        let (a, b) = (&self.stats[from], self.stats.last().expect("stats"));
        (
            b.ticks - a.ticks,
            b.encodes - a.encodes,
            b.decodes - a.decodes,
        )
    }
}

fn three_talkers(t0: Instant) -> World {
    let mut w = World::new(t0);
    w.join(A, Role::Host, TONES[0].1);
    w.join(B, Role::Member, TONES[1].1);
    w.join(C, Role::Member, TONES[2].1);
    w
}

fn db(x: f64) -> f64 {
    20.0 * x.max(1e-12).log10()
}

/// Amplitude (full scale 1.0) of `freq` in `pcm`: Hann-windowed Goertzel.
fn tone_amplitude(pcm: &[i16], freq: f64) -> f64 {
    let n = pcm.len();
    if n == 0 {
        return 0.0;
    }
    let coeff = 2.0 * (2.0 * PI * freq / 48_000.0).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for (i, &x) in pcm.iter().enumerate() {
        let hann = 0.5 - 0.5 * (2.0 * PI * i as f64 / (n - 1).max(1) as f64).cos();
        let s = f64::from(x) / 32768.0 * hann + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    // A Hann-windowed sinusoid of amplitude a gives |X| = a * N / 4.
    4.0 * power.max(0.0).sqrt() / n as f64
}

/// The last `secs` seconds of what `who` received, decoded.
fn heard_last(w: &World, who: ParticipantId, secs: f64) -> Vec<i16> {
    let pcm = w
        .clients
        .iter()
        .find(|c| c.id == who)
        .expect("client")
        .decoded();
    let n = (secs * 48_000.0) as usize;
    assert!(
        pcm.len() >= n,
        "{who} received {} ms of audio",
        pcm.len() / 48
    );
    pcm[pcm.len() - n..].to_vec()
}

/// Levels (dBFS) of the three tones in `pcm`, in the order of `TONES`.
fn tone_levels(pcm: &[i16]) -> [f64; 3] {
    TONES.map(|(_, f)| db(tone_amplitude(pcm, f)))
}

/// Asserts `who` hears exactly the tones of `audible` (loud, within a few dB
/// of what was sent) and the others at least 30 dB below the quietest of them.
fn assert_hears(w: &World, who: ParticipantId, audible: &[ParticipantId]) {
    let pcm = heard_last(w, who, 1.5);
    let levels = tone_levels(&pcm);
    eprintln!("{who} hears 440/660/880 Hz at {levels:.1?} dBFS");
    let sent = db(AMPLITUDE);
    let mut quietest_audible = f64::INFINITY;
    for ((source, freq), level) in TONES.iter().zip(levels) {
        if audible.contains(source) {
            assert!(
                (level - sent).abs() < 4.0,
                "{who} should hear {source}'s {freq} Hz near {sent:.1} dBFS: {levels:.1?}"
            );
            quietest_audible = quietest_audible.min(level);
        }
    }
    for ((source, freq), level) in TONES.iter().zip(levels) {
        if !audible.contains(source) {
            assert!(
                level < quietest_audible - 30.0,
                "{who} should not hear {source}'s {freq} Hz: {levels:.1?}"
            );
        }
    }
}

fn talking_started(w: &World, who: ParticipantId) -> bool {
    w.events.contains(&RoomEvent::Talking {
        participant: who,
        talking: true,
    })
}

/// A server loop that reads some datagrams late (busy mixing) must not
/// look like network jitter: the jitter buffers measure from when a packet
/// arrived (the kernel's stamp), so their playout delay stays where an
/// on-time network puts it. Told only the read time, they grow it.
#[test]
fn packets_read_late_count_from_their_arrival() {
    let target_of_a = |stamped: bool| {
        let t0 = Instant::now();
        let mut w = three_talkers(t0);
        // One datagram in 7 (a talker's packet now and then) waits 15 ms.
        w.read_late = Some((7, Duration::from_millis(15), stamped));
        w.run_until(t0 + Duration::from_secs(3));
        assert!(w.to_server > 100, "datagrams flowed");
        let a = w.source_stats(A);
        assert!(a.packets_received > 100, "{a:?}");
        a.target_delay_ms
    };
    let stamped = target_of_a(true);
    let read_time = target_of_a(false);
    eprintln!("jitter target with arrival stamps {stamped} ms, with read times {read_time} ms");
    // Minimum target (15 ms) plus little: the network itself is steady.
    assert!(stamped <= 17.0, "{stamped} ms");
    assert!(read_time >= stamped + 10.0, "{read_time} ms vs {stamped} ms");
}

#[test]
fn three_talkers_each_hear_the_other_two() {
    let t0 = Instant::now();
    let mut w = three_talkers(t0);
    w.run_until(t0 + Duration::from_millis(1500));
    let steady = w.stats.len() - 1;
    w.run_until(t0 + Duration::from_secs(3));

    let connected = w
        .events
        .iter()
        .filter(|e| matches!(e, RoomEvent::Connected(_)))
        .count();
    assert_eq!(connected, 3);
    for c in &w.clients {
        assert!(
            c.frames_sent > 130,
            "{} sent {} frames",
            c.id,
            c.frames_sent
        );
        assert!(
            c.received.len() > 130,
            "{} received {} packets",
            c.id,
            c.received.len()
        );
    }

    // Mix-minus: everyone hears the other two tones, not their own.
    assert_hears(&w, A, &[B, C]);
    assert_hears(&w, B, &[A, C]);
    assert_hears(&w, C, &[A, B]);

    // K+1 encodes per tick at most, all along; with all three speaking, one
    // shared full mix (for nobody, but it is also the program) and three
    // mix-minus encodes, and the three speakers decoded, every tick.
    let k = w.room.mixer().config().max_speakers as u64;
    for pair in w.stats.windows(2) {
        let ticks = pair[1].ticks - pair[0].ticks;
        let encodes = pair[1].encodes - pair[0].encodes;
        assert!(
            encodes <= (k + 1) * ticks,
            "{encodes} encodes in {ticks} ticks"
        );
    }
    let (ticks, encodes, decodes) = w.counted_since(steady);
    assert!(ticks >= 70, "{ticks} ticks");
    assert_eq!(encodes, 4 * ticks, "full mix + 3 mix-minus per tick");
    assert_eq!(decodes, 3 * ticks, "three speakers decoded per tick");
    let stats = w.room.mixer().stats();
    assert_eq!(stats.ticks_skipped, 0);
    assert_eq!(stats.encode_errors, 0);
    assert_eq!(stats.corrupt_payload, 0);
    assert_eq!(stats.late, 0);
    for id in [A, B, C] {
        let s = w.source_stats(id);
        assert!(s.talking && s.selected, "{id}: {s:?}");
    }

    // The Room reported the talkers and a dominant speaker.
    for id in [A, B, C] {
        assert!(talking_started(&w, id), "{id} talking: {:?}", w.events);
    }
    assert!(
        w.events
            .iter()
            .any(|e| matches!(e, RoomEvent::DominantSpeaker(Some(p)) if [A, B, C].contains(p))),
        "dominant speaker: {:?}",
        w.events
    );
}

#[test]
fn a_muted_talker_is_not_decoded_and_the_others_still_hear_each_other() {
    let t0 = Instant::now();
    let mut w = three_talkers(t0);
    w.run_until(t0 + Duration::from_millis(1500));
    for id in [A, B, C] {
        assert!(talking_started(&w, id), "{id} talking: {:?}", w.events);
    }
    let before = w.source_stats(C);
    assert!(before.selected && before.decodes > 0, "{before:?}");

    // C mutes: digital silence, level -127 dBov, voice flag off.
    w.client(C).muted = true;
    // Talk hangover (500 ms), one fade-out tick, and jitter delay.
    w.run_until(t0 + Duration::from_millis(2300));
    assert!(
        w.events.contains(&RoomEvent::Talking {
            participant: C,
            talking: false
        }),
        "C stopped talking: {:?}",
        w.events
    );
    let stopped = w.source_stats(C);
    assert!(!stopped.talking && !stopped.selected, "{stopped:?}");
    let steady = w.stats.len() - 1;
    let received_before = stopped.packets_received;
    w.run_until(t0 + Duration::from_millis(3800));

    // C's packets still arrive and are buffered, but are never decoded again.
    let after = w.source_stats(C);
    assert!(after.packets_received > received_before + 60, "{after:?}");
    assert_eq!(
        after.decodes, stopped.decodes,
        "C is not decoded while silent"
    );
    assert_eq!(after.plc_frames, stopped.plc_frames);
    assert!(!after.talking && !after.selected, "{after:?}");
    // Two speakers: two decodes and K+1 = 3 encodes (their two mix-minus
    // streams and the full mix C hears) per tick.
    let (ticks, encodes, decodes) = w.counted_since(steady);
    assert!(ticks >= 70, "{ticks} ticks");
    assert_eq!(decodes, 2 * ticks, "only A and B are decoded");
    assert_eq!(encodes, 3 * ticks, "full mix + 2 mix-minus per tick");
    for id in [A, B] {
        let s = w.source_stats(id);
        assert!(s.talking && s.selected, "{id}: {s:?}");
    }

    // A and B hear each other; C, now a plain listener, hears both.
    assert_hears(&w, A, &[B]);
    assert_hears(&w, B, &[A]);
    assert_hears(&w, C, &[A, B]);
}
