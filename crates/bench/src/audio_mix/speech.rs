//! Speech for the talkers, synthesised by `espeak-ng` (a Debian package):
//! a conference's talkers speak, and Opus codes speech differently from the
//! pure tones of the default load (its analysis sends tones to its music
//! mode, speech to its speech modes, which cost more to encode). Each talker
//! gets its own sentence and voice pitch; the benchmark loops one second of
//! it, as it loops the tones.

use std::process::Command;

use anyhow::{bail, Context as _};

use super::sound::FRAME;

const SENTENCES: [&str; 3] = [
    "Good morning everyone, thanks for joining the weekly planning meeting about the new release.",
    "I think we should move the launch by a week, because the testing is not finished yet.",
    "Let me share my screen and walk you through the numbers from the last quarter first.",
];

/// Samples per second of the result.
const RATE: f64 = 48_000.0;

/// `samples` of speech at 48 kHz for talker `t`, taken from where the
/// synthesised sentence is loud throughout (no pause between words, so the
/// latency marker's silence is the only silence), peaking at `peak`.
pub fn talker(t: usize, samples: usize, peak: f64) -> anyhow::Result<Vec<f64>> {
    let pitch = 35 + 12 * (t % 4);
    let text = SENTENCES[t % SENTENCES.len()];
    let output = Command::new("espeak-ng")
        .args(["-v", "en", "-s", "165", "-p", &pitch.to_string(), "--stdout", text])
        .output()
        .context("espeak-ng is needed for --talk speech (Debian package espeak-ng)")?;
    if !output.status.success() {
        bail!("espeak-ng failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let (rate, pcm) = wav_mono_s16(&output.stdout)?;
    let speech = resample(&pcm, f64::from(rate), RATE);
    let start = loudest_window(&speech, samples).context("the synthesised speech is too short")?;
    let window = &speech[start..start + samples];
    let max = window.iter().fold(0.0f64, |m, &x| m.max(x.abs())).max(1.0);
    Ok(window.iter().map(|&x| x / max * peak).collect())
}

/// The samples of a 16-bit mono WAV file, and its rate.
fn wav_mono_s16(bytes: &[u8]) -> anyhow::Result<(u32, Vec<f64>)> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        bail!("espeak-ng did not write a WAV file");
    }
    let (mut pos, mut rate, mut format_ok) = (12, 0u32, false);
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let declared = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into()?) as usize;
        let body = pos + 8;
        // espeak-ng writing to a pipe cannot seek back to fill in the data
        // length: it stays 0 or 0xFFFFFFFF. The data then runs to the end.
        let end = if id == b"data" && (declared == 0 || body + declared > bytes.len()) {
            bytes.len()
        } else {
            body + declared
        };
        if end > bytes.len() {
            bail!("truncated WAV chunk");
        }
        match id {
            b"fmt " if end - body >= 16 => {
                let channels = u16::from_le_bytes(bytes[body + 2..body + 4].try_into()?);
                rate = u32::from_le_bytes(bytes[body + 4..body + 8].try_into()?);
                let bits = u16::from_le_bytes(bytes[body + 14..body + 16].try_into()?);
                format_ok = channels == 1 && bits == 16 && rate > 0;
            }
            b"data" => {
                if !format_ok {
                    bail!("expected 16-bit mono WAV");
                }
                let pcm = bytes[body..end]
                    .chunks_exact(2)
                    .map(|b| f64::from(i16::from_le_bytes([b[0], b[1]])))
                    .collect();
                return Ok((rate, pcm));
            }
            _ => {}
        }
        pos = end + (end & 1);
    }
    bail!("no audio in the WAV file")
}

/// Linear interpolation from `from` Hz to `to` Hz (a load, not a listening
/// test: the spectrum above the source's Nyquist stays empty either way).
fn resample(pcm: &[f64], from: f64, to: f64) -> Vec<f64> {
    if pcm.len() < 2 {
        return pcm.to_vec();
    }
    let n = ((pcm.len() - 1) as f64 * to / from) as usize;
    (0..n)
        .map(|i| {
            let x = i as f64 * from / to;
            let k = x as usize;
            let f = x - k as f64;
            pcm[k] * (1.0 - f) + pcm[(k + 1).min(pcm.len() - 1)] * f
        })
        .collect()
}

/// Start of the `len`-sample window whose quietest 20 ms is loudest.
fn loudest_window(pcm: &[f64], len: usize) -> Option<usize> {
    let rms: Vec<f64> = pcm
        .chunks_exact(FRAME)
        .map(|c| (c.iter().map(|x| x * x).sum::<f64>() / c.len() as f64).sqrt())
        .collect();
    let frames = len.div_ceil(FRAME);
    if rms.len() < frames {
        return None;
    }
    (0..=rms.len() - frames)
        .max_by(|&a, &b| {
            let quietest = |s: usize| rms[s..s + frames].iter().copied().fold(f64::MAX, f64::min);
            quietest(a).total_cmp(&quietest(b))
        })
        .map(|f| f * FRAME)
        .filter(|&s| s + len <= pcm.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(rate: u32, samples: &[i16], declared_data: u32) -> Vec<u8> {
        let mut b = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
        b.extend_from_slice(&16u32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&rate.to_le_bytes());
        b.extend_from_slice(&(rate * 2).to_le_bytes());
        b.extend_from_slice(&2u16.to_le_bytes());
        b.extend_from_slice(&16u16.to_le_bytes());
        b.extend_from_slice(b"data");
        b.extend_from_slice(&declared_data.to_le_bytes());
        for s in samples {
            b.extend_from_slice(&s.to_le_bytes());
        }
        b
    }

    #[test]
    fn a_piped_wav_without_a_data_length_is_read_to_its_end() {
        for declared in [0, u32::MAX, 6] {
            let (rate, pcm) = wav_mono_s16(&wav(22_050, &[1, -2, 3], declared)).expect("wav");
            assert_eq!(rate, 22_050);
            assert_eq!(pcm, vec![1.0, -2.0, 3.0]);
        }
        assert!(wav_mono_s16(b"not a wav").is_err());
        assert!(wav_mono_s16(&wav(22_050, &[1], 2)[..30]).is_err());
    }

    #[test]
    fn resampling_keeps_the_duration() {
        let one_second = vec![0.5; 22_050];
        let out = resample(&one_second, 22_050.0, 48_000.0);
        assert!((out.len() as i64 - 48_000).abs() <= 3, "{}", out.len());
        assert!(out.iter().all(|&x| (x - 0.5).abs() < 1e-12));
    }

    #[test]
    fn the_window_avoids_pauses() {
        // Loud, a 100 ms pause, then loud again for long enough.
        let mut pcm = vec![1000.0; 10 * FRAME];
        pcm.extend(vec![0.0; 5 * FRAME]);
        pcm.extend(vec![1000.0; 30 * FRAME]);
        let start = loudest_window(&pcm, 25 * FRAME).expect("window");
        assert!(start >= 15 * FRAME, "{start}");
        assert_eq!(loudest_window(&pcm, 100 * FRAME), None);
    }
}
