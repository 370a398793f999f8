//! Output limiter: keeps a mix of several loud speakers inside full scale
//! without wrap-around or harsh clipping.
//!
//! Mixing happens in f32, so sums never wrap; the limiter then brings them
//! under the ceiling. It works on 1 ms blocks of a 20 ms frame: the gain
//! needed by each block is known for the whole frame before any sample is
//! written, so the gain starts falling up to two blocks before a peak
//! (in-frame look-ahead, no added latency), and recovers with a ~80 ms
//! release. Within a block the gain is interpolated linearly, so it never
//! steps. Only the first block of a frame cannot anticipate (its start gain
//! was fixed last frame); a soft knee catches that overshoot and anything
//! else, approaching but never reaching full scale.

/// Samples per gain block (1 ms).
const BLOCK: usize = 48;
/// Blocks of look-ahead within a frame.
const LOOKAHEAD_BLOCKS: usize = 2;
/// Peak level the gain aims for (-1 dBFS).
const CEILING: f32 = 0.891;
/// Soft-knee start; above it the output bends smoothly towards 1.0.
const KNEE: f32 = 0.9;
/// Per-block release coefficient (~80 ms time constant).
const RELEASE: f32 = 1.0 / 80.0;

/// Stateful limiter for one output stream (mono, any frame length).
#[derive(Clone, Debug)]
pub struct Limiter {
    gain: f32,
    needs: Vec<f32>,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter {
            gain: 1.0,
            needs: Vec::new(),
        }
    }
}

impl Limiter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Current gain (1.0 = not limiting).
    pub fn gain(&self) -> f32 {
        self.gain
    }

    /// Limits `frame` in place (full scale = 1.0). Returns whether the gain
    /// was below 1 anywhere in the frame.
    pub fn process(&mut self, frame: &mut [f32]) -> bool {
        let blocks = frame.len().div_ceil(BLOCK);
        self.needs.clear();
        for block in frame.chunks(BLOCK) {
            let peak = block.iter().fold(0.0f32, |m, &x| {
                // NaN/inf from a misbehaving decoder must not poison the gain.
                if x.is_finite() { m.max(x.abs()) } else { m }
            });
            self.needs
                .push(if peak > CEILING { CEILING / peak } else { 1.0 });
        }
        let mut limited = self.gain < 1.0;
        for (b, block) in frame.chunks_mut(BLOCK).enumerate() {
            let end = (b + LOOKAHEAD_BLOCKS + 1).min(blocks);
            let target = self.needs[b..end].iter().copied().fold(1.0f32, f32::min);
            let start = self.gain;
            let next = if target < start {
                target
            } else {
                start + (target - start) * RELEASE
            };
            let n = block.len() as f32;
            for (i, x) in block.iter_mut().enumerate() {
                let g = start + (next - start) * ((i + 1) as f32 / n);
                *x = soft_clip(if x.is_finite() { *x * g } else { 0.0 });
            }
            self.gain = next;
            limited |= next < 1.0;
        }
        limited
    }
}

/// Identity below the knee, then a tanh curve that tends to ±1.0.
#[inline]
pub(crate) fn soft_clip(x: f32) -> f32 {
    let a = x.abs();
    if a <= KNEE {
        x
    } else {
        let over = (a - KNEE) / (1.0 - KNEE);
        (KNEE + (1.0 - KNEE) * over.tanh()).copysign(x)
    }
}

/// Converts limited f32 samples to i16 (cannot wrap: input is within ±1).
pub(crate) fn to_i16(x: f32) -> i16 {
    (x * 32767.0).round().clamp(-32768.0, 32767.0) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_signal_passes_untouched() {
        let mut l = Limiter::new();
        let mut f: Vec<f32> = (0..960).map(|i| 0.5 * (i as f32 * 0.05).sin()).collect();
        let orig = f.clone();
        assert!(!l.process(&mut f));
        assert_eq!(f, orig);
    }

    #[test]
    fn twenty_full_scale_tones_stay_inside_full_scale_without_wrapping() {
        let mut l = Limiter::new();
        let mut prev = 0.0f32;
        let mut worst_step = 0.0f32;
        let mut worst_step_settled = 0.0f32;
        for frame in 0..100 {
            let mut f: Vec<f32> = (0..960)
                .map(|i| {
                    let t = (frame * 960 + i) as f32 / 48_000.0;
                    (0..20)
                        .map(|k| (2.0 * std::f32::consts::PI * (300.0 + 37.0 * k as f32) * t).sin())
                        .sum()
                })
                .collect();
            l.process(&mut f);
            for &x in &f {
                assert!(x.abs() <= 1.0, "{x}");
                let step = (x - prev).abs();
                worst_step = worst_step.max(step);
                if frame > 0 {
                    worst_step_settled = worst_step_settled.max(step);
                }
                prev = x;
            }
        }
        // A wrap-around would be a jump of ~2.0 between neighbouring samples.
        // The very first millisecond (a 20x full-scale onset from silence) can
        // only be soft-clipped; once the gain is down the waveform is smooth
        // (the sum's own steepest slope is about 0.25 per sample).
        assert!(worst_step < 1.01, "{worst_step}");
        assert!(worst_step_settled < 0.3, "{worst_step_settled}");
    }

    #[test]
    fn gain_recovers_after_a_burst() {
        let mut l = Limiter::new();
        let mut loud = vec![3.0f32; 960];
        l.process(&mut loud);
        assert!(l.gain() < 0.4);
        for _ in 0..50 {
            let mut quiet = vec![0.1f32; 960];
            l.process(&mut quiet);
        }
        assert!(l.gain() > 0.99, "{}", l.gain());
    }

    #[test]
    fn garbage_samples_do_not_poison_output() {
        let mut l = Limiter::new();
        let mut f = vec![f32::NAN, f32::INFINITY, -f32::INFINITY, 1e30, -1e30, 0.5];
        l.process(&mut f);
        assert!(f.iter().all(|x| x.is_finite() && x.abs() <= 1.0), "{f:?}");
    }
}
