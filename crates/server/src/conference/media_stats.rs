//! Media metrics of the loop: bytes in and out (counted once per batch, not
//! per packet), and once a second a look over the live rooms for what
//! published, the audio packets lost on the way in and the mixer's work.
//! Every name is documented in docs/deploy.md ("Monitoring").

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use confcast_media::fanout::Fanout;
use confcast_media::ParticipantId;
use confcast_mixer::{SourceId, LATENCY_BUCKETS};
use metrics::{Counter, Gauge, Histogram};

use super::LiveRoom;

/// How often the rooms are looked over.
const EVERY: Duration = Duration::from_secs(1);

/// Handles registered once, so the media loop's hot path never looks a
/// metric up by name.
pub(super) struct Handles {
    pub udp_in: Counter,
    pub udp_out: Counter,
    pub tcp_in: Counter,
    pub tcp_out: Counter,
    packets_in_udp: Counter,
    packets_in_tcp: Counter,
    packets_out_udp: Counter,
    packets_out_tcp: Counter,
    audio_tracks: Gauge,
    video_tracks: Gauge,
    whep_viewers: Gauge,
    audio_received: Counter,
    audio_lost: Counter,
    ticks: Counter,
    ticks_skipped: Counter,
    encodes: Counter,
    frames_skipped: Counter,
    frames_held: Counter,
    added_latency: Histogram,
}

pub(super) fn handles() -> &'static Handles {
    static HANDLES: OnceLock<Handles> = OnceLock::new();
    HANDLES.get_or_init(|| {
        // The recorder must exist before handles are taken from it.
        let _ = crate::metrics::handle();
        for gauge in ["conference_rooms", "conference_participants", "live_broadcasts"] {
            metrics::gauge!(gauge).increment(0.0);
        }
        for counter in ["whep_sessions_total", "program_units_dropped_total", "recording_bytes_written_total"] {
            metrics::counter!(counter).increment(0);
        }
        let bytes = |direction: &'static str, transport: &'static str| {
            metrics::counter!("media_bytes_total", "direction" => direction, "transport" => transport)
        };
        let packets = |direction: &'static str, transport: &'static str| {
            metrics::counter!("media_packets_total", "direction" => direction, "transport" => transport)
        };
        Handles {
            udp_in: bytes("in", "udp"),
            udp_out: bytes("out", "udp"),
            tcp_in: bytes("in", "tcp"),
            tcp_out: bytes("out", "tcp"),
            packets_in_udp: packets("in", "udp"),
            packets_in_tcp: packets("in", "tcp"),
            packets_out_udp: packets("out", "udp"),
            packets_out_tcp: packets("out", "tcp"),
            audio_tracks: metrics::gauge!("conference_published_tracks", "kind" => "audio"),
            video_tracks: metrics::gauge!("conference_published_tracks", "kind" => "video"),
            whep_viewers: metrics::gauge!("whep_viewers"),
            audio_received: metrics::counter!("conference_audio_packets_received_total"),
            audio_lost: metrics::counter!("conference_audio_packets_lost_total"),
            ticks: metrics::counter!("mixer_ticks_total"),
            ticks_skipped: metrics::counter!("mixer_ticks_skipped_total"),
            encodes: metrics::counter!("mixer_encodes_total"),
            frames_skipped: metrics::counter!("mixer_jitter_frames_skipped_total"),
            frames_held: metrics::counter!("mixer_jitter_frames_held_total"),
            added_latency: metrics::histogram!("mixer_added_latency_seconds"),
        }
    })
}

/// Counts a batch received: `packets` packets of `bytes` bytes in all.
pub(super) fn received(tcp: bool, packets: usize, bytes: usize) {
    if packets == 0 {
        return;
    }
    let h = handles();
    let (b, p) = if tcp { (&h.tcp_in, &h.packets_in_tcp) } else { (&h.udp_in, &h.packets_in_udp) };
    b.increment(bytes as u64);
    p.increment(packets as u64);
}

