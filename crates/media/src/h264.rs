//! H.264 RTP payload inspection (RFC 6184) and SPS parsing (ITU-T H.264 §7.3.2.1).
//!
//! Forwarding never decodes video, but it must know where a keyframe starts
//! (to switch a Subscription without showing garbage) and when the picture
//! size changes (so the broadcast packager can start a new init segment).
//! Browsers send SPS and PPS right before each IDR picture, either as single
//! NAL unit packets or aggregated in a STAP-A, and fragment the IDR with
//! FU-A. Everything here returns `Result`: payloads come from the network.

/// NAL unit types that matter for forwarding.
pub mod nal_type {
    pub const NON_IDR_SLICE: u8 = 1;
    pub const IDR_SLICE: u8 = 5;
    pub const SEI: u8 = 6;
    pub const SPS: u8 = 7;
    pub const PPS: u8 = 8;
    pub const AUD: u8 = 9;
    pub const STAP_A: u8 = 24;
    pub const STAP_B: u8 = 25;
    pub const MTAP16: u8 = 26;
    pub const MTAP24: u8 = 27;
    pub const FU_A: u8 = 28;
    pub const FU_B: u8 = 29;
}

/// Why an H.264 payload or SPS could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum H264Error {
    /// Zero-length payload.
    Empty,
    /// A length field or fragment header points past the end of the payload.
    Truncated,
    /// A STAP-A / STAP-B without any NAL unit inside.
    EmptyAggregate,
    /// A zero-sized NAL unit inside an aggregation packet.
    ZeroSizedNal,
    /// NAL unit type 0 or 30/31 (reserved), or interleaved-mode MTAPs.
    Unsupported(u8),
    /// The SPS bitstream is inconsistent (value out of the range H.264 allows).
    InvalidSps(&'static str),
}

impl std::fmt::Display for H264Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            H264Error::Empty => write!(f, "empty H.264 payload"),
            H264Error::Truncated => write!(f, "truncated H.264 payload"),
            H264Error::EmptyAggregate => write!(f, "aggregation packet without NAL units"),
            H264Error::ZeroSizedNal => write!(f, "zero-sized NAL unit in aggregation packet"),
            H264Error::Unsupported(t) => write!(f, "unsupported NAL unit type {t}"),
            H264Error::InvalidSps(why) => write!(f, "invalid SPS: {why}"),
        }
    }
}

impl std::error::Error for H264Error {}

/// What one RTP payload carries, as far as forwarding is concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct H264PayloadInfo {
    /// The payload begins a NAL unit (single NAL, aggregate, or FU start);
    /// `false` for FU-A continuation fragments.
    pub starts_nal: bool,
    /// Contains (the start of, or a fragment of) an IDR slice.
    pub has_idr: bool,
    /// Contains a complete IDR NAL or the first fragment of one.
    pub idr_start: bool,
    /// Contains (part of) a non-IDR coded slice (NAL types 1–4).
    pub has_non_idr_slice: bool,
    pub has_sps: bool,
    pub has_pps: bool,
    /// The first SPS found in this payload, if it parsed.
    pub sps: Option<Sps>,
}

/// Inspects one RTP payload (packetization-mode 0 or 1; STAP-B/FU-B parsed too).
pub fn inspect_payload(payload: &[u8]) -> Result<H264PayloadInfo, H264Error> {
    let first = *payload.first().ok_or(H264Error::Empty)?;
    let mut info = H264PayloadInfo::default();
    match first & 0x1f {
        t @ 1..=23 => {
            info.starts_nal = true;
            note_nal(&mut info, t, payload);
        }
        t @ (nal_type::STAP_A | nal_type::STAP_B) => {
            info.starts_nal = true;
            // STAP-B carries a 16-bit decoding order number first.
            let mut rest = if t == nal_type::STAP_B {
                payload.get(3..).ok_or(H264Error::Truncated)?
            } else {
                &payload[1..]
            };
            if rest.is_empty() {
                return Err(H264Error::EmptyAggregate);
            }
            while !rest.is_empty() {
                let size_bytes = rest.get(..2).ok_or(H264Error::Truncated)?;
                let size = usize::from(u16::from_be_bytes([size_bytes[0], size_bytes[1]]));
                if size == 0 {
                    return Err(H264Error::ZeroSizedNal);
                }
                let nal = rest.get(2..2 + size).ok_or(H264Error::Truncated)?;
                note_nal(&mut info, nal[0] & 0x1f, nal);
                rest = &rest[2 + size..];
            }
        }
        nal_type::FU_A | nal_type::FU_B => {
            let fu_header = *payload.get(1).ok_or(H264Error::Truncated)?;
            let start = fu_header & 0x80 != 0;
            let t = fu_header & 0x1f;
            info.starts_nal = start;
            if t == nal_type::IDR_SLICE {
                info.has_idr = true;
                info.idr_start = start;
            }
            info.has_non_idr_slice |= (1..=4).contains(&t);
            // Parameter sets are tiny and never fragmented by browsers; note
            // their presence but do not try to reassemble them.
            if start {
                info.has_sps |= t == nal_type::SPS;
                info.has_pps |= t == nal_type::PPS;
            }
        }
        other => return Err(H264Error::Unsupported(other)),
    }
    Ok(info)
}

