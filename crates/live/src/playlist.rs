//! Playlist text: the LL-HLS media playlist and the multivariant playlist.

use std::fmt::Write as _;

use crate::names::{MEDIA_PLAYLIST, ResourceName};

/// `EXT-X-VERSION` of the media playlist. LL-HLS tags need at least 9.
pub const MEDIA_PLAYLIST_VERSION: u32 = 9;

/// One part as the playlist shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartEntry {
    pub msn: u64,
    pub index: u32,
    /// Duration in 90 kHz ticks.
    pub duration: u64,
    pub independent: bool,
}

/// One segment (complete, or the one being built) as the playlist shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentEntry {
    pub msn: u64,
    /// Duration in 90 kHz ticks (sum of its parts).
    pub duration: u64,
    /// Init segment generation it needs.
    pub init: u32,
    /// Starts a new discontinuity (timeline or encoding change).
    pub discontinuity: bool,
    /// Unix time of its first sample, milliseconds.
    pub program_date_time_ms: i64,
    pub parts: Vec<PartEntry>,
}

/// Everything the media playlist is written from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaPlaylistView<'a> {
    pub target_duration_secs: u64,
    pub part_target_ms: u64,
    pub part_hold_back_ms: u64,
    pub media_sequence: u64,
    pub discontinuity_sequence: u64,
    /// Complete segments in the window, oldest first.
    pub segments: &'a [SegmentEntry],
    /// The segment being built, if it has parts.
    pub open: Option<&'a SegmentEntry>,
    /// Next part to be published, for `EXT-X-PRELOAD-HINT`.
    pub preload_hint: Option<(u64, u32)>,
    /// Parts are listed only for segments starting at most this many
    /// 90 kHz ticks before the end of the playlist.
    pub part_horizon: u64,
    pub ended: bool,
}

/// Seconds with three decimals, from milliseconds.
fn secs_ms(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// Seconds with five decimals, from 90 kHz ticks (rounded).
fn secs_90k(ticks: u64) -> String {
    let hundred_thousandths = (u128::from(ticks) * 100_000 + 45_000) / 90_000;
    format!(
        "{}.{:05}",
        hundred_thousandths / 100_000,
        hundred_thousandths % 100_000
    )
}

/// Writes the media playlist.
pub fn write_media_playlist(v: &MediaPlaylistView<'_>) -> String {
    let mut out = String::with_capacity(4096);
    let _ = writeln!(out, "#EXTM3U");
    let _ = writeln!(out, "#EXT-X-VERSION:{MEDIA_PLAYLIST_VERSION}");
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", v.target_duration_secs);
    let _ = writeln!(
        out,
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={}",
        secs_ms(v.part_hold_back_ms)
    );
    let _ = writeln!(
        out,
        "#EXT-X-PART-INF:PART-TARGET={}",
        secs_ms(v.part_target_ms)
    );
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{}", v.media_sequence);
    if v.discontinuity_sequence > 0 {
        let _ = writeln!(
            out,
            "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
            v.discontinuity_sequence
        );
    }

    let total: u64 =
        v.segments.iter().map(|s| s.duration).sum::<u64>() + v.open.map_or(0, |s| s.duration);
    let mut elapsed = 0u64;
    let mut current_init: Option<u32> = None;
    let all = v
        .segments
        .iter()
        .map(|s| (s, true))
        .chain(v.open.map(|s| (s, false)));
    for (seg, complete) in all {
        if seg.discontinuity {
            let _ = writeln!(out, "#EXT-X-DISCONTINUITY");
        }
        if current_init != Some(seg.init) {
            let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", ResourceName::Init(seg.init));
            current_init = Some(seg.init);
        }
        let _ = writeln!(
            out,
            "#EXT-X-PROGRAM-DATE-TIME:{}",
            format_program_date_time(seg.program_date_time_ms)
        );
        // Parts are listed while their segment starts no more than three
        // target durations before the end of the playlist (§6.2.2).
        let show_parts = !v.ended && total - elapsed <= v.part_horizon;
        elapsed += seg.duration;
        if show_parts || !complete {
            for p in &seg.parts {
                let _ = write!(
                    out,
                    "#EXT-X-PART:DURATION={},URI=\"{}\"",
                    secs_90k(p.duration),
                    ResourceName::Part(p.msn, p.index)
                );
                if p.independent {
                    let _ = write!(out, ",INDEPENDENT=YES");
                }
                out.push('\n');
            }
        }
        if complete {
            let _ = writeln!(out, "#EXTINF:{},", secs_90k(seg.duration));
            let _ = writeln!(out, "{}", ResourceName::Segment(seg.msn));
        }
    }
    if v.ended {
        let _ = writeln!(out, "#EXT-X-ENDLIST");
    } else if let Some((msn, part)) = v.preload_hint {
        let _ = writeln!(
            out,
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"",
            ResourceName::Part(msn, part)
        );
    }
    out
}

/// What the multivariant playlist describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantView {
    /// Peak segment bit rate, bits per second.
    pub bandwidth: u64,
    /// Average segment bit rate, bits per second.
    pub average_bandwidth: Option<u64>,
    /// `avc1.PPCCLL`
    pub video_codec: String,
    pub width: u32,
    pub height: u32,
}

/// Writes the multivariant playlist: one variant, audio and video muxed.
pub fn write_multivariant_playlist(v: &VariantView) -> String {
    let mut out = String::with_capacity(256);
    let _ = writeln!(out, "#EXTM3U");
    let _ = write!(out, "#EXT-X-STREAM-INF:BANDWIDTH={}", v.bandwidth.max(1));
    if let Some(avg) = v.average_bandwidth {
        let _ = write!(out, ",AVERAGE-BANDWIDTH={}", avg.max(1));
    }
    let _ = writeln!(
        out,
        ",CODECS=\"{},opus\",RESOLUTION={}x{}",
        v.video_codec, v.width, v.height
    );
    let _ = writeln!(out, "{MEDIA_PLAYLIST}");
    out
}

/// `YYYY-MM-DDThh:mm:ss.sssZ` from Unix milliseconds (proleptic Gregorian).
pub fn format_program_date_time(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let ms = unix_ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(format_program_date_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_program_date_time(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(
            format_program_date_time(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(secs_90k(18_000), "0.20000");
        assert_eq!(secs_90k(180_000), "2.00000");
        assert_eq!(secs_90k(3003), "0.03337");
        assert_eq!(secs_ms(600), "0.600");
    }
}
