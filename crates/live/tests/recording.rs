//! The recorder at fixed timestamps: what it stores when, given the
//! packager's events, and the VOD playlist planned from what was stored
//! (after a clean end, after a crash, after failed writes).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use common::*;
use confcast_live::recording::{Piece, Rebuild, plan};
use confcast_live::{
    LivePackager, RecordedName, Recorder, RecorderConfig, RecordingAction as Action,
};

/// Storage as a map from name to bytes; carries actions out like the shell.
#[derive(Default)]
struct Storage {
    objects: BTreeMap<String, Bytes>,
    /// Names whose put fails (a full disk for those writes).
    failing: Vec<String>,
    finalised: bool,
    progress: Vec<(Duration, u64)>,
}

impl Storage {
    fn apply(&mut self, action: Action) {
        match action {
            Action::Put { name, bytes } => {
                let name = name.to_string();
                if !self.failing.contains(&name) {
                    self.objects.insert(name, bytes);
                }
            }
            Action::PutSegment {
                name,
                bytes,
                then_delete,
            } => {
                let name = name.to_string();
                if self.failing.contains(&name) {
                    return;
                }
                self.objects.insert(name, bytes);
                for part in then_delete {
                    self.objects.remove(&part.to_string());
                }
            }
            Action::Progress { duration, bytes } => self.progress.push((duration, bytes)),
            Action::Finalise => self.finalised = true,
        }
    }

    fn listing(&self) -> Vec<(&str, u64)> {
        self.objects
            .iter()
            .map(|(k, v)| (k.as_str(), v.len() as u64))
            .collect()
    }

    /// Carries out `plan` as the shell does: rebuild, playlist, delete.
    fn finish(&mut self) -> confcast_live::RecordingPlan {
        let first = plan(self.listing(), Rebuild::FromParts);
        for assembly in &first.assemble {
            let mut bytes = Vec::new();
            for part in &assembly.parts {
                bytes.extend_from_slice(&self.objects[&part.to_string()]);
            }
            self.objects
                .insert(assembly.target.to_string(), Bytes::from(bytes));
        }
        if let Some(text) = &first.playlist {
            self.objects
                .insert("index.m3u8".into(), Bytes::from(text.clone()));
        }
        for name in &first.delete {
            self.objects.remove(&name.to_string());
        }
        first
    }

    fn playlist(&self) -> &str {
        std::str::from_utf8(&self.objects["index.m3u8"]).expect("utf-8")
    }

    /// The bytes a player would read: each segment after its init.
    fn played_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for line in self.playlist().lines() {
            let uri = line
                .strip_prefix("#EXT-X-MAP:URI=\"")
                .map(|r| r.trim_end_matches('"'))
                .or_else(|| (!line.starts_with('#')).then_some(line));
            if let Some(uri) = uri {
                out.extend_from_slice(&self.objects[uri]);
            }
        }
        out
    }
}

/// The wall clock of 90 kHz time `ticks` after the start, in Unix ms.
fn now_ms(ticks: u64) -> i64 {
    at(ticks)
        .duration_since(UNIX_EPOCH)
        .expect("after epoch")
        .as_millis() as i64
}

/// Runs a source for `seconds` into the packager and the recorder, as the
/// feeder does: every event goes to the recorder at once.
fn record(
    p: &mut LivePackager,
    s: &mut Source,
    r: &mut Recorder,
    store: &mut Storage,
    seconds: f64,
) {
    let frames = (seconds * 90_000.0 / s.frame_ticks as f64).round() as u64;
    for _ in 0..frames {
        s.step(p);
        drain(p, s.video_ts, r, store);
    }
}

fn drain(p: &mut LivePackager, ticks: u64, r: &mut Recorder, store: &mut Storage) {
    while let Some(event) = p.poll_event() {
        r.observe(event, p, now_ms(ticks));
    }
    while let Some(action) = r.poll_action() {
        store.apply(action);
    }
}

