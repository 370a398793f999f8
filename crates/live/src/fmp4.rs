//! CMAF / fragmented MP4 boxes: the init segment (`ftyp` + `moov`) and media
//! fragments (`moof` + `mdat`), built with `mp4-atom`.
//!
//! Track 1 is H.264 video (`avc1`/`avcC`, timescale 90 kHz), track 2 is Opus
//! audio (`Opus`/`dOps` per "Encapsulation of Opus in ISO Base Media File
//! Format", timescale 48 kHz). Every fragment carries a `tfdt` and a `trun`
//! with per-sample duration and size (and per-sample flags for video).

use mp4_atom::{
    Audio, Avc1, Avcc, AvccExt, Codec, Dinf, Dops, Dref, Encode, FixedPoint, FourCC, Ftyp, Hdlr,
    Mdat, Mdhd, Mdia, Mfhd, Minf, Moof, Moov, Mvex, Mvhd, Opus, Smhd, Stbl, Stco, Stsd, Tfdt, Tfhd,
    Tkhd, Traf, Trak, Trex, Trun, TrunEntry, Url, Visual, Vmhd,
};

use crate::h264::SpsInfo;

/// Track id of the video track.
pub const VIDEO_TRACK_ID: u32 = 1;
/// Track id of the audio track.
pub const AUDIO_TRACK_ID: u32 = 2;
/// Video media timescale (RTP's 90 kHz clock).
pub const VIDEO_TIMESCALE: u32 = 90_000;
/// Audio media timescale (Opus always runs at 48 kHz).
pub const AUDIO_TIMESCALE: u32 = 48_000;

/// `sample_depends_on = 2`: a sync sample (IDR).
pub const SAMPLE_FLAGS_SYNC: u32 = 0x0200_0000;
/// `sample_depends_on = 1`, `sample_is_non_sync_sample = 1`.
pub const SAMPLE_FLAGS_NON_SYNC: u32 = 0x0101_0000;

/// A box could not be encoded (only possible with inconsistent input such as
/// a parameter set over 64 KiB, which the parsers refuse earlier).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MuxError(pub String);

impl std::fmt::Display for MuxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "mp4 encoding failed: {}", self.0)
    }
}

impl std::error::Error for MuxError {}

impl From<mp4_atom::Error> for MuxError {
    fn from(e: mp4_atom::Error) -> Self {
        MuxError(e.to_string())
    }
}

/// The video parameters an init segment is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoParams {
    pub sps: Vec<u8>,
    pub pps: Vec<u8>,
    pub info: SpsInfo,
}

/// Audio track description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioParams {
    /// 1 or 2 (channel mapping family 0).
    pub channels: u8,
    /// Opus pre-skip in 48 kHz samples, written to `dOps`.
    pub pre_skip: u16,
}

/// Builds `ftyp` + `moov` for one video configuration and the audio track.
pub fn init_segment(video: &VideoParams, audio: AudioParams) -> Result<Vec<u8>, MuxError> {
    let mut out = Vec::with_capacity(1024);
    Ftyp {
        major_brand: FourCC::new(b"iso6"),
        minor_version: 0,
        compatible_brands: vec![
            FourCC::new(b"iso6"),
            FourCC::new(b"cmfc"),
            FourCC::new(b"mp41"),
        ],
    }
    .encode(&mut out)?;

    let info = &video.info;
    let width = u16::try_from(info.width).map_err(|_| MuxError("width".into()))?;
    let height = u16::try_from(info.height).map_err(|_| MuxError("height".into()))?;
    let ext = SpsInfo::is_high_profile_family(info.profile_idc).then(|| AvccExt {
        chroma_format: info.chroma_format_idc,
        bit_depth_luma: info.bit_depth_luma,
        bit_depth_chroma: info.bit_depth_chroma,
        sequence_parameter_sets_ext: Vec::new(),
    });
    let avc1 = Avc1 {
        visual: Visual {
            data_reference_index: 1,
            width,
            height,
            ..Default::default()
        },
        avcc: Avcc {
            configuration_version: 1,
            avc_profile_indication: info.profile_idc,
            profile_compatibility: info.constraint_flags,
            avc_level_indication: info.level_idc,
            length_size: 4,
            sequence_parameter_sets: vec![video.sps.clone()],
            picture_parameter_sets: vec![video.pps.clone()],
            ext,
        },
        ..Default::default()
    };
    let opus = Opus {
        audio: Audio {
            data_reference_index: 1,
            channel_count: u16::from(audio.channels),
            sample_size: 16,
            sample_rate: FixedPoint::new(48_000, 0),
        },
        dops: Dops {
            output_channel_count: audio.channels,
            pre_skip: audio.pre_skip,
            input_sample_rate: 48_000,
            output_gain: 0,
            channel_mapping: None,
        },
        btrt: None,
    };

    let moov = Moov {
        mvhd: Mvhd {
            timescale: 1000,
            rate: FixedPoint::new(1, 0),
            volume: FixedPoint::new(1, 0),
            next_track_id: AUDIO_TRACK_ID + 1,
            ..Default::default()
        },
        mvex: Some(Mvex {
            mehd: None,
            trex: vec![
                Trex {
                    track_id: VIDEO_TRACK_ID,
                    default_sample_description_index: 1,
                    default_sample_flags: SAMPLE_FLAGS_NON_SYNC,
                    ..Default::default()
                },
                Trex {
                    track_id: AUDIO_TRACK_ID,
                    default_sample_description_index: 1,
                    default_sample_flags: SAMPLE_FLAGS_SYNC,
                    ..Default::default()
                },
            ],
        }),
        trak: vec![
            trak(
                VIDEO_TRACK_ID,
                VIDEO_TIMESCALE,
                b"vide",
                "VideoHandler",
                Codec::Avc1(avc1),
                (width, height),
            ),
            trak(
                AUDIO_TRACK_ID,
                AUDIO_TIMESCALE,
                b"soun",
                "SoundHandler",
                Codec::Opus(opus),
                (0, 0),
            ),
        ],
        ..Default::default()
    };
    moov.encode(&mut out)?;
    Ok(out)
}

