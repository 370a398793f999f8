//! Synthetic H.264 and VP8 RTP streams, for deterministic tests.
//!
//! Packets look like a browser's: H.264 keyframes are a STAP-A with SPS and
//! PPS followed by FU-A fragments of the IDR slice, inter frames are single
//! NAL units or FU-A; VP8 frames carry a 15-bit picture ID. Payload bytes
//! after the headers encode the frame number, so a test can tell which
//! source and frame a forwarded packet came from.

use crate::keyframe::Codec;
use crate::rtp::RtpHeader;

/// One generated packet with the ground truth about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthPacket {
    pub header: RtpHeader,
    pub payload: Vec<u8>,
    /// Number of the frame in this stream (0 is the first).
    pub frame: u64,
    pub keyframe: bool,
    /// First packet of a keyframe: where a receiver may switch to this stream.
    pub keyframe_start: bool,
}

/// A video source producing one frame per call.
#[derive(Debug, Clone)]
pub struct SyntheticVideo {
    codec: Codec,
    ssrc: u32,
    payload_type: u8,
    next_seq: u16,
    next_ts: u32,
    frame_ticks: u32,
    frame: u64,
    keyframe_wanted: bool,
    /// Packets per inter frame and per keyframe.
    pub inter_packets: usize,
    pub key_packets: usize,
    pub width: u32,
    pub height: u32,
    picture_id: u16,
}

impl SyntheticVideo {
    /// 30 fps at 90 kHz; the first frame is a keyframe.
    pub fn new(codec: Codec, ssrc: u32, first_seq: u16, first_ts: u32) -> Self {
        Self {
            codec,
            ssrc,
            payload_type: if codec == Codec::H264 { 102 } else { 96 },
            next_seq: first_seq,
            next_ts: first_ts,
            frame_ticks: 3000,
            frame: 0,
            keyframe_wanted: true,
            inter_packets: 2,
            key_packets: 4,
            width: 640,
            height: 480,
            picture_id: (ssrc & 0x7fff) as u16,
        }
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The next frame will be a keyframe (the encoder got a PLI).
    pub fn request_keyframe(&mut self) {
        self.keyframe_wanted = true;
    }

    /// Produces all packets of the next frame, in order, marker on the last.
    pub fn next_frame(&mut self) -> Vec<SynthPacket> {
        let key = std::mem::take(&mut self.keyframe_wanted);
        let payloads = match self.codec {
            Codec::H264 => self.h264_frame(key),
            Codec::Vp8 => self.vp8_frame(key),
        };
        let n = payloads.len();
        let frame = self.frame;
        let out = payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| {
                let header = RtpHeader {
                    payload_type: self.payload_type,
                    marker: i + 1 == n,
                    sequence_number: self.next_seq,
                    timestamp: self.next_ts,
                    ssrc: self.ssrc,
                };
                self.next_seq = self.next_seq.wrapping_add(1);
                SynthPacket {
                    header,
                    payload,
                    frame,
                    keyframe: key,
                    keyframe_start: key && i == 0,
                }
            })
            .collect();
        self.next_ts = self.next_ts.wrapping_add(self.frame_ticks);
        self.frame += 1;
        self.picture_id = (self.picture_id + 1) & 0x7fff;
        out
    }

    fn marker_bytes(&self, index: usize) -> Vec<u8> {
        let mut v = self.frame.to_be_bytes().to_vec();
        v.extend_from_slice(&self.ssrc.to_be_bytes());
        v.push(index as u8);
        v.extend_from_slice(&[0xab; 16]);
        v
    }

    fn h264_frame(&self, key: bool) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let (nal_type, nri, count) = if key {
            (5u8, 0x60u8, self.key_packets.max(1))
        } else {
            (1u8, 0x40u8, self.inter_packets.max(1))
        };
        if key {
            let sps = sps_nal(66, self.width, self.height);
            let pps = [0x68, 0xce, 0x3c, 0x80];
            // An SEI NAL unit carries the frame marker in the aggregate.
            let mut sei = vec![0x06];
            sei.extend(self.marker_bytes(0));
            let mut stap = vec![0x78];
            for nal in [&sps[..], &pps[..], &sei[..]] {
                stap.extend_from_slice(&(nal.len() as u16).to_be_bytes());
                stap.extend_from_slice(nal);
            }
            out.push(stap);
        }
        if count == 1 {
            let mut p = vec![nri | nal_type];
            p.extend(self.marker_bytes(0));
            out.push(p);
        } else {
            for i in 0..count {
                let mut fu_header = nal_type;
                if i == 0 {
                    fu_header |= 0x80;
                }
                if i + 1 == count {
                    fu_header |= 0x40;
                }
                let mut p = vec![nri | 28, fu_header];
                p.extend(self.marker_bytes(i));
                out.push(p);
            }
        }
        out
    }

    fn vp8_frame(&self, key: bool) -> Vec<Vec<u8>> {
        let count = if key {
            self.key_packets
        } else {
            self.inter_packets
        }
        .max(1);
        (0..count)
            .map(|i| {
                let s_bit = if i == 0 { 0x10 } else { 0 };
                let mut p = vec![
                    0x80 | s_bit,
                    0x80,
                    0x80 | (self.picture_id >> 8) as u8,
                    (self.picture_id & 0xff) as u8,
                ];
                if i == 0 {
                    // Frame tag: keyframe bit (0 = key), version 0, show_frame.
                    p.extend_from_slice(&[if key { 0x10 } else { 0x11 }, 0, 0]);
                    if key {
                        p.extend_from_slice(&[0x9d, 0x01, 0x2a]);
                        p.extend_from_slice(&(self.width as u16).to_le_bytes());
                        p.extend_from_slice(&(self.height as u16).to_le_bytes());
                    }
                }
                p.extend(self.marker_bytes(i));
                p
            })
            .collect()
    }
}

