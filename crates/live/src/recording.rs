//! Recording a broadcast as it airs, sans-IO: packager events in, "store
//! these bytes under this name" out; and, from the names found in storage
//! afterwards, the plan that turns them into a video-on-demand playlist.
//!
//! Nothing is muxed twice: the recorder stores the very parts, segments and
//! init segments the packager made for the live stream.
//!
//! Crash safety comes from the names. Every stored object is written whole
//! (object stores put atomically) and its name carries everything the
//! finished playlist needs about it (sequence number, init generation,
//! duration, discontinuity), so there is no index that a crash could leave
//! half-written: after a crash the listing of what was stored is the index.
//!
//! - Each part is stored as soon as it is published, so a crash loses at
//!   most the part being made.
//! - Each complete segment is stored as one object; once that worked, its
//!   parts are deleted.
//! - [`plan`] (at the end of the broadcast, or on restart after a crash)
//!   rebuilds segments whose own object is missing from their stored parts,
//!   and writes `index.m3u8`: `EXT-X-PLAYLIST-TYPE:VOD`, `EXT-X-ENDLIST`, a
//!   discontinuity (and a new `EXT-X-MAP`) where the init changed, the
//!   timeline broke, or a segment is missing.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::{self, Write as _};
use std::time::Duration;

use bytes::Bytes;

use crate::names::parse_number;
use crate::packager::{Event, LivePackager, PartInfo, SegmentInfo};

/// The finished recording's playlist.
pub const RECORDING_PLAYLIST: &str = "index.m3u8";

const VIDEO_HZ: u64 = 90_000;

/// A name in a recording. [`RecordedName::parse`] accepts nothing else, so
/// it doubles as the check on names a client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordedName {
    /// `index.m3u8`: the VOD playlist, written last.
    Playlist,
    /// `init{n}.mp4`
    Init(u32),
    /// `seg{msn}-{init}-{ticks}-{c|d}.m4s`: a complete segment, its init
    /// generation, its duration in 90 kHz ticks, and whether it follows a
    /// discontinuity (`d`) or not (`c`).
    Segment(Piece),
    /// `part{msn}.{index}-{init}-{ticks}-{c|d}.m4s`: a part of segment
    /// `msn`, stored until the segment is.
    Part(Piece, u32),
}

/// What the name of a stored segment or part says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Piece {
    pub msn: u64,
    pub init: u32,
    /// 90 kHz ticks.
    pub duration: u64,
    pub discontinuity: bool,
}

impl RecordedName {
    /// Parses a name strictly (decimal numbers without sign or leading
    /// zeros, nothing before or after); anything else is `None`.
    pub fn parse(name: &str) -> Option<Self> {
        if name == RECORDING_PLAYLIST {
            return Some(Self::Playlist);
        }
        if let Some(n) = name
            .strip_prefix("init")
            .and_then(|r| r.strip_suffix(".mp4"))
        {
            return parse_number(n)
                .and_then(|n| u32::try_from(n).ok())
                .map(Self::Init);
        }
        if let Some(rest) = name
            .strip_prefix("seg")
            .and_then(|r| r.strip_suffix(".m4s"))
        {
            let (msn, rest) = rest.split_once('-')?;
            return Some(Self::Segment(piece(parse_number(msn)?, rest)?));
        }
        if let Some(rest) = name
            .strip_prefix("part")
            .and_then(|r| r.strip_suffix(".m4s"))
        {
            let (numbers, rest) = rest.split_once('-')?;
            let (msn, index) = numbers.split_once('.')?;
            let index = u32::try_from(parse_number(index)?).ok()?;
            return Some(Self::Part(piece(parse_number(msn)?, rest)?, index));
        }
        None
    }

    /// The `Content-Type` to serve it with.
    pub fn content_type(&self) -> &'static str {
        match self {
            Self::Playlist => "application/vnd.apple.mpegurl",
            Self::Init(_) | Self::Segment(_) | Self::Part(..) => "video/mp4",
        }
    }
}

/// `{init}-{ticks}-{c|d}`
fn piece(msn: u64, rest: &str) -> Option<Piece> {
    let mut fields = rest.split('-');
    let init = u32::try_from(parse_number(fields.next()?)?).ok()?;
    let duration = parse_number(fields.next()?)?;
    let discontinuity = match fields.next()? {
        "c" => false,
        "d" => true,
        _ => return None,
    };
    if fields.next().is_some() {
        return None;
    }
    Some(Piece {
        msn,
        init,
        duration,
        discontinuity,
    })
}

