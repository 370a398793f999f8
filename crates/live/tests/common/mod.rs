//! Shared test code: synthetic units, feeding at fixed timestamps, and
//! checkers that parse playlists with m3u8-rs and boxes with mp4-atom.
#![allow(dead_code)]

use std::io::Cursor;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use confcast_live::{LiveConfig, LivePackager, Lookup};
use mp4_atom::{Any, Codec, Decode, Moof, Moov};

/// Real SPS/PPS from x264 (320x240 Constrained Baseline).
pub const SPS_320: &[u8] = &[
    0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00,
    0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80,
];
pub const PPS_320: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];
/// Real SPS/PPS from x264 (640x480 High).
pub const SPS_640: &[u8] = &[
    0x67, 0x64, 0x00, 0x1e, 0xac, 0xb2, 0x01, 0x40, 0x7b, 0x60, 0x22, 0x00, 0x00, 0x03, 0x00, 0x02,
    0x00, 0x00, 0x03, 0x00, 0x78, 0x1e, 0x2c, 0x5c, 0x90,
];
pub const PPS_640: &[u8] = &[0x68, 0xeb, 0xc3, 0xcb, 0x22, 0xc0];

/// The fixed wall clock all tests start from (2023-11-14T22:13:20Z).
pub fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// Wall clock `ticks_90k` after [`t0`].
pub fn at(ticks_90k: u64) -> SystemTime {
    t0() + Duration::from_micros(ticks_90k * 100 / 9)
}

pub fn annex_b(nals: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for nal in nals {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
    }
    out
}

/// A keyframe access unit: SPS, PPS and an IDR slice with a marker byte.
pub fn keyframe(sps: &[u8], pps: &[u8], n: u32) -> Vec<u8> {
    let mut idr = vec![0x65, 0x88, 0x84];
    idr.extend_from_slice(&tag(n));
    idr.extend_from_slice(&[0x5a; 40]);
    annex_b(&[&[0x09, 0x10], sps, pps, &idr])
}

/// A P-frame access unit.
pub fn pframe(n: u32) -> Vec<u8> {
    let mut slice = vec![0x41, 0x9a];
    slice.extend_from_slice(&tag(n));
    slice.extend_from_slice(&[0x33; 12]);
    annex_b(&[&slice])
}

/// A 20 ms CELT fullband Opus packet.
pub fn opus(n: u32) -> Vec<u8> {
    let mut p = vec![0xfc];
    p.extend_from_slice(&tag(n));
    p
}

/// `n` in four bytes that never contain a zero (no start code emulation).
fn tag(n: u32) -> [u8; 4] {
    [
        0x80 | (n >> 21) as u8 & 0x7f,
        0x80 | (n >> 14) as u8 & 0x7f,
        0x80 | (n >> 7) as u8 & 0x7f,
        0x80 | n as u8 & 0x7f,
    ]
}

pub fn config() -> LiveConfig {
    LiveConfig::default()
}

/// A source of interleaved units at fixed timestamps.
pub struct Source {
    pub frame: u64,
    pub video_ts: u64,
    pub audio_ts: u64,
    pub audio_n: u32,
    pub frame_ticks: u64,
    /// Keyframe every `gop` frames.
    pub gop: u64,
    pub sps: &'static [u8],
    pub pps: &'static [u8],
}

impl Source {
    pub fn new(gop: u64) -> Self {
        Self {
            frame: 0,
            video_ts: 0,
            audio_ts: 0,
            audio_n: 0,
            frame_ticks: 3000,
            gop,
            sps: SPS_320,
            pps: PPS_320,
        }
    }

    /// Pushes the next video frame and the audio due up to its time.
    pub fn step(&mut self, p: &mut LivePackager) {
        let key = self.frame.is_multiple_of(self.gop);
        self.step_with(p, key);
    }

    pub fn step_with(&mut self, p: &mut LivePackager, key: bool) {
        // Audio up to (and including) this video time, on the same clock.
        while self.audio_ts * 15 <= self.video_ts * 8 {
            p.push_audio(self.audio_ts, &opus(self.audio_n))
                .or_else(|e| match e {
                    confcast_live::InputError::BeforeVideo => Ok(()),
                    e => Err(e),
                })
                .expect("audio accepted");
            self.audio_ts += 960;
            self.audio_n += 1;
        }
        let unit = if key {
            keyframe(self.sps, self.pps, self.frame as u32)
        } else {
            pframe(self.frame as u32)
        };
        p.push_video(self.video_ts, &unit, at(self.video_ts))
            .expect("video accepted");
        self.frame += 1;
        self.video_ts += self.frame_ticks;
    }

