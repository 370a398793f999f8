//! Where parts and segments are cut, checked on the fMP4 boxes themselves.

mod common;

use common::*;
use confcast_live::{LiveConfig, LivePackager, Lookup};

/// A tiny deterministic PRNG so the "random" streams are reproducible.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// Checks every published part and segment against the playlist: segments
/// start with keyframes (unless cut by the cap), INDEPENDENT parts start
/// with keyframes, the segment bytes are its parts, and both tracks are
/// gap-free from fragment to fragment.
fn check_all(p: &LivePackager) {
    let text = p.media_playlist().expect("playlist");
    let parsed = parse_media(&text);
    check_part_durations(p, &parsed);
    let part_target_90k = (parsed.part_target * 90_000.0).round() as u64;
    let mut video_end: Option<u64> = None;
    let mut audio_end: Option<u64> = None;
    for seg in &parsed.playlist.segments {
        let bytes = fetch(p, &seg.uri);
        let msn: u64 = seg.uri["seg".len()..seg.uri.len() - 4]
            .parse()
            .expect("msn");
        let fragments = decode_fragments(&bytes);
        // The segment is exactly the concatenation of its parts.
        let mut joined = Vec::new();
        for i in 0..fragments.len() {
            joined.extend(fetch(p, &format!("part{msn}.{i}.m4s")));
        }
        assert_eq!(joined, bytes);
        assert_eq!(
            p.lookup(&format!("part{msn}.{}.m4s", fragments.len())),
            Lookup::NotFound
        );

        let mut seg_ticks = 0u64;
        for (i, runs) in fragments.iter().enumerate() {
            let video = runs
                .iter()
                .find(|r| r.track_id == 1)
                .expect("video in every part");
            if let Some(end) = video_end
                && !seg.discontinuity
            {
                assert_eq!(video.base_decode_time, end, "video gap in {}", seg.uri);
            }
            let dur: u64 = video.samples.iter().map(|s| u64::from(s.0)).sum();
            assert!(
                dur <= part_target_90k || video.samples.len() == 1,
                "part too long"
            );
            video_end = Some(video.base_decode_time + dur);
            seg_ticks += dur;
            let starts_with_key = video.samples[0].2;
            let line = parsed
                .parts
                .iter()
                .find(|l| l.uri == format!("part{msn}.{i}.m4s"));
            if let Some(line) = line {
                assert_eq!(line.independent, starts_with_key, "{}", line.uri);
                assert!((line.duration - dur as f64 / 90_000.0).abs() < 1e-5);
            }
            if let Some(audio) = runs.iter().find(|r| r.track_id == 2) {
                if let Some(end) = audio_end
                    && !seg.discontinuity
                {
                    assert_eq!(audio.base_decode_time, end, "audio gap in {}", seg.uri);
                }
                let adur: u64 = audio.samples.iter().map(|s| u64::from(s.0)).sum();
                audio_end = Some(audio.base_decode_time + adur);
                assert!(audio.samples.iter().all(|s| s.2));
            }
        }
        assert!(((seg.duration as f64) - seg_ticks as f64 / 90_000.0).abs() < 1e-4);
    }
}

#[test]
fn segments_start_at_the_first_keyframe_after_the_target() {
    let mut p = new_packager();
    let mut s = Source::new(45); // keyframe every 1.5 s
    s.run_for(&mut p, 20.0);
    let parsed = parse_media(&p.media_playlist().expect("playlist"));
    for seg in &parsed.playlist.segments {
        // Keyframes at multiples of 1.5 s; the first one at/after 2 s is 3 s.
        assert!((seg.duration - 3.0).abs() < 1e-6, "{}", seg.duration);
        let fragments = decode_fragments(&fetch(&p, &seg.uri));
        assert!(
            fragments[0][0].samples[0].2,
            "segment starts with a keyframe"
        );
    }
    check_all(&p);
    assert_eq!(p.counters().forced_segment_cuts, 0);
}

