//! Codec-independent frame and keyframe detection for one Publication.
//!
//! A Subscription may only switch to a new source at the first packet of a
//! keyframe: anything earlier would hand the receiver's decoder a P-frame
//! that references pictures it never saw. Finding that packet needs a little
//! state per Publication (which RTP timestamp is the newest frame, whether a
//! slice of it was already seen), kept here so it is computed once per
//! incoming packet and shared by every receiver.

use crate::h264::{self, H264Error};
use crate::seq::SeqUnwrapper;
use crate::vp8::{self, Vp8Error, Vp8Ids};

/// Video codecs that can be forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// H.264, packetization-mode 1 (constrained baseline from browsers).
    H264,
    /// VP8, the fallback.
    Vp8,
}

/// Coded picture parameters; a change means a new decoder configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoParams {
    pub codec: Codec,
    pub width: u32,
    pub height: u32,
    /// H.264 only: profile_idc, constraint flags, level_idc.
    pub profile_level_id: Option<[u8; 3]>,
}

/// Why a payload could not be inspected; the packet may still be forwarded
/// as opaque bytes, but it is never treated as a switch point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InspectError {
    H264(H264Error),
    Vp8(Vp8Error),
}

impl std::fmt::Display for InspectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InspectError::H264(e) => e.fmt(f),
            InspectError::Vp8(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for InspectError {}

/// What forwarding needs to know about one incoming video packet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacketInfo {
    /// First packet seen of a new (newest) frame.
    pub frame_start: bool,
    /// The packet carries (part of) a keyframe.
    pub keyframe: bool,
    /// A receiver may switch to this Publication at this packet.
    pub keyframe_start: bool,
    /// Picture parameters carried by this packet (SPS, VP8 keyframe header).
    pub params: Option<VideoParams>,
    /// `params` differ from the last ones this Publication sent.
    pub params_changed: bool,
    /// VP8 picture identifiers, to be kept continuous by the rewriter.
    pub vp8: Option<Vp8Ids>,
}

/// Per-Publication state for [`PacketInfo`] computation.
#[derive(Debug, Clone)]
pub struct FrameInspector {
    codec: Codec,
    unwrapper: SeqUnwrapper,
    newest: Option<u64>,
    frame: Option<FrameState>,
    params: Option<VideoParams>,
}

#[derive(Debug, Clone)]
struct FrameState {
    timestamp: u32,
    first_ext_seq: u64,
    /// A slice of a non-keyframe (or continuation data) has been seen, so a
    /// keyframe start can no longer begin in this frame.
    slice_seen: bool,
    keyframe_start_seen: bool,
    keyframe: bool,
}

