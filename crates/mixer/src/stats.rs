//! Counters, so operators and tests can see what the mixer did and dropped.

use std::time::Duration;

/// Room-wide counters since the mixer was created.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MixerStats {
    /// Frames produced.
    pub ticks: u64,
    /// Frames not produced because `tick` was called too late.
    pub ticks_skipped: u64,
    /// Packets handed to `push_packet`, whatever became of them.
    pub packets_received: u64,
    pub bytes_received: u64,
    /// Packets queued for playout.
    pub packets_buffered: u64,
    pub unknown_source: u64,
    pub empty_payload: u64,
    pub payload_too_large: u64,
    /// Payloads whose Opus framing did not parse, or that the decoder refused.
    pub corrupt_payload: u64,
    pub bad_duration: u64,
    /// RFC 6464 levels out of range (ignored, packet kept).
    pub bad_level: u64,
    pub late: u64,
    pub duplicate: u64,
    pub overflow: u64,
    pub timestamp_outliers: u64,
    /// Source timelines re-anchored on a confirmed timestamp jump.
    pub timestamp_jumps: u64,
    /// Jitter-buffer nudges: frames skipped (sender ahead / delay shrank) and
    /// frames held (sender behind / delay grew).
    pub frames_skipped: u64,
    pub frames_held: u64,
    /// Playout positions set afresh because they were far off.
    pub reanchors: u64,
    /// Ticks in which the tick clock was moved towards the dominant
    /// speaker's packet phase (at most 1 ms each).
    pub phase_corrections: u64,
    /// Packets decoded into the mix.
    pub decodes: u64,
    /// Packets decoded only to prime a newly selected source's decoder.
    pub prime_decodes: u64,
    /// Concealment from Opus PLC.
    pub plc_frames: u64,
    /// Concealment using the following packet (in-band FEC when present).
    pub fec_frames: u64,
    /// Concealment with plain silence (long gaps, no decoder).
    pub silence_frames: u64,
    /// Silence played for a selected speaker in DTX: gaps after a DTX packet
    /// are the sender's silence, not loss, so they are not concealed.
    pub dtx_frames: u64,
    /// Encodes sent to listeners (K+1 at most per tick).
    pub encodes: u64,
    /// Encodes that only warmed up a slot encoder for a new speaker.
    pub warmup_encodes: u64,
    pub encode_errors: u64,
    pub decoder_errors: u64,
    /// Streams (full mix or mix-minus) whose limiter reduced gain in a tick.
    pub limited_frames: u64,
    /// Listeners that changed stream (full mix <-> own mix-minus).
    pub stream_switches: u64,
    /// Server-added latency of every frame mixed from a speaker.
    pub latency: LatencyHistogram,
}

/// Number of 1 ms buckets in a [`LatencyHistogram`]; the last one also holds
/// everything longer.
pub const LATENCY_BUCKETS: usize = 256;

/// Server-added audio latency, in fixed 1 ms buckets (no allocation).
///
/// One value per frame a selected speaker contributes to the mix (decoded,
/// FEC or PLC; not plain silence): the time from the arrival of the packet
/// that holds the frame's first sample to the tick that plays it out: the
/// jitter-buffer wait, what the mixer adds on top of the network (its
/// re-encode's algorithmic delay comes on top). For concealed audio, whose
/// packet never arrived, the arrival it would have had at the source's
/// smallest observed delay is used.
#[derive(Clone, PartialEq, Eq)]
pub struct LatencyHistogram {
    counts: [u64; LATENCY_BUCKETS],
    total: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            counts: [0; LATENCY_BUCKETS],
            total: 0,
        }
    }
}

impl std::fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyHistogram")
            .field("count", &self.total)
            .field("p50", &self.p50())
            .field("p95", &self.p95())
            .finish()
    }
}

impl LatencyHistogram {
    /// Counts one frame with this latency.
    pub fn record(&mut self, latency: Duration) {
        let ms = usize::try_from(latency.as_millis()).unwrap_or(usize::MAX);
        self.counts[ms.min(LATENCY_BUCKETS - 1)] += 1;
        self.total += 1;
    }

