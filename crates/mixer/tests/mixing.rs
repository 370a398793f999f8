//! End-to-end: tones encoded with a real Opus encoder go through the mixer,
//! what each listener receives is decoded with a real Opus decoder and
//! checked by frequency analysis (Goertzel). All deterministic and faster
//! than real time: time is simulated.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use confcast_mixer::{ListenerId, MixerConfig, MixerEvent, SourceId};

/// Senders play -12 dBFS tones. Heard: within 3 dB of that.
/// Not heard: at least 30 dB below (measured: -64 to -76 dBFS).
fn assert_present(level: f64, what: &str) {
    assert!(
        (level + 12.0).abs() < 3.0,
        "{what} should be heard at -12 dBFS, got {level:.1}"
    );
}

fn assert_absent(level: f64, what: &str) {
    assert!(
        level < -42.0,
        "{what} should not be heard, got {level:.1} dBFS"
    );
}

/// Median distortion (everything but the expected tones) in 5 ms blocks.
fn median_residual(pcm: &[i16], freqs: &[f64]) -> f64 {
    let mut r = residual_db(pcm, freqs, 240);
    r.sort_by(f64::total_cmp);
    r[r.len() / 2]
}

fn three_tones() -> Vec<SenderSpec> {
    vec![
        SenderSpec::tone(1, A),
        SenderSpec::tone(2, B),
        SenderSpec::tone(3, C),
    ]
}

#[test]
fn each_participant_hears_everyone_but_themselves() {
    let mut sim = Sim::new(MixerConfig::default(), &three_tones(), 160);
    for id in 1..=3 {
        sim.listen(id, Some(id));
    }
    sim.listen(100, None);
    sim.run(150);

    let [a, b, c] = abc_db(sim.heard_between(1, 1.0, 3.0));
    assert_absent(a, "A's own voice at A");
    assert_present(b, "B at A");
    assert_present(c, "C at A");

    let [a, b, c] = abc_db(sim.heard_between(2, 1.0, 3.0));
    assert_present(a, "A at B");
    assert_absent(b, "B's own voice at B");
    assert_present(c, "C at B");

    let [a, b, c] = abc_db(sim.heard_between(3, 1.0, 3.0));
    assert_present(a, "A at C");
    assert_present(b, "B at C");
    assert_absent(c, "C's own voice at C");

    for (what, pcm) in [
        ("plain listener", sim.heard_between(100, 1.0, 3.0)),
        ("program", slice_secs(&sim.program, 1.0, 3.0)),
    ] {
        let [a, b, c] = abc_db(pcm);
        assert_present(a, &format!("A in {what}"));
        assert_present(b, &format!("B in {what}"));
        assert_present(c, &format!("C in {what}"));
        assert!(
            median_residual(pcm, &[A, B, C]) < -25.0,
            "{what} is not clean"
        );
    }
    // The program is the very same encode the plain listener got.
    assert_eq!(sim.heard[&ListenerId(100)], sim.program);
}

#[test]
fn silent_sources_are_not_decoded() {
    let mut senders = three_tones();
    senders.extend((10..17).map(SenderSpec::silent));
    // One loud packet is not talking: hysteresis keeps it out of the mix.
    let mut blip = SenderSpec::tone(17, 1000.0);
    blip.talking = |n| n == 50;
    senders.push(blip);
    let mut sim = Sim::new(MixerConfig::default(), &senders, 160);
    sim.listen(100, None);
    sim.keep_ticks = true;
    sim.run(150);

    for id in 1..=3 {
        let s = sim.mixer.source_stats(SourceId(id)).unwrap();
        assert!(s.decodes >= 140, "talker {id} decoded {} times", s.decodes);
    }
    for id in 10..=17 {
        let s = sim.mixer.source_stats(SourceId(id)).unwrap();
        assert_eq!(s.decodes, 0, "silent source {id} was decoded");
        assert!(s.packets_buffered >= 140);
    }
    let st = sim.mixer.stats();
    assert_eq!(
        st.decodes,
        (1..=3)
            .map(|i| sim.mixer.source_stats(SourceId(i)).unwrap().decodes)
            .sum::<u64>()
    );
    assert!(sim.decodes_per_tick.iter().all(|&d| d <= 3));
    let started: Vec<SourceId> = sim
        .ticks
        .iter()
        .flat_map(|t| &t.events)
        .filter_map(|e| match e {
            MixerEvent::TalkingStarted { source } => Some(*source),
            _ => None,
        })
        .collect();
    assert_eq!(started.len(), 3);
    assert!(!started.contains(&SourceId(17)));
}

