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
use crate::vp8::{self, Vp8Error};

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
