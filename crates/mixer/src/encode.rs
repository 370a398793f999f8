//! One outgoing Opus stream: the shared full mix, or one slot's mix-minus.
//!
//! Encoders are stateful, and a listener's decoder follows whichever encoder
//! produced the packets it was sent. When a listener moves between the full
//! mix and a mix-minus, its decoder holds the state of the *old* encoder. To
//! make the new packets decode cleanly against that state:
//!
//! * every encoder has the same settings (hence the same look-ahead, so the
//!   audio is time-aligned, and the same mode decisions on similar input);
//! * a slot encoder taking a new speaker is reset and then fed the last
//!   frames of the full mix (what that listener just heard), output thrown
//!   away, so its internal state approximates the full-mix encoder's. The
//!   signals themselves also match at that moment: the new speaker was not
//!   decoded before, so their mix-minus is the full mix they were hearing.
//!   Without the warm-up the first ~40 ms after the switch decode as noise;
//!   with it they are as clean as any other frame;
//! * the signal type is left to Opus's analysis (speech modes for speech,
//!   its cheaper music mode for music), but that analysis needs about half a
//!   second of input to settle, longer than the warm-up: a freshly reset
//!   encoder would start in the speech modes while the full mix is coded as
//!   music, and the listener's decoder would hear the mode change as a
//!   glitch. So the slot encoder is told the full mix's current mode (read
//!   from its last packet's TOC byte) for the warm-up and the first
//!   [`STEER_FRAMES`], then left to the analysis again;
//! * optionally, the first frame a listener receives from another encoder
//!   is encoded with prediction disabled. Measured, this did not help on top
//!   of the warm-up and costs quality, so it is off by default.
//!
//! Encoders live in slots (K of them plus the full mix), not per speaker:
//! memory and encode work stay bounded whatever N is, and a returning
//! speaker would need the same warm-up anyway.

use std::sync::Arc;

use crate::config::MixerConfig;
use crate::limiter::Limiter;
use crate::mix::Pcm;

/// Output buffer size; a 20 ms frame at our bitrates is ~100 bytes.
const MAX_OUT: usize = 1500;
/// Frames after a warm-up for which a slot encoder keeps the full mix's
/// mode as its signal type (Opus's analysis settles in about this long).
const STEER_FRAMES: u32 = 30;

pub(crate) struct StreamEncoder {
    encoder: Option<opus::Encoder>,
    pub limiter: Limiter,
    out: Vec<u8>,
    settings: EncoderSettings,
    /// Frames left before the signal type goes back to Opus's analysis.
    steered: u32,
}

/// The signal type that keeps an encoder in the mode of a stream whose
/// last packet starts with `toc` (RFC 6716 section 3.1: configurations
/// 16 to 31 are CELT only, the music mode; below, SILK or hybrid).
pub(crate) fn signal_of(toc: u8) -> opus::Signal {
    if toc >> 3 >= 16 { opus::Signal::Music } else { opus::Signal::Voice }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct EncoderSettings {
    bitrate: i32,
    complexity: i32,
    fec: bool,
    loss: i32,
}

impl EncoderSettings {
    pub fn from_config(cfg: &MixerConfig) -> Self {
        EncoderSettings {
            bitrate: cfg.bitrate.clamp(6_000, 510_000),
            complexity: cfg.complexity.clamp(0, 10),
            fec: cfg.encoder_fec,
            loss: cfg.expected_loss_percent.clamp(0, 100),
        }
    }
}

impl std::fmt::Debug for StreamEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamEncoder")
            .field("settings", &self.settings)
            .finish()
    }
}

fn configure(enc: &mut opus::Encoder, s: &EncoderSettings, signal: opus::Signal) -> opus::Result<()> {
    enc.set_bitrate(opus::Bitrate::Bits(s.bitrate))?;
    enc.set_complexity(s.complexity)?;
    enc.set_inband_fec(s.fec)?;
    enc.set_packet_loss_perc(s.loss)?;
    enc.set_signal(signal)?;
    enc.set_dtx(false)?;
    Ok(())
}

impl StreamEncoder {
    pub fn new(settings: EncoderSettings) -> opus::Result<Self> {
        let mut enc = opus::Encoder::new(
            crate::SAMPLE_RATE,
            opus::Channels::Mono,
            opus::Application::Voip,
        )?;
        configure(&mut enc, &settings, opus::Signal::Auto)?;
        Ok(StreamEncoder {
            encoder: Some(enc),
            limiter: Limiter::new(),
            out: vec![0; MAX_OUT],
            settings,
            steered: 0,
        })
    }

    /// Limits `pcm` in place and encodes it. `independent` disables
    /// inter-frame prediction for this one frame.
    pub fn encode(&mut self, pcm: &mut Pcm, independent: bool) -> (bool, Option<Arc<[u8]>>) {
        let limited = self.limiter.process(pcm);
        let Some(enc) = &mut self.encoder else {
            return (limited, None);
        };
        if independent {
            let _ = enc.set_prediction_disabled(true);
        }
        if self.steered > 0 {
            self.steered -= 1;
            if self.steered == 0 {
                let _ = enc.set_signal(opus::Signal::Auto);
            }
        }
        let r = enc.encode_float(pcm, &mut self.out);
        if independent {
            let _ = enc.set_prediction_disabled(false);
        }
        match r {
            Ok(n) if n > 0 && n <= self.out.len() => (limited, Some(Arc::from(&self.out[..n]))),
            _ => (limited, None),
        }
    }

    /// Resets and replays `history` (oldest first) so this encoder's state
    /// matches what a listener who heard `history` has decoded; `follow`:
    /// the first byte of the full mix's last packet, whose mode it keeps
    /// for a while. Returns the number of warm-up encodes.
    pub fn warm_up(&mut self, history: &[Pcm], limiter: &Limiter, follow: Option<u8>) -> u64 {
        self.limiter = limiter.clone();
        let Some(enc) = &mut self.encoder else {
            return 0;
        };
        let signal = follow.map_or(opus::Signal::Auto, signal_of);
        if enc.reset_state().is_err() || configure(enc, &self.settings, signal).is_err() {
            return 0;
        }
        self.steered = if follow.is_some() { STEER_FRAMES } else { 0 };
        let mut n = 0;
        for frame in history {
            if enc.encode_float(frame, &mut self.out).is_ok() {
                n += 1;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_toc_tells_music_mode_from_the_speech_modes() {
        // Configuration numbers (top 5 bits) 0-11 SILK, 12-15 hybrid, 16-31 CELT.
        for config in 0u8..32 {
            let toc = config << 3 | 0b011;
            let expected = if config >= 16 { opus::Signal::Music } else { opus::Signal::Voice };
            assert_eq!(signal_of(toc), expected, "config {config}");
        }
    }
}