impl fmt::Display for RecordedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flag = |p: &Piece| if p.discontinuity { 'd' } else { 'c' };
        match self {
            Self::Playlist => f.write_str(RECORDING_PLAYLIST),
            Self::Init(n) => write!(f, "init{n}.mp4"),
            Self::Segment(p) => write!(f, "seg{}-{}-{}-{}.m4s", p.msn, p.init, p.duration, flag(p)),
            Self::Part(p, i) => write!(
                f,
                "part{}.{i}-{}-{}-{}.m4s",
                p.msn,
                p.init,
                p.duration,
                flag(p)
            ),
        }
    }
}

/// What the shell should do, in order. Names are relative to the
/// recording's own folder (prefix) in storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Store `bytes` under `name` (replacing nothing: names are unique).
    Put { name: RecordedName, bytes: Bytes },
    /// Store a complete segment; only if that worked, delete `then_delete`
    /// (its parts, now redundant).
    PutSegment {
        name: RecordedName,
        bytes: Bytes,
        then_delete: Vec<RecordedName>,
    },
    /// Totals so far, at most once per `progress_every` of wall clock (for
    /// the recording's metadata; a crash leaves these behind).
    Progress { duration: Duration, bytes: u64 },
    /// The broadcast ended: list what was stored, [`plan`] the playlist and
    /// carry the plan out.
    Finalise,
}

/// Tuning of the recorder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecorderConfig {
    /// How often (wall clock) [`Action::Progress`] may be emitted.
    pub progress_every: Duration,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        Self {
            progress_every: Duration::from_secs(10),
        }
    }
}

/// Running totals of one recorder.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecorderCounters {
    pub parts: u64,
    pub segments: u64,
    pub inits: u64,
    /// Media bytes handed out to store (parts and segments alike).
    pub bytes_out: u64,
    /// Events whose media the packager no longer held (should not happen:
    /// the shell asks right after each event).
    pub missed: u64,
}

/// The sans-IO recorder of one broadcast: feed it the packager's events (or
/// the parts, segments and inits directly) with the wall clock, and carry
/// out the [`Action`]s it returns.
#[derive(Debug)]
pub struct Recorder {
    cfg: RecorderConfig,
    /// Parts stored for the segment being made (deleted once it is stored).
    open_parts: BTreeMap<u64, Vec<RecordedName>>,
    duration: u64,
    segment_bytes: u64,
    last_progress_ms: Option<i64>,
    reported: (u64, u64),
    ended: bool,
    actions: VecDeque<Action>,
    counters: RecorderCounters,
}

impl Recorder {
    pub fn new(cfg: RecorderConfig) -> Self {
        Self {
            cfg,
            open_parts: BTreeMap::new(),
            duration: 0,
            segment_bytes: 0,
            last_progress_ms: None,
            reported: (0, 0),
            ended: false,
            actions: VecDeque::new(),
            counters: RecorderCounters::default(),
        }
    }

    pub fn counters(&self) -> RecorderCounters {
        self.counters
    }

    /// Duration of the complete segments so far.
    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.duration * 100 / 9)
    }

    /// The next thing to do, oldest first.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Handles one packager event, taking the media it announces from
    /// `packager` (call it right after `poll_event`). `now_ms` is the wall
    /// clock in Unix milliseconds.
    pub fn observe(&mut self, event: Event, packager: &LivePackager, now_ms: i64) {
        match event {
            Event::InitReady { generation } => match packager.init_bytes(generation) {
                Some(bytes) => self.init(generation, bytes),
                None => self.counters.missed += 1,
            },
            Event::PartReady { msn, part } => match packager.part_info(msn, part) {
                Some(info) => self.part(&info, now_ms),
                None => self.counters.missed += 1,
            },
            Event::SegmentReady { msn } => match packager.segment_info(msn) {
                Some(info) => self.segment(&info, now_ms),
                None => self.counters.missed += 1,
            },
            Event::Ended => self.end(),
            Event::KeyframeWanted => {}
        }
    }

    /// A new init segment.
    pub fn init(&mut self, generation: u32, bytes: Bytes) {
        if self.ended {
            return;
        }
        self.counters.inits += 1;
        self.actions.push_back(Action::Put {
            name: RecordedName::Init(generation),
            bytes,
        });
    }

    /// A published part: stored at once, so a crash loses at most the next.
    pub fn part(&mut self, part: &PartInfo, now_ms: i64) {
        if self.ended {
            return;
        }
        let name = RecordedName::Part(
            Piece {
                msn: part.msn,
                init: part.init,
                duration: part.duration,
                discontinuity: part.discontinuity,
            },
            part.index,
        );
        self.open_parts.entry(part.msn).or_default().push(name);
        self.counters.parts += 1;
        self.counters.bytes_out += part.bytes.len() as u64;
        self.actions.push_back(Action::Put {
            name,
            bytes: part.bytes.clone(),
        });
        self.progress(now_ms);
    }

    /// A complete segment: stored as one object, then its parts go.
    pub fn segment(&mut self, segment: &SegmentInfo, now_ms: i64) {
        if self.ended {
            return;
        }
        let name = RecordedName::Segment(Piece {
            msn: segment.msn,
            init: segment.init,
            duration: segment.duration,
            discontinuity: segment.discontinuity,
        });
        let then_delete = self.open_parts.remove(&segment.msn).unwrap_or_default();
        // Parts of earlier segments that never completed stay for `plan`.
        self.counters.segments += 1;
        self.counters.bytes_out += segment.bytes.len() as u64;
        self.duration += segment.duration;
        self.segment_bytes += segment.bytes.len() as u64;
        self.actions.push_back(Action::PutSegment {
            name,
            bytes: segment.bytes.clone(),
            then_delete,
        });
        self.progress(now_ms);
    }

    /// The broadcast ended (after the packager's last segment).
    pub fn end(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        self.actions.push_back(Action::Finalise);
    }

    fn progress(&mut self, now_ms: i64) {
        let every = i64::try_from(self.cfg.progress_every.as_millis()).unwrap_or(i64::MAX);
        let due = self
            .last_progress_ms
            .is_none_or(|last| now_ms.saturating_sub(last) >= every);
        let totals = (self.duration, self.segment_bytes);
        if due && totals != self.reported && self.duration > 0 {
            self.last_progress_ms = Some(now_ms);
            self.reported = totals;
            self.actions.push_back(Action::Progress {
                duration: self.duration(),
                bytes: self.segment_bytes,
            });
        }
    }
}

