//! A real H.264 clip for the conference load: encoded once with ffmpeg
//! (libx264, constrained baseline, 1 Mbps, 30 fps, an IDR every 2 s), split
//! into access units and packetised once, up front, per RFC 6184
//! (packetization-mode 1: single NAL unit packets, STAP-A, FU-A).
//!
//! Every packet keeps its payload in an `Arc<[u8]>`, so sending it costs a
//! reference count, not a copy, and carries a hash of its payload: the
//! server forwards H.264 payloads byte for byte, so a receiver recognises
//! each forwarded packet by that hash.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use anyhow::{bail, Context as _};

/// Largest RTP payload (what browsers use, well under the loopback MTU).
pub const MAX_PAYLOAD: usize = 1200;
/// Frame interval in 90 kHz ticks (30 fps).
pub const TICKS_PER_FRAME: u32 = 3000;

/// One RTP packet of the clip.
pub struct Packet {
    pub payload: Arc<[u8]>,
    pub hash: u64,
    /// Last packet of its access unit.
    pub marker: bool,
}

/// One access unit (a frame), packetised.
pub struct Frame {
    pub packets: Vec<Packet>,
    /// Contains an IDR slice (and, from x264, SPS and PPS before it).
    pub keyframe: bool,
    pub bytes: usize,
}

pub struct Clip {
    pub frames: Vec<Frame>,
}

impl Clip {
    /// Encodes `seconds` of ffmpeg's `testsrc2` at 640x360 into `dir` and
    /// packetises it.
    pub fn encode(dir: &Path, seconds: u32, kbps: u32) -> anyhow::Result<Clip> {
        let file = dir.join("clip.h264");
        let rate = format!("{kbps}k");
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
            .args(["-t", &seconds.to_string()])
            .args(["-c:v", "libx264", "-profile:v", "baseline", "-level", "3.1", "-bf", "0", "-g", "60"])
            .args(["-b:v", &rate, "-maxrate", &rate, "-bufsize", &rate, "-pix_fmt", "yuv420p", "-f", "h264"])
            .arg(&file)
            .status()
            .context("cannot run ffmpeg (needed for the H.264 clip)")?;
        if !status.success() {
            bail!("ffmpeg failed: {status}");
        }
        let bytes = std::fs::read(&file)?;
        Clip::from_annex_b(&bytes)
    }

    pub fn from_annex_b(stream: &[u8]) -> anyhow::Result<Clip> {
        let frames: Vec<Frame> = access_units(&nal_units(stream)).iter().map(|au| packetize(au)).collect();
        if !frames.first().is_some_and(|f| f.keyframe) {
            bail!("the clip does not start with an IDR frame");
        }
        Ok(Clip { frames })
    }

    /// Index of the first keyframe at or after `from` (wrapping around).
    pub fn next_keyframe(&self, from: usize) -> usize {
        let n = self.frames.len();
        (0..n).map(|k| (from + k) % n).find(|&i| self.frames[i].keyframe).unwrap_or(0)
    }

    pub fn bits_per_second(&self) -> f64 {
        let bytes: usize = self.frames.iter().map(|f| f.bytes).sum();
        bytes as f64 * 8.0 * 30.0 / self.frames.len().max(1) as f64
    }
}

/// NAL units of an Annex-B byte stream (start codes removed).
fn nal_units(stream: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i] == 0 && stream[i + 1] == 0 && stream[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals = Vec::with_capacity(starts.len());
    for (k, &start) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(stream.len(), |&next| next - 3);
        // A four-byte start code leaves its leading zero on the previous unit.
        while end > start && stream[end - 1] == 0 {
            end -= 1;
        }
        if end > start {
            nals.push(&stream[start..end]);
        }
    }
    nals
}

fn nal_type(nal: &[u8]) -> u8 {
    nal[0] & 0x1f
}

fn is_vcl(nal: &[u8]) -> bool {
    matches!(nal_type(nal), 1..=5)
}

/// Groups NAL units into access units (H.264 7.4.1.2.3): a new one begins
/// with an AUD, SEI, SPS or PPS after a slice, or with a slice whose
/// first_mb_in_slice is 0 (its first Exp-Golomb bit is 1) after a slice.
fn access_units<'a>(nals: &[&'a [u8]]) -> Vec<Vec<&'a [u8]>> {
    let mut units: Vec<Vec<&[u8]>> = Vec::new();
    let mut current: Vec<&[u8]> = Vec::new();
    let mut seen_slice = false;
    for &nal in nals {
        let starts_new = seen_slice
            && (matches!(nal_type(nal), 6..=9) || (is_vcl(nal) && nal.get(1).is_some_and(|b| b & 0x80 != 0)));
        if starts_new {
            units.push(std::mem::take(&mut current));
            seen_slice = false;
        }
        seen_slice |= is_vcl(nal);
        current.push(nal);
    }
    if !current.is_empty() {
        units.push(current);
    }
    units
}

