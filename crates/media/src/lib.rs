//! Sans-IO video forwarding core of confcast.
//!
//! Nothing in this crate opens sockets, spawns threads or reads a clock: every
//! function that needs time takes an `Instant`, and every piece of network
//! input is parsed with `Result`s so that hostile packets can never panic the
//! server. The I/O shell (one WebRTC peer per Participant) feeds packets and
//! timers in and acts on the outputs.
//!
//! Vocabulary used throughout:
//! - **Room**: the meeting.
//! - **Participant**: someone in the Room (one of them is the host).
//! - **Publication**: a track a Participant publishes (camera video here).
//! - **Subscription**: the single video a Participant receives.
//! - **Program**: the broadcast output, a virtual receiver following the
//!   host's current video.
//!
//! See `docs/forwarding.md` for how switching and rewriting work.

pub mod continuity;
mod dtls;
pub mod fanout;
pub mod h264;
pub mod ids;
pub mod keyframe;
pub mod keyframe_request;
pub mod netem;
mod opus_dtx;
pub mod program_ingest;
pub mod ratelimit;
pub mod rewrite;
pub mod room;
pub mod router;
pub mod rtp;
pub mod selection;
pub mod seq;
pub mod switch;
pub mod synth;
pub mod vp8;

pub use ids::{ParticipantId, PublicationId};
pub use keyframe::{Codec, FrameInspector, InspectError, PacketInfo, VideoParams};
pub use keyframe_request::KeyframeRequestThrottle;
pub use ratelimit::{RateLimited, TokenBucket};
pub use rewrite::{NackTarget, RewriteConfig, Rewriter, Rewritten};
pub use router::{Forward, Receiver, Router, RouterConfig, RouterError, RouterOutput, StreamInit};
pub use rtp::{RtpError, RtpHeader};
pub use selection::{
    Actor, Choice, LockTarget, Role, Selection, SelectionConfig, SelectionError, SelectionEvent,
    SelectionMode,
};
pub use switch::{SwitchConfig, SwitchOutcome, Switcher};
pub use vp8::Vp8Ids;
