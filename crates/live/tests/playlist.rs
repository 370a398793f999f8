//! Playlists for known unit sequences: golden text, sliding window,
//! discontinuities, ENDLIST; every playlist parsed with m3u8-rs.

mod common;

use common::*;
use confcast_live::{Event, InputError, LiveConfig, LivePackager, Lookup};

const GOLDEN_4_5_S: &str = "#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:4
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.600
#EXT-X-PART-INF:PART-TARGET=0.200
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-MAP:URI=\"init0.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z
#EXT-X-PART:DURATION=0.20000,URI=\"part0.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.20000,URI=\"part0.1.m4s\"
#EXT-X-PART:DURATION=0.20000,URI=\"part0.2.m4s\"
#EXT-X-PART:DURATION=0.20000,URI=\"part0.3.m4s\"
#EXT-X-PART:DURATION=0.20000,URI=\"part0.4.m4s\"
#EXT-X-PART:DURATION=0.20000,URI=\"part0.5.m4s\"
#EXT-X-PART:DURATION=0.20000,URI=\"part0.6.m4s\"
#EXT-X-PART:DURATION=0.20000,URI=\"part0.7.m4s\"
#EXT-X-PART:DURATION=0.20000,URI=\"part0.8.m4s\"
#EXT-X-PART:DURATION=0.20000,URI=\"part0.9.m4s\"
#EXTINF:2.00000,
seg0.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:22.000Z
#EXT-X-PART:DURATION=0.20000,URI=\"part1.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.20000,URI=\"part1.1.m4s\"
#EXT-X-PART:DURATION=0.20000,URI=\"part1.2.m4s\"
#EXT-X-PART:DURATION=0.20000,URI=\"part1.3.m4s\"
#EXT-X-PART:DURATION=0.20000,URI=\"part1.4.m4s\"
#EXT-X-PART:DURATION=0.20000,URI=\"part1.5.m4s\"
#EXT-X-PART:DURATION=0.20000,URI=\"part1.6.m4s\"
#EXT-X-PART:DURATION=0.20000,URI=\"part1.7.m4s\"
#EXT-X-PART:DURATION=0.20000,URI=\"part1.8.m4s\"
#EXT-X-PART:DURATION=0.20000,URI=\"part1.9.m4s\"
#EXTINF:2.00000,
seg1.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:24.000Z
#EXT-X-PART:DURATION=0.20000,URI=\"part2.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.20000,URI=\"part2.1.m4s\"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part2.2.m4s\"
";

#[test]
fn golden_playlist_for_30_fps_with_two_second_gop() {
    let mut p = new_packager();
    assert_eq!(
        p.media_playlist(),
        None,
        "no playlist before the first part"
    );
    let mut s = Source::new(60);
    s.run_for(&mut p, 4.5);
    let text = p.media_playlist().expect("playlist");
    assert_eq!(text, GOLDEN_4_5_S);
    let parsed = parse_media(&text);
    assert_eq!(parsed.playlist.target_duration, 4);
    assert_eq!(parsed.playlist.segments.len(), 2);
    assert_eq!(parsed.parts.len(), 22);
    assert_eq!(parsed.preload_hint.as_deref(), Some("part2.2.m4s"));

    assert_eq!(
        p.multivariant_playlist().expect("multivariant"),
        format!(
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"avc1.42c00d,opus\",RESOLUTION=320x240\nlive.m3u8\n",
            bandwidth_of(&p, &["seg0.m4s", "seg1.m4s"]).0,
            bandwidth_of(&p, &["seg0.m4s", "seg1.m4s"]).1,
        )
    );
    let mv = parse_multivariant(&p.multivariant_playlist().expect("multivariant"));
    assert_eq!(mv.variants.len(), 1);
    assert_eq!(mv.variants[0].uri, "live.m3u8");
    assert_eq!(mv.variants[0].codecs.as_deref(), Some("avc1.42c00d,opus"));

    let c = p.counters();
    assert_eq!((c.parts, c.segments, c.discontinuities), (22, 2, 0));
    assert_eq!(c.dropped_audio_without_video, 0);
    assert_eq!(c.video_units_in, 135);
}

/// (peak, average) bit rate of 2 s segments.
fn bandwidth_of(p: &LivePackager, names: &[&str]) -> (u64, u64) {
    let sizes: Vec<u64> = names
        .iter()
        .map(|n| fetch(p, n).len() as u64 * 8 / 2)
        .collect();
    let peak = *sizes.iter().max().expect("sizes");
    let avg = sizes.iter().sum::<u64>() / sizes.len() as u64;
    (peak, avg)
}