/// RFC 6184, packetization-mode 1: consecutive small NAL units share a STAP-A,
/// a NAL unit larger than one packet is cut into FU-A fragments.
fn packetize(au: &[&[u8]]) -> Frame {
    let mut payloads: Vec<Vec<u8>> = Vec::new();
    let mut i = 0;
    while i < au.len() {
        let nal = au[i];
        if nal.len() > MAX_PAYLOAD {
            let indicator = (nal[0] & 0xe0) | 28;
            let kind = nal[0] & 0x1f;
            let body = &nal[1..];
            let chunk = MAX_PAYLOAD - 2;
            let count = body.len().div_ceil(chunk);
            for (k, piece) in body.chunks(chunk).enumerate() {
                let mut header = kind;
                if k == 0 {
                    header |= 0x80;
                }
                if k + 1 == count {
                    header |= 0x40;
                }
                let mut p = Vec::with_capacity(piece.len() + 2);
                p.extend_from_slice(&[indicator, header]);
                p.extend_from_slice(piece);
                payloads.push(p);
            }
            i += 1;
            continue;
        }
        // How many of the following NAL units fit into one STAP-A with it?
        let mut size = 1 + 2 + nal.len();
        let mut j = i + 1;
        while j < au.len() && size + 2 + au[j].len() <= MAX_PAYLOAD {
            size += 2 + au[j].len();
            j += 1;
        }
        if j == i + 1 {
            payloads.push(nal.to_vec());
        } else {
            let nri = au[i..j].iter().map(|n| n[0] & 0x60).max().unwrap_or(0);
            let mut p = Vec::with_capacity(size);
            p.push(nri | 24);
            for n in &au[i..j] {
                p.extend_from_slice(&(n.len() as u16).to_be_bytes());
                p.extend_from_slice(n);
            }
            payloads.push(p);
        }
        i = j;
    }
    let last = payloads.len().saturating_sub(1);
    let bytes = payloads.iter().map(Vec::len).sum();
    let packets = payloads
        .into_iter()
        .enumerate()
        .map(|(k, p)| Packet { hash: payload_hash(&p), payload: p.into(), marker: k == last })
        .collect();
    Frame { packets, keyframe: au.iter().any(|n| nal_type(n) == 5), bytes }
}

/// A fast 64-bit hash of a payload (8 bytes per step, multiply-rotate).
pub fn payload_hash(data: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = (data.len() as u64).wrapping_mul(K);
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        h = (h ^ u64::from_le_bytes(b)).wrapping_mul(K).rotate_left(29);
    }
    for &b in words.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(K).rotate_left(29);
    }
    h ^= h >> 32;
    h = h.wrapping_mul(K);
    h ^ (h >> 29)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annex_b(nals: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for n in nals {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(n);
        }
        out
    }

    #[test]
    fn splits_access_units_and_packetises() {
        let sps = vec![0x67, 0x42, 0xc0, 0x1f, 0x11];
        let pps = vec![0x68, 0xce, 0x3c, 0x80];
        let mut idr = vec![0x65, 0x88];
        idr.resize(3000, 0x5a);
        let mut p1 = vec![0x41, 0x9a];
        p1.resize(500, 0x33);
        let mut p2 = vec![0x41, 0x9b];
        p2.resize(700, 0x34);
        let clip = Clip::from_annex_b(&annex_b(&[sps.clone(), pps.clone(), idr.clone(), p1, p2])).expect("clip");
        assert_eq!(clip.frames.len(), 3);
        let key = &clip.frames[0];
        assert!(key.keyframe);
        // STAP-A(SPS, PPS) can also take the IDR? No: 3000 bytes; so STAP-A + 3 FU-A.
        assert_eq!(key.packets.len(), 4);
        assert_eq!(key.packets[0].payload[0] & 0x1f, 24);
        assert_eq!(&key.packets[1].payload[..2], &[0x7c, 0x85]);
        assert_eq!(key.packets[3].payload[1], 0x45);
        assert!(key.packets[3].marker && !key.packets[2].marker);
        let rebuilt: Vec<u8> = key.packets[1..].iter().flat_map(|p| p.payload[2..].to_vec()).collect();
        assert_eq!(rebuilt, idr[1..]);
        assert_eq!(clip.frames[1].packets.len(), 1);
        assert!(!clip.frames[1].keyframe);
        assert_eq!(clip.next_keyframe(1), 0);
        assert_ne!(payload_hash(&[1, 2, 3]), payload_hash(&[1, 2, 4]));
    }
}
