//! Test harness: synthetic senders encoding tones with a real Opus encoder,
//! a simulated network (delay, jitter, loss, reordering, drift), and
//! listeners decoding what the mixer routes to them with a real decoder.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::f64::consts::PI;
use std::time::{Duration, Instant};

use confcast_mixer::{AudioLevel, AudioPacket, ListenerId, Mixer, MixerConfig, SourceId, Tick};

pub const TICK: Duration = Duration::from_millis(20);

/// SplitMix64: small, seeded, good enough to draw losses and garbage.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// Amplitude (linear, full scale 1.0) of `freq` in `pcm`, Hann-windowed
/// Goertzel.
pub fn tone_amplitude(pcm: &[i16], freq: f64) -> f64 {
    let n = pcm.len();
    if n == 0 {
        return 0.0;
    }
    let w = 2.0 * PI * freq / 48_000.0;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for (i, &x) in pcm.iter().enumerate() {
        let hann = 0.5 - 0.5 * (2.0 * PI * i as f64 / (n - 1).max(1) as f64).cos();
        let s = f64::from(x) / 32768.0 * hann + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    // Hann-windowed sinusoid of amplitude A gives |X| = A*N/4.
    4.0 * power.max(0.0).sqrt() / n as f64
}

pub fn db(x: f64) -> f64 {
    20.0 * x.max(1e-12).log10()
}

/// RMS of `pcm`, linear.
pub fn rms(pcm: &[i16]) -> f64 {
    if pcm.is_empty() {
        return 0.0;
    }
    (pcm.iter()
        .map(|&x| (f64::from(x) / 32768.0).powi(2))
        .sum::<f64>()
        / pcm.len() as f64)
        .sqrt()
}

/// What a simulated sender does with frame `n` (20 ms each).
#[derive(Clone, Debug)]
pub struct SenderSpec {
    pub id: u64,
    /// Tone frequency; `None` sends encoded silence at level 127.
    pub freq: Option<f64>,
    pub amplitude: f64,
    /// Sender clock speed: 1.005 is 0.5 % fast, 2.0 twice real time.
    pub rate: f64,
    pub loss: f64,
    /// Extra network delay drawn uniformly from 0..jitter (reorders packets
    /// when it exceeds a frame).
    pub jitter: Duration,
    /// Frames in which the sender is talking (tone); outside, it is in DTX
    /// (sends nothing) if `dtx`, else encodes silence.
    pub talking: fn(u64) -> bool,
    pub dtx: bool,
    /// Encode with Opus DTX on and send like a browser does: of the 1-2 byte
    /// DTX frames the encoder makes while silent, only the first in a row
    /// (so while silent: a refresh frame and a DTX frame every ~400 ms).
    pub opus_dtx: bool,
    /// Network delay before jitter (sets where packets fall between ticks).
    pub delay: Duration,
    /// Packets `n` with `n % .0` in `.1` arrive `.2` later than the others
    /// (lateness now and then, as a busy machine makes).
    pub late_every: Option<(u64, std::ops::Range<u64>, Duration)>,
    /// From this frame on, RTP timestamps jump by `ts_jump.1`.
    pub ts_jump: Option<(u64, u32)>,
    /// Probability of replacing the payload by random bytes.
    pub corrupt: f64,
    /// Probability of replacing the level by a random byte value.
    pub garbage_level: f64,
    /// Frames not sent at all after this one (sender stops mid-word).
    pub stop_after: Option<u64>,
    pub send_level: bool,
    pub seed: u64,
    /// Packet duration in samples (960 = 20 ms).
    pub packet_samples: u32,
}

pub fn always(_: u64) -> bool {
    true
}

impl SenderSpec {
    pub fn tone(id: u64, freq: f64) -> Self {
        SenderSpec {
            id,
            freq: Some(freq),
            amplitude: 0.25,
            rate: 1.0,
            loss: 0.0,
            jitter: Duration::ZERO,
            talking: always,
            dtx: false,
            opus_dtx: false,
            delay: Duration::from_millis(5),
            late_every: None,
            ts_jump: None,
            corrupt: 0.0,
            garbage_level: 0.0,
            stop_after: None,
            send_level: true,
            seed: id,
            packet_samples: 960,
        }
    }

    pub fn silent(id: u64) -> Self {
        SenderSpec {
            freq: None,
            ..SenderSpec::tone(id, 0.0)
        }
    }
}

pub struct Event {
    pub arrival: Instant,
    pub source: SourceId,
    pub packet: AudioPacket,
}

fn new_encoder() -> opus::Encoder {
    let mut e = opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).unwrap();
    e.set_bitrate(opus::Bitrate::Bits(32_000)).unwrap();
    e.set_inband_fec(true).unwrap();
    e.set_packet_loss_perc(10).unwrap();
    e
}