#[test]
fn events_announce_every_part_and_segment() {
    let mut p = new_packager();
    let mut s = Source::new(60);
    s.run_for(&mut p, 2.1);
    let events: Vec<Event> = std::iter::from_fn(|| p.poll_event()).collect();
    assert_eq!(events[0], Event::InitReady { generation: 0 });
    let parts = events
        .iter()
        .filter(|e| matches!(e, Event::PartReady { .. }))
        .count();
    assert_eq!(parts, 10);
    assert!(events.contains(&Event::SegmentReady { msn: 0 }));
    // The keyframe request comes 300 ms before the segment target.
    assert!(events.contains(&Event::KeyframeWanted));
}

#[test]
fn window_slides_and_old_parts_leave_the_playlist() {
    let mut p = new_packager();
    let mut s = Source::new(60);
    let mut versions = 0;
    let mut last_version = p.version();
    for _ in 0..(30 * 40) {
        s.step(&mut p);
        if p.version() != last_version {
            last_version = p.version();
            if let Some(text) = p.media_playlist() {
                parse_media(&text);
                versions += 1;
            }
        }
    }
    assert!(versions >= 190, "{versions}");
    let text = p.media_playlist().expect("playlist");
    let parsed = parse_media(&text);
    // 6 segments of 2 s (= 3 x TARGETDURATION) stay in the playlist.
    assert_eq!(parsed.playlist.segments.len(), 6);
    assert_eq!(parsed.playlist.media_sequence, 13);
    assert_eq!(parsed.playlist.segments[0].uri, "seg13.m4s");
    // Parts only for segments starting at most 3 target durations (12 s)
    // before the end: the oldest starts 13.8 s before it.
    assert!(!text.contains("part13."), "{text}");
    assert!(text.contains("part14.0.m4s"));
    // Segments that left the playlist stay downloadable for a while ...
    assert!(matches!(p.lookup("seg7.m4s"), Lookup::Found(_)));
    assert!(matches!(p.lookup("part7.3.m4s"), Lookup::Found(_)));
    // ... and then are forgotten.
    assert_eq!(p.lookup("seg6.m4s"), Lookup::NotFound);
    assert_eq!(p.lookup("part6.0.m4s"), Lookup::NotFound);
    // Init segments are served and immutable.
    match p.lookup("init0.mp4") {
        Lookup::Found(r) => {
            assert_eq!(r.content_type, "video/mp4");
            assert!(r.cache_control.contains("immutable"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn sps_change_starts_a_discontinuity_with_a_new_init() {
    let mut p = new_packager();
    let mut s = Source::new(60);
    s.run_for(&mut p, 3.0);
    // Another camera: 640x480 High, keyframe mid-segment.
    s.sps = SPS_640;
    s.pps = PPS_640;
    s.step_with(&mut p, true);
    s.gop = 60;
    s.frame = 1;
    s.run_for(&mut p, 2.5);

    let text = p.media_playlist().expect("playlist");
    let parsed = parse_media(&text);
    let segs = &parsed.playlist.segments;
    assert_eq!(segs.len(), 3, "{text}");
    assert_eq!(
        segs[0].map.as_ref().map(|m| m.uri.as_str()),
        Some("init0.mp4")
    );
    assert!(!segs[1].discontinuity);
    // Segment 1 was cut at the camera switch, after 1 s.
    assert!((segs[1].duration - 1.0).abs() < 1e-6, "{text}");
    assert!(segs[2].discontinuity, "{text}");
    assert_eq!(
        segs[2].map.as_ref().map(|m| m.uri.as_str()),
        Some("init1.mp4")
    );
    assert!(segs[2].program_date_time.is_some());
    assert!(text.contains(
        "seg1.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init1.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:23.000Z\n#EXT-X-PART:DURATION=0.20000,URI=\"part2.0.m4s\",INDEPENDENT=YES\n"
    ));

    assert_eq!(decode_init(&fetch(&p, "init0.mp4")), (320, 240, 66, 2));
    assert_eq!(decode_init(&fetch(&p, "init1.mp4")), (640, 480, 100, 2));
    let mv = p.multivariant_playlist().expect("multivariant");
    assert!(
        mv.contains("CODECS=\"avc1.64001e,opus\",RESOLUTION=640x480"),
        "{mv}"
    );
    parse_multivariant(&mv);

    // The timeline continues across the switch.
    let before = decode_fragments(&fetch(&p, "seg1.m4s"));
    let after = decode_fragments(&fetch(&p, "seg2.m4s"));
    let end_of_before = before
        .last()
        .map(|runs| {
            let v = &runs[0];
            v.base_decode_time + v.samples.iter().map(|s| u64::from(s.0)).sum::<u64>()
        })
        .expect("fragments");
    assert_eq!(after[0][0].base_decode_time, end_of_before);
    assert_eq!(p.counters().discontinuities, 1);
    assert_eq!(p.counters().init_segments, 2);
}

#[test]
fn stop_finishes_the_segment_and_adds_endlist() {
    let mut p = new_packager();
    let mut s = Source::new(60);
    s.run_for(&mut p, 3.1);
    p.stop();
    let text = p.media_playlist().expect("playlist");
    assert!(text.ends_with("seg1.m4s\n#EXT-X-ENDLIST\n"), "{text}");
    assert!(!text.contains("PRELOAD-HINT"));
    // Finished playlists list no parts.
    assert!(!text.contains("#EXT-X-PART:"));
    let parsed = parse_media(&text);
    assert!(parsed.playlist.end_list);
    assert_eq!(parsed.playlist.segments.len(), 2);
    assert!((parsed.playlist.segments[1].duration - 1.1).abs() < 1e-4);
    let events: Vec<Event> = std::iter::from_fn(|| p.poll_event()).collect();
    assert_eq!(events.last(), Some(&Event::Ended));
    assert!(p.is_ended());
    assert_eq!(
        p.push_video(999_999, &pframe(1), at(0)),
        Err(InputError::Stopped)
    );
    assert_eq!(p.push_audio(999_999, &opus(1)), Err(InputError::Stopped));
    // The last part of the stopped segment is still served.
    assert!(matches!(p.lookup("part1.5.m4s"), Lookup::Found(_)));
}

#[test]
fn stop_before_any_keyframe_gives_no_playlist() {
    let mut p = new_packager();
    assert_eq!(
        p.push_video(0, &pframe(0), at(0)),
        Err(InputError::WaitingForKeyframe)
    );
    p.stop();
    assert_eq!(p.media_playlist(), None);
    assert_eq!(p.multivariant_playlist(), None);
}

#[test]
fn a_long_video_gap_restarts_behind_a_discontinuity() {
    let mut p = new_packager();
    let mut s = Source::new(60);
    s.run_for(&mut p, 2.5);
    // Video freezes for 3 s (audio continues, then both resume).
    s.video_ts += 3 * 90_000;
    s.audio_ts += 3 * 48_000;
    // The first frame after the gap is not a keyframe: dropped until one comes.
    assert_eq!(
        p.push_video(s.video_ts, &pframe(1), at(s.video_ts)),
        Err(InputError::WaitingForKeyframe)
    );
    s.video_ts += s.frame_ticks;
    assert_eq!(p.counters().timestamp_jumps, 1);
    assert!(p.counters().dropped_waiting_for_keyframe >= 1);
    s.frame = 0;
    s.run_for(&mut p, 2.5);
    let text = p.media_playlist().expect("playlist");
    let parsed = parse_media(&text);
    let segs = &parsed.playlist.segments;
    assert_eq!(segs.len(), 3, "{text}");
    assert!(segs[2].discontinuity);
    // The map is not repeated: the encoding did not change.
    assert!(segs[2].map.is_none());
    // Wall clock jumps with the gap (3 s plus the frame we dropped).
    let gap = segs[2].program_date_time.expect("pdt") - segs[1].program_date_time.expect("pdt");
    assert_eq!(gap.num_milliseconds(), 500 + 3000 + 33);
}

#[test]
fn config_is_validated() {
    use std::time::Duration;
    let bad = [
        LiveConfig {
            part_target: Duration::from_millis(10),
            ..LiveConfig::default()
        },
        LiveConfig {
            segment_max: Duration::from_secs(1),
            ..LiveConfig::default()
        },
        LiveConfig {
            part_hold_back_parts: 2,
            ..LiveConfig::default()
        },
    ];
    for c in bad {
        assert!(LivePackager::new(c).is_err());
    }
    let c = LiveConfig {
        part_target: Duration::from_millis(333),
        part_hold_back_parts: 4,
        ..LiveConfig::default()
    };
    let mut p = LivePackager::new(c).expect("valid");
    let mut s = Source::new(60);
    s.run_for(&mut p, 1.0);
    let text = p.media_playlist().expect("playlist");
    assert!(text.contains("PART-HOLD-BACK=1.332"), "{text}");
    assert!(text.contains("PART-TARGET=0.333"), "{text}");
    parse_media(&text);
}
