//! The LL-HLS packager: media units in; parts, segments, init segments,
//! playlists and reload decisions out.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};

use crate::fmp4::{
    self, AUDIO_TRACK_ID, AudioParams, MuxError, Sample, TrackRun, VIDEO_TRACK_ID, VideoParams,
};
use crate::h264::{self, H264Error, SpsInfo};
use crate::names::ResourceName;
use crate::opus::{self, OpusError};
use crate::playlist::{self, MediaPlaylistView, PartEntry, SegmentEntry, VariantView};
use crate::reload::{BadRequest, Directives, Reload, ReloadState};

const VIDEO_HZ: u64 = 90_000;
const AUDIO_HZ: u64 = 48_000;

/// `Cache-Control` for parts, segments and init segments: their bytes never
/// change under a name (names are unique within one packager).
pub const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` for playlists.
pub const CACHE_PLAYLIST: &str = "no-cache";

/// Tuning of one broadcast. [`Default`] gives 200 ms parts and 2 s segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveConfig {
    /// PART-TARGET: parts never exceed it (unless one frame alone does).
    pub part_target: Duration,
    /// A segment ends at the first keyframe at or after this duration.
    pub segment_target: Duration,
    /// Without a keyframe a segment is cut anyway at this duration (its
    /// successor then does not start with a keyframe). EXT-X-TARGETDURATION
    /// is this, rounded up to whole seconds.
    pub segment_max: Duration,
    /// PART-HOLD-BACK in parts (at least 3).
    pub part_hold_back_parts: u32,
    /// Complete segments kept in the playlist (more while the playlist
    /// would otherwise be shorter than three target durations).
    pub window_segments: usize,
    /// Segments (with their parts) kept downloadable after they leave the
    /// playlist.
    pub retain_extra_segments: usize,
    /// A video timestamp that moves back, stays, or jumps forward by more
    /// than this ends the segment and restarts at the next keyframe behind an
    /// EXT-X-DISCONTINUITY.
    pub max_frame_gap: Duration,
    /// Ask for a keyframe this long before a segment reaches its target.
    pub keyframe_lead: Duration,
    /// Audio further than this from the video when audio (re)starts is
    /// re-timed onto the video's timeline.
    pub max_av_skew: Duration,
    /// Largest video access unit accepted, bytes.
    pub max_video_unit_bytes: usize,
    /// Largest Opus packet accepted, bytes.
    pub max_audio_unit_bytes: usize,
    /// A part is closed early once its samples reach this many bytes.
    pub max_part_bytes: usize,
    /// A segment is cut once it reaches this many bytes.
    pub max_segment_bytes: usize,
    /// Opus packets waiting for video are capped at this many (oldest go).
    pub max_pending_audio: usize,
    /// Audio track description.
    pub audio: AudioParams,
    /// BANDWIDTH advertised before the first segment exists, bits/s.
    pub bandwidth_hint: u64,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            part_target: Duration::from_millis(200),
            segment_target: Duration::from_secs(2),
            segment_max: Duration::from_secs(4),
            part_hold_back_parts: 3,
            window_segments: 6,
            retain_extra_segments: 6,
            max_frame_gap: Duration::from_secs(1),
            keyframe_lead: Duration::from_millis(300),
            max_av_skew: Duration::from_secs(1),
            max_video_unit_bytes: 4 << 20,
            max_audio_unit_bytes: 4000,
            max_part_bytes: 8 << 20,
            max_segment_bytes: 32 << 20,
            max_pending_audio: 250,
            audio: AudioParams {
                channels: 2,
                pre_skip: 0,
            },
            bandwidth_hint: 2_500_000,
        }
    }
}

/// A configuration the packager refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub &'static str);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid live config: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

impl LiveConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let ms = |d: Duration| d.as_millis();
        if !(50..=5000).contains(&ms(self.part_target)) {
            return Err(ConfigError("part_target must be 50 ms to 5 s"));
        }
        if self.segment_target < self.part_target {
            return Err(ConfigError("segment_target must be at least part_target"));
        }
        if self.segment_max < self.segment_target || ms(self.segment_max) > 30_000 {
            return Err(ConfigError(
                "segment_max must be between segment_target and 30 s",
            ));
        }
        if self.part_hold_back_parts < 3 {
            return Err(ConfigError("part_hold_back_parts must be at least 3"));
        }
        if self.window_segments < 3 || self.window_segments > 1000 {
            return Err(ConfigError("window_segments must be 3 to 1000"));
        }
        if self.retain_extra_segments > 1000 {
            return Err(ConfigError("retain_extra_segments must be at most 1000"));
        }
        if ms(self.max_frame_gap) < 100 || ms(self.max_frame_gap) > 10_000 {
            return Err(ConfigError("max_frame_gap must be 100 ms to 10 s"));
        }
        if !(1..=2).contains(&self.audio.channels) {
            return Err(ConfigError("audio channels must be 1 or 2"));
        }
        if self.max_video_unit_bytes == 0
            || self.max_audio_unit_bytes == 0
            || self.max_part_bytes == 0
            || self.max_segment_bytes == 0
            || self.max_pending_audio == 0
        {
            return Err(ConfigError("limits must be positive"));
        }
        if self.max_part_bytes > i32::MAX as usize / 2 || self.max_video_unit_bytes > (1 << 30) {
            return Err(ConfigError("byte limits too large"));
        }
        Ok(())
    }
}

/// Why a unit was not taken (it is dropped and counted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputError {
    /// The broadcast was stopped.
    Stopped,
    /// Larger than the configured cap.
    TooLarge,
    /// Not a usable H.264 access unit.
    InvalidVideo(H264Error),
    /// The SPS in the access unit does not parse.
    InvalidSps(H264Error),
    /// Not a valid Opus packet.
    InvalidAudio(OpusError),
    /// Video before the first keyframe (or after a restart).
    WaitingForKeyframe,
    /// A keyframe, but no SPS/PPS has been seen yet.
    MissingParameterSets,
    /// Audio earlier than the start of the video.
    BeforeVideo,
    /// An audio timestamp going backwards.
    NonMonotonic,
    /// The fragment could not be encoded.
    Mux(MuxError),
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputError::Stopped => write!(f, "broadcast stopped"),
            InputError::TooLarge => write!(f, "unit too large"),
            InputError::InvalidVideo(e) => write!(f, "invalid video unit: {e}"),
            InputError::InvalidSps(e) => write!(f, "invalid SPS: {e}"),
            InputError::InvalidAudio(e) => write!(f, "invalid audio packet: {e}"),
            InputError::WaitingForKeyframe => write!(f, "waiting for a keyframe"),
            InputError::MissingParameterSets => write!(f, "keyframe without SPS/PPS"),
            InputError::BeforeVideo => write!(f, "audio earlier than the video start"),
            InputError::NonMonotonic => write!(f, "timestamp going backwards"),
            InputError::Mux(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for InputError {}

/// What happened; the shell wakes held requests on every event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A new init segment (`init{generation}.mp4`) exists.
    InitReady { generation: u32 },
    /// A part was published (the playlist changed).
    PartReady { msn: u64, part: u32 },
    /// A segment was completed (the playlist changed).
    SegmentReady { msn: u64 },
    /// Please ask the sender for a keyframe (PLI/FIR); the shell throttles.
    KeyframeWanted,
    /// The broadcast ended; the playlist has EXT-X-ENDLIST.
    Ended,
}

/// Running totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub video_units_in: u64,
    pub audio_units_in: u64,
    /// Units over the size caps.
    pub dropped_too_large: u64,
    /// Unparseable access units or Opus packets.
    pub dropped_invalid: u64,
    /// Access units whose SPS does not parse.
    pub dropped_bad_sps: u64,
    /// Video before a usable keyframe.
    pub dropped_waiting_for_keyframe: u64,
    /// Audio before the video started, or queued when video restarted.
    pub dropped_audio_without_video: u64,
    /// Audio going backwards.
    pub dropped_non_monotonic: u64,
    /// Audio dropped because too much was waiting for video.
    pub dropped_audio_overflow: u64,
    /// Timestamp jumps handled (video restarts, audio re-timing).
    pub timestamp_jumps: u64,
    pub parts: u64,
    pub segments: u64,
    pub discontinuities: u64,
    pub init_segments: u64,
    /// Segments cut without a keyframe (segment_max or byte cap reached).
    pub forced_segment_cuts: u64,
    pub mux_errors: u64,
}

/// A media resource ready to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub bytes: Bytes,
    pub content_type: &'static str,
    pub cache_control: &'static str,
}

/// A published part, with what a recorder needs to store it on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    pub msn: u64,
    pub index: u32,
    /// 90 kHz ticks.
    pub duration: u64,
    pub independent: bool,
    /// Init segment generation of its segment.
    pub init: u32,
    /// Its segment follows an EXT-X-DISCONTINUITY.
    pub discontinuity: bool,
    pub bytes: Bytes,
}

/// A complete segment, with what a recorder needs to store it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    pub msn: u64,
    /// 90 kHz ticks.
    pub duration: u64,
    pub init: u32,
    pub discontinuity: bool,
    /// Unix milliseconds of its first sample.
    pub program_date_time_ms: i64,
    pub parts: u32,
    /// Its parts' bytes, concatenated.
    pub bytes: Bytes,
}

/// The answer to a request for a part, segment or init segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Found(Resource),
    /// The part named by the current EXT-X-PRELOAD-HINT: hold the request
    /// and look it up again after the next event.
    Pending {
        msn: u64,
        part: u32,
    },
    /// 404.
    NotFound,
}

#[derive(Debug, Clone)]
struct PartRec {
    duration: u64,
    independent: bool,
    bytes: Bytes,
}

#[derive(Debug, Clone)]
struct SegRec {
    msn: u64,
    duration: u64,
    init: u32,
    discontinuity: bool,
    pdt_ms: i64,
    parts: Vec<PartRec>,
    bytes: Bytes,
}

#[derive(Debug)]
struct PendingVideo {
    out: u64,
    duration: u64,
    keyframe: bool,
    data: Vec<u8>,
}

#[derive(Debug)]
struct OpenFrame {
    out: u64,
    keyframe: bool,
    data: Vec<u8>,
}

#[derive(Debug)]
struct OpenSegment {
    msn: u64,
    start: u64,
    init: u32,
    discontinuity: bool,
    pdt_ms: i64,
    parts: Vec<PartRec>,
    bytes: usize,
    part_start: u64,
    part_samples: Vec<PendingVideo>,
    part_bytes: usize,
    keyframe_requested: bool,
}

#[derive(Debug)]
struct Run {
    /// Where this run started on the output timeline.
    start: u64,
    last_in: u64,
    last_delta: u64,
    frame: OpenFrame,
    seg: OpenSegment,
}

#[derive(Debug)]
struct AudioPacket {
    out: u64,
    samples: u32,
    data: Vec<u8>,
}

#[derive(Debug)]
struct InitRec {
    generation: u32,
    params: VideoParams,
    bytes: Bytes,
}

/// The sans-IO LL-HLS packager of one Program broadcast.
#[derive(Debug)]
pub struct LivePackager {
    cfg: LiveConfig,
    part_target: u64,
    segment_target: u64,
    segment_max: u64,
    max_frame_gap: u64,
    keyframe_lead: u64,
    target_duration_secs: u64,

    run: Option<Run>,
    ended: bool,
    resume_discontinuity: bool,
    timeline_end: u64,
    next_msn: u64,
    fragment_sequence: u32,
    pdt_anchor: Option<(i64, u64)>,
    waiting_drops: u64,

    last_sps: Option<(Vec<u8>, SpsInfo)>,
    last_pps: Option<Vec<u8>>,
    inits: VecDeque<InitRec>,
    next_init: u32,

    audio_offset: i128,
    audio_synced: bool,
    audio_last: Option<(u64, u32)>,
    audio_queue: VecDeque<AudioPacket>,
    audio_preroll: VecDeque<(u64, u32, Vec<u8>)>,

    segments: VecDeque<SegRec>,
    window: usize,
    discontinuity_sequence: u64,

    events: VecDeque<Event>,
    counters: Counters,
    version: u64,
}

fn ticks(d: Duration, hz: u64) -> u64 {
    u64::try_from(d.as_nanos() * u128::from(hz) / 1_000_000_000).unwrap_or(u64::MAX)
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// 90 kHz → 48 kHz, rounded to nearest.
fn v2a(t: i128) -> i128 {
    (t * 8 + 7).div_euclid(15)
}

const MAX_EVENTS: usize = 4096;
/// Opus packets held while no video runs (25 × 20 ms = 500 ms).
const AUDIO_PREROLL: usize = 25;
const DEFAULT_FRAME: u64 = VIDEO_HZ / 30;

impl LivePackager {
    /// A packager waiting for its first keyframe.
    pub fn new(cfg: LiveConfig) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let segment_max = ticks(cfg.segment_max, VIDEO_HZ);
        Ok(Self {
            part_target: ticks(cfg.part_target, VIDEO_HZ),
            segment_target: ticks(cfg.segment_target, VIDEO_HZ),
            segment_max,
            max_frame_gap: ticks(cfg.max_frame_gap, VIDEO_HZ),
            keyframe_lead: ticks(cfg.keyframe_lead, VIDEO_HZ),
            target_duration_secs: segment_max.div_ceil(VIDEO_HZ),
            cfg,
            run: None,
            ended: false,
            resume_discontinuity: false,
            timeline_end: 0,
            next_msn: 0,
            fragment_sequence: 0,
            pdt_anchor: None,
            waiting_drops: 0,
            last_sps: None,
            last_pps: None,
            inits: VecDeque::new(),
            next_init: 0,
            audio_offset: 0,
            audio_synced: false,
            audio_last: None,
            audio_queue: VecDeque::new(),
            audio_preroll: VecDeque::new(),
            segments: VecDeque::new(),
            window: 0,
            discontinuity_sequence: 0,
            events: VecDeque::new(),
            counters: Counters::default(),
            version: 0,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &LiveConfig {
        &self.cfg
    }

    /// Running totals.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Increases every time the playlists change.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Whether [`stop`](Self::stop) was called.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// EXT-X-TARGETDURATION in seconds.
    pub fn target_duration_secs(&self) -> u64 {
        self.target_duration_secs
    }

    /// How long the shell may hold a blocking playlist request before
    /// answering 503 (three target durations, RFC 8216bis §6.2.5.2).
    pub fn blocking_timeout(&self) -> Duration {
        Duration::from_secs(3 * self.target_duration_secs)
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn emit(&mut self, e: Event) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    fn want_keyframe(&mut self) {
        if self.events.back() != Some(&Event::KeyframeWanted) {
            self.emit(Event::KeyframeWanted);
        }
    }

    // ----------------------------------------------------------------- video

    /// Feeds one H.264 access unit: an Annex-B byte stream (start codes)
    /// holding every NAL unit of one picture, with its 90 kHz timestamp
    /// (decode = presentation time; streams with B-frames are not
    /// supported). SPS/PPS travel in-band before keyframes; a keyframe is an
    /// access unit with an IDR slice. `now` is the wall clock when it
    /// arrived (for EXT-X-PROGRAM-DATE-TIME).
    pub fn push_video(
        &mut self,
        timestamp_90k: u64,
        annex_b: &[u8],
        now: SystemTime,
    ) -> Result<(), InputError> {
        if self.ended {
            return Err(InputError::Stopped);
        }
        self.counters.video_units_in += 1;
        if annex_b.len() > self.cfg.max_video_unit_bytes {
            self.counters.dropped_too_large += 1;
            if self.run.is_some() {
                self.want_keyframe();
            }
            return Err(InputError::TooLarge);
        }
        let au = match h264::parse_access_unit(annex_b) {
            Ok(au) => au,
            Err(e) => {
                self.counters.dropped_invalid += 1;
                if self.run.is_some() {
                    self.want_keyframe();
                }
                return Err(InputError::InvalidVideo(e));
            }
        };
        if let Some(sps) = &au.sps {
            match h264::parse_sps(sps) {
                Ok(info) => self.last_sps = Some((sps.clone(), info)),
                Err(e) => {
                    self.counters.dropped_bad_sps += 1;
                    self.want_keyframe();
                    return Err(InputError::InvalidSps(e));
                }
            }
        }
        if let Some(pps) = &au.pps {
            self.last_pps = Some(pps.clone());
        }
        let now_ms = unix_ms(now);
        let frame = OpenFrame {
            out: 0,
            keyframe: au.keyframe,
            data: au.avcc,
        };
        if self.run.is_none() {
            return self.start_run(timestamp_90k, frame, now_ms);
        }
        self.continue_run(timestamp_90k, frame, now_ms)
    }

    fn current_params(&self) -> Option<VideoParams> {
        let (sps, info) = self.last_sps.as_ref()?;
        let pps = self.last_pps.as_ref()?;
        Some(VideoParams {
            sps: sps.clone(),
            pps: pps.clone(),
            info: *info,
        })
    }

    fn current_init(&self) -> Option<&InitRec> {
        self.inits.back()
    }

    /// Makes sure the newest init matches `params`; true if a new one was made.
    fn ensure_init(&mut self, params: VideoParams) -> Result<bool, InputError> {
        if self.current_init().is_some_and(|i| i.params == params) {
            return Ok(false);
        }
        let bytes = fmp4::init_segment(&params, self.cfg.audio).map_err(|e| {
            self.counters.mux_errors += 1;
            InputError::Mux(e)
        })?;
        let generation = self.next_init;
        self.next_init = self.next_init.wrapping_add(1);
        self.inits.push_back(InitRec {
            generation,
            params,
            bytes: Bytes::from(bytes),
        });
        self.counters.init_segments += 1;
        self.emit(Event::InitReady { generation });
        Ok(true)
    }

    fn start_run(&mut self, ts: u64, mut frame: OpenFrame, now_ms: i64) -> Result<(), InputError> {
        if !frame.keyframe {
            self.counters.dropped_waiting_for_keyframe += 1;
            if self.waiting_drops.is_multiple_of(30) {
                self.want_keyframe();
            }
            self.waiting_drops += 1;
            return Err(InputError::WaitingForKeyframe);
        }
        let Some(params) = self.current_params() else {
            self.counters.dropped_waiting_for_keyframe += 1;
            self.want_keyframe();
            return Err(InputError::MissingParameterSets);
        };
        let had_segments = self.next_msn > 0;
        let new_init = self.ensure_init(params)?;
        let discontinuity = self.resume_discontinuity || (new_init && had_segments);
        self.resume_discontinuity = false;
        self.waiting_drops = 0;

        let start = self.timeline_end;
        if self.pdt_anchor.is_none() || discontinuity {
            self.pdt_anchor = Some((now_ms, start));
        }
        let offset = i128::from(ts) - i128::from(start);
        self.audio_offset = v2a(offset);
        self.audio_synced = false;
        self.audio_last = None;
        let dropped = self.audio_queue.len() as u64;
        self.counters.dropped_audio_without_video += dropped;
        self.audio_queue.clear();

        frame.out = start;
        let seg = self.new_segment(start, discontinuity);
        self.run = Some(Run {
            start,
            last_in: ts,
            last_delta: DEFAULT_FRAME,
            frame,
            seg,
        });
        for (ts, samples, packet) in std::mem::take(&mut self.audio_preroll) {
            let _ = self.accept_audio(ts, samples, packet);
        }
        self.version += 1;
        Ok(())
    }

    fn new_segment(&mut self, start: u64, discontinuity: bool) -> OpenSegment {
        let msn = self.next_msn;
        self.next_msn += 1;
        let pdt_ms = match self.pdt_anchor {
            Some((ms, at)) => {
                ms.saturating_add(i64::try_from(start.saturating_sub(at) / 90).unwrap_or(0))
            }
            None => 0,
        };
        OpenSegment {
            msn,
            start,
            init: self.current_init().map_or(0, |i| i.generation),
            discontinuity,
            pdt_ms,
            parts: Vec::new(),
            bytes: 0,
            part_start: start,
            part_samples: Vec::new(),
            part_bytes: 0,
            keyframe_requested: false,
        }
    }

    fn continue_run(&mut self, ts: u64, frame: OpenFrame, now_ms: i64) -> Result<(), InputError> {
        let Some(run) = self.run.as_ref() else {
            return self.start_run(ts, frame, now_ms);
        };
        let delta = i128::from(ts) - i128::from(run.last_in);
        if delta <= 0 || delta > i128::from(self.max_frame_gap) {
            // The timeline broke: finish what we have, restart at the next
            // keyframe behind a discontinuity.
            self.counters.timestamp_jumps += 1;
            self.end_run();
            self.resume_discontinuity = true;
            if !frame.keyframe {
                self.want_keyframe();
            }
            return self.start_run(ts, frame, now_ms);
        }
        let delta = delta as u64;

        let params_changed = frame.keyframe
            && match (self.current_params(), self.current_init()) {
                (Some(p), Some(init)) => p != init.params,
                _ => false,
            };
        self.complete_frame(delta);
        let Some(run) = self.run.as_mut() else {
            return Ok(());
        };
        run.last_in = ts;
        run.last_delta = delta;
        let now_out = run.frame.out + delta;

        if params_changed {
            // New SPS/PPS (another camera or resolution): new init segment,
            // new segment behind a discontinuity, timeline continues.
            self.split_if_over_target();
            self.close_part();
            self.close_segment();
            if let Some(p) = self.current_params() {
                self.ensure_init(p)?;
            }
            self.begin_segment(now_out, frame, true);
            return Ok(());
        }

        let (seg_dur, seg_bytes) = match self.run.as_ref() {
            Some(r) => (now_out - r.seg.start, r.seg.bytes + r.seg.part_bytes),
            None => return Ok(()),
        };
        self.split_if_over_target();
        // A keyframe within the request lead of the target closes the
        // segment: WebRTC senders make keyframes only when asked, and the one
        // asked for at `target - lead` usually arrives before the target.
        if frame.keyframe && seg_dur + self.keyframe_lead >= self.segment_target {
            self.close_part();
            self.close_segment();
            self.begin_segment(now_out, frame, false);
        } else if seg_dur + delta > self.segment_max || seg_bytes >= self.cfg.max_segment_bytes {
            self.counters.forced_segment_cuts += 1;
            self.close_part();
            self.close_segment();
            self.want_keyframe();
            self.begin_segment(now_out, frame, false);
        } else {
            let (part_dur, part_bytes, n) = match self.run.as_ref() {
                Some(r) => (
                    now_out - r.seg.part_start,
                    r.seg.part_bytes,
                    r.seg.part_samples.len(),
                ),
                None => return Ok(()),
            };
            if n > 0
                && (part_dur + delta > self.part_target || part_bytes >= self.cfg.max_part_bytes)
            {
                self.close_part();
            }
            let lead_reached = seg_dur + self.keyframe_lead >= self.segment_target;
            let mut request = false;
            if let Some(run) = self.run.as_mut() {
                run.frame = OpenFrame {
                    out: now_out,
                    ..frame
                };
                if lead_reached && !run.seg.keyframe_requested {
                    run.seg.keyframe_requested = true;
                    request = true;
                }
            }
            if request {
                self.want_keyframe();
            }
        }
        Ok(())
    }

    /// Gives the open frame its duration and queues it in the current part.
    fn complete_frame(&mut self, duration: u64) {
        let Some(run) = self.run.as_mut() else {
            return;
        };
        let data = std::mem::take(&mut run.frame.data);
        run.seg.part_bytes += data.len();
        run.seg.part_samples.push(PendingVideo {
            out: run.frame.out,
            duration,
            keyframe: run.frame.keyframe,
            data,
        });
    }

    fn begin_segment(&mut self, start: u64, frame: OpenFrame, discontinuity: bool) {
        let seg = self.new_segment(start, discontinuity);
        if let Some(run) = self.run.as_mut() {
            run.seg = seg;
            run.frame = OpenFrame {
                out: start,
                ..frame
            };
        }
        self.version += 1;
    }

    /// Never lets a part grow past PART-TARGET: if the frame just completed
    /// pushed it over, that frame starts the next part instead.
    fn split_if_over_target(&mut self) {
        let over = self.run.as_ref().is_some_and(|r| {
            let end = r
                .seg
                .part_samples
                .last()
                .map_or(r.seg.part_start, |s| s.out + s.duration);
            end - r.seg.part_start > self.part_target && r.seg.part_samples.len() > 1
        });
        if over {
            self.split_part();
        }
    }

    /// Closes the current part without its last sample, which then starts
    /// the next part.
    fn split_part(&mut self) {
        let Some(last) = self.run.as_mut().and_then(|r| r.seg.part_samples.pop()) else {
            return;
        };
        if let Some(run) = self.run.as_mut() {
            run.seg.part_bytes -= last.data.len();
        }
        self.close_part();
        if let Some(run) = self.run.as_mut() {
            run.seg.part_start = last.out;
            run.seg.part_bytes = last.data.len();
            run.seg.part_samples.push(last);
        }
    }

    /// Muxes the pending samples (and the audio up to their end) into a part.
    fn close_part(&mut self) {
        let Some(run) = self.run.as_mut() else {
            return;
        };
        let seg = &mut run.seg;
        if seg.part_samples.is_empty() {
            return;
        }
        let start = seg.part_start;
        let end = seg
            .part_samples
            .last()
            .map_or(start, |s| s.out + s.duration);
        let video: Vec<Sample> = seg
            .part_samples
            .drain(..)
            .map(|s| Sample {
                duration: u32::try_from(s.duration).unwrap_or(u32::MAX),
                sync: s.keyframe,
                data: s.data,
            })
            .collect();
        let independent = video.first().is_some_and(|s| s.sync);
        seg.part_bytes = 0;
        seg.part_start = end;

        // Audio that starts before the part's end.
        let mut audio_packets = Vec::new();
        while let Some(p) = self.audio_queue.front() {
            if u128::from(p.out) * 15 >= u128::from(end) * 8 {
                break;
            }
            if let Some(p) = self.audio_queue.pop_front() {
                audio_packets.push(p);
            }
        }
        let audio_base = audio_packets.first().map_or(0, |p| p.out);
        let next_audio = self.audio_queue.front().map(|p| p.out);
        let audio: Vec<Sample> = audio_packets
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let next = audio_packets.get(i + 1).map(|n| n.out).or(next_audio);
                let duration = match next.map(|n| n.saturating_sub(p.out)) {
                    Some(d) if d > 0 && d <= AUDIO_HZ => d as u32,
                    _ => p.samples,
                };
                Sample {
                    duration,
                    sync: true,
                    data: p.data.clone(),
                }
            })
            .collect();

        self.fragment_sequence = self.fragment_sequence.wrapping_add(1);
        let runs = [
            TrackRun {
                track_id: VIDEO_TRACK_ID,
                base_decode_time: start,
                samples: &video,
                per_sample_flags: true,
            },
            TrackRun {
                track_id: AUDIO_TRACK_ID,
                base_decode_time: audio_base,
                samples: &audio,
                per_sample_flags: false,
            },
        ];
        let bytes = match fmp4::fragment(self.fragment_sequence, &runs) {
            Ok(b) => Bytes::from(b),
            Err(_) => {
                self.counters.mux_errors += 1;
                return;
            }
        };
        let Some(run) = self.run.as_mut() else {
            return;
        };
        let seg = &mut run.seg;
        let index = seg.parts.len() as u32;
        seg.bytes += bytes.len();
        seg.parts.push(PartRec {
            duration: end - start,
            independent,
            bytes,
        });
        let msn = seg.msn;
        self.counters.parts += 1;
        self.version += 1;
        self.emit(Event::PartReady { msn, part: index });
    }

    /// Turns the open segment's parts into a complete segment.
    fn close_segment(&mut self) {
        let Some(run) = self.run.as_mut() else {
            return;
        };
        let seg = &mut run.seg;
        if seg.parts.is_empty() {
            return;
        }
        let parts = std::mem::take(&mut seg.parts);
        let duration: u64 = parts.iter().map(|p| p.duration).sum();
        let mut bytes = BytesMut::with_capacity(seg.bytes);
        for p in &parts {
            bytes.extend_from_slice(&p.bytes);
        }
        seg.bytes = 0;
        let rec = SegRec {
            msn: seg.msn,
            duration,
            init: seg.init,
            discontinuity: seg.discontinuity,
            pdt_ms: seg.pdt_ms,
            parts,
            bytes: bytes.freeze(),
        };
        self.timeline_end = seg.start + duration;
        self.counters.segments += 1;
        if rec.discontinuity {
            self.counters.discontinuities += 1;
        }
        let msn = rec.msn;
        self.segments.push_back(rec);
        self.window += 1;
        self.slide_window();
        self.version += 1;
        self.emit(Event::SegmentReady { msn });
    }

    fn slide_window(&mut self) {
        let min_duration = 3 * self.target_duration_secs * VIDEO_HZ;
        let hard_cap = self.cfg.window_segments * 4;
        loop {
            let start = self.segments.len() - self.window;
            let remaining: u64 = self
                .segments
                .iter()
                .skip(start + 1)
                .map(|s| s.duration)
                .sum();
            let too_many = self.window > self.cfg.window_segments && remaining >= min_duration;
            if !(too_many || self.window > hard_cap) {
                break;
            }
            if self.segments[start].discontinuity {
                self.discontinuity_sequence += 1;
            }
            self.window -= 1;
        }
        while self.segments.len() > self.window + self.cfg.retain_extra_segments {
            self.segments.pop_front();
        }
        // Forget init segments no retained segment needs (keep the newest).
        while self.inits.len() > 1 {
            let oldest = self.inits[0].generation;
            let used = self.segments.iter().any(|s| s.init == oldest)
                || self.run.as_ref().is_some_and(|r| r.seg.init == oldest);
            if used {
                break;
            }
            self.inits.pop_front();
        }
    }

    /// Finishes the open frame, part and segment and leaves the run.
    fn end_run(&mut self) {
        let Some(run) = self.run.as_ref() else {
            return;
        };
        let duration = run.last_delta;
        self.complete_frame(duration);
        self.split_if_over_target();
        self.close_part();
        self.close_segment();
        let dropped = self.audio_queue.len() as u64;
        self.counters.dropped_audio_without_video += dropped;
        self.audio_queue.clear();
        self.run = None;
        self.version += 1;
    }

    // ----------------------------------------------------------------- audio

    /// Feeds one Opus packet with its 48 kHz timestamp. Audio and video
    /// timestamps must share one origin (`ts / rate` is seconds on the same
    /// clock); audio more than `max_av_skew` away from the video when it
    /// (re)starts is re-timed onto the video instead. While no video runs
    /// (before the first keyframe, or after a restart) the last 500 ms of
    /// audio are held; when the video starts, what lies before the keyframe
    /// is dropped and counted.
    pub fn push_audio(&mut self, timestamp_48k: u64, packet: &[u8]) -> Result<(), InputError> {
        if self.ended {
            return Err(InputError::Stopped);
        }
        self.counters.audio_units_in += 1;
        if packet.len() > self.cfg.max_audio_unit_bytes {
            self.counters.dropped_too_large += 1;
            return Err(InputError::TooLarge);
        }
        let samples = match opus::packet_samples_48k(packet) {
            Ok(s) => s,
            Err(e) => {
                self.counters.dropped_invalid += 1;
                return Err(InputError::InvalidAudio(e));
            }
        };
        if self.run.is_none() {
            // Held until the video starts: audio that arrives just before the
            // keyframe it belongs with is not lost.
            self.audio_preroll
                .push_back((timestamp_48k, samples, packet.to_vec()));
            while self.audio_preroll.len() > AUDIO_PREROLL {
                self.audio_preroll.pop_front();
                self.counters.dropped_audio_without_video += 1;
            }
            return Ok(());
        }
        self.accept_audio(timestamp_48k, samples, packet.to_vec())
    }

    fn accept_audio(
        &mut self,
        timestamp_48k: u64,
        samples: u32,
        packet: Vec<u8>,
    ) -> Result<(), InputError> {
        let Some(run) = self.run.as_ref() else {
            self.counters.dropped_audio_without_video += 1;
            return Err(InputError::BeforeVideo);
        };
        let ts = i128::from(timestamp_48k);
        let mut out = ts - self.audio_offset;
        let max_gap = i128::from(AUDIO_HZ);
        if !self.audio_synced {
            let video_pos = v2a(i128::from(run.frame.out));
            let skew = ticks(self.cfg.max_av_skew, AUDIO_HZ);
            if (out - video_pos).unsigned_abs() > u128::from(skew) {
                self.audio_offset = ts - video_pos;
                out = video_pos;
                self.counters.timestamp_jumps += 1;
            }
            self.audio_synced = true;
        } else if let Some((last, dur)) = self.audio_last {
            let expected = i128::from(last) + i128::from(dur);
            let tolerance = 48; // 1 ms of rounding
            let max_back = i128::from(AUDIO_HZ / 5); // 200 ms: more is a new clock
            if out < expected - max_back || out > expected + max_gap {
                self.audio_offset = ts - expected;
                out = expected;
                self.counters.timestamp_jumps += 1;
            } else if out < expected - tolerance {
                self.counters.dropped_non_monotonic += 1;
                return Err(InputError::NonMonotonic);
            } else if out < expected {
                out = expected;
            }
        }
        let start = v2a(i128::from(run.start));
        if out < start {
            self.counters.dropped_audio_without_video += 1;
            return Err(InputError::BeforeVideo);
        }
        let out = u64::try_from(out).unwrap_or(0);
        self.audio_queue.push_back(AudioPacket {
            out,
            samples,
            data: packet,
        });
        self.audio_last = Some((out, samples));
        while self.audio_queue.len() > self.cfg.max_pending_audio {
            self.audio_queue.pop_front();
            self.counters.dropped_audio_overflow += 1;
        }
        Ok(())
    }

    // ------------------------------------------------------------------ stop

    /// Ends the broadcast: the open part and segment are finished and the
    /// playlist gets EXT-X-ENDLIST. Further input is refused.
    pub fn stop(&mut self) {
        if self.ended {
            return;
        }
        self.end_run();
        self.ended = true;
        self.version += 1;
        self.emit(Event::Ended);
    }

    // ------------------------------------------------------------- playlists

    fn entry(rec: &SegRec) -> SegmentEntry {
        SegmentEntry {
            msn: rec.msn,
            duration: rec.duration,
            init: rec.init,
            discontinuity: rec.discontinuity,
            program_date_time_ms: rec.pdt_ms,
            parts: rec
                .parts
                .iter()
                .enumerate()
                .map(|(i, p)| PartEntry {
                    msn: rec.msn,
                    index: i as u32,
                    duration: p.duration,
                    independent: p.independent,
                })
                .collect(),
        }
    }

    /// The media playlist, or `None` before the first part exists (the
    /// shell holds such requests: see [`reload`](Self::reload)).
    pub fn media_playlist(&self) -> Option<String> {
        if self.counters.parts == 0 {
            return None;
        }
        let start = self.segments.len() - self.window;
        let segments: Vec<SegmentEntry> =
            self.segments.iter().skip(start).map(Self::entry).collect();
        let open = self.run.as_ref().map(|r| SegmentEntry {
            msn: r.seg.msn,
            duration: r.seg.parts.iter().map(|p| p.duration).sum(),
            init: r.seg.init,
            discontinuity: r.seg.discontinuity,
            program_date_time_ms: r.seg.pdt_ms,
            parts: r
                .seg
                .parts
                .iter()
                .enumerate()
                .map(|(i, p)| PartEntry {
                    msn: r.seg.msn,
                    index: i as u32,
                    duration: p.duration,
                    independent: p.independent,
                })
                .collect(),
        });
        let preload_hint = self.preload_hint();
        let media_sequence = segments
            .first()
            .map(|s| s.msn)
            .or(open.as_ref().map(|s| s.msn))
            .unwrap_or(self.next_msn);
        let view = MediaPlaylistView {
            target_duration_secs: self.target_duration_secs,
            part_target_ms: self.cfg.part_target.as_millis() as u64,
            part_hold_back_ms: self.cfg.part_target.as_millis() as u64
                * u64::from(self.cfg.part_hold_back_parts),
            media_sequence,
            discontinuity_sequence: self.discontinuity_sequence,
            segments: &segments,
            open: open.as_ref().filter(|s| !s.parts.is_empty()),
            preload_hint,
            part_horizon: 3 * self.target_duration_secs * VIDEO_HZ,
            ended: self.ended,
        };
        Some(playlist::write_media_playlist(&view))
    }

    /// The part a client may request before it exists.
    fn preload_hint(&self) -> Option<(u64, u32)> {
        if self.ended {
            return None;
        }
        let run = self.run.as_ref()?;
        if run.seg.parts.is_empty() {
            // The first part of a segment that needs a new map or follows a
            // discontinuity is not hinted: its tags must come first.
            let previous_init = self.segments.back().map(|s| s.init);
            if run.seg.discontinuity || previous_init.is_some_and(|i| i != run.seg.init) {
                return None;
            }
        }
        Some((run.seg.msn, run.seg.parts.len() as u32))
    }

    /// The multivariant playlist (one variant), or `None` before the first
    /// init segment.
    pub fn multivariant_playlist(&self) -> Option<String> {
        let init = self.current_init()?;
        let start = self.segments.len() - self.window;
        let mut peak = 0u64;
        let mut total_bytes = 0u64;
        let mut total_ticks = 0u64;
        for s in self.segments.iter().skip(start) {
            if s.duration == 0 {
                continue;
            }
            let bits = s.bytes.len() as u64 * 8;
            peak = peak.max(bits.saturating_mul(VIDEO_HZ) / s.duration);
            total_bytes += s.bytes.len() as u64;
            total_ticks += s.duration;
        }
        let (bandwidth, average) = match (total_bytes * 8 * VIDEO_HZ).checked_div(total_ticks) {
            Some(average) => (peak, Some(average)),
            None => (self.cfg.bandwidth_hint, None),
        };
        Some(playlist::write_multivariant_playlist(&VariantView {
            bandwidth,
            average_bandwidth: average,
            video_codec: init.params.info.codec_string(),
            width: init.params.info.width,
            height: init.params.info.height,
        }))
    }

    /// The state blocking-reload decisions are made on.
    pub fn reload_state(&self) -> ReloadState {
        let (open_msn, open_parts) = match &self.run {
            Some(r) => (r.seg.msn, r.seg.parts.len() as u64),
            None => (self.next_msn, 0),
        };
        ReloadState {
            ended: self.ended,
            started: self.counters.parts > 0,
            open_msn,
            open_parts,
            part_target_ms: self.cfg.part_target.as_millis() as u64,
        }
    }

    /// Decides a media playlist request with delivery directives
    /// (RFC 8216bis §6.2.5.2).
    pub fn reload(&self, directives: Directives) -> Result<Reload, BadRequest> {
        self.reload_state().decide(directives, |msn| {
            self.segments
                .iter()
                .find(|s| s.msn == msn)
                .map(|s| s.parts.len() as u64)
        })
    }

    // ------------------------------------------------------------- resources

    /// A published part (complete segment or the one being built) while the
    /// packager still holds it: always so right after its `PartReady`.
    pub fn part_info(&self, msn: u64, index: u32) -> Option<PartInfo> {
        let info = |init: u32, discontinuity: bool, p: &PartRec| PartInfo {
            msn,
            index,
            duration: p.duration,
            independent: p.independent,
            init,
            discontinuity,
            bytes: p.bytes.clone(),
        };
        if let Some(s) = self.segments.iter().find(|s| s.msn == msn) {
            return s
                .parts
                .get(index as usize)
                .map(|p| info(s.init, s.discontinuity, p));
        }
        let run = self.run.as_ref().filter(|r| r.seg.msn == msn)?;
        run.seg
            .parts
            .get(index as usize)
            .map(|p| info(run.seg.init, run.seg.discontinuity, p))
    }

    /// A complete segment while the packager still holds it: always so
    /// right after its `SegmentReady`.
    pub fn segment_info(&self, msn: u64) -> Option<SegmentInfo> {
        let s = self.segments.iter().find(|s| s.msn == msn)?;
        Some(SegmentInfo {
            msn,
            duration: s.duration,
            init: s.init,
            discontinuity: s.discontinuity,
            program_date_time_ms: s.pdt_ms,
            parts: s.parts.len() as u32,
            bytes: s.bytes.clone(),
        })
    }

    /// The bytes of init segment `generation` while it is held: always so
    /// right after its `InitReady`.
    pub fn init_bytes(&self, generation: u32) -> Option<Bytes> {
        self.inits
            .iter()
            .find(|i| i.generation == generation)
            .map(|i| i.bytes.clone())
    }

    /// Looks up a part, segment or init segment by name (strictly validated;
    /// playlists are not served from here).
    pub fn lookup(&self, name: &str) -> Lookup {
        match ResourceName::parse(name) {
            Some(r) => self.resource(r),
            None => Lookup::NotFound,
        }
    }

    /// Looks up a parsed name. Playlist names give `NotFound`: use
    /// [`media_playlist`](Self::media_playlist) and
    /// [`multivariant_playlist`](Self::multivariant_playlist).
    pub fn resource(&self, name: ResourceName) -> Lookup {
        let found = |bytes: &Bytes| {
            Lookup::Found(Resource {
                bytes: bytes.clone(),
                content_type: name.content_type(),
                cache_control: CACHE_IMMUTABLE,
            })
        };
        match name {
            ResourceName::Init(generation) => self
                .inits
                .iter()
                .find(|i| i.generation == generation)
                .map_or(Lookup::NotFound, |i| found(&i.bytes)),
            ResourceName::Segment(msn) => self
                .segments
                .iter()
                .find(|s| s.msn == msn)
                .map_or(Lookup::NotFound, |s| found(&s.bytes)),
            ResourceName::Part(msn, index) => {
                if let Some(s) = self.segments.iter().find(|s| s.msn == msn) {
                    return s
                        .parts
                        .get(index as usize)
                        .map_or(Lookup::NotFound, |p| found(&p.bytes));
                }
                if let Some(p) = self
                    .run
                    .as_ref()
                    .filter(|r| r.seg.msn == msn)
                    .and_then(|r| r.seg.parts.get(index as usize))
                {
                    return found(&p.bytes);
                }
                if self.preload_hint() == Some((msn, index)) {
                    return Lookup::Pending { msn, part: index };
                }
                Lookup::NotFound
            }
            ResourceName::MediaPlaylist | ResourceName::MultivariantPlaylist => Lookup::NotFound,
        }
    }
}