#[test]
fn each_part_is_stored_as_it_is_published_and_replaced_by_its_segment() {
    let mut p = new_packager();
    let mut s = Source::new(60);
    let mut r = Recorder::new(RecorderConfig::default());
    let mut store = Storage::default();

    // 8 frames: the init and the first part only (a frame is held until the
    // next, a part closes when the next would overfill it).
    let mut actions = Vec::new();
    for _ in 0..8 {
        s.step(&mut p);
        while let Some(e) = p.poll_event() {
            r.observe(e, &p, now_ms(s.video_ts));
        }
        while let Some(a) = r.poll_action() {
            actions.push(a);
        }
    }
    let names: Vec<String> = actions
        .iter()
        .map(|a| match a {
            Action::Put { name, .. } | Action::PutSegment { name, .. } => name.to_string(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(names, ["init0.mp4", "part0.0-0-18000-c.m4s"]);
    for a in actions {
        store.apply(a);
    }

    // Up to 2.1 s: segment 0 is complete, stored whole, its ten parts gone.
    record(&mut p, &mut s, &mut r, &mut store, 1.8);
    let stored: Vec<&str> = store.objects.keys().map(String::as_str).collect();
    assert_eq!(stored, ["init0.mp4", "seg0-0-180000-c.m4s"]);
    let seg0 = &store.objects["seg0-0-180000-c.m4s"];
    assert_eq!(
        seg0,
        &fetch(&p, "seg0.m4s"),
        "the very bytes the live stream serves"
    );
    assert_eq!(r.counters().parts, 10);
    assert_eq!(r.counters().segments, 1);
    assert_eq!(r.duration(), Duration::from_secs(2));
}

#[test]
fn a_clean_end_gives_a_vod_playlist_of_every_segment() {
    let mut p = new_packager();
    let mut s = Source::new(60);
    let mut r = Recorder::new(RecorderConfig::default());
    let mut store = Storage::default();
    record(&mut p, &mut s, &mut r, &mut store, 5.0);
    p.stop();
    drain(&mut p, s.video_ts, &mut r, &mut store);
    assert!(store.finalised, "the end asks for finalising");
    assert!(
        store.objects.keys().all(|k| !k.starts_with("part")),
        "{:?}",
        store.objects.keys()
    );

    let done = store.finish();
    assert!(done.assemble.is_empty() && done.delete.is_empty());
    assert_eq!(done.segments, 3);
    assert_eq!(done.duration, Duration::from_secs(5));
    assert_eq!(
        store.playlist(),
        "#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:2
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-MAP:URI=\"init0.mp4\"
#EXTINF:2.00000,
seg0-0-180000-c.m4s
#EXTINF:2.00000,
seg1-0-180000-c.m4s
#EXTINF:1.00000,
seg2-0-90000-c.m4s
#EXT-X-ENDLIST
"
    );
    let parsed = m3u8_rs::parse_media_playlist_res(store.playlist().as_bytes()).expect("parses");
    assert!(parsed.end_list);
    assert_eq!(parsed.playlist_type, Some(m3u8_rs::MediaPlaylistType::Vod));
    // What a player reads is the live stream's init and segments.
    let mut live = fetch(&p, "init0.mp4");
    for n in 0..3 {
        live.extend_from_slice(&fetch(&p, &format!("seg{n}.m4s")));
    }
    assert_eq!(store.played_bytes(), live);
    assert_eq!(done.bytes, live.len() as u64);
}

#[test]
fn after_a_crash_everything_up_to_the_last_part_is_kept() {
    let mut p = new_packager();
    let mut s = Source::new(60);
    let mut r = Recorder::new(RecorderConfig::default());
    let mut store = Storage::default();
    // 4.5 s: two segments and two parts of the third, then the process dies
    // (no stop, no Finalise).
    record(&mut p, &mut s, &mut r, &mut store, 4.5);
    assert!(!store.finalised);
    let parts: Vec<&str> = store
        .objects
        .keys()
        .filter(|k| k.starts_with("part"))
        .map(String::as_str)
        .collect();
    assert_eq!(parts, ["part2.0-0-18000-c.m4s", "part2.1-0-18000-c.m4s"]);

    // On restart, the recording is finished from what is stored.
    let done = store.finish();
    assert_eq!(done.assemble.len(), 1);
    assert_eq!(done.assemble[0].target.to_string(), "seg2-0-36000-c.m4s");
    assert_eq!(done.segments, 3);
    assert_eq!(done.duration, Duration::from_millis(4400));
    assert!(
        store
            .playlist()
            .ends_with("#EXTINF:0.40000,\nseg2-0-36000-c.m4s\n#EXT-X-ENDLIST\n")
    );
    assert!(store.objects.keys().all(|k| !k.starts_with("part")));
    // The rebuilt segment is the two parts the live stream served.
    let mut expected = fetch(&p, "part2.0.m4s");
    expected.extend_from_slice(&fetch(&p, "part2.1.m4s"));
    assert_eq!(store.objects["seg2-0-36000-c.m4s"], expected);
    // Finishing again changes nothing.
    let again = plan(store.listing(), Rebuild::FromParts);
    assert!(again.assemble.is_empty() && again.delete.is_empty());
    assert_eq!(again.playlist.as_deref(), Some(store.playlist()));
}

#[test]
fn failed_writes_leave_a_playable_recording_with_a_discontinuity() {
    let mut p = new_packager();
    let mut s = Source::new(60);
    let mut r = Recorder::new(RecorderConfig::default());
    let mut store = Storage::default();
    // Segment 1 and all its parts fail (a full disk for a while); segment 2
    // fails but its parts were stored; segment 3 is fine.
    store.failing.push("seg1-0-180000-c.m4s".into());
    for i in 0..10 {
        store.failing.push(format!("part1.{i}-0-18000-c.m4s"));
    }
    store.failing.push("seg2-0-180000-c.m4s".into());
    record(&mut p, &mut s, &mut r, &mut store, 8.1);
    p.stop();
    drain(&mut p, s.video_ts, &mut r, &mut store);

    let done = store.finish();
    assert_eq!(done.segments, 4, "{:?}", store.objects.keys());
    assert_eq!(done.gaps, 1);
    let text = store.playlist();
    assert!(
        text.contains(
            "seg0-0-180000-c.m4s\n#EXT-X-DISCONTINUITY\n#EXTINF:2.00000,\nseg2-0-180000-c.m4s\n"
        ),
        "{text}"
    );
    m3u8_rs::parse_media_playlist_res(text.as_bytes()).expect("parses");
}

#[test]
fn an_init_change_starts_a_discontinuity_with_its_own_map() {
    let mut p = new_packager();
    let mut s = Source::new(60);
    let mut r = Recorder::new(RecorderConfig::default());
    let mut store = Storage::default();
    record(&mut p, &mut s, &mut r, &mut store, 3.0);
    s.sps = SPS_640;
    s.pps = PPS_640;
    s.step_with(&mut p, true);
    drain(&mut p, s.video_ts, &mut r, &mut store);
    s.gop = 60;
    s.frame = 1;
    record(&mut p, &mut s, &mut r, &mut store, 2.5);
    p.stop();
    drain(&mut p, s.video_ts, &mut r, &mut store);
    let done = store.finish();
    let text = store.playlist();
    assert_eq!(done.segments, 4, "{text}");
    assert!(
        text.contains(
            "seg1-0-90000-c.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init1.mp4\"\n#EXTINF:"
        ),
        "{text}"
    );
    assert!(text.contains("seg2-1-"), "{text}");
    assert_eq!(decode_init(&store.objects["init1.mp4"]), (640, 480, 100, 2));
}

#[test]
fn progress_is_reported_at_most_every_ten_seconds_of_wall_clock() {
    let mut p = new_packager();
    let mut s = Source::new(60);
    let mut r = Recorder::new(RecorderConfig::default());
    let mut store = Storage::default();
    record(&mut p, &mut s, &mut r, &mut store, 25.0);
    // The first complete segment (at 2 s), then what is complete 10 s and
    // 20 s later (the segment ending at 12 s closes with the frame after).
    let reported: Vec<Duration> = store.progress.iter().map(|(d, _)| *d).collect();
    assert_eq!(
        reported,
        [
            Duration::from_secs(2),
            Duration::from_secs(10),
            Duration::from_secs(20)
        ]
    );
    assert!(store.progress.iter().all(|(_, bytes)| *bytes > 0));
}

#[test]
fn nothing_stored_plans_no_playlist_and_odd_names_are_left_alone() {
    let empty = plan(Vec::new(), Rebuild::FromParts);
    assert_eq!(empty.playlist, None);
    assert_eq!(empty.segments, 0);

    // A segment whose init is missing cannot play; parts without their
    // segment's first part cannot either.
    let seg = RecordedName::Segment(Piece {
        msn: 0,
        init: 3,
        duration: 180_000,
        discontinuity: false,
    })
    .to_string();
    let part = RecordedName::Part(
        Piece {
            msn: 1,
            init: 3,
            duration: 18_000,
            discontinuity: false,
        },
        4,
    );
    let part_name = part.to_string();
    let listing = vec![
        (seg.as_str(), 100),
        (part_name.as_str(), 10),
        ("notes.txt", 5),
    ];
    let odd = plan(listing, Rebuild::FromParts);
    assert_eq!(odd.playlist, None);
    assert_eq!(odd.unknown, ["notes.txt"]);
    assert_eq!(odd.delete, [part]);
}
