//! Fuzz-style robustness: seeded random garbage through every input of the
//! mixer. Whatever comes in, it must not panic, and every packet it sends
//! must be valid Opus on a continuous stream.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use confcast_mixer::{AudioLevel, AudioPacket, ListenerId, Mixer, MixerConfig, SourceId};

/// A few real Opus packets (tones) to mutate, so fuzzing also reaches the
/// decoder rather than stopping at the framing check.
fn seed_packets() -> Vec<Vec<u8>> {
    let mut enc =
        opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).unwrap();
    let mut out = Vec::new();
    for n in 0..20 {
        let pcm: Vec<i16> = (0..960)
            .map(|i| ((f64::from(n * 960 + i) * 0.06).sin() * 12_000.0) as i16)
            .collect();
        out.push(enc.encode_vec(&pcm, 1500).unwrap());
    }
    // Other durations and modes: 10 ms, 40 ms, 60 ms, CELT-only.
    let mut celt =
        opus::Encoder::new(48_000, opus::Channels::Stereo, opus::Application::LowDelay).unwrap();
    out.push(celt.encode_vec(&[0i16; 960], 1500).unwrap());
    out.push(enc.encode_vec(&[100i16; 480], 1500).unwrap());
    out.push(enc.encode_vec(&[100i16; 1920], 1500).unwrap());
    out.push(enc.encode_vec(&[100i16; 2880], 1500).unwrap());
    out
}

fn random_packet(rng: &mut Rng, seeds: &[Vec<u8>], seq: &mut u16, ts: &mut u32) -> AudioPacket {
    let payload = match rng.below(6) {
        0 => {
            let n = rng.below(2000) as usize;
            rng.bytes(n)
        }
        1 => Vec::new(),
        2 => {
            let mut p = seeds[rng.below(seeds.len() as u64) as usize].clone();
            for _ in 0..=rng.below(4) {
                let i = rng.below(p.len() as u64) as usize;
                p[i] ^= rng.next_u64() as u8;
            }
            p
        }
        3 => {
            let p = &seeds[rng.below(seeds.len() as u64) as usize];
            p[..rng.below(p.len() as u64 + 1) as usize].to_vec()
        }
        _ => seeds[rng.below(seeds.len() as u64) as usize].clone(),
    };
    match rng.below(8) {
        0 => *ts = rng.next_u64() as u32,
        1 => *seq = rng.next_u64() as u16,
        2 => *ts = ts.wrapping_sub(rng.below(20_000) as u32),
        _ => {
            *seq = seq.wrapping_add(1);
            *ts = ts.wrapping_add(960);
        }
    }
    let level = match rng.below(4) {
        0 => None,
        1 => Some(AudioLevel {
            dbov: rng.next_u64() as u8,
            voice: rng.below(2) == 0,
        }),
        _ => Some(AudioLevel {
            dbov: rng.below(30) as u8,
            voice: true,
        }),
    };
    AudioPacket {
        seq: *seq,
        timestamp: *ts,
        level,
        payload,
    }
}