#[test]
fn exactly_k_plus_one_encodes_per_tick_whatever_n() {
    for n in [3u64, 10, 200] {
        let mut senders = three_tones();
        senders.extend((4..=n).map(SenderSpec::silent));
        let mut sim = Sim::new(MixerConfig::default(), &senders, 110);
        for id in 1..=n {
            sim.listen(id, Some(id));
        }
        sim.listen(10_000, None);
        sim.keep_ticks = true;
        sim.run(100);
        // Talk detection needs three frames; from then on it is K+1 = 4.
        assert!(
            sim.encodes_per_tick[10..].iter().all(|&e| e == 4),
            "n={n}: {:?}",
            sim.encodes_per_tick
        );
        assert!(
            sim.decodes_per_tick[10..].iter().all(|&d| d == 3),
            "n={n}: {:?}",
            sim.decodes_per_tick
        );
        for t in &sim.ticks[10..] {
            assert_eq!(t.streams.len(), 4);
            assert_eq!(t.routes.len() as u64, n + 1, "every listener gets a packet");
            // All non-speakers share stream 0, the full mix.
            let on_full = t.routes.iter().filter(|r| r.stream == 0).count() as u64;
            assert_eq!(on_full, n + 1 - 3);
        }
        let [a, b, c] = abc_db(sim.heard_between(n, 1.0, 2.0));
        if n > 3 {
            // A silent participant hears all three talkers.
            assert_present(a, "A");
            assert_present(b, "B");
            assert_present(c, "C");
        }
    }
}

#[test]
fn fewer_encodes_when_fewer_talk() {
    let mut sim = Sim::new(
        MixerConfig::default(),
        &[SenderSpec::tone(1, A), SenderSpec::silent(2)],
        60,
    );
    sim.listen(1, Some(1));
    sim.listen(2, Some(2));
    sim.run(50);
    // One talker: the shared mix plus that talker's mix-minus.
    assert!(sim.encodes_per_tick[10..].iter().all(|&e| e == 2));

    let mut sim = Sim::new(
        MixerConfig::default(),
        &[SenderSpec::silent(1), SenderSpec::silent(2)],
        60,
    );
    sim.listen(1, Some(1));
    sim.run(50);
    assert!(sim.encodes_per_tick.iter().all(|&e| e == 1));
    assert_eq!(sim.mixer.stats().decodes, 0);
}

#[test]
fn lossy_sender_is_concealed() {
    let mut senders = three_tones();
    senders[1].loss = 0.10;
    let mut sim = Sim::new(MixerConfig::default(), &senders, 260);
    sim.listen(1, Some(1));
    sim.run(250);
    let s = sim.mixer.source_stats(SourceId(2)).unwrap();
    assert!(s.lost_estimate >= 10, "{s:?}");
    assert!(s.plc_frames + s.fec_frames >= 10, "{s:?}");
    // After the first gap, playout waits one frame more so the next packet's
    // in-band FEC can rebuild a lost one.
    assert!(s.fec_frames >= 5, "{s:?}");
    let [_, b, c] = abc_db(sim.heard_between(1, 1.0, 5.0));
    assert_present(b, "lossy B");
    assert_present(c, "C next to lossy B");
}

#[test]
fn jitter_and_reordering_are_absorbed() {
    let mut senders = three_tones();
    for s in &mut senders {
        // Up to 60 ms extra delay: packets overtake each other all the time.
        s.jitter = Duration::from_millis(60);
    }
    let mut sim = Sim::new(MixerConfig::default(), &senders, 310);
    sim.listen(100, None);
    sim.run(300);
    let st = sim.mixer.stats().clone();
    // The delay adapts within the first packets; after that nearly nothing
    // arrives too late.
    assert!(st.late < 15, "late {}", st.late);
    for id in 1..=3 {
        let s = sim.mixer.source_stats(SourceId(id)).unwrap();
        assert!(
            s.target_delay_ms > 50.0 && s.target_delay_ms <= 200.0,
            "{s:?}"
        );
        assert!(s.buffered <= 6, "{s:?}");
    }
    let pcm = sim.heard_between(100, 2.0, 6.0);
    let [a, b, c] = abc_db(pcm);
    assert_present(a, "A");
    assert_present(b, "B");
    assert_present(c, "C");
    assert!(median_residual(pcm, &[A, B, C]) < -25.0);
}