fn note_nal(info: &mut H264PayloadInfo, t: u8, nal: &[u8]) {
    match t {
        nal_type::IDR_SLICE => {
            info.has_idr = true;
            info.idr_start = true;
        }
        nal_type::SPS => {
            info.has_sps = true;
            if info.sps.is_none() {
                info.sps = parse_sps(nal).ok();
            }
        }
        nal_type::PPS => info.has_pps = true,
        1..=4 => info.has_non_idr_slice = true,
        _ => {}
    }
}

/// The parts of a sequence parameter set the packager needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sps {
    pub profile_idc: u8,
    /// constraint_set0..5 flags and the two reserved bits, as in profile-level-id.
    pub constraint_flags: u8,
    pub level_idc: u8,
    pub seq_parameter_set_id: u32,
    pub chroma_format_idc: u32,
    /// Displayed size, after frame cropping.
    pub width: u32,
    pub height: u32,
}

impl Sps {
    /// The three bytes of SDP `profile-level-id` (e.g. `42e01f`).
    pub fn profile_level_id(&self) -> [u8; 3] {
        [self.profile_idc, self.constraint_flags, self.level_idc]
    }

    /// `profile-level-id` as the lowercase hex string used in SDP and `avc1.` codec strings.
    pub fn profile_level_id_hex(&self) -> String {
        let [a, b, c] = self.profile_level_id();
        format!("{a:02x}{b:02x}{c:02x}")
    }
}

