//! Per-source talk detection from RFC 6464 levels, with hysteresis.
//!
//! Runs on packets as they arrive (not as they are played): the decision is
//! then taken a jitter-buffer delay before the audio reaches playout, so a
//! newly selected speaker is decoded from (almost) the start of the word.
//! It is advanced once per tick so a source that stops sending also stops
//! talking. A packet counts for as many 20 ms frames as it lasts (a 60 ms
//! packet is three speech frames; two packets arriving together are two),
//! so packet duration and network bunching do not change the decisions.

use crate::packet::AudioLevel;

/// Tunables, derived from [`crate::MixerConfig`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct DetectorConfig {
    pub speech_threshold_dbov: u8,
    pub use_voice_flag: bool,
    /// Voiced frames out of the last five needed to start talking.
    pub start_frames: u32,
    /// Ticks without a voiced frame before talking stops.
    pub hangover_ticks: u32,
}

/// Change of talking state of one source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TalkEdge {
    Started,
    Stopped,
}

/// Most frames of arrived audio credited ahead (bounds what a burst or a
/// sender faster than real time can add).
const MAX_CREDIT: u32 = 6;

#[derive(Debug, Default)]
pub(crate) struct ActivityDetector {
    /// Loudest level (dB above silence) of audio credited but not yet
    /// consumed by ticks, and for how many frames.
    held_loudness: f32,
    held_frames: u32,
    /// Frames of speech credited but not yet consumed.
    held_voiced: u32,
    /// Bit i: frame i ticks ago was voiced.
    voiced_history: u8,
    silent_ticks: u32,
    speaking: bool,
    /// Smoothed loudness, dB above the -127 dBov floor; ranks speakers.
    smoothed: f32,
    /// The sender has set the voice-activity flag at least once. RFC 6464
    /// lets a sender leave the flag unused (some, such as aiortc, always
    /// send it clear): until it is seen set, the level alone decides.
    voice_flag_seen: bool,
}

impl ActivityDetector {
    /// Notes one packet's level (already validated); `samples` is its
    /// duration.
    pub fn on_packet(&mut self, level: AudioLevel, samples: i64, cfg: &DetectorConfig) {
        let samples = u64::try_from(samples).unwrap_or(0).max(1);
        let frames = u32::try_from(samples.div_ceil(crate::FRAME_SAMPLES as u64))
            .unwrap_or(MAX_CREDIT)
            .clamp(1, MAX_CREDIT);
        let loudness = f32::from(127u8.saturating_sub(level.dbov));
        self.voice_flag_seen |= level.voice;
        let flag_counts = cfg.use_voice_flag && self.voice_flag_seen;
        let voiced = level.dbov <= cfg.speech_threshold_dbov && (level.voice || !flag_counts);
        self.held_loudness = if self.held_frames == 0 {
            loudness
        } else {
            self.held_loudness.max(loudness)
        };
        self.held_frames = (self.held_frames + frames).min(MAX_CREDIT);
        if voiced {
            self.held_voiced = (self.held_voiced + frames).min(MAX_CREDIT);
        }
    }

    /// Advances one frame. Returns a talking edge, if any.
    pub fn on_tick(&mut self, cfg: &DetectorConfig) -> Option<TalkEdge> {
        let loudness = if self.held_frames > 0 {
            self.held_loudness
        } else {
            0.0
        };
        self.held_frames = self.held_frames.saturating_sub(1);
        let voiced = self.held_voiced > 0;
        self.held_voiced = self.held_voiced.saturating_sub(1);
        // Fast attack, slow release: a word's onset ranks at once, the gaps
        // between syllables don't drop it down the ranking.
        let alpha = if loudness > self.smoothed { 0.5 } else { 0.06 };
        self.smoothed += alpha * (loudness - self.smoothed);

        self.voiced_history = (self.voiced_history << 1) | u8::from(voiced);
        if voiced {
            self.silent_ticks = 0;
        } else {
            self.silent_ticks = self.silent_ticks.saturating_add(1);
        }
        let recent = (self.voiced_history & 0b1_1111).count_ones();
        if !self.speaking && recent >= cfg.start_frames.clamp(1, 5) {
            self.speaking = true;
            return Some(TalkEdge::Started);
        }
        if self.speaking && self.silent_ticks >= cfg.hangover_ticks {
            self.speaking = false;
            return Some(TalkEdge::Stopped);
        }
        None
    }