    pub fn run_for(&mut self, p: &mut LivePackager, seconds: f64) {
        let frames = (seconds * 90_000.0 / self.frame_ticks as f64).round() as u64;
        for _ in 0..frames {
            self.step(p);
        }
    }
}

/// One `EXT-X-PART` line.
#[derive(Debug, Clone, PartialEq)]
pub struct PartLine {
    pub uri: String,
    pub duration: f64,
    pub independent: bool,
}

/// What a media playlist says, parsed with m3u8-rs plus the LL-HLS tags
/// m3u8-rs leaves as unknown.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub playlist: m3u8_rs::MediaPlaylist,
    pub parts: Vec<PartLine>,
    pub part_target: f64,
    pub part_hold_back: f64,
    pub preload_hint: Option<String>,
}

fn attr<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let attrs = line.split_once(':')?.1;
    // Values here never contain commas inside quotes.
    attrs.split(',').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.trim_matches('"'))
    })
}

/// Parses a media playlist with m3u8-rs (must succeed) and checks the
/// LL-HLS invariants this crate promises.
pub fn parse_media(text: &str) -> Parsed {
    let playlist = match m3u8_rs::parse_playlist_res(text.as_bytes()) {
        Ok(m3u8_rs::Playlist::MediaPlaylist(m)) => m,
        other => panic!("not a media playlist: {other:?}\n{text}"),
    };
    assert!(text.starts_with("#EXTM3U\n"));
    assert!(playlist.version.unwrap_or(0) >= 9, "{text}");
    let mut parts = Vec::new();
    let mut part_target = 0.0;
    let mut part_hold_back = 0.0;
    let mut preload_hint = None;
    for line in text.lines() {
        if line.starts_with("#EXT-X-PART:") {
            parts.push(PartLine {
                uri: attr(line, "URI").expect("URI").to_string(),
                duration: attr(line, "DURATION")
                    .expect("DURATION")
                    .parse()
                    .expect("num"),
                independent: attr(line, "INDEPENDENT") == Some("YES"),
            });
        } else if line.starts_with("#EXT-X-PART-INF:") {
            part_target = attr(line, "PART-TARGET")
                .expect("PART-TARGET")
                .parse()
                .expect("num");
        } else if line.starts_with("#EXT-X-SERVER-CONTROL:") {
            assert_eq!(attr(line, "CAN-BLOCK-RELOAD"), Some("YES"));
            part_hold_back = attr(line, "PART-HOLD-BACK")
                .expect("PHB")
                .parse()
                .expect("num");
        } else if line.starts_with("#EXT-X-PRELOAD-HINT:") {
            assert_eq!(attr(line, "TYPE"), Some("PART"));
            preload_hint = Some(attr(line, "URI").expect("URI").to_string());
        }
    }
    assert!(part_target > 0.0, "{text}");
    assert!(part_hold_back >= 3.0 * part_target - 1e-9, "{text}");
    for s in &playlist.segments {
        assert!(
            (s.duration as f64).round() as u64 <= playlist.target_duration,
            "segment longer than TARGETDURATION\n{text}"
        );
    }
    Parsed {
        playlist,
        parts,
        part_target,
        part_hold_back,
        preload_hint,
    }
}

/// Every listed part is at most PART-TARGET long, unless it holds a single
/// video frame that alone is longer (video below 1 / PART-TARGET fps).
pub fn check_part_durations(p: &LivePackager, parsed: &Parsed) {
    for line in &parsed.parts {
        if line.duration > parsed.part_target + 1e-9 {
            let fragments = decode_fragments(&fetch(p, &line.uri));
            let video = fragments[0]
                .iter()
                .find(|r| r.track_id == 1)
                .expect("video");
            assert_eq!(
                video.samples.len(),
                1,
                "part longer than PART-TARGET: {line:?}"
            );
        }
    }
}

pub fn parse_multivariant(text: &str) -> m3u8_rs::MasterPlaylist {
    match m3u8_rs::parse_playlist_res(text.as_bytes()) {
        Ok(m3u8_rs::Playlist::MasterPlaylist(m)) => m,
        other => panic!("not a multivariant playlist: {other:?}\n{text}"),
    }
}