/// Whether [`plan`] may rebuild missing segments from stored parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rebuild {
    /// First pass: segments without their own object are rebuilt from parts.
    FromParts,
    /// After rebuilding was tried: only segment objects count.
    No,
}

/// One segment to rebuild: read `parts` in order, concatenate, store as
/// `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assembly {
    pub target: RecordedName,
    pub parts: Vec<RecordedName>,
}

/// How to finish a recording from what storage holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Do these first.
    pub assemble: Vec<Assembly>,
    /// Then store this as [`RECORDING_PLAYLIST`] (None: nothing playable
    /// was stored).
    pub playlist: Option<String>,
    /// Then delete these (parts no longer needed, once the playlist is
    /// stored).
    pub delete: Vec<RecordedName>,
    /// What the playlist covers.
    pub duration: Duration,
    /// Media bytes the playlist covers (segments and their inits).
    pub bytes: u64,
    pub segments: usize,
    /// Segment numbers missing between the first and the last one listed.
    pub gaps: u64,
    /// Names in storage that are not a recording's (left alone).
    pub unknown: Vec<String>,
}

/// Plans the VOD playlist of a recording from the names (and sizes) stored
/// under it. Pure: the same listing always gives the same plan.
pub fn plan<'a>(listing: impl IntoIterator<Item = (&'a str, u64)>, rebuild: Rebuild) -> Plan {
    let mut inits: BTreeMap<u32, u64> = BTreeMap::new();
    let mut segments: BTreeMap<u64, (Piece, u64)> = BTreeMap::new();
    let mut parts: BTreeMap<u64, BTreeMap<u32, (Piece, u64)>> = BTreeMap::new();
    let mut unknown = Vec::new();
    for (name, size) in listing {
        match RecordedName::parse(name) {
            Some(RecordedName::Init(g)) => {
                inits.insert(g, size);
            }
            Some(RecordedName::Segment(p)) => {
                segments.insert(p.msn, (p, size));
            }
            Some(RecordedName::Part(p, i)) => {
                parts.entry(p.msn).or_default().insert(i, (p, size));
            }
            Some(RecordedName::Playlist) => {}
            None => unknown.push(name.to_owned()),
        }
    }

    let mut assemble = Vec::new();
    let mut delete = Vec::new();
    for (msn, stored) in &parts {
        let names = stored.iter().map(|(i, (p, _))| RecordedName::Part(*p, *i));
        if segments.contains_key(msn) {
            // Stored whole already: its parts were left by a crash between
            // storing the segment and deleting them.
            delete.extend(names);
            continue;
        }
        if rebuild == Rebuild::No {
            continue;
        }
        // The longest run of parts 0, 1, 2, … of one init and one flag.
        let Some((first, _)) = stored.get(&0) else {
            // Nothing playable without the segment's start.
            delete.extend(names);
            continue;
        };
        let mut run = Vec::new();
        let mut duration = 0u64;
        let mut bytes = 0u64;
        for (expected, (i, (p, size))) in stored.iter().enumerate() {
            if *i as usize != expected
                || p.init != first.init
                || p.discontinuity != first.discontinuity
            {
                break;
            }
            run.push(RecordedName::Part(*p, *i));
            duration += p.duration;
            bytes += size;
        }
        let target = Piece {
            msn: *msn,
            init: first.init,
            duration,
            discontinuity: first.discontinuity,
        };
        assemble.push(Assembly {
            target: RecordedName::Segment(target),
            parts: run,
        });
        segments.insert(*msn, (target, bytes));
        delete.extend(names);
    }

    // The playlist: segments in order; those whose init is missing cannot
    // be played and are left out like missing ones.
    let playable: Vec<(Piece, u64)> = segments
        .values()
        .filter(|(p, _)| inits.contains_key(&p.init) && p.duration > 0)
        .copied()
        .collect();
    let mut total = 0u64;
    let mut bytes = 0u64;
    let mut gaps = 0u64;
    let playlist = (!playable.is_empty()).then(|| {
        let longest = playable.iter().map(|(p, _)| p.duration).max().unwrap_or(0);
        let target = longest.div_ceil(VIDEO_HZ).max(1);
        let mut out = String::with_capacity(64 + playable.len() * 48);
        let _ = writeln!(out, "#EXTM3U");
        let _ = writeln!(out, "#EXT-X-VERSION:7");
        let _ = writeln!(out, "#EXT-X-TARGETDURATION:{target}");
        let _ = writeln!(out, "#EXT-X-PLAYLIST-TYPE:VOD");
        let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:0");
        let mut previous: Option<Piece> = None;
        let mut used_inits = Vec::new();
        for (p, size) in &playable {
            if let Some(prev) = previous {
                let gap = p.msn - prev.msn - 1;
                gaps += gap;
                if p.discontinuity || gap > 0 || p.init != prev.init {
                    let _ = writeln!(out, "#EXT-X-DISCONTINUITY");
                }
            }
            if previous.is_none_or(|prev| prev.init != p.init) {
                let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", RecordedName::Init(p.init));
                if !used_inits.contains(&p.init) {
                    used_inits.push(p.init);
                    bytes += inits.get(&p.init).copied().unwrap_or(0);
                }
            }
            let _ = writeln!(out, "#EXTINF:{},", secs(p.duration));
            let _ = writeln!(out, "{}", RecordedName::Segment(*p));
            total += p.duration;
            bytes += size;
            previous = Some(*p);
        }
        let _ = writeln!(out, "#EXT-X-ENDLIST");
        out
    });
    Plan {
        assemble,
        playlist,
        delete,
        duration: Duration::from_micros(total * 100 / 9),
        bytes,
        segments: playable.len(),
        gaps,
        unknown,
    }
}

