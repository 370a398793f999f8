//! Tunables of one room's mixer. The defaults suit a WebRTC conference.

use std::time::Duration;

/// Configuration for [`crate::Mixer::new`].
#[derive(Clone, Debug)]
pub struct MixerConfig {
    /// K: how many speakers are decoded and mixed at once. Each of them gets a
    /// mix-minus encode; everyone else shares the full-mix encode. Clamped to
    /// 1..=16.
    pub max_speakers: usize,

    /// Lower bound of a source's adaptive playout delay.
    pub jitter_min_delay: Duration,
    /// Upper bound of a source's adaptive playout delay; packets that would
    /// need more are dropped as late.
    pub jitter_max_delay: Duration,

    /// Bitrate of every outgoing Opus stream, bits/s.
    pub bitrate: i32,
    /// Opus encoder complexity 0..=10 (CPU vs quality of the K+1 encodes).
    pub complexity: i32,
    /// Put in-band FEC into outgoing streams (helps receivers on lossy links).
    pub encoder_fec: bool,
    /// Loss rate the outgoing FEC is tuned for, percent.
    pub expected_loss_percent: i32,
    /// Use in-band FEC of the next packet to rebuild a lost incoming one.
    pub decoder_fec: bool,
    /// Encode the first frame a listener receives from a different encoder
    /// with inter-frame prediction off. Off by default: the encoder warm-up
    /// already makes switches clean, and measured, such frames only cost
    /// quality (see docs/mixing.md).
    pub independent_frame_on_switch: bool,

    /// A packet counts as speech when its RFC 6464 level is at or below this
    /// many -dBov (lower is louder).
    pub speech_threshold_dbov: u8,
    /// Also require the sender's voice-activity flag.
    pub use_voice_flag: bool,
    /// Level assumed for packets without the RFC 6464 extension (and longer
    /// than a DTX frame); `None` treats such sources as silent.
    pub level_without_extension: Option<u8>,
    /// Speech frames (out of the last five) before a source starts talking.
    pub talk_start_frames: u32,
    /// Silence before a talking source counts as stopped.
    pub talk_hangover: Duration,
    /// A louder source replaces the quietest selected speaker only when it is
    /// louder by this much...
    pub switch_margin_db: f32,
    /// ...for this long...
    pub switch_hold: Duration,
    /// ...and that speaker has been selected at least this long.
    pub min_speaker_time: Duration,
    /// The dominant speaker changes when another is louder by this much for
    /// `dominant_hold` (or at once when the dominant one stops talking).
    pub dominant_margin_db: f32,
    /// See `dominant_margin_db`.
    pub dominant_hold: Duration,

    /// Move the 20 ms tick clock (at most 1 ms per tick) so that the
    /// dominant speaker's packets are mixed one jitter target after they
    /// arrive, instead of up to a frame later (see docs/mixing.md).
    pub lock_tick_phase: bool,

    /// Hand out the limited full mix as PCM in each [`crate::ProgramFrame`].
    pub program_pcm: bool,
    /// When `tick` is called this far behind schedule, the missed frames are
    /// skipped instead of produced in a burst.
    pub max_catch_up: Duration,
}

impl Default for MixerConfig {
    fn default() -> Self {
        MixerConfig {
            max_speakers: 3,
            jitter_min_delay: Duration::from_millis(15),
            jitter_max_delay: Duration::from_millis(200),
            bitrate: 32_000,
            complexity: 8,
            encoder_fec: true,
            expected_loss_percent: 5,
            decoder_fec: true,
            independent_frame_on_switch: false,
            speech_threshold_dbov: 60,
            use_voice_flag: true,
            level_without_extension: Some(50),
            talk_start_frames: 3,
            talk_hangover: Duration::from_millis(500),
            switch_margin_db: 6.0,
            switch_hold: Duration::from_millis(200),
            min_speaker_time: Duration::from_millis(500),
            dominant_margin_db: 3.0,
            dominant_hold: Duration::from_millis(300),
            lock_tick_phase: true,
            program_pcm: false,
            max_catch_up: Duration::from_millis(100),
        }
    }
}

/// Number of whole ticks in `d`, at least `min`.
pub(crate) fn ticks(d: Duration, min: u32) -> u32 {
    let t = d.as_millis() / crate::FRAME_DURATION.as_millis();
    u32::try_from(t).unwrap_or(u32::MAX).max(min)
}

/// `d` in 48 kHz samples.
pub(crate) fn samples(d: Duration) -> i64 {
    i64::try_from(d.as_micros().saturating_mul(48) / 1000).unwrap_or(i64::MAX)
}
