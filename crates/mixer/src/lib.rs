//! Server-side audio mixing for a room: K+1 Opus encodes per 20 ms, not N.
//!
//! The mixer is sans-IO: it owns no threads, sockets or clocks. The room core
//! feeds it RTP audio packets with their arrival time ([`Mixer::push_packet`]),
//! and asks it for a frame whenever [`Mixer::next_tick_at`] has passed
//! ([`Mixer::tick`]). Every tick yields one 20 ms frame for the whole room:
//!
//! * one shared encode of the full mix, sent to every listener that is not
//!   an active speaker, and exposed as the room's program audio;
//! * one mix-minus encode per active speaker (everyone but themselves);
//! * per listener, which of those packets to send and the RTP sequence number
//!   and timestamp of that listener's own outgoing stream, so receivers see
//!   one continuous stream whatever stream the bytes came from;
//! * talking/dominant-speaker events.
//!
//! Only the K loudest speakers are decoded; everyone else's packets just pass
//! through their jitter buffer, so a room of 1,000 mixes on one core.
//! See `docs/mixing.md` for the design.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use confcast_mixer::{AudioLevel, AudioPacket, ListenerId, Mixer, MixerConfig, SourceId};
//!
//! let start = Instant::now();
//! let Ok(mut mixer) = Mixer::new(MixerConfig::default(), start) else { return };
//! mixer.add_source(SourceId(7));
//! mixer.add_listener(ListenerId(7), Some(SourceId(7))); // hears all but itself
//! mixer.add_listener(ListenerId(8), None); // e.g. a WHEP viewer
//!
//! // The I/O shell, for every received RTP audio packet:
//! let packet = AudioPacket {
//!     seq: 1,
//!     timestamp: 0,
//!     level: Some(AudioLevel::from_extension_byte(0x7f)), // silence, no voice
//!     payload: vec![0xf8, 0xff, 0xfe], // an Opus silence frame
//! };
//! mixer.push_packet(SourceId(7), packet, start);
//!
//! // The I/O shell, whenever its timer reaches `mixer.next_tick_at()`:
//! let now = start + Duration::from_millis(20);
//! while let Some(tick) = mixer.tick(now) {
//!     for route in &tick.routes {
//!         if let Some(bytes) = tick.payload(route) {
//!             // Send `bytes` to route.listener as RTP with route.seq and
//!             // route.timestamp (plus that stream's own offsets), encrypted.
//!             assert!(!bytes.is_empty());
//!         }
//!     }
//!     // tick.program: the room's program audio; tick.events: who talks.
//! }
//! assert_eq!(mixer.stats().ticks, 2);
//! ```

mod config;
mod decode;
mod encode;
mod jitter;
mod level;
mod limiter;
mod mix;
mod mixer;
mod output;
mod packet;
mod phase;
mod speakers;
mod stats;

pub use config::MixerConfig;
pub use mixer::{Mixer, MixerError};
pub use output::{MixerEvent, ProgramFrame, Route, StreamKind, Tick, TickStream};
pub use packet::{AudioLevel, AudioPacket, DropReason, ListenerId, PushOutcome, SourceId};
pub use stats::{LATENCY_BUCKETS, LatencyHistogram, MixerStats, SourceStats};

pub use limiter::Limiter;

/// The mixer's (and Opus's) sample rate; RTP timestamps count at this rate.
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples per channel in one 20 ms tick.
pub const FRAME_SAMPLES: usize = 960;
/// Length of one tick.
pub const FRAME_DURATION: std::time::Duration = std::time::Duration::from_millis(20);
