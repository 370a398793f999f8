//! H.264 access units: Annex-B splitting, NAL classification and SPS parsing
//! (ITU-T H.264 §7.3.2.1.1), plus conversion to the length-prefixed (AVCC)
//! sample format that `avc1` tracks carry.
//!
//! Everything here takes untrusted bytes and returns `Result`; nothing panics.

use std::fmt;

/// NAL unit types this crate cares about.
pub mod nal_type {
    pub const NON_IDR_SLICE: u8 = 1;
    pub const PARTITION_A: u8 = 2;
    pub const PARTITION_C: u8 = 4;
    pub const IDR_SLICE: u8 = 5;
    pub const SEI: u8 = 6;
    pub const SPS: u8 = 7;
    pub const PPS: u8 = 8;
    pub const AUD: u8 = 9;
    pub const END_OF_SEQUENCE: u8 = 10;
    pub const END_OF_STREAM: u8 = 11;
    pub const FILLER: u8 = 12;
}

/// Largest SPS or PPS accepted (an `avcC` stores their lengths as u16; real
/// ones are well under 100 bytes).
pub const MAX_PARAMETER_SET_BYTES: usize = 1024;

/// Why an access unit or SPS could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum H264Error {
    /// No `00 00 01` start code: not an Annex-B byte stream.
    NotAnnexB,
    /// Non-zero bytes before the first start code.
    LeadingGarbage,
    /// A NAL unit with the forbidden_zero_bit set, or an empty NAL unit.
    InvalidNal,
    /// The access unit has no coded slice (nothing to show).
    NoPicture,
    /// An SPS or PPS longer than [`MAX_PARAMETER_SET_BYTES`].
    ParameterSetTooLarge,
    /// The SPS is truncated or has values out of the range H.264 allows.
    InvalidSps(&'static str),
}

impl fmt::Display for H264Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            H264Error::NotAnnexB => write!(f, "no Annex-B start code"),
            H264Error::LeadingGarbage => write!(f, "bytes before the first start code"),
            H264Error::InvalidNal => write!(f, "invalid NAL unit"),
            H264Error::NoPicture => write!(f, "access unit without a coded slice"),
            H264Error::ParameterSetTooLarge => write!(f, "parameter set too large"),
            H264Error::InvalidSps(why) => write!(f, "invalid SPS: {why}"),
        }
    }
}

impl std::error::Error for H264Error {}

/// Splits an Annex-B byte stream into NAL units (without start codes).
///
/// Zero bytes before the first start code are allowed (`zero_byte` /
/// `leading_zero_8bits`); trailing zero bytes of a NAL unit are trimmed
/// (`trailing_zero_8bits`, cabac_zero_words). Empty NAL units are skipped.
pub fn split_annex_b(data: &[u8]) -> Result<Vec<&[u8]>, H264Error> {
    let mut starts = Vec::new(); // index of the first byte after each start code
    let mut i = 0;
    while i + 2 < data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let Some(&first) = starts.first() else {
        return Err(H264Error::NotAnnexB);
    };
    if data[..first - 3].iter().any(|&b| b != 0) {
        return Err(H264Error::LeadingGarbage);
    }
    let mut nals = Vec::with_capacity(starts.len());
    for (k, &start) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(data.len(), |&next| next - 3);
        let mut nal = &data[start..end.max(start)];
        while let [rest @ .., 0] = nal {
            nal = rest;
        }
        if !nal.is_empty() {
            nals.push(nal);
        }
    }
    Ok(nals)
}

/// The `nal_unit_type` of a NAL unit (its first byte's low five bits).
pub fn nal_unit_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|b| b & 0x1f)
}

/// What one access unit carries once split and classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAccessUnit {
    /// The sample as stored in `mdat`: each kept NAL unit prefixed by its
    /// 4-byte big-endian length. SPS, PPS, AUD, filler and end-of-sequence
    /// NAL units are removed (parameter sets live in the `avcC`).
    pub avcc: Vec<u8>,
    /// Contains an IDR slice.
    pub keyframe: bool,
    /// The last SPS in the access unit, if any.
    pub sps: Option<Vec<u8>>,
    /// The last PPS in the access unit, if any.
    pub pps: Option<Vec<u8>>,
}

