//! What one tick hands back to the room core.

use std::sync::Arc;
use std::time::Instant;

use crate::packet::{ListenerId, SourceId};

/// Which mix an encoded stream carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamKind {
    /// Everyone mixed: shared by all non-speaking listeners, and the program.
    FullMix,
    /// Everyone but `source`, for that speaker's own listener(s).
    MixMinus { slot: usize, source: SourceId },
}

/// One encoded 20 ms Opus packet and the mix it carries.
#[derive(Clone, Debug)]
pub struct TickStream {
    pub kind: StreamKind,
    /// The Opus payload. Shared: every listener routed here gets these bytes.
    pub payload: Arc<[u8]>,
}

/// Where one listener's packet comes from this tick, and the RTP fields of
/// that listener's own outgoing stream.
///
/// `seq` and `timestamp` count from 0 when the listener is added and move
/// by one packet / 960 samples per tick whatever stream is chosen, so the
/// receiver sees one continuous stream across speaker changes. The I/O shell
/// adds its own random per-SSRC offsets, sets the SSRC, and encrypts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub listener: ListenerId,
    /// Index into [`Tick::streams`].
    pub stream: usize,
    pub seq: u16,
    pub timestamp: u32,
    /// The listener receives a different stream than last tick.
    pub switched: bool,
}

/// The room's program audio for one tick: the full mix.
#[derive(Clone, Debug)]
pub struct ProgramFrame {
    /// RTP timestamp on the mixer's own timeline (960 per tick since start;
    /// skipped ticks leave a gap).
    pub rtp_timestamp: u32,
    /// The encoded full mix (the same bytes as [`Tick::streams`]`[0]`);
    /// `None` only if the encoder failed.
    pub payload: Option<Arc<[u8]>>,
    /// The limited full mix as 16-bit PCM, if enabled in the config.
    pub pcm: Option<Vec<i16>>,
}

/// Things that happened to the room's speakers, for talking indicators and
/// default video selection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MixerEvent {
    TalkingStarted {
        source: SourceId,
    },
    TalkingStopped {
        source: SourceId,
    },
    /// `current` is `None` only after the dominant speaker's source was
    /// removed and nobody else talks.
    DominantSpeakerChanged {
        previous: Option<SourceId>,
        current: Option<SourceId>,
    },
}

/// Output of one 20 ms tick.
#[derive(Clone, Debug)]
pub struct Tick {
    /// Ticks since the mixer started (skipped ticks count).
    pub index: u64,
    /// Nominal start time of this frame.
    pub at: Instant,
    /// Encoded streams: at most K+1, the full mix first when it encoded.
    pub streams: Vec<TickStream>,
    /// One entry per listener that gets a packet this tick.
    pub routes: Vec<Route>,
    pub program: ProgramFrame,
    /// Sources mixed this tick (including one fading out).
    pub speakers: Vec<SourceId>,
    pub events: Vec<MixerEvent>,
}

impl Tick {
    /// The route and packet bytes for `listener`, if it gets one this tick.
    /// Linear; the shell normally iterates [`Tick::routes`] instead.
    pub fn packet_for(&self, listener: ListenerId) -> Option<(&Route, &[u8])> {
        let route = self.routes.iter().find(|r| r.listener == listener)?;
        let stream = self.streams.get(route.stream)?;
        Some((route, &stream.payload))
    }

    /// The bytes routed by `route`.
    pub fn payload(&self, route: &Route) -> Option<&[u8]> {
        self.streams.get(route.stream).map(|s| &*s.payload)
    }

    /// The bytes routed by `route`, shared: every listener of one encode
    /// holds the same allocation.
    pub fn shared_payload(&self, route: &Route) -> Option<&std::sync::Arc<[u8]>> {
        self.streams.get(route.stream).map(|s| &s.payload)
    }
}