/// A silence packet shared by all silent senders (valid Opus, never decoded
/// unless selected).
pub fn silence_packet() -> Vec<u8> {
    let mut e = new_encoder();
    let pcm = [0i16; 960];
    let mut last = Vec::new();
    for _ in 0..5 {
        last = e.encode_vec(&pcm, 1500).unwrap();
    }
    last
}

/// Generates every packet `spec` sends from `t0` for `frames` frames.
pub fn generate(spec: &SenderSpec, t0: Instant, frames: u64, silence: &[u8]) -> Vec<Event> {
    let mut rng = Rng::new(spec.seed.wrapping_mul(0x1234_5678_9ABC_DEF1) ^ 0x55);
    let mut enc = new_encoder();
    if spec.opus_dtx {
        enc.set_dtx(true).unwrap();
    }
    let mut last_dtx = false;
    let base_ts: u32 = (spec.seed as u32).wrapping_mul(2_654_435_761);
    let base_seq: u16 = (spec.seed as u16).wrapping_mul(40_503);
    let mut seq = base_seq;
    let mut out = Vec::new();
    let mut phase = 0.0f64;
    for n in 0..frames {
        if spec.stop_after.is_some_and(|s| n > s) {
            break;
        }
        let talking = (spec.talking)(n) && spec.freq.is_some();
        let mut ts = base_ts.wrapping_add((n as u32).wrapping_mul(spec.packet_samples));
        if let Some((from, by)) = spec.ts_jump
            && n >= from
        {
            ts = ts.wrapping_add(by);
        }
        let (payload, level) = if talking {
            let freq = spec.freq.unwrap_or(0.0);
            let pcm: Vec<i16> = (0..spec.packet_samples)
                .map(|_| {
                    phase += 2.0 * PI * freq / 48_000.0;
                    (phase.sin() * spec.amplitude * 32767.0) as i16
                })
                .collect();
            let dbov = (-db(spec.amplitude / 2f64.sqrt()))
                .round()
                .clamp(0.0, 127.0) as u8;
            last_dtx = false;
            (
                enc.encode_vec(&pcm, 1500).unwrap(),
                AudioLevel { dbov, voice: true },
            )
        } else if spec.opus_dtx {
            let pcm = vec![0i16; spec.packet_samples as usize];
            let p = enc.encode_vec(&pcm, 1500).unwrap();
            let dtx = p.len() <= 2;
            if dtx && last_dtx {
                // Not sent, but the RTP clock runs on.
                continue;
            }
            last_dtx = dtx;
            (
                p,
                AudioLevel {
                    dbov: 127,
                    voice: false,
                },
            )
        } else {
            if spec.dtx {
                // DTX: nothing on the wire, but the RTP clock runs on.
                continue;
            }
            (
                silence.to_vec(),
                AudioLevel {
                    dbov: 127,
                    voice: false,
                },
            )
        };
        seq = seq.wrapping_add(1);
        if rng.f64() < spec.loss {
            continue;
        }
        let payload = if rng.f64() < spec.corrupt {
            let len = rng.below(300) as usize;
            rng.bytes(len)
        } else {
            payload
        };
        let level = if rng.f64() < spec.garbage_level {
            Some(AudioLevel {
                dbov: rng.next_u64() as u8,
                voice: rng.below(2) == 1,
            })
        } else {
            spec.send_level.then_some(level)
        };
        let send = Duration::from_secs_f64(
            n as f64 * f64::from(spec.packet_samples) / 48_000.0 / spec.rate,
        );
        let mut delay = spec.delay + spec.jitter.mul_f64(rng.f64());
        if let Some((every, at, extra)) = &spec.late_every
            && *every > 0
            && at.contains(&(n % every))
        {
            delay += *extra;
        }
        out.push(Event {
            arrival: t0 + send + delay,
            source: SourceId(spec.id),
            packet: AudioPacket {
                seq,
                timestamp: ts,
                level,
                payload,
            },
        });
    }
    out
}