#[test]
fn clock_drift_between_senders_is_followed() {
    let mut senders = three_tones();
    senders[1].rate = 1.005; // B's clock 0.5 % fast
    senders[2].rate = 0.995; // C's 0.5 % slow
    let frames = 750; // 15 s
    let mut sim = Sim::new(MixerConfig::default(), &senders, frames + 10);
    sim.listen(100, None);
    let mut max_buffered = [0usize; 4];
    for _ in 0..frames {
        sim.run(1);
        for id in 1..=3u64 {
            let s = sim.mixer.source_stats(SourceId(id)).unwrap();
            max_buffered[id as usize] = max_buffered[id as usize].max(s.buffered);
        }
    }
    let a = sim.mixer.source_stats(SourceId(1)).unwrap();
    let b = sim.mixer.source_stats(SourceId(2)).unwrap();
    let c = sim.mixer.source_stats(SourceId(3)).unwrap();
    assert_eq!(a.frames_skipped + a.frames_held, 0, "{a:?}");
    // 0.5 % of 15 s is 75 ms: about four frames to drop or to stretch.
    assert!((2..=6).contains(&b.frames_skipped), "{b:?}");
    assert!((2..=6).contains(&c.frames_held), "{c:?}");
    assert!(max_buffered.iter().all(|&m| m <= 4), "{max_buffered:?}");
    assert_eq!(b.late + c.late, 0);
    // Second by second: a skipped or held frame shifts a tone's phase, and
    // a longer window across the shift partly cancels in the analysis.
    for second in 12..15 {
        let [ta, tb, tc] = abc_db(sim.heard_between(100, f64::from(second), f64::from(second + 1)));
        assert_present(ta, "A");
        assert_present(tb, "fast B");
        assert_present(tc, "slow C");
    }
}

#[test]
fn dtx_silence_does_not_grow_the_buffer() {
    let mut senders = three_tones();
    senders[1].dtx = true;
    senders[1].talking = |n| !(50..150).contains(&n);
    let mut sim = Sim::new(MixerConfig::default(), &senders, 260);
    sim.listen(1, Some(1));
    sim.keep_ticks = true;
    for _ in 0..250 {
        sim.run(1);
        assert!(sim.mixer.source_stats(SourceId(2)).unwrap().buffered <= 3);
    }
    let edges: Vec<&MixerEvent> = sim
        .ticks
        .iter()
        .flat_map(|t| &t.events)
        .filter(|e| matches!(e, MixerEvent::TalkingStarted { source } | MixerEvent::TalkingStopped { source } if *source == SourceId(2)))
        .collect();
    assert_eq!(
        edges,
        [
            &MixerEvent::TalkingStarted {
                source: SourceId(2)
            },
            &MixerEvent::TalkingStopped {
                source: SourceId(2)
            },
            &MixerEvent::TalkingStarted {
                source: SourceId(2)
            }
        ]
    );
    let s = sim.mixer.source_stats(SourceId(2)).unwrap();
    assert_eq!(s.late, 0);
    assert_present(abc_db(sim.heard_between(1, 3.5, 5.0))[1], "B after DTX");
    assert_absent(abc_db(sim.heard_between(1, 1.8, 2.8))[1], "B during DTX");
}

#[test]
fn timestamp_jumps_are_followed() {
    let mut senders = three_tones();
    senders[1].ts_jump = Some((50, 5_000_000)); // B jumps ~104 s ahead at 1 s
    senders[2].ts_jump = Some((75, 0u32.wrapping_sub(3_000_000))); // C jumps back
    let mut sim = Sim::new(MixerConfig::default(), &senders, 210);
    sim.listen(1, Some(1));
    sim.run(200);
    for id in [2, 3] {
        let s = sim.mixer.source_stats(SourceId(id)).unwrap();
        assert_eq!(s.timestamp_jumps, 1, "{s:?}");
    }
    // Two packets per jump wait for confirmation.
    assert_eq!(sim.mixer.stats().timestamp_outliers, 4);
    let [_, b, c] = abc_db(sim.heard_between(1, 2.0, 4.0));
    assert_present(b, "B after its jump");
    assert_present(c, "C after its jump");
}

