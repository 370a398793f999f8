//! Names of everything a broadcast serves, and a strict parser for them.
//!
//! The HTTP shell passes the last path segment of a request here; anything
//! that is not exactly one of these shapes is `None`, so path traversal,
//! percent-encoding tricks, leading zeros or odd characters never reach a
//! lookup.

use std::fmt;

/// The multivariant playlist.
pub const MULTIVARIANT_PLAYLIST: &str = "index.m3u8";
/// The media playlist (audio and video muxed).
pub const MEDIA_PLAYLIST: &str = "live.m3u8";

/// A name the playlists use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceName {
    /// `index.m3u8`
    MultivariantPlaylist,
    /// `live.m3u8`
    MediaPlaylist,
    /// `init{n}.mp4`: init segment of video configuration `n` (0, 1, …).
    Init(u32),
    /// `seg{msn}.m4s`: a complete media segment.
    Segment(u64),
    /// `part{msn}.{i}.m4s`: partial segment `i` of media segment `msn`.
    Part(u64, u32),
}

impl ResourceName {
    /// Parses a name strictly; anything else is `None`.
    pub fn parse(name: &str) -> Option<Self> {
        if name == MULTIVARIANT_PLAYLIST {
            return Some(Self::MultivariantPlaylist);
        }
        if name == MEDIA_PLAYLIST {
            return Some(Self::MediaPlaylist);
        }
        if let Some(n) = name
            .strip_prefix("init")
            .and_then(|r| r.strip_suffix(".mp4"))
        {
            return parse_number(n)
                .and_then(|n| u32::try_from(n).ok())
                .map(Self::Init);
        }
        if let Some(n) = name
            .strip_prefix("seg")
            .and_then(|r| r.strip_suffix(".m4s"))
        {
            return parse_number(n).map(Self::Segment);
        }
        if let Some(rest) = name
            .strip_prefix("part")
            .and_then(|r| r.strip_suffix(".m4s"))
        {
            let (msn, part) = rest.split_once('.')?;
            let msn = parse_number(msn)?;
            let part = u32::try_from(parse_number(part)?).ok()?;
            return Some(Self::Part(msn, part));
        }
        None
    }

    /// The `Content-Type` to serve it with.
    pub fn content_type(&self) -> &'static str {
        match self {
            Self::MultivariantPlaylist | Self::MediaPlaylist => "application/vnd.apple.mpegurl",
            Self::Init(_) | Self::Segment(_) | Self::Part(..) => "video/mp4",
        }
    }
}

impl fmt::Display for ResourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MultivariantPlaylist => f.write_str(MULTIVARIANT_PLAYLIST),
            Self::MediaPlaylist => f.write_str(MEDIA_PLAYLIST),
            Self::Init(n) => write!(f, "init{n}.mp4"),
            Self::Segment(msn) => write!(f, "seg{msn}.m4s"),
            Self::Part(msn, i) => write!(f, "part{msn}.{i}.m4s"),
        }
    }
}

/// A decimal number as the playlists write it: ASCII digits only, no sign,
/// no leading zero (except "0" itself), fits in u64.
pub(crate) fn parse_number(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for name in [
            ResourceName::Init(0),
            ResourceName::Init(12),
            ResourceName::Segment(0),
            ResourceName::Segment(u64::MAX),
            ResourceName::Part(7, 0),
            ResourceName::Part(7, 14),
            ResourceName::MediaPlaylist,
            ResourceName::MultivariantPlaylist,
        ] {
            assert_eq!(ResourceName::parse(&name.to_string()), Some(name));
        }
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "",
            "seg.m4s",
            "seg01.m4s",
            "seg-1.m4s",
            "seg+1.m4s",
            "seg1.m4s ",
            " seg1.m4s",
            "seg1.M4S",
            "seg1.m4s/",
            "../seg1.m4s",
            "..%2fseg1.m4s",
            "seg1.m4s?x",
            "seg1.mp4",
            "part1.m4s",
            "part1..m4s",
            "part1.2.3.m4s",
            "part.1.m4s",
            "part1.01.m4s",
            "part1.4294967296.m4s",
            "init.mp4",
            "init4294967296.mp4",
            "init1.m4s",
            "seg18446744073709551616.m4s",
            "seg１.m4s",
            "index.m3u8.bak",
            "INDEX.m3u8",
            "live.m3u",
        ] {
            assert_eq!(ResourceName::parse(bad), None, "{bad:?}");
        }
    }
}
