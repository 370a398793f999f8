//! Real media through the packager, checked by FFmpeg: a clip encoded with
//! libx264 (Annex-B) and libopus (Ogg) at test time is packaged, the init
//! segment plus every segment are concatenated, and ffprobe must see H.264
//! and Opus with gap-free timestamps; ffmpeg must decode it without errors,
//! and its HLS demuxer must read the finished playlist.
//!
//! FFmpeg is required (scripts/setup.sh installs it); without it this test
//! fails with a message saying so.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use confcast_live::{Event, LivePackager, Lookup};

const SECONDS: u32 = 7;

fn require(tool: &str) {
    let ok = Command::new(tool)
        .arg("-version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "`{tool}` is required for this test but was not found on PATH; \
         install FFmpeg (scripts/setup.sh does)"
    );
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Splits an Annex-B elementary stream into access units.
fn access_units(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut units: Vec<Vec<u8>> = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    let mut has_slice = false;
    for (k, &s) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(stream.len(), |&n| n - 3);
        while end > s && stream[end - 1] == 0 {
            end -= 1;
        }
        let nal = &stream[s..end];
        let Some(&header) = nal.first() else { continue };
        let kind = header & 0x1f;
        let is_slice = kind == 1 || kind == 5;
        let first_slice = is_slice && nal.get(1).is_some_and(|b| b & 0x80 != 0);
        let starts_unit = matches!(kind, 6..=9) || first_slice;
        if starts_unit && has_slice {
            units.push(std::mem::take(&mut current));
            has_slice = false;
        }
        current.extend_from_slice(&[0, 0, 0, 1]);
        current.extend_from_slice(nal);
        has_slice |= is_slice;
    }
    if has_slice {
        units.push(current);
    }
    units
}

/// Opus packets from an Ogg file, and the pre-skip from its OpusHead.
fn ogg_opus_packets(data: &[u8]) -> (u16, Vec<Vec<u8>>) {
    let mut packets = Vec::new();
    let mut partial = Vec::new();
    let mut pos = 0;
    while pos + 27 <= data.len() {
        assert_eq!(&data[pos..pos + 4], b"OggS", "Ogg page sync");
        let segments = data[pos + 26] as usize;
        let table = &data[pos + 27..pos + 27 + segments];
        let mut body = pos + 27 + segments;
        for &len in table {
            partial.extend_from_slice(&data[body..body + len as usize]);
            body += len as usize;
            if len < 255 {
                packets.push(std::mem::take(&mut partial));
            }
        }
        pos = body;
    }
    assert!(packets[0].starts_with(b"OpusHead"));
    assert!(packets[1].starts_with(b"OpusTags"));
    let pre_skip = u16::from_le_bytes([packets[0][10], packets[0][11]]);
    (pre_skip, packets.split_off(2))
}

fn key_values(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// (pts, duration) of every packet of one stream, in its time base (the
/// mov demuxer reports no per-packet duration for Opus).
fn packets(file: &Path, stream: &str) -> Vec<(i64, Option<i64>)> {
    let csv = run(Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            stream,
            "-show_entries",
            "packet=pts,duration",
            "-of",
            "csv=p=0",
        ])
        .arg(file));
    csv.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut fields = l.split(',');
            let pts = fields.next().and_then(|f| f.parse().ok());
            let dur = fields.next().and_then(|f| f.parse().ok());
            (pts.unwrap_or_else(|| panic!("no pts in {l:?}")), dur)
        })
        .collect()
}

