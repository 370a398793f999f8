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

pub(crate) struct StreamEncoder {
    encoder: Option<opus::Encoder>,
    pub limiter: Limiter,
    out: Vec<u8>,
    settings: EncoderSettings,
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

fn configure(enc: &mut opus::Encoder, s: &EncoderSettings) -> opus::Result<()> {
    enc.set_bitrate(opus::Bitrate::Bits(s.bitrate))?;
    enc.set_complexity(s.complexity)?;
    enc.set_inband_fec(s.fec)?;
    enc.set_packet_loss_perc(s.loss)?;
    enc.set_signal(opus::Signal::Voice)?;
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
        configure(&mut enc, &settings)?;
        Ok(StreamEncoder {
            encoder: Some(enc),
            limiter: Limiter::new(),
            out: vec![0; MAX_OUT],
            settings,
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
    /// matches what a listener who heard `history` has decoded. Returns the
    /// number of warm-up encodes.
    pub fn warm_up(&mut self, history: &[Pcm], limiter: &Limiter) -> u64 {
        self.limiter = limiter.clone();
        let Some(enc) = &mut self.encoder else {
            return 0;
        };
        if enc.reset_state().is_err() || configure(enc, &self.settings).is_err() {
            return 0;
        }
        let mut n = 0;
        for frame in history {
            if enc.encode_float(frame, &mut self.out).is_ok() {
                n += 1;
            }
        }
        n
    }
}
