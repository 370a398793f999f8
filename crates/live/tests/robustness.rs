//! Bad input never panics: it is refused with an error and counted, and a
//! good stream afterwards still packages correctly.

mod common;

use common::*;
use confcast_live::{InputError, LiveConfig, LivePackager, Lookup};

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.next() as usize % (max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Every resource the playlist names decodes with mp4-atom.
fn everything_decodes(p: &LivePackager) {
    let Some(text) = p.media_playlist() else {
        return;
    };
    let parsed = parse_media(&text);
    check_part_durations(p, &parsed);
    for seg in &parsed.playlist.segments {
        decode_fragments(&fetch(p, &seg.uri));
        if let Some(map) = &seg.map {
            decode_init(&fetch(p, &map.uri));
        }
    }
    for part in &parsed.parts {
        decode_fragments(&fetch(p, &part.uri));
    }
    if let Some(mv) = p.multivariant_playlist() {
        parse_multivariant(&mv);
    }
}

#[test]
fn garbage_video_is_refused_and_counted() {
    let mut p = new_packager();
    let huge = vec![0u8; LiveConfig::default().max_video_unit_bytes + 1];
    type Expect = fn(&InputError) -> bool;
    let cases: Vec<(Vec<u8>, Expect)> = vec![
        (vec![], |e| matches!(e, InputError::InvalidVideo(_))),
        (vec![1, 2, 3, 4, 5], |e| {
            matches!(e, InputError::InvalidVideo(_))
        }),
        (vec![0, 0, 1], |e| matches!(e, InputError::InvalidVideo(_))),
        (annex_b(&[&[0x85, 1, 2]]), |e| {
            matches!(e, InputError::InvalidVideo(_))
        }),
        (annex_b(&[&[0x09, 0x10]]), |e| {
            matches!(e, InputError::InvalidVideo(_))
        }),
        (annex_b(&[SPS_320, PPS_320]), |e| {
            matches!(e, InputError::InvalidVideo(_))
        }),
        (annex_b(&[&[0x67, 0x42], PPS_320, &[0x65, 1]]), |e| {
            matches!(e, InputError::InvalidSps(_))
        }),
        (
            annex_b(&[&[0x67, 0x64, 0, 0x1e, 0xff, 0xff, 0xff, 0xff, 0xff]]),
            |e| matches!(e, InputError::InvalidVideo(_) | InputError::InvalidSps(_)),
        ),
        (huge, |e| *e == InputError::TooLarge),
        // A keyframe before any SPS/PPS.
        (annex_b(&[&[0x65, 0x88, 0x80]]), |e| {
            *e == InputError::MissingParameterSets
        }),
        (pframe(3), |e| *e == InputError::WaitingForKeyframe),
    ];
    for (i, (unit, expected)) in cases.iter().enumerate() {
        let err = p
            .push_video(i as u64 * 3000, unit, at(0))
            .expect_err("refused");
        assert!(expected(&err), "case {i}: {err:?}");
    }
    let c = p.counters();
    assert_eq!(c.video_units_in, 11);
    assert_eq!(c.dropped_too_large, 1);
    assert!(c.dropped_invalid >= 6);
    assert!(c.dropped_bad_sps >= 1);
    assert_eq!(p.media_playlist(), None);

    // A good stream afterwards works.
    let mut s = Source::new(60);
    s.video_ts = 100 * 3000;
    s.audio_ts = s.video_ts * 8 / 15;
    s.run_for(&mut p, 3.0);
    everything_decodes(&p);
    assert_eq!(p.counters().segments, 1);
}

#[test]
fn garbage_audio_is_refused_and_counted() {
    let mut p = new_packager();
    let mut s = Source::new(60);
    s.run_for(&mut p, 1.0);
    assert!(matches!(
        p.push_audio(s.audio_ts, &[]),
        Err(InputError::InvalidAudio(_))
    ));
    assert!(matches!(
        p.push_audio(s.audio_ts, &[0x1b]),
        Err(InputError::InvalidAudio(_))
    ));
    assert!(matches!(
        p.push_audio(s.audio_ts, &[0x1b, 0x3f]),
        Err(InputError::InvalidAudio(_))
    ));
    assert_eq!(
        p.push_audio(s.audio_ts, &vec![0xfc; 5000]),
        Err(InputError::TooLarge)
    );
    // A duplicate of the last packet goes backwards.
    assert_eq!(
        p.push_audio(s.audio_ts - 960, &opus(1)),
        Err(InputError::NonMonotonic)
    );
    let c = p.counters();
    assert_eq!(c.dropped_invalid, 3);
    assert_eq!(c.dropped_too_large, 1);
    assert_eq!(c.dropped_non_monotonic, 1);
    s.run_for(&mut p, 2.0);
    everything_decodes(&p);
}

#[test]
fn audio_on_another_clock_is_retimed_onto_the_video() {
    let mut p = new_packager();
    // Video at 90 kHz from 0, audio from an unrelated origin.
    let mut audio_ts = 4_000_000_000u64;
    for frame in 0..150u64 {
        let video_ts = frame * 3000;
        while (audio_ts - 4_000_000_000) * 15 <= video_ts * 8 {
            p.push_audio(audio_ts, &opus(frame as u32)).expect("audio");
            audio_ts += 960;
        }
        let unit = if frame.is_multiple_of(60) {
            keyframe(SPS_320, PPS_320, frame as u32)
        } else {
            pframe(frame as u32)
        };
        p.push_video(video_ts, &unit, at(video_ts)).expect("video");
    }
    assert_eq!(p.counters().timestamp_jumps, 1);
    let first = decode_fragments(&fetch(&p, "seg0.m4s"));
    let audio = first[0].iter().find(|r| r.track_id == 2).expect("audio");
    // The held audio lands at the start of the video timeline.
    assert_eq!(audio.base_decode_time, 0);
    everything_decodes(&p);
}

#[test]
fn audio_jumps_are_smoothed_over() {
    let mut p = new_packager();
    let mut s = Source::new(60);
    s.video_ts = 900_000;
    s.audio_ts = 480_000;
    s.run_for(&mut p, 1.0);
    // The mixer restarts its clock 5 s later (jump forward), then later
    // jumps back 10 s: both re-timed so audio stays continuous.
    p.push_audio(s.audio_ts + 5 * 48_000, &opus(1))
        .expect("forward jump");
    p.push_audio(s.audio_ts + 5 * 48_000 + 960, &opus(2))
        .expect("continues");
    p.push_audio(s.audio_ts - 5 * 48_000, &opus(3))
        .expect("backward jump");
    assert_eq!(p.counters().timestamp_jumps, 2);
    s.audio_ts += 10_000_000; // the source's own audio is now far off: re-timed again
    s.run_for(&mut p, 3.0);
    everything_decodes(&p);
    // Audio continuity across every fragment of the window.
    let parsed = parse_media(&p.media_playlist().expect("playlist"));
    let mut end = None;
    for seg in &parsed.playlist.segments {
        for runs in decode_fragments(&fetch(&p, &seg.uri)) {
            if let Some(a) = runs.iter().find(|r| r.track_id == 2) {
                if let Some(e) = end {
                    assert_eq!(a.base_decode_time, e);
                }
                end = Some(
                    a.base_decode_time + a.samples.iter().map(|s| u64::from(s.0)).sum::<u64>(),
                );
            }
        }
    }
}

#[test]
fn video_going_backwards_restarts_at_the_next_keyframe() {
    let mut p = new_packager();
    let mut s = Source::new(60);
    s.run_for(&mut p, 2.5);
    // Timestamp goes back by 1 s (a source switch without rewriting).
    s.video_ts -= 90_000;
    s.audio_ts -= 48_000;
    s.frame = 0;
    s.run_for(&mut p, 2.5);
    let c = p.counters();
    assert!(c.timestamp_jumps >= 1);
    assert_eq!(c.discontinuities, 1);
    let text = p.media_playlist().expect("playlist");
    assert!(text.contains("#EXT-X-DISCONTINUITY\n"), "{text}");
    everything_decodes(&p);
    // The output timeline never goes back.
    let parsed = parse_media(&text);
    let mut last = 0;
    for seg in &parsed.playlist.segments {
        for runs in decode_fragments(&fetch(&p, &seg.uri)) {
            assert!(runs[0].base_decode_time >= last);
            last = runs[0].base_decode_time;
        }
    }
}

#[test]
fn audio_waiting_for_stalled_video_is_bounded() {
    let mut p = new_packager();
    let mut s = Source::new(60);
    s.run_for(&mut p, 1.0);
    // Video stalls; 20 s of audio arrive.
    for _ in 0..1000 {
        p.push_audio(s.audio_ts, &opus(0)).expect("audio");
        s.audio_ts += 960;
    }
    // At most max_pending_audio wait; the rest were dropped oldest first.
    let c = p.counters();
    let max = LiveConfig::default().max_pending_audio as u64;
    assert!((1000 - max..1000 - max + 20).contains(&c.dropped_audio_overflow));
    // Audio alone with no video at all is held only briefly.
    let mut q = new_packager();
    for i in 0..10_000u64 {
        q.push_audio(i * 960, &opus(0)).expect("held");
    }
    assert_eq!(q.counters().dropped_audio_without_video, 10_000 - 25);
}

#[test]
fn random_input_never_panics_and_output_stays_well_formed() {
    for seed in 1..6u64 {
        let mut rng = Lcg(seed);
        let mut p = new_packager();
        let mut video_ts = rng.next() % 1_000_000;
        let mut audio_ts = rng.next() % 1_000_000;
        let mut frame = 0u32;
        for _ in 0..4000 {
            match rng.next() % 16 {
                0 => {
                    let _ = p.push_video(rng.next(), &rng.bytes(64), at(0));
                }
                1 => {
                    let _ = p.push_audio(rng.next(), &rng.bytes(8));
                }
                2 => {
                    // Garbage glued after a valid prefix.
                    let mut unit = keyframe(SPS_320, PPS_320, frame);
                    unit.extend(rng.bytes(16));
                    let _ = p.push_video(video_ts, &unit, at(video_ts));
                }
                3 => video_ts = video_ts.wrapping_add(rng.next() % 200_000),
                4 => audio_ts = audio_ts.wrapping_sub(rng.next() % 5_000),
                5 | 6 => {
                    let key = rng.next().is_multiple_of(20);
                    let (sps, pps) = if rng.next().is_multiple_of(2) {
                        (SPS_320, PPS_320)
                    } else {
                        (SPS_640, PPS_640)
                    };
                    let unit = if key {
                        keyframe(sps, pps, frame)
                    } else {
                        pframe(frame)
                    };
                    let _ = p.push_video(video_ts, &unit, at(video_ts));
                    video_ts += 2000 + rng.next() % 3000;
                    frame += 1;
                }
                _ => {
                    let _ = p.push_audio(audio_ts, &opus(frame));
                    audio_ts += 960;
                    if rng.next().is_multiple_of(3) {
                        let unit = if frame.is_multiple_of(45) {
                            keyframe(SPS_320, PPS_320, frame)
                        } else {
                            pframe(frame)
                        };
                        let _ = p.push_video(video_ts, &unit, at(video_ts));
                        video_ts += 3000;
                        frame += 1;
                    }
                }
            }
            if rng.next().is_multiple_of(200) {
                everything_decodes(&p);
                let _ = p.reload(confcast_live::Directives {
                    msn: Some(rng.next() % 50),
                    part: Some(rng.next() % 30),
                });
                let _ = p.lookup(&format!("part{}.{}.m4s", rng.next() % 50, rng.next() % 20));
            }
            while p.poll_event().is_some() {}
        }
        everything_decodes(&p);
        p.stop();
        everything_decodes(&p);
        if let Some(text) = p.media_playlist() {
            assert!(text.ends_with("#EXT-X-ENDLIST\n"));
        }
        assert!(matches!(p.lookup("nope"), Lookup::NotFound));
    }
}