fn trak(
    track_id: u32,
    timescale: u32,
    handler: &[u8; 4],
    name: &str,
    codec: Codec,
    (width, height): (u16, u16),
) -> Trak {
    let is_video = handler == b"vide";
    Trak {
        tkhd: Tkhd {
            track_id,
            enabled: true,
            in_movie: true,
            volume: if is_video {
                FixedPoint::new(0, 0)
            } else {
                FixedPoint::new(1, 0)
            },
            width: FixedPoint::new(width, 0),
            height: FixedPoint::new(height, 0),
            ..Default::default()
        },
        mdia: Mdia {
            mdhd: Mdhd {
                timescale,
                language: "und".into(),
                ..Default::default()
            },
            hdlr: Hdlr {
                handler: FourCC::new(handler),
                name: name.into(),
            },
            minf: Minf {
                vmhd: is_video.then(Vmhd::default),
                smhd: (!is_video).then(Smhd::default),
                dinf: Dinf {
                    dref: Dref {
                        entries: vec![
                            Url {
                                location: String::new(),
                            }
                            .into(),
                        ],
                    },
                },
                stbl: Stbl {
                    stsd: Stsd {
                        codecs: vec![codec],
                    },
                    stco: Some(Stco::default()),
                    ..Default::default()
                },
                ..Default::default()
            },
        },
        ..Default::default()
    }
}

/// One sample of a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Duration in the track's timescale.
    pub duration: u32,
    /// Sync sample (video keyframe; every audio sample).
    pub sync: bool,
    pub data: Vec<u8>,
}

/// One track's run inside a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackRun<'a> {
    pub track_id: u32,
    /// Decode time of the first sample, in the track's timescale.
    pub base_decode_time: u64,
    pub samples: &'a [Sample],
    /// Write per-sample flags (video); otherwise the `trex` default applies.
    pub per_sample_flags: bool,
}

/// Builds one `moof` + `mdat`. Runs with no samples are left out.
pub fn fragment(sequence_number: u32, runs: &[TrackRun<'_>]) -> Result<Vec<u8>, MuxError> {
    let runs: Vec<&TrackRun<'_>> = runs.iter().filter(|r| !r.samples.is_empty()).collect();
    let build = |offsets: &[i32]| -> Moof {
        Moof {
            mfhd: Mfhd { sequence_number },
            traf: runs
                .iter()
                .zip(offsets)
                .map(|(run, &offset)| Traf {
                    tfhd: Tfhd {
                        track_id: run.track_id,
                        default_base_is_moof: true,
                        ..Default::default()
                    },
                    tfdt: Some(Tfdt {
                        base_media_decode_time: run.base_decode_time,
                    }),
                    trun: vec![Trun {
                        data_offset: Some(offset),
                        samples: run
                            .samples
                            .iter()
                            .map(|s| TrunEntry {
                                duration: Some(s.duration),
                                size: Some(s.data.len() as u32),
                                flags: run.per_sample_flags.then_some(if s.sync {
                                    SAMPLE_FLAGS_SYNC
                                } else {
                                    SAMPLE_FLAGS_NON_SYNC
                                }),
                                cts: None,
                            })
                            .collect::<Vec<_>>()
                            .into(),
                    }],
                    ..Default::default()
                })
                .collect(),
        }
    };

    // The moof's size does not depend on the offsets' values, so encode once
    // to measure it, then again with the real offsets.
    let zeros = vec![0i32; runs.len()];
    let mut probe = Vec::new();
    build(&zeros).encode(&mut probe)?;
    let payload: usize = runs
        .iter()
        .flat_map(|r| r.samples.iter())
        .map(|s| s.data.len())
        .sum();
    let mdat_header = if payload + 8 > u32::MAX as usize {
        16
    } else {
        8
    };
    let mut offsets = Vec::with_capacity(runs.len());
    let mut offset = probe.len() + mdat_header;
    for run in &runs {
        offsets.push(i32::try_from(offset).map_err(|_| MuxError("fragment too large".into()))?);
        offset += run.samples.iter().map(|s| s.data.len()).sum::<usize>();
    }

    let mut out = Vec::with_capacity(offset);
    build(&offsets).encode(&mut out)?;
    let mut data = Vec::with_capacity(payload);
    for run in &runs {
        for s in run.samples {
            data.extend_from_slice(&s.data);
        }
    }
    Mdat { data }.encode(&mut out)?;
    if out.len() != offset {
        return Err(MuxError("fragment layout mismatch".into()));
    }
    Ok(out)
}
