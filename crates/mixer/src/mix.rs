//! Summing speakers into the full mix and the mix-minus of each speaker.
//!
//! Everything is f32 with full scale at 1.0, so no sum can wrap; the limiter
//! runs afterwards on each output. A mix-minus is `full - own` rather than a
//! fresh sum over the others: one subtraction per speaker instead of K-1
//! additions, and exact to float rounding (about -140 dB of residue).

use crate::FRAME_SAMPLES;

/// One 20 ms mono frame, full scale 1.0.
pub(crate) type Pcm = [f32; FRAME_SAMPLES];

pub(crate) const SILENCE: Pcm = [0.0; FRAME_SAMPLES];

/// `out = sum of inputs`.
pub(crate) fn sum_into<'a>(out: &mut Pcm, inputs: impl IntoIterator<Item = &'a Pcm>) {
    out.fill(0.0);
    for input in inputs {
        for (o, &x) in out.iter_mut().zip(input.iter()) {
            *o += x;
        }
    }
}

/// `out = full - own`.
pub(crate) fn mix_minus(out: &mut Pcm, full: &Pcm, own: &Pcm) {
    for ((o, &f), &x) in out.iter_mut().zip(full.iter()).zip(own.iter()) {
        *o = f - x;
    }
}

/// Multiplies the first `len` samples by a raised-cosine ramp from 0 to 1
/// (`rising`) or the whole frame from 1 to 0 (falling): a speaker entering or
/// leaving the mix never clicks.
pub(crate) fn fade(frame: &mut Pcm, rising: bool, len: usize) {
    let len = len.clamp(1, FRAME_SAMPLES);
    for (i, x) in frame.iter_mut().enumerate() {
        let g = if i >= len {
            if rising { 1.0 } else { 0.0 }
        } else {
            let p = (i as f32 + 0.5) / len as f32;
            let up = 0.5 - 0.5 * (std::f32::consts::PI * p).cos();
            if rising { up } else { 1.0 - up }
        };
        *x *= g;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_minus_removes_own_voice() {
        let a: Pcm = std::array::from_fn(|i| (i as f32 * 0.01).sin() * 0.7);
        let b: Pcm = std::array::from_fn(|i| (i as f32 * 0.02).cos() * 0.6);
        let c: Pcm = std::array::from_fn(|i| (i as f32 * 0.03).sin() * 0.9);
        let mut full = SILENCE;
        sum_into(&mut full, [&a, &b, &c]);
        let mut mm = SILENCE;
        mix_minus(&mut mm, &full, &a);
        for i in 0..FRAME_SAMPLES {
            assert!((mm[i] - (b[i] + c[i])).abs() < 1e-6);
        }
    }

    #[test]
    fn fades_are_monotonic_and_complete() {
        let mut up = [1.0f32; FRAME_SAMPLES];
        fade(&mut up, true, 240);
        assert!(up[0] < 0.01 && up[239] > 0.99 && up[500] == 1.0);
        assert!(up.windows(2).all(|w| w[1] >= w[0]));
        let mut down = [1.0f32; FRAME_SAMPLES];
        fade(&mut down, false, FRAME_SAMPLES);
        assert!(down[0] > 0.99 && down[959] < 0.01);
        assert!(down.windows(2).all(|w| w[1] <= w[0]));
    }
}