/// Parses an SPS NAL unit (starting with its one-byte NAL header).
pub fn parse_sps(nal: &[u8]) -> Result<Sps, H264Error> {
    let header = *nal.first().ok_or(H264Error::Empty)?;
    if header & 0x1f != nal_type::SPS {
        return Err(H264Error::InvalidSps("not an SPS NAL unit"));
    }
    let rbsp = unescape(&nal[1..]);
    let mut r = BitReader::new(&rbsp);
    let profile_idc = r.u8()?;
    let constraint_flags = r.u8()?;
    let level_idc = r.u8()?;
    let seq_parameter_set_id = r.ue()?;
    if seq_parameter_set_id > 31 {
        return Err(H264Error::InvalidSps("seq_parameter_set_id > 31"));
    }
    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    if matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc > 3 {
            return Err(H264Error::InvalidSps("chroma_format_idc > 3"));
        }
        if chroma_format_idc == 3 {
            separate_colour_plane = r.bit()?;
        }
        let _bit_depth_luma_minus8 = r.ue()?;
        let _bit_depth_chroma_minus8 = r.ue()?;
        let _qpprime_y_zero_transform_bypass = r.bit()?;
        if r.bit()? {
            // seq_scaling_matrix_present_flag
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    let log2_max_frame_num_minus4 = r.ue()?;
    if log2_max_frame_num_minus4 > 12 {
        return Err(H264Error::InvalidSps("log2_max_frame_num_minus4 > 12"));
    }
    let pic_order_cnt_type = r.ue()?;
    match pic_order_cnt_type {
        0 => {
            let _log2_max_poc_lsb_minus4 = r.ue()?;
        }
        1 => {
            let _delta_pic_order_always_zero = r.bit()?;
            let _offset_for_non_ref_pic = r.se()?;
            let _offset_for_top_to_bottom_field = r.se()?;
            let cycle = r.ue()?;
            if cycle > 255 {
                return Err(H264Error::InvalidSps(
                    "num_ref_frames_in_pic_order_cnt_cycle > 255",
                ));
            }
            for _ in 0..cycle {
                let _offset_for_ref_frame = r.se()?;
            }
        }
        2 => {}
        _ => return Err(H264Error::InvalidSps("pic_order_cnt_type > 2")),
    }
    let _max_num_ref_frames = r.ue()?;
    let _gaps_in_frame_num_allowed = r.bit()?;
    let width_mbs = u64::from(r.ue()?) + 1;
    let height_map_units = u64::from(r.ue()?) + 1;
    let frame_mbs_only = r.bit()?;
    if !frame_mbs_only {
        let _mb_adaptive_frame_field = r.bit()?;
    }
    let _direct_8x8_inference = r.bit()?;
    let (mut crop_left, mut crop_right, mut crop_top, mut crop_bottom) = (0u64, 0u64, 0u64, 0u64);
    if r.bit()? {
        crop_left = r.ue()?.into();
        crop_right = r.ue()?.into();
        crop_top = r.ue()?.into();
        crop_bottom = r.ue()?.into();
    }
    let field_factor = if frame_mbs_only { 1 } else { 2 };
    // Table 6-1: SubWidthC / SubHeightC; monochrome and 4:4:4 crop in luma units.
    let (sub_width, sub_height) = match (chroma_format_idc, separate_colour_plane) {
        (1, _) => (2, 2),
        (2, _) => (2, 1),
        _ => (1, 1),
    };
    let crop_unit_x = sub_width;
    let crop_unit_y = sub_height * field_factor;
    let full_width = width_mbs * 16;
    let full_height = height_map_units * 16 * field_factor;
    let crop_x = crop_unit_x * (crop_left + crop_right);
    let crop_y = crop_unit_y * (crop_top + crop_bottom);
    if crop_x >= full_width || crop_y >= full_height {
        return Err(H264Error::InvalidSps("cropping removes the whole picture"));
    }
    let width = u32::try_from(full_width - crop_x)
        .map_err(|_| H264Error::InvalidSps("width out of range"))?;
    let height = u32::try_from(full_height - crop_y)
        .map_err(|_| H264Error::InvalidSps("height out of range"))?;
    Ok(Sps {
        profile_idc,
        constraint_flags,
        level_idc,
        seq_parameter_set_id,
        chroma_format_idc,
        width,
        height,
    })
}

fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), H264Error> {
    let mut last_scale: i64 = 8;
    let mut next_scale: i64 = 8;
    for _ in 0..size {
        if next_scale != 0 {
            let delta = i64::from(r.se()?);
            next_scale = (last_scale + delta + 256).rem_euclid(256);
        }
        if next_scale != 0 {
            last_scale = next_scale;
        }
    }
    Ok(())
}

