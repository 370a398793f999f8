//! Blocking playlist reload decisions (RFC 8216bis §6.2.5.2) and the
//! preload-hinted part, as the HTTP shell would drive them.

mod common;

use common::*;
use confcast_live::{BadRequest, Directives, Lookup, Reload, ReloadState};

fn d(query: &str) -> Directives {
    Directives::from_query(query).expect("valid query")
}

fn msn_part(msn: u64, part: Option<u64>) -> Directives {
    Directives {
        msn: Some(msn),
        part,
    }
}

/// After 4.5 s of 30 fps with a 2 s GOP: segments 0 and 1 complete (10
/// parts each), segment 2 open with parts 0 and 1 published.
fn golden() -> (confcast_live::LivePackager, Source) {
    let mut p = new_packager();
    let mut s = Source::new(60);
    s.run_for(&mut p, 4.5);
    (p, s)
}

#[test]
fn decisions_on_a_running_playlist() {
    let (p, _) = golden();
    let state = p.reload_state();
    assert_eq!(state.open_msn, 2);
    assert_eq!(state.open_parts, 2);
    assert_eq!(state.advance_part_limit(), 15);

    assert_eq!(p.reload(d("")), Ok(Reload::Ready));
    assert_eq!(p.reload(d("_HLS_msn=0")), Ok(Reload::Ready));
    assert_eq!(p.reload(d("_HLS_msn=1")), Ok(Reload::Ready));
    assert_eq!(
        p.reload(d("_HLS_msn=2")),
        Ok(Reload::Wait { msn: 2, part: None })
    );
    assert_eq!(
        p.reload(d("_HLS_msn=3")),
        Ok(Reload::Wait { msn: 3, part: None })
    );
    // More than two segments beyond the last complete one (1).
    assert!(p.reload(d("_HLS_msn=4")).is_err());
    assert!(p.reload(d("_HLS_msn=4&_HLS_part=0")).is_err());

    assert_eq!(p.reload(d("_HLS_msn=2&_HLS_part=1")), Ok(Reload::Ready));
    assert_eq!(
        p.reload(d("_HLS_msn=2&_HLS_part=2")),
        Ok(Reload::Wait {
            msn: 2,
            part: Some(2)
        })
    );
    // Advance Part Limit: 3 / 0.2 s = 15 parts past the last one (2.1).
    assert!(matches!(
        p.reload(d("_HLS_msn=2&_HLS_part=16")),
        Ok(Reload::Wait { .. })
    ));
    assert_eq!(
        p.reload(d("_HLS_msn=2&_HLS_part=17")),
        Err(BadRequest("_HLS_part beyond the Advance Part Limit"))
    );
    // In the next segment: the part being built, then parts 0..=13.
    assert!(matches!(
        p.reload(d("_HLS_msn=3&_HLS_part=13")),
        Ok(Reload::Wait { .. })
    ));
    assert!(p.reload(d("_HLS_msn=3&_HLS_part=14")).is_err());

    // A part index past the final part of a complete segment means part 0
    // of the next one (§6.2.5.2).
    assert_eq!(p.reload(d("_HLS_msn=1&_HLS_part=9")), Ok(Reload::Ready));
    assert_eq!(p.reload(d("_HLS_msn=1&_HLS_part=10")), Ok(Reload::Ready));
    assert_eq!(p.reload(d("_HLS_msn=0&_HLS_part=99")), Ok(Reload::Ready));
    // A segment already gone from memory: answer at once.
    assert_eq!(
        p.reload(msn_part(0, Some(3))),
        Ok(Reload::Ready),
        "complete segment"
    );

    // _HLS_part without _HLS_msn is a 400 however it arrives.
    assert!(Directives::from_query("_HLS_part=1").is_err());
    assert!(
        p.reload(Directives {
            msn: None,
            part: Some(1)
        })
        .is_err()
    );
}

#[test]
fn part_rolls_over_into_a_segment_that_has_not_started() {
    let state = ReloadState {
        ended: false,
        started: true,
        open_msn: 5,
        open_parts: 0,
        part_target_ms: 200,
    };
    let parts_of = |msn: u64| (msn == 4).then_some(10);
    assert_eq!(
        state.decide(msn_part(4, Some(9)), parts_of),
        Ok(Reload::Ready)
    );
    assert_eq!(
        state.decide(msn_part(4, Some(10)), parts_of),
        Ok(Reload::Wait {
            msn: 5,
            part: Some(0)
        })
    );
    // Limits for long parts: 3 parts when PART-TARGET >= 1 s.
    let slow = ReloadState {
        part_target_ms: 1000,
        ..state
    };
    assert_eq!(slow.advance_part_limit(), 3);
    assert!(slow.decide(msn_part(5, Some(2)), parts_of).is_ok());
    assert!(slow.decide(msn_part(5, Some(3)), parts_of).is_err());
    assert!(slow.decide(msn_part(6, Some(2)), parts_of).is_err());
}