#[test]
fn real_h264_and_opus_package_into_playable_fmp4() {
    require("ffmpeg");
    require("ffprobe");
    let dir = tempfile::tempdir().expect("temp dir");
    let h264 = dir.path().join("in.h264");
    let ogg = dir.path().join("in.ogg");
    let secs = SECONDS.to_string();
    run(Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc=size=320x240:rate=30:duration={secs}"))
        .args([
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libx264",
            "-profile:v",
            "baseline",
            "-bf",
            "0",
            "-g",
            "30",
            "-f",
            "h264",
        ])
        .arg(&h264));
    run(Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency=440:sample_rate=48000:duration={secs}"
        ))
        .args([
            "-ac",
            "2",
            "-c:a",
            "libopus",
            "-b:a",
            "64k",
            "-frame_duration",
            "20",
            "-f",
            "ogg",
        ])
        .arg(&ogg));

    let units = access_units(&std::fs::read(&h264).expect("read h264"));
    assert_eq!(units.len(), 30 * SECONDS as usize);
    let (pre_skip, opus_packets) = ogg_opus_packets(&std::fs::read(&ogg).expect("read ogg"));
    assert!(opus_packets.len() >= 50 * SECONDS as usize);

    let mut cfg = config();
    cfg.audio.pre_skip = pre_skip;
    let mut p = LivePackager::new(cfg).expect("config");
    let mut audio = opus_packets.iter().enumerate().peekable();
    for (i, unit) in units.iter().enumerate() {
        let video_ts = i as u64 * 3000;
        while let Some((j, packet)) = audio.peek() {
            let audio_ts = *j as u64 * 960;
            if audio_ts * 15 > video_ts * 8 {
                break;
            }
            p.push_audio(audio_ts, packet).expect("opus accepted");
            audio.next();
        }
        p.push_video(video_ts, unit, at(video_ts))
            .expect("access unit accepted");
    }
    p.stop();
    let events: Vec<Event> = std::iter::from_fn(|| p.poll_event()).collect();
    assert_eq!(events.last(), Some(&Event::Ended));

    // init + every segment, concatenated, is one fragmented MP4 file.
    let text = p.media_playlist().expect("playlist");
    let parsed = parse_media(&text);
    let segs = &parsed.playlist.segments;
    assert_eq!(segs.len(), 4, "{text}"); // 2 + 2 + 2 + 1 s
    let mut all = fetch(&p, "init0.mp4");
    std::fs::write(dir.path().join("init0.mp4"), &all).expect("write");
    for seg in segs {
        let Lookup::Found(r) = p.lookup(&seg.uri) else {
            panic!("{}", seg.uri)
        };
        std::fs::write(dir.path().join(&seg.uri), &r.bytes).expect("write");
        all.extend_from_slice(&r.bytes);
    }
    let file = dir.path().join("all.mp4");
    std::fs::write(&file, &all).expect("write");

    let streams = key_values(&run(Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,codec_name,width,height,sample_rate,channels",
            "-of",
            "default=nw=1",
        ])
        .arg(&file)));
    let get = |k: &str| -> Vec<&str> {
        streams
            .iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(get("codec_name"), vec!["h264", "opus"], "{streams:?}");
    assert_eq!(get("codec_type"), vec!["video", "audio"]);
    assert_eq!(get("width"), vec!["320"]);
    assert_eq!(get("height"), vec!["240"]);
    assert_eq!(get("sample_rate"), vec!["48000"]);
    assert_eq!(get("channels"), vec!["2"]);

    // Video: every frame, 1/30 s apart, from 0, no gap.
    let video = packets(&file, "v");
    assert_eq!(video.len(), units.len());
    for (i, (pts, dur)) in video.iter().enumerate() {
        assert_eq!(*pts, i as i64 * 3000, "video pts {i}");
        assert_eq!(*dur, Some(3000));
    }
    // Audio: contiguous 20 ms packets from 0 up to the end of the video.
    let audio_pts = packets(&file, "a");
    assert!(
        audio_pts.len() >= 50 * SECONDS as usize - 2,
        "{}",
        audio_pts.len()
    );
    for (i, (pts, _)) in audio_pts.iter().enumerate() {
        assert_eq!(*pts, i as i64 * 960, "audio pts {i}");
    }

    // It decodes without a single error.
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&file)
        .args(["-f", "null", "-"])
        .output()
        .expect("spawn ffmpeg");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "decode errors");

    // FFmpeg's HLS demuxer reads the finished playlist and its files.
    let playlist = dir.path().join("live.m3u8");
    std::fs::write(&playlist, &text).expect("write playlist");
    let frames = run(Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-allowed_extensions",
            "ALL",
            "-select_streams",
            "v",
            "-count_packets",
            "-show_entries",
            "stream=nb_read_packets,codec_name",
            "-of",
            "default=nw=1",
        ])
        .arg(&playlist));
    let kv = key_values(&frames);
    assert!(
        kv.contains(&("codec_name".into(), "h264".into())),
        "{frames}"
    );
    assert!(
        kv.contains(&("nb_read_packets".into(), units.len().to_string())),
        "{frames}"
    );
}