    /// Counts one frame whose latency is `samples` at 48 kHz (negative
    /// values count as zero).
    pub(crate) fn record_samples(&mut self, samples: i64) {
        let ms = usize::try_from(samples.max(0) / 48).unwrap_or(usize::MAX);
        self.counts[ms.min(LATENCY_BUCKETS - 1)] += 1;
        self.total += 1;
    }

    /// Frames counted.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Frames per 1 ms bucket: `buckets()[i]` counts latencies in
    /// `i..i+1` ms (the last bucket: that long or longer).
    pub fn buckets(&self) -> &[u64; LATENCY_BUCKETS] {
        &self.counts
    }

    /// The latency that `q` (0..=1) of the frames did not exceed, as the
    /// upper edge of its 1 ms bucket; `None` before any frame was mixed.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (ms, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(Duration::from_millis(ms as u64 + 1));
            }
        }
        Some(Duration::from_millis(LATENCY_BUCKETS as u64))
    }

    pub fn p50(&self) -> Option<Duration> {
        self.quantile(0.5)
    }

    pub fn p95(&self) -> Option<Duration> {
        self.quantile(0.95)
    }

    /// Adds `other`'s counts (e.g. to sum several rooms).
    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
    }
}

/// One source's counters and jitter-buffer state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SourceStats {
    pub packets_received: u64,
    pub packets_buffered: u64,
    /// Dropped for any reason (bad payload, late, duplicate, overflow, outlier).
    pub packets_dropped: u64,
    pub late: u64,
    pub corrupt_payload: u64,
    /// Sequence numbers never seen.
    pub lost_estimate: u64,
    pub decodes: u64,
    pub plc_frames: u64,
    pub fec_frames: u64,
    /// Gaps after its DTX packets, played as silence while selected.
    pub dtx_frames: u64,
    pub frames_skipped: u64,
    pub frames_held: u64,
    pub timestamp_jumps: u64,
    /// Packets waiting in the jitter buffer.
    pub buffered: usize,
    /// Current adaptive playout delay, milliseconds.
    pub target_delay_ms: f32,
    pub talking: bool,
    pub selected: bool,
    /// Smoothed loudness, dB above the -127 dBov floor.
    pub loudness_db: f32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_quantiles_use_bucket_upper_edges() {
        let mut h = LatencyHistogram::default();
        assert_eq!(h.p50(), None);
        // 90 frames at 25.x ms, 10 at 41.x ms.
        for _ in 0..90 {
            h.record(Duration::from_micros(25_400));
        }
        for _ in 0..10 {
            h.record_samples(41 * 48 + 20);
        }
        assert_eq!(h.count(), 100);
        assert_eq!(h.buckets()[25], 90);
        assert_eq!(h.buckets()[41], 10);
        assert_eq!(h.p50(), Some(Duration::from_millis(26)));
        assert_eq!(h.quantile(0.9), Some(Duration::from_millis(26)));
        assert_eq!(h.p95(), Some(Duration::from_millis(42)));
        assert_eq!(h.quantile(1.0), Some(Duration::from_millis(42)));
        assert_eq!(h.quantile(0.0), Some(Duration::from_millis(26)));
    }

    #[test]
    fn latency_extremes_are_clamped_and_merge_adds() {
        let mut h = LatencyHistogram::default();
        h.record_samples(-500);
        h.record(Duration::from_secs(10));
        assert_eq!(h.buckets()[0], 1);
        assert_eq!(h.buckets()[LATENCY_BUCKETS - 1], 1);
        let mut sum = LatencyHistogram::default();
        sum.merge(&h);
        sum.merge(&h);
        assert_eq!(sum.count(), 4);
        assert_eq!(
            sum.p95(),
            Some(Duration::from_millis(LATENCY_BUCKETS as u64))
        );
    }
}