/// Seconds with five decimals, from 90 kHz ticks (rounded).
fn secs(ticks: u64) -> String {
    let hundred_thousandths = (u128::from(ticks) * 100_000 + 45_000) / 90_000;
    format!(
        "{}.{:05}",
        hundred_thousandths / 100_000,
        hundred_thousandths % 100_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let p = Piece {
            msn: 12,
            init: 1,
            duration: 180_000,
            discontinuity: true,
        };
        for name in [
            RecordedName::Playlist,
            RecordedName::Init(0),
            RecordedName::Segment(p),
            RecordedName::Segment(Piece {
                discontinuity: false,
                ..p
            }),
            RecordedName::Part(p, 0),
            RecordedName::Part(p, 9),
        ] {
            assert_eq!(RecordedName::parse(&name.to_string()), Some(name), "{name}");
        }
        assert_eq!(RecordedName::Segment(p).to_string(), "seg12-1-180000-d.m4s");
        assert_eq!(
            RecordedName::Part(p, 3).to_string(),
            "part12.3-1-180000-d.m4s"
        );
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "",
            "index.m3u8 ",
            "live.m3u8",
            "seg1.m4s",
            "seg1-0-9000.m4s",
            "seg1-0-9000-x.m4s",
            "seg1-0-9000-c-c.m4s",
            "seg01-0-9000-c.m4s",
            "seg1-00-9000-c.m4s",
            "seg1-0-+9000-c.m4s",
            "seg1-0-9000-C.m4s",
            "../seg1-0-9000-c.m4s",
            "seg1-0-9000-c.m4s/..",
            "seg1-0-9000-c.mp4",
            "part1-0-9000-c.m4s",
            "part1.01-0-9000-c.m4s",
            "part1.1.1-0-9000-c.m4s",
            "init01.mp4",
            "init.mp4",
            "%2e%2e",
            "seg１-0-9000-c.m4s",
        ] {
            assert_eq!(RecordedName::parse(bad), None, "{bad:?}");
        }
    }
}
