//! Moves a room's Program media into its packager: H.264 RTP is reassembled
//! into access units, Opus frames are passed as they are. Runs as its own
//! task so packaging never blocks the media loop.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use confcast_live::{Event, H264Depacketizer};
use confcast_media::Codec;
use confcast_media::room::ProgramMedia;
use tokio::sync::mpsc;

use super::channel::LiveChannel;
use crate::recording::RecordingSink;

/// Largest access unit accepted (a 1080p keyframe fits comfortably).
const MAX_ACCESS_UNIT: usize = 4 * 1024 * 1024;
/// Keyframe requests to the Program's source are at most this frequent.
const KEYFRAME_EVERY: Duration = Duration::from_millis(500);

/// Feeds `channel` until the Program stops (the sender is dropped), then ends
/// the playlist. `want_keyframe` asks the room for a keyframe. Every packager
/// event also goes to `recording`, which never makes the feeder wait.
pub async fn run(
    channel: Arc<LiveChannel>,
    mut program: mpsc::Receiver<ProgramMedia>,
    want_keyframe: impl Fn(),
    mut recording: Option<RecordingSink>,
) {
    let mut depacketizer = H264Depacketizer::new(MAX_ACCESS_UNIT);
    let mut audio_clock = Unwrap32::default();
    let mut last_request: Option<Instant> = None;
    let mut warned_vp8 = false;
    while let Some(first) = program.recv().await {
        // Take everything already queued in one go: one lock, one wake-up.
        let mut batch = vec![first];
        while let Ok(more) = program.try_recv() {
            batch.push(more);
        }
        let keyframe_wanted = channel.with_packager(|packager| {
            for media in batch {
                match media {
                    ProgramMedia::Video { header, codec: Codec::H264, payload } => {
                        match depacketizer.push(header.sequence_number, header.timestamp, header.marker, &payload) {
                            Ok(units) => {
                                for unit in units {
                                    let _ = packager.push_video(unit.timestamp, &unit.annex_b, SystemTime::now());
                                }
                            }
                            Err(_) => metrics::counter!("program_rtp_rejected_total").increment(1),
                        }
                    }
                    ProgramMedia::Video { .. } => {
                        // VP8 cannot go into this HLS stream without transcoding.
                        if !warned_vp8 {
                            tracing::warn!(room = %channel.info.room_id, "the program video is VP8, which cannot be broadcast");
                            warned_vp8 = true;
                        }
                    }
                    ProgramMedia::Audio { rtp_timestamp, payload } => {
                        let _ = packager.push_audio(audio_clock.extend(rtp_timestamp), &payload);
                    }
                }
            }
            let mut wanted = false;
            let mut changed = false;
            let now_ms = unix_ms(SystemTime::now());
            while let Some(event) = packager.poll_event() {
                if let Some(recording) = recording.as_mut() {
                    recording.observe(event, packager, now_ms);
                }
                match event {
                    Event::KeyframeWanted => wanted = true,
                    _ => changed = true,
                }
            }
            if let Some(recording) = recording.as_mut() {
                recording.flush();
            }
            (wanted, changed)
        });
        let (wanted, changed) = keyframe_wanted;
        if changed {
            channel.changed();
        }
        if wanted && last_request.is_none_or(|t| t.elapsed() >= KEYFRAME_EVERY) {
            last_request = Some(Instant::now());
            want_keyframe();
        }
    }
    channel.with_packager(|p| {
        p.stop();
        let now_ms = unix_ms(SystemTime::now());
        while let Some(event) = p.poll_event() {
            if let Some(recording) = recording.as_mut() {
                recording.observe(event, p, now_ms);
            }
        }
    });
    channel.changed();
    if let Some(recording) = recording {
        recording.finish().await;
    }
    tracing::info!(
        room = %channel.info.room_id,
        dropped = channel.dropped.load(Ordering::Relaxed),
        "program ended"
    );
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Extends 32-bit RTP timestamps to 64 bits across wraps.
#[derive(Default)]
struct Unwrap32 {
    last: Option<u64>,
}

impl Unwrap32 {
    fn extend(&mut self, ts: u32) -> u64 {
        let extended = match self.last {
            None => u64::from(ts),
            Some(last) => {
                let delta = ts.wrapping_sub(last as u32) as i32;
                last.saturating_add_signed(i64::from(delta))
            }
        };
        self.last = Some(extended);
        extended
    }
}

#[cfg(test)]
mod tests {
    use super::Unwrap32;

    #[test]
    fn timestamps_extend_across_the_wrap() {
        let mut u = Unwrap32::default();
        assert_eq!(u.extend(u32::MAX - 959), u64::from(u32::MAX - 959));
        assert_eq!(u.extend(0), u64::from(u32::MAX) + 1);
        assert_eq!(u.extend(960), u64::from(u32::MAX) + 961);
    }
}