    pub fn speaking(&self) -> bool {
        self.speaking
    }

    /// Smoothed loudness in dB above silence (0..=127).
    pub fn loudness(&self) -> f32 {
        self.smoothed
    }
}

/// Whether a packet's level marks it as not worth hearing (used to pick
/// where a jitter-buffer skip or hold is least audible).
pub(crate) fn is_quiet(level: Option<Option<AudioLevel>>, threshold: u8) -> bool {
    match level {
        None => true,        // nothing queued at playout
        Some(None) => false, // no level: assume it matters
        Some(Some(l)) => l.dbov > threshold || !l.voice,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: DetectorConfig = DetectorConfig {
        speech_threshold_dbov: 60,
        use_voice_flag: true,
        start_frames: 3,
        hangover_ticks: 25,
    };

    fn frame(d: &mut ActivityDetector, dbov: Option<u8>) -> Option<TalkEdge> {
        if let Some(dbov) = dbov {
            d.on_packet(
                AudioLevel {
                    dbov,
                    voice: dbov <= 60,
                },
                960,
                &CFG,
            );
        }
        d.on_tick(&CFG)
    }

    #[test]
    fn one_loud_packet_does_not_start_talking() {
        let mut d = ActivityDetector::default();
        assert_eq!(frame(&mut d, Some(20)), None);
        for _ in 0..10 {
            assert_eq!(frame(&mut d, Some(127)), None);
        }
        assert!(!d.speaking());
    }

    #[test]
    fn talk_starts_after_three_frames_and_survives_short_pauses() {
        let mut d = ActivityDetector::default();
        assert_eq!(frame(&mut d, Some(20)), None);
        assert_eq!(frame(&mut d, Some(20)), None);
        assert_eq!(frame(&mut d, Some(20)), Some(TalkEdge::Started));
        for _ in 0..20 {
            assert_eq!(frame(&mut d, Some(127)), None);
        }
        assert_eq!(frame(&mut d, Some(25)), None);
        assert!(d.speaking());
    }

    #[test]
    fn a_sender_that_never_sets_the_voice_flag_is_judged_by_its_level() {
        let mut d = ActivityDetector::default();
        let loud_unflagged = AudioLevel { dbov: 20, voice: false };
        for _ in 0..3 {
            d.on_packet(loud_unflagged, 960, &CFG);
            d.on_tick(&CFG);
        }
        assert!(d.speaking(), "loud without the flag counts while the flag is unused");

        // Once the sender uses the flag, a clear flag means no speech.
        let mut d = ActivityDetector::default();
        d.on_packet(AudioLevel { dbov: 20, voice: true }, 960, &CFG);
        d.on_tick(&CFG);
        for _ in 0..40 {
            d.on_packet(loud_unflagged, 960, &CFG);
            d.on_tick(&CFG);
        }
        assert!(!d.speaking());
    }

    #[test]
    fn long_packets_count_for_their_duration() {
        let mut d = ActivityDetector::default();
        let level = AudioLevel {
            dbov: 20,
            voice: true,
        };
        d.on_packet(level, 2880, &CFG); // one 60 ms packet every third tick
        assert_eq!(d.on_tick(&CFG), None);
        assert_eq!(d.on_tick(&CFG), None);
        assert_eq!(d.on_tick(&CFG), Some(TalkEdge::Started));
        for _ in 0..10 {
            d.on_packet(level, 2880, &CFG);
            for _ in 0..3 {
                assert_eq!(d.on_tick(&CFG), None);
            }
        }
        assert!(d.speaking() && d.loudness() > 100.0);
    }

    #[test]
    fn sender_that_stops_stops_talking() {
        let mut d = ActivityDetector::default();
        for _ in 0..10 {
            frame(&mut d, Some(20));
        }
        let edges: Vec<_> = (0..30).filter_map(|_| frame(&mut d, None)).collect();
        assert_eq!(edges, vec![TalkEdge::Stopped]);
    }
}