/// Extracts (frame number, source SSRC) that [`SyntheticVideo`] wrote into a payload.
pub fn decode_marker(payload: &[u8]) -> Option<(u64, u32)> {
    // Find the 0xab filler and read the 13 bytes before it.
    let end = payload.windows(16).rposition(|w| w == [0xab; 16])?;
    let start = end.checked_sub(13)?;
    let b = &payload[start..end];
    let frame = u64::from_be_bytes(b[0..8].try_into().ok()?);
    let ssrc = u32::from_be_bytes(b[8..12].try_into().ok()?);
    Some((frame, ssrc))
}

/// Writes an SPS NAL unit for `profile_idc` (66 baseline or 100 high) and a
/// displayed size, with frame cropping when the size is not a multiple of 16.
pub fn sps_nal(profile_idc: u8, width: u32, height: u32) -> Vec<u8> {
    let mut w = BitWriter::default();
    w.bits(u64::from(profile_idc), 8);
    w.bits(if profile_idc == 66 { 0xc0 } else { 0 }, 8);
    w.bits(31, 8);
    w.ue(0); // seq_parameter_set_id
    if profile_idc == 100 {
        w.ue(1); // chroma_format_idc 4:2:0
        w.ue(0);
        w.ue(0);
        w.bit(false);
        w.bit(false);
    }
    w.ue(0); // log2_max_frame_num_minus4
    w.ue(0); // pic_order_cnt_type
    w.ue(0); // log2_max_pic_order_cnt_lsb_minus4
    w.ue(1); // max_num_ref_frames
    w.bit(false);
    let mbs_w = width.div_ceil(16).max(1);
    let mbs_h = height.div_ceil(16).max(1);
    w.ue(mbs_w - 1);
    w.ue(mbs_h - 1);
    w.bit(true); // frame_mbs_only_flag
    w.bit(true); // direct_8x8_inference_flag
    let crop_r = (mbs_w * 16).saturating_sub(width) / 2;
    let crop_b = (mbs_h * 16).saturating_sub(height) / 2;
    if crop_r + crop_b > 0 {
        w.bit(true);
        w.ue(0);
        w.ue(crop_r);
        w.ue(0);
        w.ue(crop_b);
    } else {
        w.bit(false);
    }
    w.bit(false); // vui_parameters_present_flag
    w.bit(true); // rbsp_stop_one_bit
    let mut out = vec![0x67];
    // Emulation prevention, so the NAL is valid in a byte stream too.
    let mut zeros = 0;
    for b in w.bytes {
        if zeros >= 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    used: u32,
}

impl BitWriter {
    fn bit(&mut self, b: bool) {
        if self.used.is_multiple_of(8) {
            self.bytes.push(0);
        }
        if b && let Some(last) = self.bytes.last_mut() {
            *last |= 1 << (7 - self.used % 8);
        }
        self.used += 1;
    }

    fn bits(&mut self, v: u64, n: u32) {
        for i in (0..n).rev() {
            self.bit(v >> i & 1 == 1);
        }
    }

    fn ue(&mut self, v: u32) {
        let v = u64::from(v) + 1;
        let len = 64 - v.leading_zeros();
        self.bits(0, len - 1);
        self.bits(v, len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyframe::FrameInspector;

    #[test]
    fn generated_streams_are_recognised() {
        for codec in [Codec::H264, Codec::Vp8] {
            let mut v = SyntheticVideo::new(codec, 5, 65530, u32::MAX - 4000);
            let mut inspector = FrameInspector::new(codec);
            for f in 0..10 {
                if f == 6 {
                    v.request_keyframe();
                }
                for p in v.next_frame() {
                    let info = inspector
                        .inspect(p.header.sequence_number, p.header.timestamp, &p.payload)
                        .expect("valid payload");
                    assert_eq!(info.keyframe_start, p.keyframe_start, "{codec:?} frame {f}");
                    assert_eq!(decode_marker(&p.payload), Some((p.frame, 5)));
                }
            }
            let params = inspector.params().expect("params seen");
            assert_eq!((params.width, params.height), (640, 480));
        }
    }
}
