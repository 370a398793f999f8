//! What the synthetic participants send, and how a listener finds the
//! latency marker in what it hears.
//!
//! Talkers loop one second of 20 ms Opus packets: a steady tone (each
//! talker its own frequency) with a 60 ms gap of digital silence at the end
//! of every second, all talkers at the same moment. A listener decodes its
//! mix; the instant the mix falls silent, compared with when the talkers
//! sent the first gap packet, is the end-to-end delay. The same detector run
//! on the talkers' packets decoded locally (no server) gives the delay of
//! one Opus encode + decode, which is subtracted.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};

/// Samples per 20 ms packet at 48 kHz.
pub const FRAME: usize = 960;
/// Packets in one loop (one second).
pub const LOOP_FRAMES: u64 = 50;
/// Packets of silence at the end of each loop.
pub const GAP_FRAMES: u64 = 3;
/// Index (in the loop) of the first silent packet: the latency marker.
pub const GAP_START: u64 = LOOP_FRAMES - GAP_FRAMES;
/// Peak amplitude of each talker's tone (about -15 dBFS; three of them
/// summed stay clear of any limiter).
const AMPLITUDE: f64 = 6_000.0;
/// The tone's RFC 6464 level, -dBov: RMS of the sine relative to full scale.
pub const TALK_LEVEL: i8 = -18;
/// Level of the silent participants' packets.
pub const SILENT_LEVEL: i8 = -127;
const FREQUENCIES: [f64; 3] = [440.0, 660.0, 990.0];
/// The detector's 1 ms blocks.
const BLOCK: usize = 48;

pub struct Sound {
    /// Per talker, one loop of packets.
    pub talkers: Vec<Vec<Arc<[u8]>>>,
    /// What every other participant sends every 20 ms (without DTX).
    pub silence: Arc<[u8]>,
    /// One cycle of what a silent participant sends with DTX, per 20 ms
    /// frame (`None`: nothing), as a browser does (see `dtx_cycle`).
    pub dtx_silence: Vec<Option<Arc<[u8]>>>,
    /// One Opus encode + decode, as the detector sees it.
    pub codec_delay: Duration,
    pub talk: Talk,
}

impl Sound {
    /// Whether a listener can time the latency marker in this signal.
    pub fn marker(&self) -> bool {
        self.talk == Talk::Tones
    }
}

fn encoder() -> anyhow::Result<opus::Encoder> {
    let mut enc = opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip)?;
    enc.set_bitrate(opus::Bitrate::Bits(32_000))?;
    enc.set_inband_fec(true)?;
    Ok(enc)
}

/// What the talkers send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Talk {
    /// A steady tone each (440, 660, 990 Hz, ...).
    Tones,
    /// Synthesised speech each (speech.rs; needs `espeak-ng`).
    Speech,
}

/// Encodes two loops of talker `t`'s signal and keeps the second, so the
/// encoder state at the loop point is the one a continuous sender has.
fn talker_loop(t: usize, talk: Talk) -> anyhow::Result<Vec<Arc<[u8]>>> {
    let freq = FREQUENCIES[t % FREQUENCIES.len()] * (1.0 + (t / FREQUENCIES.len()) as f64 * 0.1);
    let speech = match talk {
        Talk::Tones => None,
        // Speech peaks higher than the tone for a similar loudness.
        Talk::Speech => Some(super::speech::talker(t, GAP_START as usize * FRAME, 2.0 * AMPLITUDE)?),
    };
    let mut enc = encoder()?;
    let mut out = Vec::new();
    for n in 0..2 * LOOP_FRAMES {
        let pcm: Vec<i16> = (0..FRAME)
            .map(|i| {
                let k = n % LOOP_FRAMES;
                if k >= GAP_START {
                    return 0;
                }
                if let Some(speech) = &speech {
                    return speech[k as usize * FRAME + i] as i16;
                }
                let s = (n as usize * FRAME + i) as f64 / 48_000.0;
                ((2.0 * std::f64::consts::PI * freq * s).sin() * AMPLITUDE) as i16
            })
            .collect();
        let packet = enc.encode_vec(&pcm, 1500)?;
        if n >= LOOP_FRAMES {
            out.push(Arc::from(packet));
        }
    }
    Ok(out)
}

impl Sound {
    pub fn new(talkers: usize, talk: Talk) -> anyhow::Result<Sound> {
        let loops = (0..talkers).map(|t| talker_loop(t, talk)).collect::<anyhow::Result<Vec<_>>>()?;
        let mut enc = encoder()?;
        let mut silence = Vec::new();
        for _ in 0..5 {
            silence = enc.encode_vec(&[0i16; FRAME], 1500)?;
        }
        // Speech has pauses of its own that the marker's detector would
        // take for the gap: with speech there is no marker (see `marker`).
        let codec_delay = match talk {
            Talk::Tones => codec_delay(&loops).context("cannot calibrate the codec delay")?,
            Talk::Speech => Duration::ZERO,
        };
        let dtx_silence = dtx_cycle()?;
        Ok(Sound { talkers: loops, silence: Arc::from(silence), dtx_silence, codec_delay, talk })
    }
}