/// Splits and classifies one Annex-B access unit.
pub fn parse_access_unit(data: &[u8]) -> Result<ParsedAccessUnit, H264Error> {
    let nals = split_annex_b(data)?;
    let mut avcc = Vec::with_capacity(data.len() + 4 * nals.len());
    let mut keyframe = false;
    let mut has_slice = false;
    let mut sps = None;
    let mut pps = None;
    for nal in nals {
        let header = nal[0];
        if header & 0x80 != 0 {
            return Err(H264Error::InvalidNal);
        }
        let kind = header & 0x1f;
        match kind {
            nal_type::NON_IDR_SLICE..=nal_type::IDR_SLICE => {
                // Partitions B and C (3, 4) only make sense after an A.
                if (nal_type::PARTITION_A..=nal_type::PARTITION_C).contains(&kind) && nal.len() < 2
                {
                    return Err(H264Error::InvalidNal);
                }
                has_slice = true;
                keyframe |= kind == nal_type::IDR_SLICE;
            }
            nal_type::SPS | nal_type::PPS => {
                if nal.len() > MAX_PARAMETER_SET_BYTES || nal.len() < 2 {
                    return Err(H264Error::ParameterSetTooLarge);
                }
                if kind == nal_type::SPS {
                    sps = Some(nal.to_vec());
                } else {
                    pps = Some(nal.to_vec());
                }
                continue;
            }
            nal_type::SEI => {}
            // AUD, end of sequence/stream, filler: meaningless inside an
            // fMP4 sample. Everything else (SPS extension, prefix and
            // extension NAL units, reserved and unspecified types) is not
            // part of a plain AVC stream and is dropped too.
            _ => continue,
        }
        let len = u32::try_from(nal.len()).map_err(|_| H264Error::InvalidNal)?;
        avcc.extend_from_slice(&len.to_be_bytes());
        avcc.extend_from_slice(nal);
    }
    if !has_slice {
        return Err(H264Error::NoPicture);
    }
    Ok(ParsedAccessUnit {
        avcc,
        keyframe,
        sps,
        pps,
    })
}

/// Removes emulation-prevention bytes (`00 00 03` → `00 00`).
pub fn unescape_rbsp(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    fn bit(&mut self) -> Result<u32, H264Error> {
        let byte = self
            .data
            .get(self.pos / 8)
            .ok_or(H264Error::InvalidSps("truncated"))?;
        let bit = (byte >> (7 - (self.pos % 8))) & 1;
        self.pos += 1;
        Ok(u32::from(bit))
    }

    fn bits(&mut self, n: u32) -> Result<u32, H264Error> {
        let mut v = 0u32;
        for _ in 0..n {
            v = (v << 1) | self.bit()?;
        }
        Ok(v)
    }

    fn flag(&mut self) -> Result<bool, H264Error> {
        Ok(self.bit()? == 1)
    }

    /// Unsigned Exp-Golomb, at most 32 bits of value.
    fn ue(&mut self) -> Result<u32, H264Error> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return Err(H264Error::InvalidSps("exp-golomb code too long"));
            }
        }
        let rest = u64::from(self.bits(zeros)?);
        let v = (1u64 << zeros) - 1 + rest;
        u32::try_from(v).map_err(|_| H264Error::InvalidSps("exp-golomb value too large"))
    }

    fn se(&mut self) -> Result<i64, H264Error> {
        let k = i64::from(self.ue()?);
        Ok(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }

    fn ue_max(&mut self, max: u32, what: &'static str) -> Result<u32, H264Error> {
        let v = self.ue()?;
        if v > max {
            return Err(H264Error::InvalidSps(what));
        }
        Ok(v)
    }
}

/// What the packager needs from an SPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpsInfo {
    pub profile_idc: u8,
    /// constraint_set0..5 flags and the two reserved bits, as one byte.
    pub constraint_flags: u8,
    pub level_idc: u8,
    pub chroma_format_idc: u8,
    pub bit_depth_luma: u8,
    pub bit_depth_chroma: u8,
    /// Displayed width in pixels (after cropping).
    pub width: u32,
    /// Displayed height in pixels (after cropping).
    pub height: u32,
}

impl SpsInfo {
    /// RFC 6381 codec string, `avc1.PPCCLL` in hex.
    pub fn codec_string(&self) -> String {
        format!(
            "avc1.{:02x}{:02x}{:02x}",
            self.profile_idc, self.constraint_flags, self.level_idc
        )
    }

    /// Profiles whose SPS carries chroma format and bit depth (and whose
    /// `avcC` has the extension fields).
    pub fn is_high_profile_family(profile_idc: u8) -> bool {
        matches!(
            profile_idc,
            100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
        )
    }
}

