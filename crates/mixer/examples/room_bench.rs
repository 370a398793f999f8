//! How much CPU one room's mixing costs: N participants, 3 of them talking,
//! everyone sending a packet every 20 ms (no DTX, the worst case), mixed as
//! fast as possible over simulated time.
//!
//!     cargo run --release -p confcast-mixer --example room_bench [SECONDS] [N...]
//!
//! Prints, per room size, CPU time per simulated second (the fraction of one
//! core the room needs) and the encodes and decodes per tick.
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

fn run(n: u64, seconds: u64, tones: &[Vec<Vec<u8>>], silence: &[u8]) {
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
    for k in 0..ticks {
        let now = t0 + Duration::from_millis(k * 20);
        let p = Instant::now();
        for id in 0..n {
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
            // Arrivals spread over the last tick, deterministic per source.
            let arrival = now - Duration::from_micros((id * 7_717 + k * 131) % 15_000);
            mixer.push_packet(SourceId(id), packet, arrival);
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
    println!(
        "N={n:5}  {seconds}s simulated in {:.2}s  CPU {per_sim_s:7.1} ms per simulated s ({:5.1}% of a core)  \
         push {:.1} ms/s  encodes/tick {:.2}  decodes/tick {:.2}  packets routed/tick {:.0}  out {:.0} kB/s",
        wall.as_secs_f64(),
        per_sim_s / 10.0,
        push_time.as_secs_f64() * 1000.0 / seconds as f64,
        st.encodes as f64 / st.ticks as f64,
        st.decodes as f64 / st.ticks as f64,
        routed as f64 / st.ticks as f64,
        bytes as f64 / seconds as f64 / 1000.0,
    );
}

fn main() {
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
    println!("confcast-mixer room benchmark: K=3, 3 talking, 20 ms packets from everyone");
    for n in sizes {
        run(n, seconds, &tones, &silence);
    }
}