/// Removes emulation-prevention bytes (`00 00 03` → `00 00`).
fn unescape(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut zeros = 0;
    for &b in data {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// MSB-first bit reader with Exp-Golomb codes (§9.1).
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    fn bit(&mut self) -> Result<bool, H264Error> {
        let byte = self.data.get(self.pos / 8).ok_or(H264Error::Truncated)?;
        let bit = byte >> (7 - self.pos % 8) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    fn bits(&mut self, n: u32) -> Result<u32, H264Error> {
        let mut v = 0u32;
        for _ in 0..n {
            v = v << 1 | u32::from(self.bit()?);
        }
        Ok(v)
    }

    fn u8(&mut self) -> Result<u8, H264Error> {
        // 8 bits always fit in u8.
        Ok(self.bits(8)? as u8)
    }

    fn ue(&mut self) -> Result<u32, H264Error> {
        let mut zeros = 0;
        while !self.bit()? {
            zeros += 1;
            if zeros > 31 {
                return Err(H264Error::InvalidSps("Exp-Golomb code longer than 32 bits"));
            }
        }
        let rest = u64::from(self.bits(zeros)?);
        let value = (1u64 << zeros) - 1 + rest;
        u32::try_from(value).map_err(|_| H264Error::InvalidSps("Exp-Golomb value too large"))
    }

    fn se(&mut self) -> Result<i32, H264Error> {
        let k = i64::from(self.ue()?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        i32::try_from(v).map_err(|_| H264Error::InvalidSps("signed Exp-Golomb value too large"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SPS from a Chromium/OpenH264 640x480 stream, constrained baseline 3.1.
    pub(crate) const SPS_640X480: &[u8] = &[
        0x67, 0x42, 0xc0, 0x1f, 0x8c, 0x8d, 0x40, 0x50, 0x1e, 0xd0, 0x0f, 0x08, 0x84, 0x6a,
    ];

    #[test]
    fn parses_baseline_sps() {
        let sps = parse_sps(SPS_640X480).expect("valid SPS");
        assert_eq!(sps.profile_idc, 66);
        assert_eq!(sps.level_idc, 31);
        assert_eq!((sps.width, sps.height), (640, 480));
        assert_eq!(sps.profile_level_id_hex(), "42c01f");
    }

    #[test]
    fn parses_cropped_1080p_high_profile() {
        let sps = crate::synth::sps_nal(100, 1920, 1080);
        let parsed = parse_sps(&sps).expect("valid SPS");
        assert_eq!((parsed.width, parsed.height), (1920, 1080));
        assert_eq!(parsed.profile_idc, 100);
    }

    #[test]
    fn single_nal_idr() {
        let info = inspect_payload(&[0x65, 0x88, 0x80]).expect("valid");
        assert!(info.has_idr && info.idr_start && info.starts_nal);
        let info = inspect_payload(&[0x41, 0x9a]).expect("valid");
        assert!(!info.has_idr && info.starts_nal);
    }

    #[test]
    fn stap_a_with_sps_pps_idr() {
        let mut p = vec![0x78];
        for nal in [
            SPS_640X480,
            &[0x68, 0xce, 0x3c, 0x80][..],
            &[0x65, 0xb8][..],
        ] {
            p.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            p.extend_from_slice(nal);
        }
        let info = inspect_payload(&p).expect("valid");
        assert!(info.has_sps && info.has_pps && info.idr_start);
        assert_eq!(info.sps.map(|s| (s.width, s.height)), Some((640, 480)));
    }

    #[test]
    fn fu_a_fragments() {
        let start = inspect_payload(&[0x7c, 0x85, 1, 2]).expect("valid");
        assert!(start.idr_start && start.starts_nal);
        let middle = inspect_payload(&[0x7c, 0x05, 1, 2]).expect("valid");
        assert!(middle.has_idr && !middle.idr_start && !middle.starts_nal);
        let p_slice = inspect_payload(&[0x5c, 0x81, 1]).expect("valid");
        assert!(!p_slice.has_idr && p_slice.starts_nal);
    }

    #[test]
    fn malformed_payloads_are_errors() {
        assert_eq!(inspect_payload(&[]), Err(H264Error::Empty));
        assert_eq!(inspect_payload(&[0x7c]), Err(H264Error::Truncated));
        assert_eq!(inspect_payload(&[0x78]), Err(H264Error::EmptyAggregate));
        assert_eq!(inspect_payload(&[0x78, 0]), Err(H264Error::Truncated));
        assert_eq!(inspect_payload(&[0x78, 0, 0]), Err(H264Error::ZeroSizedNal));
        assert_eq!(
            inspect_payload(&[0x78, 0, 5, 0x65]),
            Err(H264Error::Truncated)
        );
        assert_eq!(inspect_payload(&[0x79, 0]), Err(H264Error::Truncated));
        assert_eq!(inspect_payload(&[0x00]), Err(H264Error::Unsupported(0)));
        assert_eq!(inspect_payload(&[0x1f]), Err(H264Error::Unsupported(31)));
        assert!(parse_sps(&[0x67, 0x42]).is_err());
        assert!(parse_sps(&[0x67, 0x42, 0, 0x1f, 0, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn removes_emulation_prevention() {
        assert_eq!(unescape(&[0, 0, 3, 1, 0, 0, 3]), vec![0, 0, 1, 0, 0]);
    }
}