fn fuzz_once(seed: u64, steps: usize) {
    let mut rng = Rng::new(seed);
    let seeds = seed_packets();
    let t0 = std::time::Instant::now();
    let cfg = MixerConfig {
        max_speakers: 1 + rng.below(4) as usize,
        program_pcm: true,
        ..MixerConfig::default()
    };
    let mut mixer = Mixer::new(cfg, t0).unwrap();
    let mut counters: Vec<(u16, u32)> = (0..8)
        .map(|_| (rng.next_u64() as u16, rng.next_u64() as u32))
        .collect();
    for id in 0..6u64 {
        mixer.add_source(SourceId(id));
        mixer.add_listener(ListenerId(id), Some(SourceId(id)));
    }
    mixer.add_listener(ListenerId(99), None);
    let mut decoders: std::collections::HashMap<ListenerId, (opus::Decoder, u16)> =
        Default::default();
    let mut now = t0;
    let mut pushed = 0u64;
    for _ in 0..steps {
        match rng.below(60) {
            0 => {
                let id = SourceId(rng.below(8));
                if rng.below(2) == 0 {
                    mixer.add_source(id);
                } else {
                    mixer.remove_source(id);
                }
            }
            1 => {
                let id = ListenerId(rng.below(8));
                if rng.below(2) == 0 {
                    mixer.add_listener(id, Some(SourceId(id.0)));
                } else {
                    mixer.remove_listener(id);
                    decoders.remove(&id);
                }
            }
            2..=9 => {
                // Time moves on (sometimes by a lot), ticks run.
                now += if rng.below(200) == 0 {
                    Duration::from_millis(rng.below(3_000))
                } else {
                    Duration::from_millis(rng.below(30))
                };
                while let Some(tick) = mixer.tick(now) {
                    assert!(tick.streams.len() <= mixer.config().max_speakers + 1);
                    for route in &tick.routes {
                        let payload = tick.payload(route).expect("route to a real stream");
                        let (dec, last_seq) = decoders.entry(route.listener).or_insert_with(|| {
                            (
                                opus::Decoder::new(48_000, opus::Channels::Mono).unwrap(),
                                route.seq.wrapping_sub(1),
                            )
                        });
                        assert_eq!(route.seq, last_seq.wrapping_add(1));
                        *last_seq = route.seq;
                        let mut pcm = [0i16; 960];
                        assert_eq!(dec.decode(payload, &mut pcm, false).unwrap(), 960);
                    }
                    let pcm = tick.program.pcm.as_ref().unwrap();
                    assert_eq!(pcm.len(), 960);
                }
            }
            _ => {
                let id = if rng.below(10) == 0 {
                    rng.below(8)
                } else {
                    rng.below(6)
                } as usize;
                let (seq, ts) = &mut counters[id];
                let packet = random_packet(&mut rng, &seeds, seq, ts);
                // Arrival stamps may even go backwards or lie in the future.
                let arrival = match rng.below(10) {
                    0 => now
                        .checked_sub(Duration::from_millis(rng.below(5_000)))
                        .unwrap_or(now),
                    1 => now + Duration::from_millis(rng.below(5_000)),
                    _ => now,
                };
                let _ = mixer.push_packet(SourceId(id as u64), packet, arrival);
                pushed += 1;
            }
        }
    }
    let st = mixer.stats();
    assert_eq!(st.packets_received, pushed);
    assert!(st.decodes > 0 && st.packets_buffered > 0 && st.corrupt_payload > 0 && st.late > 0);
    for id in 0..8 {
        if let Some(s) = mixer.source_stats(SourceId(id)) {
            assert!(s.buffered <= 128);
        }
    }
}

#[test]
fn random_input_never_panics() {
    for seed in 0..12 {
        fuzz_once(seed, 4_000);
    }
}

#[test]
fn garbage_from_a_selected_speaker_is_survived() {
    // A loud "speaker" whose payloads parse but are garbage: it gets selected
    // and its decoder is fed nonsense, every tick, for seconds.
    let mut rng = Rng::new(7);
    let t0 = std::time::Instant::now();
    let mut mixer = Mixer::new(
        MixerConfig {
            program_pcm: true,
            ..MixerConfig::default()
        },
        t0,
    )
    .unwrap();
    mixer.add_source(SourceId(1));
    mixer.add_listener(ListenerId(2), None);
    let mut dec = opus::Decoder::new(48_000, opus::Channels::Mono).unwrap();
    for n in 0..250u32 {
        let now = t0 + Duration::from_millis(u64::from(n) * 20);
        // TOC 0x78: SILK-WB 20 ms code 0, so any length is well framed.
        let mut payload = vec![0x78u8];
        let len = 1 + rng.below(200) as usize;
        payload.extend(rng.bytes(len));
        let packet = AudioPacket {
            seq: n as u16,
            timestamp: n * 960,
            level: Some(AudioLevel {
                dbov: 10,
                voice: true,
            }),
            payload,
        };
        mixer.push_packet(SourceId(1), packet, now);
        while let Some(t) = mixer.tick(now) {
            for r in &t.routes {
                let mut pcm = [0i16; 960];
                assert_eq!(
                    dec.decode(t.payload(r).unwrap(), &mut pcm, false).unwrap(),
                    960
                );
            }
            assert!(t.program.pcm.unwrap().iter().all(|&x| x != i16::MIN));
        }
    }
    assert!(mixer.stats().decodes > 200);
}