#[test]
fn corrupt_payloads_and_levels_are_counted_and_others_stay_clean() {
    let mut senders = three_tones();
    let mut e = SenderSpec::tone(4, 1100.0);
    e.corrupt = 0.3;
    e.garbage_level = 0.3;
    senders.push(e);
    let mut quiet = SenderSpec::silent(5);
    quiet.corrupt = 1.0;
    senders.push(quiet);
    let cfg = MixerConfig {
        max_speakers: 4,
        ..MixerConfig::default()
    };
    let mut sim = Sim::new(cfg, &senders, 210);
    sim.listen(4, Some(4));
    sim.listen(100, None);
    sim.run(200);
    let st = sim.mixer.stats();
    assert!(st.corrupt_payload > 20 && st.bad_level > 20, "{st:?}");
    assert!(sim.mixer.source_stats(SourceId(5)).unwrap().decodes == 0);
    // E's own listener hears A, B and C, clean: E's garbage is not in its
    // mix-minus and nothing else was disturbed.
    let pcm = sim.heard_between(4, 1.0, 4.0);
    let [a, b, c] = abc_db(pcm);
    assert_present(a, "A");
    assert_present(b, "B");
    assert_present(c, "C");
    assert!(median_residual(pcm, &[A, B, C]) < -25.0);
    // Everyone else gets E's (garbled) audio too, but never broken frames:
    // `Sim` decodes every packet with a real decoder and checks continuity.
    assert_eq!(sim.heard[&ListenerId(100)].len(), 200 * 960);
}

#[test]
fn sender_at_twice_real_time_stays_bounded() {
    let mut senders = three_tones();
    let mut d = SenderSpec::tone(4, 1100.0);
    d.rate = 2.0;
    senders.push(d);
    let cfg = MixerConfig {
        max_speakers: 4,
        ..MixerConfig::default()
    };
    let mut sim = Sim::new(cfg, &senders, 520);
    sim.listen(4, Some(4));
    for _ in 0..250 {
        sim.run(1);
        assert!(sim.mixer.source_stats(SourceId(4)).unwrap().buffered <= 16);
    }
    let s = sim.mixer.source_stats(SourceId(4)).unwrap();
    assert!(s.frames_skipped > 100 || s.packets_dropped > 100, "{s:?}");
    let pcm = sim.heard_between(4, 1.0, 5.0);
    let [a, b, c] = abc_db(pcm);
    assert_present(a, "A");
    assert_present(b, "B");
    assert_present(c, "C");
    assert!(median_residual(pcm, &[A, B, C]) < -25.0);
}

#[test]
fn sender_that_stops_mid_word_fades_out_of_the_mix() {
    let mut senders = three_tones();
    senders[1].stop_after = Some(50);
    let mut sim = Sim::new(MixerConfig::default(), &senders, 210);
    sim.listen(1, Some(1));
    sim.keep_ticks = true;
    sim.run(200);
    let stopped_at = sim
        .ticks
        .iter()
        .find(|t| {
            t.events.contains(&MixerEvent::TalkingStopped {
                source: SourceId(2),
            })
        })
        .map(|t| t.index)
        .unwrap();
    // Hangover 500 ms after the last packet (frame 50 = 1 s).
    assert!((70..=85).contains(&stopped_at), "{stopped_at}");
    assert_eq!(sim.mixer.speakers().len(), 2);
    let s = sim.mixer.source_stats(SourceId(2)).unwrap();
    assert!(s.plc_frames <= 6, "PLC stops after 100 ms: {s:?}");
    let [_, b, c] = abc_db(sim.heard_between(1, 2.0, 4.0));
    assert_absent(b, "B after it stopped");
    assert_present(c, "C");
    assert!(median_residual(sim.heard_between(1, 2.0, 4.0), &[C]) < -25.0);
}

