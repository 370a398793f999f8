//! Counters, so operators and tests can see what the mixer did and dropped.

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
