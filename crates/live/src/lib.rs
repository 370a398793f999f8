//! Sans-IO LL-HLS packager of confcast's Program.
//!
//! The Program (the room's full audio mix as Opus plus the host's current
//! H.264 video, never transcoded) goes in as media units; out come CMAF
//! init segments, parts and segments (muxed fMP4, one `moof`+`mdat` per
//! part), the LL-HLS media playlist, the multivariant playlist and the
//! blocking-reload decisions an HTTP shell needs to serve it.
//!
//! Nothing here opens sockets, spawns threads, reads clocks or touches
//! files: timestamps and the wall clock are arguments, bytes are returned.
//! Every input is untrusted: errors are `Result`s and counters, never panics.
//!
//! ```
//! use std::time::SystemTime;
//! use confcast_live::{LiveConfig, LivePackager, Lookup, Directives, Reload};
//!
//! let mut live = LivePackager::new(LiveConfig::default()).unwrap();
//! // The I/O shell feeds units as they come ...
//! let _ = live.push_video(0, &[0, 0, 0, 1, 0x65, 0x88], SystemTime::now());
//! let _ = live.push_audio(0, &[0xf8, 0xff, 0xfe]);
//! // ... wakes held requests on events ...
//! while let Some(_event) = live.poll_event() {}
//! // ... and serves from the packager.
//! assert_eq!(live.lookup("../etc/passwd"), Lookup::NotFound);
//! assert!(matches!(live.reload(Directives::default()), Ok(Reload::Wait { .. })));
//! ```
//!
//! See `docs/llhls.md` for the rules chosen.

pub mod fmp4;
pub mod h264;
pub mod names;
pub mod opus;
pub mod packager;
pub mod playlist;
pub mod recording;
pub mod reload;
pub mod rtp;

pub use fmp4::{AudioParams, VideoParams};
pub use names::{MEDIA_PLAYLIST, MULTIVARIANT_PLAYLIST, ResourceName};
pub use packager::{
    CACHE_IMMUTABLE, CACHE_PLAYLIST, ConfigError, Counters, Event, InputError, LiveConfig,
    LivePackager, Lookup, PartInfo, Resource, SegmentInfo,
};
pub use recording::{
    Action as RecordingAction, Plan as RecordingPlan, RECORDING_PLAYLIST, RecordedName, Recorder,
    RecorderConfig, RecorderCounters,
};
pub use reload::{BadRequest, Directives, Reload, ReloadState};
pub use rtp::{H264Depacketizer, RtpH264Error};
