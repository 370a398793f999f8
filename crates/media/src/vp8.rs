//! VP8 RTP payload descriptor (RFC 7741 §4.2) and keyframe header (RFC 6386 §9.1).
//!
//! A VP8 frame starts in the packet whose descriptor has S=1 and PID=0; the
//! first byte after the descriptor is then the frame tag, whose lowest bit is
//! 0 for keyframes. Keyframes also carry the picture size, which the packager
//! needs when the Program's video changes resolution.

/// Why a VP8 payload could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vp8Error {
    Empty,
    /// The descriptor's optional fields run past the end of the payload.
    Truncated,
    /// A keyframe without the 0x9d 0x01 0x2a start code.
    BadStartCode,
}

impl std::fmt::Display for Vp8Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Vp8Error::Empty => write!(f, "empty VP8 payload"),
            Vp8Error::Truncated => write!(f, "truncated VP8 payload descriptor"),
            Vp8Error::BadStartCode => write!(f, "VP8 keyframe without start code"),
        }
    }
}

impl std::error::Error for Vp8Error {}

/// VP8 picture identifiers that the rewriter keeps continuous too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8Ids {
    pub picture_id: Option<u16>,
    /// `true` if the picture ID uses the 15-bit form; 7-bit ones wrap at 128.
    pub picture_id_15bit: bool,
    pub tl0_pic_idx: Option<u8>,
}

/// The parsed payload descriptor plus what the frame header says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vp8PayloadInfo {
    /// S bit: this packet starts a VP8 partition.
    pub start_of_partition: bool,
    /// Partition index (PID).
    pub partition_id: u8,
    /// 7- or 15-bit picture ID, if present.
    pub picture_id: Option<u16>,
    /// `true` when the picture ID uses the 15-bit form (M bit).
    pub picture_id_15bit: bool,
    pub tl0_pic_idx: Option<u8>,
    /// Byte offset of the VP8 payload (after the descriptor).
    pub header_len: usize,
    /// The packet starts a frame (S=1 and PID=0).
    pub frame_start: bool,
    /// The packet starts a keyframe.
    pub keyframe: bool,
    /// Width and height from the keyframe header (scaling bits dropped).
    pub size: Option<(u16, u16)>,
}

/// Parses the payload descriptor and, at a frame start, the frame tag.
pub fn inspect_payload(payload: &[u8]) -> Result<Vp8PayloadInfo, Vp8Error> {
    let first = *payload.first().ok_or(Vp8Error::Empty)?;
    let mut info = Vp8PayloadInfo {
        start_of_partition: first & 0x10 != 0,
        partition_id: first & 0x07,
        ..Default::default()
    };
    let mut pos = 1;
    if first & 0x80 != 0 {
        let ext = *payload.get(pos).ok_or(Vp8Error::Truncated)?;
        pos += 1;
        let (has_i, has_l, has_t, has_k) = (
            ext & 0x80 != 0,
            ext & 0x40 != 0,
            ext & 0x20 != 0,
            ext & 0x10 != 0,
        );
        if has_i {
            let b = *payload.get(pos).ok_or(Vp8Error::Truncated)?;
            pos += 1;
            if b & 0x80 != 0 {
                let b2 = *payload.get(pos).ok_or(Vp8Error::Truncated)?;
                pos += 1;
                info.picture_id = Some(u16::from(b & 0x7f) << 8 | u16::from(b2));
                info.picture_id_15bit = true;
            } else {
                info.picture_id = Some(u16::from(b));
            }
        }
        if has_l {
            info.tl0_pic_idx = Some(*payload.get(pos).ok_or(Vp8Error::Truncated)?);
            pos += 1;
        }
        if has_t || has_k {
            payload.get(pos).ok_or(Vp8Error::Truncated)?;
            pos += 1;
        }
    }
    info.header_len = pos;
    info.frame_start = info.start_of_partition && info.partition_id == 0;
    if info.frame_start {
        let frame = payload.get(pos..).unwrap_or_default();
        let tag = *frame.first().ok_or(Vp8Error::Truncated)?;
        if tag & 0x01 == 0 {
            info.keyframe = true;
            // Frame tag (3 bytes), start code (3 bytes), then 14-bit width and height.
            if let Some(h) = frame.get(3..10) {
                if h[..3] != [0x9d, 0x01, 0x2a] {
                    return Err(Vp8Error::BadStartCode);
                }
                let width = u16::from_le_bytes([h[3], h[4]]) & 0x3fff;
                let height = u16::from_le_bytes([h[5], h[6]]) & 0x3fff;
                info.size = Some((width, height));
            }
        }
    }
    Ok(info)
}

impl Vp8PayloadInfo {
    /// The identifiers a rewriter keeps continuous, if the packet has any.
    pub fn ids(&self) -> Option<Vp8Ids> {
        (self.picture_id.is_some() || self.tl0_pic_idx.is_some()).then_some(Vp8Ids {
            picture_id: self.picture_id,
            picture_id_15bit: self.picture_id_15bit,
            tl0_pic_idx: self.tl0_pic_idx,
        })
    }
}