/// A silent microphone as Chrome sends it when the answer asks for DTX
/// (`usedtx=1`): libopus with DTX on makes a 1-byte DTX frame for every
/// 20 ms of silence except a comfort-noise refresh every 400 ms or so, and
/// WebRTC sends only the first DTX frame in a row (`WebRtcOpus_Encode` returns
/// nothing for the others). Encodes silence that way and returns one period
/// of the steady state (after the encoder's first 200 ms without DTX).
fn dtx_cycle() -> anyhow::Result<Vec<Option<Arc<[u8]>>>> {
    let mut enc = encoder()?;
    enc.set_dtx(true)?;
    let mut sent: Vec<Option<Arc<[u8]>>> = Vec::new();
    let mut in_dtx = false;
    for _ in 0..400 {
        let packet = enc.encode_vec(&[0i16; FRAME], 1500)?;
        if packet.len() <= 2 {
            sent.push((!in_dtx).then(|| Arc::from(packet)));
            in_dtx = true;
        } else {
            sent.push(Some(Arc::from(packet)));
            in_dtx = false;
        }
    }
    // The shortest period of what is sent over the last 200 frames.
    let tail = &sent[200..];
    let flags: Vec<bool> = tail.iter().map(Option::is_some).collect();
    let period = (1..100)
        .find(|&p| flags.iter().zip(&flags[p..]).all(|(a, b)| a == b))
        .context("Opus DTX did not settle into a cycle")?;
    if flags[..period].iter().all(|&f| f) {
        anyhow::bail!("this libopus does not do DTX");
    }
    Ok(tail[..period].to_vec())
}

/// Decodes every talker's loop locally (three loops in a row), sums them as
/// an ideal zero-delay mixer would, and finds the gap: how far after the
/// first silent packet's start the detector fires.
fn codec_delay(loops: &[Vec<Arc<[u8]>>]) -> anyhow::Result<Duration> {
    let mut sum = vec![0i32; 3 * LOOP_FRAMES as usize * FRAME];
    for talker in loops {
        let mut dec = opus::Decoder::new(48_000, opus::Channels::Mono)?;
        let mut pcm = [0i16; FRAME];
        for n in 0..3 * LOOP_FRAMES as usize {
            let got = dec.decode(&talker[n % LOOP_FRAMES as usize], &mut pcm, false)?;
            for (i, s) in pcm[..got].iter().enumerate() {
                sum[n * FRAME + i] += i32::from(*s);
            }
        }
    }
    let mixed: Vec<i16> = sum.iter().map(|&s| s.clamp(-32768, 32767) as i16).collect();
    let mut detector = GapDetector::default();
    let mut found = Vec::new();
    for (n, frame) in mixed.chunks(FRAME).enumerate() {
        if let Some(offset) = detector.push(frame) {
            found.push(n * FRAME + offset);
        }
    }
    // The second loop's gap (the first may start before the detector is armed).
    let gap = (LOOP_FRAMES + GAP_START) as usize * FRAME;
    // Anything else the detector fires on would pass for a marker on the
    // network too: the signal must have no other silence.
    let loop_len = LOOP_FRAMES as usize * FRAME;
    if let Some(&wrong) = found.iter().find(|&&s| s >= loop_len && (s % loop_len) < GAP_START as usize * FRAME) {
        bail!("the talkers' signal falls silent {} ms into its loop, where the latency marker is not", wrong % loop_len / 48);
    }
    let onset = found.into_iter().find(|&s| s >= gap).context("no gap found in the local decode")?;
    Ok(Duration::from_secs_f64((onset - gap) as f64 / 48_000.0))
}

/// Finds where a steady signal falls silent, to 1 ms.
#[derive(Default)]
pub struct GapDetector {
    /// Loud 1 ms blocks in a row.
    loud_run: u32,
    /// Smoothed RMS of the loud blocks.
    level: f64,
    armed: bool,
}

impl GapDetector {
    /// Feeds one packet's decoded samples (a multiple of 1 ms); returns the
    /// offset of the first silent block if the signal fell silent in it.
    pub fn push(&mut self, pcm: &[i16]) -> Option<usize> {
        let mut found = None;
        for (b, block) in pcm.chunks(BLOCK).enumerate() {
            let energy: f64 = block.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
            let rms = (energy / block.len() as f64).sqrt();
            if rms > 1_000.0 {
                self.loud_run += 1;
                self.level = if self.loud_run == 1 { rms } else { 0.95 * self.level + 0.05 * rms };
                // 100 ms of signal arm the detector.
                if self.loud_run >= 100 {
                    self.armed = true;
                }
            } else {
                if self.armed && rms < 0.2 * self.level && found.is_none() {
                    found = Some(b * BLOCK);
                    self.armed = false;
                }
                self.loud_run = 0;
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codec_delay_is_a_few_milliseconds() {
        let sound = Sound::new(3, Talk::Tones).expect("sound");
        assert_eq!(sound.talkers.len(), 3);
        assert!(sound.codec_delay <= Duration::from_millis(15), "{:?}", sound.codec_delay);
    }

    #[test]
    fn dtx_silence_is_two_packets_about_every_400_ms() {
        let cycle = dtx_cycle().expect("cycle");
        let sent: Vec<usize> = cycle.iter().flatten().map(|p| p.len()).collect();
        // A refresh frame and one 1-byte DTX frame per cycle of ~21 frames.
        assert!((19..=25).contains(&cycle.len()), "{}", cycle.len());
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert!(sent.iter().any(|&n| n <= 2), "{sent:?}");
    }

    #[test]
    fn the_detector_finds_a_gap_to_the_millisecond() {
        let mut d = GapDetector::default();
        let tone: Vec<i16> = (0..FRAME).map(|i| ((i as f64 * 0.1).sin() * 8000.0) as i16).collect();
        for _ in 0..10 {
            assert_eq!(d.push(&tone), None);
        }
        let mut half = tone.clone();
        half[480..].fill(0);
        assert_eq!(d.push(&half), Some(480));
        assert_eq!(d.push(&[0; FRAME]), None);
    }
}