/// A room under simulation.
pub struct Sim {
    pub mixer: Mixer,
    pub t0: Instant,
    events: Vec<Event>,
    next_event: usize,
    decoders: HashMap<ListenerId, opus::Decoder>,
    /// Decoded audio per listener, one frame per tick it got a packet.
    pub heard: HashMap<ListenerId, Vec<i16>>,
    pub program: Vec<i16>,
    program_decoder: opus::Decoder,
    pub program_pcm: Vec<i16>,
    last_route: HashMap<ListenerId, (u16, u32, u64)>,
    pub encodes_per_tick: Vec<u64>,
    pub decodes_per_tick: Vec<u64>,
    pub ticks: Vec<Tick>,
    pub keep_ticks: bool,
    pub max_buffered: HashMap<u64, usize>,
}

impl Sim {
    pub fn new(cfg: MixerConfig, senders: &[SenderSpec], frames: u64) -> Sim {
        let t0 = Instant::now();
        let mut mixer = Mixer::new(cfg, t0).unwrap();
        let silence = silence_packet();
        let mut events = Vec::new();
        for s in senders {
            mixer.add_source(SourceId(s.id));
            events.extend(generate(s, t0, frames, &silence));
        }
        events.sort_by_key(|e| e.arrival);
        Sim {
            mixer,
            t0,
            events,
            next_event: 0,
            decoders: HashMap::new(),
            heard: HashMap::new(),
            program: Vec::new(),
            program_decoder: opus::Decoder::new(48_000, opus::Channels::Mono).unwrap(),
            program_pcm: Vec::new(),
            last_route: HashMap::new(),
            encodes_per_tick: Vec::new(),
            decodes_per_tick: Vec::new(),
            ticks: Vec::new(),
            keep_ticks: false,
            max_buffered: HashMap::new(),
        }
    }

    /// A listener that is also source `id` (or a plain one with `None`).
    pub fn listen(&mut self, id: u64, own: Option<u64>) {
        self.mixer.add_listener(ListenerId(id), own.map(SourceId));
        self.decoders.insert(
            ListenerId(id),
            opus::Decoder::new(48_000, opus::Channels::Mono).unwrap(),
        );
        self.heard.insert(ListenerId(id), Vec::new());
    }

    pub fn inject(&mut self, mut extra: Vec<Event>) {
        let rest = self.events.split_off(self.next_event);
        extra.extend(rest);
        extra.sort_by_key(|e| e.arrival);
        self.events.extend(extra);
    }

    /// Runs `ticks` ticks, delivering packets that arrived before each.
    pub fn run(&mut self, ticks: u64) {
        for _ in 0..ticks {
            let now = self.mixer.next_tick_at();
            while let Some(e) = self.events.get_mut(self.next_event)
                && e.arrival <= now
            {
                let packet = std::mem::replace(
                    &mut e.packet,
                    AudioPacket {
                        seq: 0,
                        timestamp: 0,
                        level: None,
                        payload: Vec::new(),
                    },
                );
                let (source, arrival) = (e.source, e.arrival);
                self.mixer.push_packet(source, packet, arrival);
                self.next_event += 1;
            }
            let before = self.mixer.stats().clone();
            let tick = self.mixer.tick(now).expect("tick due");
            let after = self.mixer.stats();
            self.encodes_per_tick.push(after.encodes - before.encodes);
            self.decodes_per_tick.push(after.decodes - before.decodes);
            self.consume(&tick);
            if self.keep_ticks {
                self.ticks.push(tick);
            }
        }
    }

