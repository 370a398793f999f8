//! What recording costs one broadcast: the same synthetic Program (H.264 at
//! a chosen bit rate, 30 fps, a keyframe every 2 s, plus 20 ms Opus) is
//! packaged twice as fast as it goes, once without and once with recording
//! into a local folder through the real writer; the difference in process
//! CPU time is the recording's, and the bytes it wrote are counted from the
//! stored objects. Linux only (reads /proc/self/stat).
//!
//! `cargo run --release -p confcast-server --example recording_cost -- [SECONDS] [KBIT/S] [FOLDER]`

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use confcast_live::{LiveConfig, LivePackager};
use confcast_server::clock::Clock;
use confcast_server::notify::Hub;
use confcast_server::recording::{storage, RecordingConfig, Recordings};
use confcast_store::Store;

const SPS: &[u8] = &[
    0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42,
    0xa4, 0x80,
];
const PPS: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];

/// User + system CPU time of this process.
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(") ").map(|(_, r)| r.split(' ').collect()).unwrap_or_default();
    let ticks: u64 = fields.get(11).and_then(|u| u.parse().ok()).unwrap_or(0) + fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn unit(frame: u64, bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes + 64);
    if frame.is_multiple_of(60) {
        for nal in [SPS, PPS] {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(nal);
        }
        out.extend_from_slice(&[0, 0, 0, 1, 0x65, 0x88, 0x84]);
    } else {
        out.extend_from_slice(&[0, 0, 0, 1, 0x41, 0x9a]);
    }
    out.resize(out.len() + bytes, 0x5a);
    out
}

/// Feeds `seconds` of Program into a packager (and the recording, if any);
/// returns the media bytes the packager made.
async fn run(seconds: u64, kbit: u64, mut sink: Option<confcast_server::recording::RecordingSink>) -> u64 {
    let mut packager = LivePackager::new(LiveConfig::default()).expect("config");
    let per_frame = (kbit * 1000 / 8 / 30) as usize;
    let start = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut media = 0u64;
    let mut audio_ts = 0u64;
    for frame in 0..seconds * 30 {
        let size = if frame.is_multiple_of(60) { per_frame * 4 } else { per_frame * 56 / 59 };
        let ts = frame * 3000;
        while audio_ts * 15 <= ts * 8 {
            let _ = packager.push_audio(audio_ts, &[0xfc, 0x81, 0x82, 0x83, 0x84].repeat(32));
            audio_ts += 960;
        }
        let now: SystemTime = start + Duration::from_micros(ts * 100 / 9);
        let _ = packager.push_video(ts, &unit(frame, size), now);
        let now_ms = i64::try_from(now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())).unwrap_or(0);
        while let Some(event) = packager.poll_event() {
            if let confcast_live::Event::SegmentReady { msn } = event {
                media += packager.segment_info(msn).map_or(0, |s| s.bytes.len() as u64);
            }
            if let Some(sink) = sink.as_mut() {
                sink.observe(event, &packager, now_ms);
            }
        }
        if let Some(sink) = sink.as_mut() {
            sink.flush();
        }
        if frame.is_multiple_of(30) {
            tokio::task::yield_now().await;
        }
    }
    packager.stop();
    while let Some(event) = packager.poll_event() {
        if let Some(sink) = sink.as_mut() {
            sink.observe(event, &packager, 0);
        }
    }
    if let Some(sink) = sink {
        sink.finish().await;
    }
    media
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(600);
    let kbit: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2500);
    let dir = tempfile::tempdir().expect("temp dir");
    let folder = args.get(3).map_or_else(|| dir.path().join("recordings"), std::path::PathBuf::from);

    let store = Store::open_in_memory().await.expect("store");
    let (user, room) = store.register("bench", "Bench", "x", 0).await.expect("user");
    let broadcast = store.start_broadcast(&room.id, "Bench", "", user.id, 0).await.expect("broadcast");
    let config = RecordingConfig { queue: 1 << 20, ..RecordingConfig::default() };
    let recordings = Recordings::new(
        storage::open(folder.to_str().expect("utf-8 path")).expect("storage"),
        store.clone(),
        Arc::new(Hub::default()),
        Clock::system(),
        config,
    );

    let (cpu0, t0) = (cpu(), Instant::now());
    let media = run(seconds, kbit, None).await;
    let (cpu_live, wall_live) = (cpu() - cpu0, t0.elapsed());

    let sink = recordings.begin(&broadcast, user.id).await;
    let (cpu0, t0) = (cpu(), Instant::now());
    run(seconds, kbit, sink).await;
    // The writer finishes the recording after the last action.
    let ready = async {
        loop {
            if store.recording(&broadcast.id).await.is_ok_and(|r| r.state != confcast_store::RecordingState::Recording) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    ready.await;
    let (cpu_both, wall_both) = (cpu() - cpu0, t0.elapsed());
    let recording = store.recording(&broadcast.id).await.expect("recording");
    let stored: u64 = std::fs::read_dir(folder.join(&broadcast.id))
        .expect("recording folder")
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    // Parts, then their segment: about twice the media.
    let written = 2 * media + stored - media;
    let s = seconds as f64;
    println!("program: {seconds} s at {kbit} kbit/s video + Opus; media made: {:.1} kB/s", media as f64 / s / 1000.0);
    println!("packaging only:      CPU {:>7.1} ms per broadcast second (wall {:.2} s)", cpu_live.as_secs_f64() * 1000.0 / s, wall_live.as_secs_f64());
    println!("packaging+recording: CPU {:>7.1} ms per broadcast second (wall {:.2} s)", cpu_both.as_secs_f64() * 1000.0 / s, wall_both.as_secs_f64());
    println!("recording alone:     CPU {:>7.1} ms per broadcast second", (cpu_both.saturating_sub(cpu_live)).as_secs_f64() * 1000.0 / s);
    println!("written to storage:  {:.1} kB/s (parts, then segments; plus inits and playlist)", written as f64 / s / 1000.0);
    println!("kept after finishing: {:.1} kB/s ({} bytes, state {})", stored as f64 / s / 1000.0, stored, recording.state.as_str());
}