#[test]
fn limiter_never_wraps_with_twenty_loud_sources() {
    let senders: Vec<SenderSpec> = (1..=20)
        .map(|i| {
            let mut s = SenderSpec::tone(i, 300.0 + 45.0 * i as f64);
            s.amplitude = 0.9;
            s
        })
        .collect();
    let cfg = MixerConfig {
        max_speakers: 16,
        program_pcm: true,
        ..MixerConfig::default()
    };
    let mut sim = Sim::new(cfg, &senders, 110);
    sim.listen(100, None);
    sim.run(100);
    assert!(sim.mixer.stats().limited_frames > 50);
    for (what, pcm) in [
        ("program PCM", &sim.program_pcm),
        ("decoded", &sim.heard[&ListenerId(100)]),
    ] {
        let worst_step = pcm
            .windows(2)
            .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
            .max()
            .unwrap();
        // Wrap-around would jump by ~65,000; the limited sum moves smoothly.
        assert!(worst_step < 16_000, "{what}: step {worst_step}");
        // Limited to about -1 dBFS peaks, not squashed.
        let peak = slice_secs(pcm, 0.5, 2.0)
            .iter()
            .map(|&x| i32::from(x).abs())
            .max()
            .unwrap();
        assert!((26_000..=32_767).contains(&peak), "{what}: peak {peak}");
    }
}

fn a_talks_in_bursts(n: u64) -> bool {
    n < 50 || (100..150).contains(&n)
}

#[test]
fn switching_between_mix_minus_and_full_mix_is_clean() {
    let mut a = SenderSpec::tone(1, A);
    a.talking = a_talks_in_bursts;
    let mut sim = Sim::new(MixerConfig::default(), &[a, SenderSpec::tone(2, B)], 210);
    sim.listen(1, Some(1));
    sim.keep_ticks = true;
    sim.run(200);
    let switches: Vec<u64> = sim
        .ticks
        .iter()
        .filter(|t| {
            t.routes
                .iter()
                .any(|r| r.listener == ListenerId(1) && r.switched)
        })
        .map(|t| t.index)
        .collect();
    // Into its mix-minus when A starts, back to the shared mix after its
    // hangover, twice.
    assert_eq!(switches.len(), 4, "{switches:?}");
    assert_eq!(sim.mixer.stats().stream_switches, 4);
    let res = residual_db(&sim.heard[&ListenerId(1)], &[B], 240);
    for &s in &switches[1..] {
        let blk = (s * 4) as usize;
        let worst = res[blk - 4..blk + 12]
            .iter()
            .copied()
            .fold(f64::MIN, f64::max);
        // Measured: -29..-35 dB with the encoder warm-up, about -1 dB
        // (40 ms of noise) without it.
        assert!(worst < -24.0, "glitch at switch {s}: {worst:.1} dB");
    }
    assert!(sim.mixer.stats().warmup_encodes > 0);
}

#[test]
fn talking_and_dominant_speaker_events() {
    let mut a = SenderSpec::tone(1, A);
    a.amplitude = 0.1;
    let mut b = SenderSpec::tone(2, B);
    b.amplitude = 0.5;
    b.talking = |n| n >= 50;
    let mut sim = Sim::new(MixerConfig::default(), &[a, b], 160);
    sim.keep_ticks = true;
    sim.run(150);
    let events: Vec<(u64, MixerEvent)> = sim
        .ticks
        .iter()
        .flat_map(|t| t.events.iter().map(move |e| (t.index, *e)))
        .collect();
    let find = |e: MixerEvent| events.iter().find(|(_, x)| *x == e).map(|(t, _)| *t);
    let a_start = find(MixerEvent::TalkingStarted {
        source: SourceId(1),
    })
    .unwrap();
    let a_dom = find(MixerEvent::DominantSpeakerChanged {
        previous: None,
        current: Some(SourceId(1)),
    })
    .unwrap();
    let b_start = find(MixerEvent::TalkingStarted {
        source: SourceId(2),
    })
    .unwrap();
    let b_dom = find(MixerEvent::DominantSpeakerChanged {
        previous: Some(SourceId(1)),
        current: Some(SourceId(2)),
    })
    .unwrap();
    assert!(a_start <= 4 && a_dom == a_start);
    assert!((50..=55).contains(&b_start), "{b_start}");
    // Louder by 14 dB, but only after holding that for 300 ms.
    assert!((b_start + 14..=b_start + 20).contains(&b_dom), "{b_dom}");
    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!(sim.mixer.dominant_speaker(), Some(SourceId(2)));
}