/// Counts a batch handed to the network.
pub(super) fn sent(tcp: bool, packets: usize, bytes: usize) {
    if packets == 0 {
        return;
    }
    let h = handles();
    let (b, p) = if tcp { (&h.tcp_out, &h.packets_out_tcp) } else { (&h.udp_out, &h.packets_out_udp) };
    b.increment(bytes as u64);
    p.increment(packets as u64);
}

/// Moves what the mixer's 1 ms latency buckets gained since the last look
/// into the Prometheus histogram (each frame at its bucket's middle).
fn record_latency(histogram: &Histogram, buckets: &[u64; LATENCY_BUCKETS], seen: &mut Vec<u64>) {
    seen.resize(LATENCY_BUCKETS, 0);
    for (ms, (&now, before)) in buckets.iter().zip(seen.iter_mut()).enumerate() {
        let new = now.saturating_sub(*before);
        *before = now;
        let seconds = (ms as f64 + 0.5) / 1000.0;
        for _ in 0..new {
            histogram.record(seconds);
        }
    }
}

/// What one room's mixer had counted at the last look.
#[derive(Default)]
struct Seen {
    ticks: u64,
    ticks_skipped: u64,
    encodes: u64,
    frames_skipped: u64,
    frames_held: u64,
    /// The mixer's added-latency histogram (1 ms buckets).
    latency: Vec<u64>,
    /// Per participant (mixer source): packets received and lost.
    sources: HashMap<u64, (u64, u64)>,
}

/// The once-a-second look over the rooms.
#[derive(Default)]
pub(super) struct MediaStats {
    next: Option<Instant>,
    rooms: HashMap<String, Seen>,
}

impl MediaStats {
    /// Looks over the rooms when a second has passed since the last look.
    pub fn maybe_scan(&mut self, now: Instant, rooms: &HashMap<String, LiveRoom>, viewers: &HashMap<String, Fanout>) {
        if self.next.is_some_and(|next| now < next) {
            return;
        }
        self.next = Some(now + EVERY);
        let h = handles();
        let (mut audio, mut video) = (0usize, 0usize);
        self.rooms.retain(|id, _| rooms.contains_key(id));
        for (id, live) in rooms {
            let seen = self.rooms.entry(id.clone()).or_default();
            let mixer = live.room.mixer();
            let stats = mixer.stats();
            h.ticks.increment(stats.ticks.saturating_sub(seen.ticks));
            h.ticks_skipped.increment(stats.ticks_skipped.saturating_sub(seen.ticks_skipped));
            h.encodes.increment(stats.encodes.saturating_sub(seen.encodes));
            (seen.ticks, seen.ticks_skipped, seen.encodes) = (stats.ticks, stats.ticks_skipped, stats.encodes);
            h.frames_skipped.increment(stats.frames_skipped.saturating_sub(seen.frames_skipped));
            h.frames_held.increment(stats.frames_held.saturating_sub(seen.frames_held));
            (seen.frames_skipped, seen.frames_held) = (stats.frames_skipped, stats.frames_held);
            record_latency(&h.added_latency, stats.latency.buckets(), &mut seen.latency);
            let selection = live.room.router().selection();
            seen.sources.retain(|source, _| live.people.contains_key(&ParticipantId(*source)));
            for participant in live.people.keys() {
                if selection.video_of(*participant).is_some() {
                    video += 1;
                }
                let Some(source) = mixer.source_stats(SourceId(participant.0)) else { continue };
                let (received, lost) = seen.sources.entry(participant.0).or_default();
                if source.packets_received > *received {
                    audio += 1;
                }
                h.audio_received.increment(source.packets_received.saturating_sub(*received));
                h.audio_lost.increment(source.lost_estimate.saturating_sub(*lost));
                (*received, *lost) = (source.packets_received, source.lost_estimate);
            }
        }
        h.audio_tracks.set(audio as f64);
        h.video_tracks.set(video as f64);
        h.whep_viewers.set(viewers.values().map(Fanout::len).sum::<usize>() as f64);
    }
}