/// Largest picture dimension accepted (H.264 level 6.2 tops out at 8192
/// pixels wide; anything past 16384 is garbage).
const MAX_DIMENSION: u32 = 16_384;

/// Parses an SPS NAL unit (including its one-byte NAL header).
pub fn parse_sps(nal: &[u8]) -> Result<SpsInfo, H264Error> {
    if nal_unit_type(nal) != Some(nal_type::SPS) {
        return Err(H264Error::InvalidSps("not an SPS NAL unit"));
    }
    if nal[0] & 0x80 != 0 {
        return Err(H264Error::InvalidSps("forbidden bit set"));
    }
    let rbsp = unescape_rbsp(&nal[1..]);
    let mut r = BitReader::new(&rbsp);
    let profile_idc = r.bits(8)? as u8;
    let constraint_flags = r.bits(8)? as u8;
    let level_idc = r.bits(8)? as u8;
    r.ue_max(31, "seq_parameter_set_id out of range")?;

    let mut chroma_format_idc = 1u32;
    let mut separate_colour_plane = false;
    let mut bit_depth_luma = 8u32;
    let mut bit_depth_chroma = 8u32;
    if SpsInfo::is_high_profile_family(profile_idc) {
        chroma_format_idc = r.ue_max(3, "chroma_format_idc out of range")?;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.flag()?;
        }
        bit_depth_luma = 8 + r.ue_max(6, "bit_depth_luma out of range")?;
        bit_depth_chroma = 8 + r.ue_max(6, "bit_depth_chroma out of range")?;
        r.flag()?; // qpprime_y_zero_transform_bypass_flag
        if r.flag()? {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.flag()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue_max(12, "log2_max_frame_num out of range")?;
    match r.ue_max(2, "pic_order_cnt_type out of range")? {
        0 => {
            r.ue_max(12, "log2_max_pic_order_cnt_lsb out of range")?;
        }
        1 => {
            r.flag()?;
            r.se()?;
            r.se()?;
            let cycle = r.ue_max(255, "num_ref_frames_in_pic_order_cnt_cycle out of range")?;
            for _ in 0..cycle {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue_max(16, "max_num_ref_frames out of range")?;
    r.flag()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = r.ue_max(MAX_DIMENSION / 16, "picture too wide")? + 1;
    let height_map_units = r.ue_max(MAX_DIMENSION / 16, "picture too tall")? + 1;
    let frame_mbs_only = r.flag()?;
    if !frame_mbs_only {
        r.flag()?; // mb_adaptive_frame_field_flag
    }
    r.flag()?; // direct_8x8_inference_flag
    let (mut crop_l, mut crop_r, mut crop_t, mut crop_b) = (0, 0, 0, 0);
    if r.flag()? {
        crop_l = r.ue_max(MAX_DIMENSION, "crop out of range")?;
        crop_r = r.ue_max(MAX_DIMENSION, "crop out of range")?;
        crop_t = r.ue_max(MAX_DIMENSION, "crop out of range")?;
        crop_b = r.ue_max(MAX_DIMENSION, "crop out of range")?;
    }

    let field_factor = if frame_mbs_only { 1 } else { 2 };
    let chroma_array_type = if separate_colour_plane {
        0
    } else {
        chroma_format_idc
    };
    let (sub_width, sub_height) = match chroma_array_type {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let (crop_unit_x, crop_unit_y) = if chroma_array_type == 0 {
        (1, field_factor)
    } else {
        (sub_width, sub_height * field_factor)
    };
    let full_width = width_mbs * 16;
    let full_height = height_map_units * 16 * field_factor;
    let width = full_width
        .checked_sub(crop_unit_x * (crop_l + crop_r))
        .filter(|w| *w > 0)
        .ok_or(H264Error::InvalidSps("cropping wider than the picture"))?;
    let height = full_height
        .checked_sub(crop_unit_y * (crop_t + crop_b))
        .filter(|h| *h > 0)
        .ok_or(H264Error::InvalidSps("cropping taller than the picture"))?;
    if width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(H264Error::InvalidSps("picture too large"));
    }
    Ok(SpsInfo {
        profile_idc,
        constraint_flags,
        level_idc,
        chroma_format_idc: chroma_format_idc as u8,
        bit_depth_luma: bit_depth_luma as u8,
        bit_depth_chroma: bit_depth_chroma as u8,
        width,
        height,
    })
}

fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), H264Error> {
    let mut last = 8i64;
    let mut next = 8i64;
    for _ in 0..size {
        if next != 0 {
            let delta = r.se()?;
            if !(-128..=127).contains(&delta) {
                return Err(H264Error::InvalidSps("delta_scale out of range"));
            }
            next = (last + delta + 256).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS_320X240_BASELINE: &[u8] = &[
        0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
        0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80,
    ];
    const SPS_640X480_HIGH: &[u8] = &[
        0x67, 0x64, 0x00, 0x1e, 0xac, 0xb2, 0x01, 0x40, 0x7b, 0x60, 0x22, 0x00, 0x00, 0x03, 0x00,
        0x02, 0x00, 0x00, 0x03, 0x00, 0x78, 0x1e, 0x2c, 0x5c, 0x90,
    ];
    const SPS_1280X720_MAIN: &[u8] = &[
        0x67, 0x4d, 0x40, 0x1f, 0xd9, 0x00, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00,
        0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x24, 0x80,
    ];

    #[test]
    fn parses_real_sps() {
        let s = parse_sps(SPS_320X240_BASELINE).expect("valid test input");
        assert_eq!((s.width, s.height), (320, 240));
        assert_eq!(s.codec_string(), "avc1.42c00d");
        let s = parse_sps(SPS_640X480_HIGH).expect("valid test input");
        assert_eq!((s.width, s.height), (640, 480));
        assert_eq!(s.codec_string(), "avc1.64001e");
        assert_eq!(s.chroma_format_idc, 1);
        let s = parse_sps(SPS_1280X720_MAIN).expect("valid test input");
        assert_eq!((s.width, s.height), (1280, 720));
        assert_eq!(s.codec_string(), "avc1.4d401f");
    }

    #[test]
    fn truncated_or_garbage_sps_is_an_error() {
        for len in 0..SPS_640X480_HIGH.len() - 1 {
            // Every strict prefix must fail or parse, never panic.
            let _ = parse_sps(&SPS_640X480_HIGH[..len]);
        }
        assert!(parse_sps(&[0x67]).is_err());
        assert!(parse_sps(&[0x67, 0x64, 0, 0x1e, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(parse_sps(&[0x68, 1, 2, 3]).is_err());
        let mut state = 0x1234_5678u32;
        for _ in 0..2000 {
            let mut nal = vec![0x67];
            for _ in 0..(state % 40) {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                nal.push((state >> 24) as u8);
            }
            let _ = parse_sps(&nal);
        }
    }

    #[test]
    fn splits_annex_b_with_both_start_code_lengths() {
        let data = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 1, 0x65, 9, 9,
        ];
        let nals = split_annex_b(&data).expect("valid test input");
        assert_eq!(
            nals,
            vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 9, 9][..]]
        );
        assert_eq!(split_annex_b(&[1, 2, 3]), Err(H264Error::NotAnnexB));
        assert_eq!(
            split_annex_b(&[7, 0, 0, 1, 0x65]),
            Err(H264Error::LeadingGarbage)
        );
    }

    #[test]
    fn access_unit_keeps_slices_and_collects_parameter_sets() {
        let mut data = vec![0, 0, 0, 1, 0x09, 0xf0]; // AUD
        data.extend_from_slice(&[0, 0, 0, 1]);
        data.extend_from_slice(SPS_320X240_BASELINE);
        data.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xcb, 0x83, 0xcb, 0x20]);
        data.extend_from_slice(&[0, 0, 0, 1, 0x65, 0x88, 0x84]);
        let au = parse_access_unit(&data).expect("valid test input");
        assert!(au.keyframe);
        assert_eq!(au.sps.as_deref(), Some(SPS_320X240_BASELINE));
        assert_eq!(au.pps.as_deref(), Some(&[0x68, 0xcb, 0x83, 0xcb, 0x20][..]));
        assert_eq!(au.avcc, vec![0, 0, 0, 3, 0x65, 0x88, 0x84]);

        assert_eq!(
            parse_access_unit(&[0, 0, 1, 0x09, 0xf0]),
            Err(H264Error::NoPicture)
        );
        assert_eq!(
            parse_access_unit(&[0, 0, 1, 0x85, 0x00]),
            Err(H264Error::InvalidNal)
        );
    }

    #[test]
    fn unescape_removes_emulation_prevention() {
        assert_eq!(unescape_rbsp(&[0, 0, 3, 1, 0, 0, 3]), vec![0, 0, 1, 0, 0]);
    }
}