#[test]
fn removing_a_speaker_keeps_the_room_going() {
    let mut sim = Sim::new(MixerConfig::default(), &three_tones(), 210);
    sim.listen(1, Some(1));
    sim.listen(2, Some(2));
    sim.keep_ticks = true;
    sim.run(75);
    assert!(sim.mixer.remove_source(SourceId(2)));
    assert!(!sim.mixer.remove_source(SourceId(2)));
    sim.run(125);
    let t = &sim.ticks[75];
    assert!(t.events.contains(&MixerEvent::TalkingStopped {
        source: SourceId(2)
    }));
    // B's listener is still served, now from the shared mix.
    assert!(sim.ticks[76..].iter().all(|t| {
        t.routes
            .iter()
            .any(|r| r.listener == ListenerId(2) && r.stream == 0)
    }));
    assert!(
        sim.mixer.stats().unknown_source > 0,
        "B's packets keep coming"
    );
    let [a, b, c] = abc_db(sim.heard_between(1, 2.0, 4.0));
    assert_absent(a, "A");
    assert_absent(b, "removed B");
    assert_present(c, "C");
    assert!(sim.mixer.remove_listener(ListenerId(2)));
    sim.run(5);
}

#[test]
fn late_tick_calls_skip_frames_instead_of_bursting() {
    let mut sim = Sim::new(MixerConfig::default(), &three_tones(), 400);
    sim.listen(100, None);
    sim.run(50);
    let late = sim.mixer.next_tick_at() + Duration::from_secs(1);
    let t = sim.mixer.tick(late).unwrap();
    assert_eq!(t.index, 100);
    sim.consume(&t);
    assert!(
        sim.mixer.tick(late).is_none(),
        "one frame per due tick, no burst"
    );
    assert_eq!(sim.mixer.stats().ticks_skipped, 50);
    sim.run(150);
    let [a, b, c] = abc_db(slice_secs(&sim.program, 2.5, 4.0));
    assert_present(a, "A");
    assert_present(b, "B");
    assert_present(c, "C");
}

#[test]
fn ten_forty_and_sixty_millisecond_packets_are_mixed() {
    let mut senders = three_tones();
    senders[0].packet_samples = 480; // A: 10 ms packets
    senders[1].packet_samples = 1920; // B: 40 ms packets
    senders[2].packet_samples = 2880; // C: 60 ms packets
    let mut sim = Sim::new(MixerConfig::default(), &senders, 320);
    sim.listen(100, None);
    sim.run(150);
    let pcm = sim.heard_between(100, 1.0, 3.0);
    let [a, b, c] = abc_db(pcm);
    assert_present(a, "A in 10 ms packets");
    assert_present(b, "B in 40 ms packets");
    assert_present(c, "C in 60 ms packets");
    assert!(median_residual(pcm, &[A, B, C]) < -25.0);
    assert_eq!(sim.mixer.stats().late, 0);
    assert_eq!(sim.mixer.stats().plc_frames, 0);
}

#[test]
fn added_latency_is_measured_per_mixed_frame() {
    // Steady network: each packet arrives 5 ms after it was sent.
    let mut sim = Sim::new(MixerConfig::default(), &three_tones(), 260);
    sim.listen(100, None);
    sim.run(250);
    let st = sim.mixer.stats().clone();
    let lat = &st.latency;
    // One value per frame a speaker contributed (20 ms packets: one decode,
    // FEC or PLC frame each), none for silent sources.
    assert_eq!(lat.count(), st.decodes + st.plc_frames + st.fec_frames);
    assert!(lat.count() >= 3 * 240, "{lat:?}");
    let (p50, p95) = (lat.p50().unwrap(), lat.p95().unwrap());
    eprintln!("steady: p50 {p50:?} p95 {p95:?}");
    // Jitter buffer at its minimum (half a frame + 5 ms margin), the tick
    // phase (under a frame) on top. A sample's wait is from its packet's
    // arrival to the tick that sends it: it was whole on arrival.
    assert!(
        p50 >= Duration::from_millis(5) && p50 <= Duration::from_millis(36),
        "{lat:?}"
    );
    assert!(p95 <= Duration::from_millis(36), "{lat:?}");

    // With up to 30 ms of arrival jitter the buffer waits longer.
    let mut jittery = three_tones();
    for s in &mut jittery {
        s.jitter = Duration::from_millis(30);
    }
    let mut sim = Sim::new(MixerConfig::default(), &jittery, 260);
    sim.listen(100, None);
    sim.run(250);
    let lat = &sim.mixer.stats().latency;
    eprintln!("jittery: {lat:?}");
    assert!(lat.p95().unwrap() > p95, "{lat:?}");
    assert!(lat.p95().unwrap() <= Duration::from_millis(250), "{lat:?}");
}
