//! How much CPU one room's mixing costs: N participants, 3 of them talking,
//! everyone sending a packet every 20 ms (no DTX, the worst case), mixed as
//! fast as possible over simulated time, each tick when the mixer asks.
//!
//!     cargo run --release -p confcast-mixer --example room_bench [--jitter=MS] [SECONDS] [N...]
//!
//! Prints, per room size, CPU time per simulated second (the fraction of one
//! core the room needs), the encodes and decodes per tick, and the
//! server-added latency (from a packet's arrival to the tick that sends it, p50/p95 from
//! `MixerStats::latency`). Each source sends at its own phase within the
//! 20 ms; every packet arrives after a 5 ms network delay plus a uniform
//! jitter of +/- MS (default 5, at most 9 so packets stay in order).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use confcast_mixer::{AudioLevel, AudioPacket, ListenerId, Mixer, MixerConfig, SourceId};

/// This thread's CPU time (user + system) from procfs, if available.
fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields overall, in clock ticks (100 Hz on Linux).
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// One second of 20 ms Opus packets of a tone, looped by the senders.
fn tone_packets(freq: f64) -> Vec<Vec<u8>> {
    let mut enc =
        opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).unwrap();
    enc.set_bitrate(opus::Bitrate::Bits(32_000)).unwrap();
    enc.set_inband_fec(true).unwrap();
    (0..50)
        .map(|n| {
            let pcm: Vec<i16> = (0..960)
                .map(|i| {
                    let t = f64::from(n * 960 + i) / 48_000.0;
                    // A warbling tone keeps the codec busier than a pure one.
                    ((2.0 * std::f64::consts::PI * freq * t + 3.0 * (7.0 * t).sin()).sin()
                        * 8_000.0) as i16
                })
                .collect();
            enc.encode_vec(&pcm, 1500).unwrap()
        })
        .collect()
}

fn silence_packet() -> Vec<u8> {
    let mut enc =
        opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).unwrap();
    let mut p = Vec::new();
    for _ in 0..5 {
        p = enc.encode_vec(&[0i16; 960], 1500).unwrap();
    }
    p
}

/// A deterministic hash (splitmix64) for the simulated network.
fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// When source `id`'s packet `k` reaches the server, relative to t0, in µs:
/// sent at its own phase within each 20 ms, 5 ms network delay, +/- jitter.
fn arrival_us(id: u64, k: u64, jitter_us: i64) -> u64 {
    let phase = mix64(id) % 20_000;
    let jitter = if jitter_us > 0 {
        (mix64(id.wrapping_mul(1_000_003) ^ k.wrapping_mul(0x2545_F491))
            % (2 * jitter_us as u64 + 1)) as i64
            - jitter_us
    } else {
        0
    };
    (k * 20_000 + phase + 5_000).saturating_add_signed(jitter)
}

fn run(n: u64, seconds: u64, jitter_ms: u64, tones: &[Vec<Vec<u8>>], silence: &[u8]) {
    let t0 = Instant::now();
    let mut mixer = Mixer::new(MixerConfig::default(), t0).unwrap();
    for id in 0..n {
        mixer.add_source(SourceId(id));
        mixer.add_listener(ListenerId(id), Some(SourceId(id)));
    }
    mixer.add_listener(ListenerId(u64::MAX), None); // the broadcast program
    let ticks = seconds * 50;
    let wall = Instant::now();
    let cpu = thread_cpu();
    let mut push_time = Duration::ZERO;
    let mut routed = 0u64;
    let mut bytes = 0u64;
    let jitter_us = jitter_ms as i64 * 1000;
    let mut next_packet = vec![0u64; n as usize];
    for _ in 0..ticks {
        // When the mixer asks to be called (its tick clock follows the
        // dominant speaker's packets, docs/mixing.md).
        let now = mixer.next_tick_at();
        let now_us = u64::try_from(now.saturating_duration_since(t0).as_micros()).unwrap_or(u64::MAX);
        let p = Instant::now();
        for id in 0..n {
            loop {
                let k = next_packet[id as usize];
                let arrival = arrival_us(id, k, jitter_us);
                if arrival > now_us {
                    break;
                }
                next_packet[id as usize] += 1;
                let talking = (id as usize) < tones.len();
                let (payload, level) = if talking {
                    (
                        tones[id as usize][(k % 50) as usize].clone(),
                        AudioLevel {
                            dbov: 25,
                            voice: true,
                        },
                    )
                } else {
                    (
                        silence.to_vec(),
                        AudioLevel {
                            dbov: 127,
                            voice: false,
                        },
                    )
                };
                let packet = AudioPacket {
                    seq: k as u16,
                    timestamp: (k as u32).wrapping_mul(960).wrapping_add(id as u32 * 7_919),
                    level: Some(level),
                    payload,
                };
                mixer.push_packet(SourceId(id), packet, t0 + Duration::from_micros(arrival));
            }
        }
        push_time += p.elapsed();
        while let Some(tick) = mixer.tick(now) {
            routed += tick.routes.len() as u64;
            bytes += tick
                .routes
                .iter()
                .filter_map(|r| tick.payload(r))
                .map(|b| b.len() as u64)
                .sum::<u64>();
        }
    }
    let wall = wall.elapsed();
    let cpu = match (cpu, thread_cpu()) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => wall,
    };
    let st = mixer.stats();
    let per_sim_s = cpu.as_secs_f64() * 1000.0 / seconds as f64;
    let ms = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0);
    println!(
        "N={n:5}  {seconds}s simulated in {:.2}s  CPU {per_sim_s:7.1} ms per simulated s ({:5.1}% of a core)  \
         push {:.1} ms/s  encodes/tick {:.2}  decodes/tick {:.2}  packets routed/tick {:.0}  out {:.0} kB/s  \
         added latency p50 {:.0} ms p95 {:.0} ms ({} frames, late {})",
        wall.as_secs_f64(),
        per_sim_s / 10.0,
        push_time.as_secs_f64() * 1000.0 / seconds as f64,
        st.encodes as f64 / st.ticks as f64,
        st.decodes as f64 / st.ticks as f64,
        routed as f64 / st.ticks as f64,
        bytes as f64 / seconds as f64 / 1000.0,
        ms(st.latency.p50()),
        ms(st.latency.p95()),
        st.latency.count(),
        st.late,
    );
}

fn main() {
    let jitter_ms = std::env::args()
        .find_map(|a| {
            a.strip_prefix("--jitter=")
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(5)
        .min(9);
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let seconds = args.first().copied().unwrap_or(30).max(1);
    let sizes = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        vec![10, 100, 1000]
    };
    let tones: Vec<Vec<Vec<u8>>> = [440.0, 660.0, 880.0]
        .iter()
        .map(|&f| tone_packets(f))
        .collect();
    let silence = silence_packet();
    println!(
        "confcast-mixer room benchmark: K=3, 3 talking, 20 ms packets from everyone, \
         arrival jitter +/-{jitter_ms} ms"
    );
    for n in sizes {
        run(n, seconds, jitter_ms, &tones, &silence);
    }
}