/// Rewrites picture ID and TL0PICIDX in place (same length, same form).
///
/// Used to keep picture IDs continuous across a switch, like sequence
/// numbers; fields absent from the packet are left alone.
pub fn rewrite_descriptor(
    payload: &mut [u8],
    picture_id: Option<u16>,
    tl0_pic_idx: Option<u8>,
) -> Result<(), Vp8Error> {
    let info = inspect_descriptor_positions(payload)?;
    if let (Some(pos), Some(id)) = (info.picture_id_pos, picture_id) {
        if info.picture_id_15bit {
            payload[pos] = 0x80 | ((id >> 8) as u8 & 0x7f);
            payload[pos + 1] = (id & 0xff) as u8;
        } else {
            payload[pos] = (id & 0x7f) as u8;
        }
    }
    if let (Some(pos), Some(idx)) = (info.tl0_pos, tl0_pic_idx) {
        payload[pos] = idx;
    }
    Ok(())
}

struct DescriptorPositions {
    picture_id_pos: Option<usize>,
    picture_id_15bit: bool,
    tl0_pos: Option<usize>,
}

fn inspect_descriptor_positions(payload: &[u8]) -> Result<DescriptorPositions, Vp8Error> {
    let first = *payload.first().ok_or(Vp8Error::Empty)?;
    let mut out = DescriptorPositions {
        picture_id_pos: None,
        picture_id_15bit: false,
        tl0_pos: None,
    };
    if first & 0x80 == 0 {
        return Ok(out);
    }
    let ext = *payload.get(1).ok_or(Vp8Error::Truncated)?;
    let mut pos = 2;
    if ext & 0x80 != 0 {
        let b = *payload.get(pos).ok_or(Vp8Error::Truncated)?;
        out.picture_id_pos = Some(pos);
        if b & 0x80 != 0 {
            payload.get(pos + 1).ok_or(Vp8Error::Truncated)?;
            out.picture_id_15bit = true;
            pos += 2;
        } else {
            pos += 1;
        }
    }
    if ext & 0x40 != 0 {
        payload.get(pos).ok_or(Vp8Error::Truncated)?;
        out.tl0_pos = Some(pos);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Descriptor X=1,S=1,PID=0 with 15-bit picture ID 0x1234 and TL0PICIDX 7,
    /// followed by a 640x480 keyframe header.
    fn keyframe_packet() -> Vec<u8> {
        let mut p = vec![0x90, 0xc0, 0x92, 0x34, 7];
        p.extend_from_slice(&[0x50, 0x2a, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01]);
        p
    }

    #[test]
    fn detects_keyframe_and_size() {
        let info = inspect_payload(&keyframe_packet()).expect("valid");
        assert!(info.frame_start && info.keyframe);
        assert_eq!(info.picture_id, Some(0x1234));
        assert!(info.picture_id_15bit);
        assert_eq!(info.tl0_pic_idx, Some(7));
        assert_eq!(info.size, Some((640, 480)));
        assert_eq!(info.header_len, 5);
    }

    #[test]
    fn interframe_and_continuation() {
        // S=1, PID=0, no extension, inter frame (P bit = 1).
        let info = inspect_payload(&[0x10, 0x01, 0, 0]).expect("valid");
        assert!(info.frame_start && !info.keyframe);
        // Continuation packet (S=0) never counts as a keyframe.
        let info = inspect_payload(&[0x00, 0x00, 0, 0]).expect("valid");
        assert!(!info.frame_start && !info.keyframe);
        // S=1 on partition 1 is not a frame start.
        let info = inspect_payload(&[0x11, 0x00]).expect("valid");
        assert!(!info.frame_start);
    }

    #[test]
    fn malformed() {
        assert_eq!(inspect_payload(&[]), Err(Vp8Error::Empty));
        assert_eq!(inspect_payload(&[0x80]), Err(Vp8Error::Truncated));
        assert_eq!(
            inspect_payload(&[0x90, 0x80, 0x80]),
            Err(Vp8Error::Truncated)
        );
        assert_eq!(inspect_payload(&[0x10]), Err(Vp8Error::Truncated));
        assert_eq!(
            inspect_payload(&[0x10, 0x00, 0, 0, 1, 2, 3, 0, 0, 0, 0]),
            Err(Vp8Error::BadStartCode)
        );
    }

    #[test]
    fn rewrites_picture_id_in_place() {
        let mut p = keyframe_packet();
        rewrite_descriptor(&mut p, Some(0x7fff), Some(200)).expect("valid");
        let info = inspect_payload(&p).expect("valid");
        assert_eq!(info.picture_id, Some(0x7fff));
        assert_eq!(info.tl0_pic_idx, Some(200));
        assert!(info.keyframe);
    }
}