#[test]
fn jittery_timestamps_and_irregular_keyframes() {
    let mut p = new_packager();
    let mut rng = Lcg(7);
    let mut video_ts = 1_000_000u64; // arbitrary origin
    let mut audio_ts = video_ts * 8 / 15;
    let mut next_key = 0u64;
    for frame in 0..1500u32 {
        // Frame spacing 25-41 ms, like a real capture clock.
        let key = u64::from(frame) == next_key;
        if key {
            next_key += 20 + rng.next() % 80;
        }
        while audio_ts * 15 <= video_ts * 8 {
            p.push_audio(audio_ts, &opus(frame)).expect("audio");
            audio_ts += 960;
        }
        let unit = if key {
            keyframe(SPS_320, PPS_320, frame)
        } else {
            pframe(frame)
        };
        p.push_video(video_ts, &unit, at(video_ts)).expect("video");
        video_ts += 2250 + rng.next() % 1440;
    }
    check_all(&p);
    let c = p.counters();
    assert_eq!(c.timestamp_jumps, 0);
    assert_eq!(c.dropped_non_monotonic, 0);
    // A segment ends either at the first keyframe from 1.7 s on (2 s target
    // less the 300 ms keyframe-request lead; the next one starts with it) or
    // at the 4 s cap (the next one does not).
    let parsed = parse_media(&p.media_playlist().expect("playlist"));
    let segs = &parsed.playlist.segments;
    let mut keyed = 0;
    for pair in segs.windows(2) {
        let next = decode_fragments(&fetch(&p, &pair[1].uri));
        if next[0][0].samples[0].2 {
            keyed += 1;
            assert!(pair[0].duration >= 1.7 - 1e-6, "{}", pair[0].duration);
        } else {
            assert!(
                pair[0].duration > 3.9,
                "only the cap cuts without a keyframe"
            );
        }
        assert!(pair[0].duration <= 4.0 + 1e-6);
    }
    assert!(keyed > 0);
}

#[test]
fn without_keyframes_segments_are_capped() {
    let mut p = new_packager();
    let mut s = Source::new(100_000); // one keyframe, then none
    s.run_for(&mut p, 13.0);
    let parsed = parse_media(&p.media_playlist().expect("playlist"));
    assert_eq!(parsed.playlist.segments.len(), 3);
    for seg in &parsed.playlist.segments {
        assert!((seg.duration - 4.0).abs() < 1e-6, "{}", seg.duration);
    }
    assert!(parsed.parts.iter().all(|p| !p.independent));
    assert_eq!(p.counters().forced_segment_cuts, 3);
    check_all(&p);
    // A keyframe brings independent segments back.
    s.frame = 0;
    s.gop = 60;
    s.run_for(&mut p, 5.0);
    check_all(&p);
}

#[test]
fn part_target_is_never_exceeded_at_odd_frame_rates() {
    for (fps_ticks, part_ms) in [(3750u64, 200u64), (3600, 250), (6000, 200), (1500, 300)] {
        let cfg = LiveConfig {
            part_target: std::time::Duration::from_millis(part_ms),
            ..LiveConfig::default()
        };
        let mut p = LivePackager::new(cfg).expect("config");
        let mut s = Source::new(90_000 * 2 / fps_ticks);
        s.frame_ticks = fps_ticks;
        s.run_for(&mut p, 9.0);
        check_all(&p);
    }
}

#[test]
fn audio_only_before_video_is_held_briefly() {
    let mut p = new_packager();
    // 2 s of audio, then the video starts at 1.5 s on the same clock.
    for i in 0..100u64 {
        p.push_audio(i * 960, &opus(i as u32)).expect("held");
    }
    let mut s = Source::new(60);
    s.video_ts = 135_000;
    s.audio_ts = 96_000;
    s.run_for(&mut p, 2.5);
    check_all(&p);
    let c = p.counters();
    // Only the last 500 ms are held; of those, what precedes 1.5 s is dropped.
    assert_eq!(c.dropped_audio_without_video, 75);
    let first = decode_fragments(&fetch(&p, "part0.0.m4s"));
    let audio = first[0].iter().find(|r| r.track_id == 2).expect("audio");
    assert_eq!(audio.base_decode_time, 0, "audio starts with the video");
}