#[test]
fn before_the_first_part_everything_waits() {
    let mut p = new_packager();
    assert_eq!(
        p.reload(d("")),
        Ok(Reload::Wait {
            msn: 0,
            part: Some(0)
        })
    );
    assert_eq!(
        p.reload(d("_HLS_msn=0&_HLS_part=0")),
        Ok(Reload::Wait {
            msn: 0,
            part: Some(0)
        })
    );
    assert!(p.reload(d("_HLS_msn=2")).is_err());
    let mut s = Source::new(60);
    s.run_for(&mut p, 0.25);
    assert_eq!(p.reload(d("")), Ok(Reload::Ready));
    assert_eq!(p.reload(d("_HLS_msn=0&_HLS_part=0")), Ok(Reload::Ready));
}

#[test]
fn ended_playlists_ignore_directives() {
    let (mut p, _) = golden();
    p.stop();
    assert_eq!(p.reload(d("_HLS_msn=3&_HLS_part=4")), Ok(Reload::Ready));
    assert_eq!(p.reload(d("_HLS_msn=99")), Ok(Reload::Ready));
    assert!(
        p.reload(Directives {
            msn: None,
            part: Some(1)
        })
        .is_err()
    );
}

/// Holds a request the way the shell does: re-decide after every step until
/// ready, then check the playlist really contains what was asked for.
#[test]
fn held_requests_become_ready_exactly_when_the_part_appears() {
    let (mut p, mut s) = golden();
    for (directives, expect_in_playlist) in [
        ("_HLS_msn=2&_HLS_part=5", "part2.5.m4s"),
        ("_HLS_msn=2&_HLS_part=10", "part3.0.m4s"), // rolls over: seg 2 has 10 parts
        ("_HLS_msn=4", "seg4.m4s"),
    ] {
        let directives = d(directives);
        let mut steps = 0;
        while p.reload(directives) != Ok(Reload::Ready) {
            assert!(matches!(p.reload(directives), Ok(Reload::Wait { .. })));
            let before = parse_media(&p.media_playlist().expect("playlist"));
            assert!(!before.parts.iter().any(|l| l.uri == expect_in_playlist));
            assert!(
                !before
                    .playlist
                    .segments
                    .iter()
                    .any(|l| l.uri == expect_in_playlist)
            );
            s.step(&mut p);
            steps += 1;
            assert!(steps < 200, "never became ready");
        }
        let after = parse_media(&p.media_playlist().expect("playlist"));
        assert!(
            after.parts.iter().any(|l| l.uri == expect_in_playlist)
                || after
                    .playlist
                    .segments
                    .iter()
                    .any(|l| l.uri == expect_in_playlist)
        );
    }
}

#[test]
fn the_hinted_part_is_pending_until_published() {
    let (mut p, mut s) = golden();
    let text = p.media_playlist().expect("playlist");
    assert!(text.ends_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part2.2.m4s\"\n"));
    assert_eq!(p.lookup("part2.2.m4s"), Lookup::Pending { msn: 2, part: 2 });
    // Anything past the hint is simply not there.
    assert_eq!(p.lookup("part2.3.m4s"), Lookup::NotFound);
    assert_eq!(p.lookup("seg2.m4s"), Lookup::NotFound);
    assert!(p.lookup("part2.1.m4s").is_found());
    while matches!(p.lookup("part2.2.m4s"), Lookup::Pending { .. }) {
        s.step(&mut p);
    }
    let bytes = fetch(&p, "part2.2.m4s");
    let fragments = decode_fragments(&bytes);
    assert_eq!(fragments.len(), 1);
    assert_eq!(p.lookup("part2.3.m4s"), Lookup::Pending { msn: 2, part: 3 });
}

trait IsFound {
    fn is_found(&self) -> bool;
}

impl IsFound for Lookup {
    fn is_found(&self) -> bool {
        matches!(self, Lookup::Found(_))
    }
}

#[test]
fn names_are_validated_strictly() {
    let (p, _) = golden();
    for bad in [
        "../seg0.m4s",
        "seg0.m4s/../../etc/passwd",
        "seg00.m4s",
        "seg0.m4s\0",
        "part0.0.m4s.",
        "init0.mp4 ",
        "%2e%2e/init0.mp4",
        "init-1.mp4",
        "part0.-1.m4s",
        "live.m3u8",
        "index.m3u8",
    ] {
        assert_eq!(p.lookup(bad), Lookup::NotFound, "{bad:?}");
    }
    assert!(p.lookup("seg0.m4s").is_found());
    assert!(p.lookup("init0.mp4").is_found());
    assert_eq!(p.lookup("init1.mp4"), Lookup::NotFound);
    assert_eq!(p.lookup("seg9.m4s"), Lookup::NotFound);
}