pub fn fetch(p: &LivePackager, name: &str) -> Vec<u8> {
    match p.lookup(name) {
        Lookup::Found(r) => r.bytes.to_vec(),
        other => panic!("{name}: {other:?}"),
    }
}

/// One track run of a fragment, decoded with mp4-atom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub track_id: u32,
    pub base_decode_time: u64,
    /// (duration, size, sync)
    pub samples: Vec<(u32, u32, bool)>,
}

/// Decodes a run of `moof`+`mdat` pairs with mp4-atom, checking that every
/// `trun` points inside its `mdat`.
pub fn decode_fragments(bytes: &[u8]) -> Vec<Vec<Run>> {
    let mut cur = Cursor::new(bytes);
    let mut out = Vec::new();
    let mut pending: Option<(Moof, u64)> = None;
    while (cur.position() as usize) < bytes.len() {
        let start = cur.position();
        let atom = Any::decode(&mut cur).expect("valid box");
        match atom {
            Any::Moof(moof) => {
                assert!(pending.is_none(), "moof without mdat");
                pending = Some((moof, start));
            }
            Any::Mdat(mdat) => {
                let (moof, moof_start) = pending.take().expect("mdat without moof");
                let mdat_payload_start = cur.position() - mdat.data.len() as u64;
                let mut runs = Vec::new();
                for traf in &moof.traf {
                    assert!(traf.tfhd.default_base_is_moof);
                    let tfdt = traf.tfdt.as_ref().expect("tfdt").base_media_decode_time;
                    assert_eq!(traf.trun.len(), 1);
                    let trun = &traf.trun[0];
                    let offset = moof_start + trun.data_offset.expect("data offset") as u64;
                    let samples: Vec<(u32, u32, bool)> = trun
                        .samples
                        .iter()
                        .map(|e| {
                            let flags = e.flags.unwrap_or(0x0200_0000);
                            (
                                e.duration.expect("duration"),
                                e.size.expect("size"),
                                flags & 0x0001_0000 == 0,
                            )
                        })
                        .collect();
                    let total: u64 = samples.iter().map(|s| u64::from(s.1)).sum();
                    assert!(offset >= mdat_payload_start);
                    assert!(offset + total <= cur.position(), "trun data outside mdat");
                    runs.push(Run {
                        track_id: traf.tfhd.track_id,
                        base_decode_time: tfdt,
                        samples,
                    });
                }
                out.push(runs);
            }
            other => panic!("unexpected box in fragment: {other:?}"),
        }
    }
    assert!(pending.is_none());
    out
}

/// Decodes an init segment: returns (width, height, avc profile, opus channels).
pub fn decode_init(bytes: &[u8]) -> (u16, u16, u8, u8) {
    let mut cur = Cursor::new(bytes);
    let ftyp = Any::decode(&mut cur).expect("ftyp");
    assert!(matches!(ftyp, Any::Ftyp(_)));
    let moov = Moov::decode(&mut cur).expect("moov");
    assert_eq!(cur.position() as usize, bytes.len());
    assert_eq!(moov.trak.len(), 2);
    assert_eq!(moov.mvex.as_ref().expect("mvex").trex.len(), 2);
    let mut video = None;
    let mut channels = None;
    for trak in &moov.trak {
        match &trak.mdia.minf.stbl.stsd.codecs[..] {
            [Codec::Avc1(avc1)] => {
                assert_eq!(trak.mdia.mdhd.timescale, 90_000);
                assert_eq!(avc1.avcc.length_size, 4);
                video = Some((
                    avc1.visual.width,
                    avc1.visual.height,
                    avc1.avcc.avc_profile_indication,
                ));
            }
            [Codec::Opus(opus)] => {
                assert_eq!(trak.mdia.mdhd.timescale, 48_000);
                assert_eq!(opus.dops.input_sample_rate, 48_000);
                channels = Some(opus.dops.output_channel_count);
            }
            other => panic!("unexpected sample entry {other:?}"),
        }
    }
    let (w, h, profile) = video.expect("video track");
    (w, h, profile, channels.expect("audio track"))
}

pub fn new_packager() -> LivePackager {
    LivePackager::new(config()).expect("config")
}