impl FrameInspector {
    pub fn new(codec: Codec) -> Self {
        Self {
            codec,
            unwrapper: SeqUnwrapper::new(),
            newest: None,
            frame: None,
            params: None,
        }
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The picture parameters seen last (from an SPS or VP8 keyframe).
    pub fn params(&self) -> Option<VideoParams> {
        self.params
    }

    /// Inspects one packet of this Publication, in arrival order.
    ///
    /// Frame-tracking state is updated even when the payload is malformed,
    /// so a broken packet cannot make a later one look like a frame start.
    pub fn inspect(
        &mut self,
        sequence_number: u16,
        timestamp: u32,
        payload: &[u8],
    ) -> Result<PacketInfo, InspectError> {
        let ext = self.unwrapper.unwrap(u64::from(sequence_number));
        let mut info = PacketInfo::default();
        let is_newer = self.newest.is_none_or(|n| ext > n);
        if is_newer {
            self.newest = Some(ext);
        }
        let in_current_frame = match &self.frame {
            Some(f) if f.timestamp == timestamp => ext >= f.first_ext_seq,
            Some(_) if is_newer => {
                info.frame_start = true;
                true
            }
            Some(_) => false,
            None => {
                info.frame_start = true;
                true
            }
        };
        if info.frame_start {
            self.frame = Some(FrameState {
                timestamp,
                first_ext_seq: ext,
                slice_seen: false,
                keyframe_start_seen: false,
                keyframe: false,
            });
        }
        // `prefix`: the packet holds only NAL units that may precede an IDR
        // picture (SPS, PPS, SEI, AUD), so a keyframe may still start later
        // in the same frame.
        let (starts_keyframe, carries_keyframe, prefix, params) = match self.codec {
            Codec::H264 => {
                let p = h264::inspect_payload(payload).map_err(|e| {
                    self.mark_slice(in_current_frame);
                    InspectError::H264(e)
                })?;
                let params = p.sps.map(|s| VideoParams {
                    codec: Codec::H264,
                    width: s.width,
                    height: s.height,
                    profile_level_id: Some(s.profile_level_id()),
                });
                let starts = p.starts_nal && (p.has_sps || p.idr_start);
                let prefix = p.starts_nal && !p.has_idr && !p.has_non_idr_slice;
                (starts, p.has_idr || p.has_sps, prefix, params)
            }
            Codec::Vp8 => {
                let p = vp8::inspect_payload(payload).map_err(|e| {
                    self.mark_slice(in_current_frame);
                    InspectError::Vp8(e)
                })?;
                let params = p.size.map(|(w, h)| VideoParams {
                    codec: Codec::Vp8,
                    width: w.into(),
                    height: h.into(),
                    profile_level_id: None,
                });
                info.vp8 = p.ids();
                (p.keyframe, p.keyframe, false, params)
            }
        };
        if in_current_frame && let Some(frame) = self.frame.as_mut() {
            if starts_keyframe && !frame.slice_seen && !frame.keyframe_start_seen {
                info.keyframe_start = true;
                frame.keyframe_start_seen = true;
            }
            if !prefix {
                frame.slice_seen = true;
            }
            frame.keyframe |= carries_keyframe;
            info.keyframe = frame.keyframe;
        } else {
            info.keyframe = carries_keyframe;
        }
        if let Some(p) = params {
            info.params = Some(p);
            info.params_changed = self.params != Some(p);
            self.params = Some(p);
        }
        Ok(info)
    }

    fn mark_slice(&mut self, in_current_frame: bool) {
        if in_current_frame && let Some(frame) = self.frame.as_mut() {
            frame.slice_seen = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::sps_nal;

    fn stap(nals: &[&[u8]]) -> Vec<u8> {
        let mut p = vec![0x78];
        for n in nals {
            p.extend_from_slice(&(n.len() as u16).to_be_bytes());
            p.extend_from_slice(n);
        }
        p
    }

    const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

    #[test]
    fn h264_switch_point_is_first_packet_of_keyframe() {
        let sps = sps_nal(66, 320, 240);
        let mut k = FrameInspector::new(Codec::H264);
        let key = k.inspect(1, 0, &stap(&[&sps, PPS])).expect("valid");
        assert!(key.frame_start && key.keyframe_start && key.keyframe);
        assert!(key.params_changed);
        assert_eq!(key.params.map(|p| (p.width, p.height)), Some((320, 240)));
        let idr = k.inspect(2, 0, &[0x7c, 0x85, 0]).expect("valid");
        assert!(!idr.keyframe_start && !idr.frame_start && idr.keyframe);
        let end = k.inspect(3, 0, &[0x7c, 0x45, 0]).expect("valid");
        assert!(!end.keyframe_start && end.keyframe);
        let p = k.inspect(4, 3000, &[0x41, 0]).expect("valid");
        assert!(p.frame_start && !p.keyframe_start && !p.keyframe);
        // Same SPS again: not a change.
        let again = k.inspect(5, 6000, &stap(&[&sps, PPS])).expect("valid");
        assert!(again.keyframe_start && !again.params_changed);
        let bigger = k
            .inspect(6, 9000, &stap(&[&sps_nal(66, 1280, 720), PPS]))
            .expect("valid");
        assert!(bigger.params_changed);
    }

    #[test]
    fn h264_separate_parameter_sets_and_sei_prefix() {
        let sps = sps_nal(66, 320, 240);
        let mut k = FrameInspector::new(Codec::H264);
        let sei = k.inspect(10, 0, &[0x06, 5, 1, 0]).expect("valid");
        assert!(sei.frame_start && !sei.keyframe_start);
        let s = k.inspect(11, 0, &sps).expect("valid");
        assert!(
            s.keyframe_start,
            "SPS after an SEI still starts the keyframe"
        );
        let pps = k.inspect(12, 0, PPS).expect("valid");
        assert!(!pps.keyframe_start);
        let idr = k.inspect(13, 0, &[0x65, 0]).expect("valid");
        assert!(!idr.keyframe_start);
    }

    #[test]
    fn h264_idr_without_parameter_sets() {
        let mut k = FrameInspector::new(Codec::H264);
        assert!(
            k.inspect(1, 0, &[0x7c, 0x85, 0])
                .expect("valid")
                .keyframe_start
        );
        // A P frame whose first fragment was lost: continuation is no switch point.
        let cont = k.inspect(5, 3000, &[0x7c, 0x05, 0]).expect("valid");
        assert!(cont.frame_start && !cont.keyframe_start);
    }

    #[test]
    fn h264_late_packet_is_not_a_switch_point() {
        let sps = sps_nal(66, 320, 240);
        let mut k = FrameInspector::new(Codec::H264);
        k.inspect(100, 0, &[0x41, 0]).expect("valid");
        // IDR fragment (seq 102) overtakes the STAP-A (seq 101).
        let frag = k.inspect(102, 3000, &[0x7c, 0x05, 0]).expect("valid");
        assert!(frag.frame_start && !frag.keyframe_start);
        let late = k.inspect(101, 3000, &stap(&[&sps, PPS])).expect("valid");
        assert!(!late.keyframe_start);
        // Old retransmission of a keyframe from the past.
        let old = k.inspect(50, 0, &stap(&[&sps, PPS])).expect("valid");
        assert!(!old.keyframe_start);
    }

    #[test]
    fn malformed_packet_closes_the_frame() {
        let sps = sps_nal(66, 320, 240);
        let mut k = FrameInspector::new(Codec::H264);
        assert!(k.inspect(1, 0, &[0x78]).is_err());
        let s = k.inspect(2, 0, &stap(&[&sps, PPS])).expect("valid");
        assert!(!s.keyframe_start);
        let next = k.inspect(3, 3000, &stap(&[&sps, PPS])).expect("valid");
        assert!(next.keyframe_start);
    }

    #[test]
    fn vp8_keyframes() {
        let mut k = FrameInspector::new(Codec::Vp8);
        let key = [
            0x90, 0x80, 0x81, 0x00, 0x10, 0, 0, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00,
        ];
        let info = k.inspect(7, 0, &key).expect("valid");
        assert!(info.keyframe_start && info.params_changed);
        assert_eq!(info.params.map(|p| (p.width, p.height)), Some((320, 240)));
        assert_eq!(info.vp8.and_then(|v| v.picture_id), Some(0x100));
        let cont = k
            .inspect(8, 0, &[0x80, 0x80, 0x81, 0x00, 1, 2])
            .expect("valid");
        assert!(!cont.keyframe_start && cont.keyframe);
        let inter = k
            .inspect(9, 3000, &[0x90, 0x80, 0x81, 0x01, 0x11, 0, 0])
            .expect("valid");
        assert!(inter.frame_start && !inter.keyframe_start && !inter.keyframe);
    }
}