    /// Decodes what a tick routed to each listener, checking that every
    /// listener's RTP stream is continuous.
    pub fn consume(&mut self, tick: &Tick) {
        for route in &tick.routes {
            let payload = tick.payload(route).expect("route points at a stream");
            if let Some((seq, ts, index)) = self.last_route.get(&route.listener) {
                assert_eq!(route.seq, seq.wrapping_add(1), "seq continuity");
                // Skipped ticks advance the timestamp, like real time does.
                let elapsed = (tick.index - index) as u32 * 960;
                assert_eq!(
                    route.timestamp,
                    ts.wrapping_add(elapsed),
                    "timestamp continuity"
                );
            }
            self.last_route
                .insert(route.listener, (route.seq, route.timestamp, tick.index));
            if let Some(dec) = self.decoders.get_mut(&route.listener) {
                let mut pcm = [0i16; 960];
                let n = dec
                    .decode(payload, &mut pcm, false)
                    .expect("mixer output decodes");
                assert_eq!(n, 960);
                self.heard
                    .get_mut(&route.listener)
                    .unwrap()
                    .extend_from_slice(&pcm);
            }
        }
        if let Some(p) = &tick.program.payload {
            let mut pcm = [0i16; 960];
            let n = self
                .program_decoder
                .decode(p, &mut pcm, false)
                .expect("program decodes");
            assert_eq!(n, 960);
            self.program.extend_from_slice(&pcm);
        }
        if let Some(pcm) = &tick.program.pcm {
            self.program_pcm.extend_from_slice(pcm);
        }
    }

    /// Decoded audio of `listener` between `from` and `to` seconds.
    pub fn heard_between(&self, listener: u64, from: f64, to: f64) -> &[i16] {
        slice_secs(&self.heard[&ListenerId(listener)], from, to)
    }
}

pub fn slice_secs(pcm: &[i16], from: f64, to: f64) -> &[i16] {
    let a = ((from * 48_000.0) as usize).min(pcm.len());
    let b = ((to * 48_000.0) as usize).min(pcm.len()).max(a);
    &pcm[a..b]
}

pub const A: f64 = 440.0;
pub const B: f64 = 660.0;
pub const C: f64 = 880.0;

/// Tone levels (dBFS) of A, B and C in `pcm`.
pub fn abc_db(pcm: &[i16]) -> [f64; 3] {
    [
        db(tone_amplitude(pcm, A)),
        db(tone_amplitude(pcm, B)),
        db(tone_amplitude(pcm, C)),
    ]
}

/// Per-block distortion of a stream that should only contain the tones
/// `freqs`: energy left after removing the best-fitting sinusoids (least
/// squares), relative to the block's energy, in dB. A click or glitch shows
/// up as a spike.
pub fn residual_db(pcm: &[i16], freqs: &[f64], block: usize) -> Vec<f64> {
    let m = 2 * freqs.len();
    pcm.chunks(block)
        .filter(|c| c.len() == block)
        .enumerate()
        .map(|(b, c)| {
            let t0 = (b * block) as f64;
            let basis = |i: usize| -> Vec<f64> {
                freqs
                    .iter()
                    .flat_map(|f| {
                        let (s, co) = (2.0 * PI * f / 48_000.0 * (t0 + i as f64)).sin_cos();
                        [s, co]
                    })
                    .collect()
            };
            // Normal equations: (B^T B) w = B^T x.
            let mut ata = vec![vec![0.0f64; m + 1]; m];
            let mut xx = 0.0;
            for (i, &x) in c.iter().enumerate() {
                let x = f64::from(x) / 32768.0;
                let v = basis(i);
                for r in 0..m {
                    for k in 0..m {
                        ata[r][k] += v[r] * v[k];
                    }
                    ata[r][m] += v[r] * x;
                }
                xx += x * x;
            }
            // Gaussian elimination with partial pivoting.
            for col in 0..m {
                let piv = (col..m)
                    .max_by(|&a, &b| ata[a][col].abs().total_cmp(&ata[b][col].abs()))
                    .unwrap();
                ata.swap(col, piv);
                let p = ata[col][col];
                if p.abs() < 1e-12 {
                    continue;
                }
                let pivot_row = ata[col].clone();
                for (r, row) in ata.iter_mut().enumerate() {
                    if r != col {
                        let f = row[col] / p;
                        for (x, &y) in row.iter_mut().zip(&pivot_row).skip(col) {
                            *x -= f * y;
                        }
                    }
                }
            }
            let w: Vec<f64> = (0..m)
                .map(|r| {
                    if ata[r][r].abs() < 1e-12 {
                        0.0
                    } else {
                        ata[r][m] / ata[r][r]
                    }
                })
                .collect();
            let mut res = 0.0;
            for (i, &x) in c.iter().enumerate() {
                let x = f64::from(x) / 32768.0;
                let fit: f64 = basis(i).iter().zip(&w).map(|(a, b)| a * b).sum();
                res += (x - fit).powi(2);
            }
            10.0 * (res / xx.max(1e-12)).max(1e-12).log10()
        })
        .collect()
}
