//! What the room core hands the mixer per RTP packet, and what it gets back.

use std::fmt;

/// A participant's (or an ingest's) audio source within one room.
///
/// A participant who both speaks and listens usually uses the same number for
/// its [`SourceId`] and [`ListenerId`]; the mixer only relates the two through
/// [`crate::Mixer::add_listener`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceId(pub u64);

/// Someone who receives the room's audio: a participant, a WHEP viewer, the
/// broadcast program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerId(pub u64);

impl From<u64> for SourceId {
    fn from(v: u64) -> Self {
        SourceId(v)
    }
}

impl From<u64> for ListenerId {
    fn from(v: u64) -> Self {
        ListenerId(v)
    }
}

impl fmt::Display for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "source#{}", self.0)
    }
}

impl fmt::Display for ListenerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "listener#{}", self.0)
    }
}

/// The RFC 6464 client-to-mixer audio level of one packet.
///
/// Speaker selection runs on these so that the mixer never has to decode a
/// source to learn it is silent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AudioLevel {
    /// Level in -dBov: 0 is the loudest possible, 127 is silence. Values
    /// above 127 cannot come from a well-formed header and are counted as
    /// bad and ignored.
    pub dbov: u8,
    /// The sender's voice-activity flag.
    pub voice: bool,
}

impl AudioLevel {
    /// Parses the one-byte RFC 6464 extension element (`V` bit + 7-bit level).
    pub fn from_extension_byte(b: u8) -> Self {
        AudioLevel {
            dbov: b & 0x7f,
            voice: b & 0x80 != 0,
        }
    }

    pub(crate) fn is_valid(&self) -> bool {
        self.dbov <= 127
    }
}

/// One received RTP audio packet (Opus, 48 kHz, mono or stereo).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioPacket {
    /// RTP sequence number.
    pub seq: u16,
    /// RTP timestamp (48 kHz clock).
    pub timestamp: u32,
    /// RFC 6464 level, if the sender included the extension.
    pub level: Option<AudioLevel>,
    /// The Opus payload. Owned so the jitter buffer keeps it without a copy.
    pub payload: Vec<u8>,
}

/// What [`crate::Mixer::push_packet`] did with a packet.
///
/// Nothing here is fatal: every drop is also counted in the stats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// Queued for playout.
    Buffered,
    /// Queued, after the source's timeline was re-anchored on a timestamp
    /// jump (new sender clock, restarted stream).
    BufferedAfterJump,
    /// Not queued.
    Dropped(DropReason),
}

/// Why a packet was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// No source with that id was added.
    UnknownSource,
    /// Zero-length payload.
    EmptyPayload,
    /// Larger than any Opus packet the mixer accepts.
    PayloadTooLarge,
    /// The Opus table-of-contents does not parse.
    CorruptPayload,
    /// Parses, but lasts outside 2.5..=120 ms.
    BadDuration,
    /// Its playout time has passed.
    Late,
    /// Same timestamp already queued.
    Duplicate,
    /// Too far ahead of playout, or the buffer is full (e.g. a sender
    /// running faster than real time).
    Overflow,
    /// Timestamp far off the source's timeline; kept out unless the
    /// following packets confirm a real jump.
    TimestampOutlier,
}

/// Largest payload accepted. Opus frames are at most 1275 bytes; six of them
/// (120 ms) in code-3 packets could be larger, but no WebRTC sender does that
/// and a bigger datagram would not fit a normal MTU anyway.
pub(crate) const MAX_PAYLOAD: usize = 1500;

/// Duration in samples of a well-formed Opus packet, or why it is not one.
pub(crate) fn opus_duration(payload: &[u8]) -> Result<usize, DropReason> {
    if payload.is_empty() {
        return Err(DropReason::EmptyPayload);
    }
    if payload.len() > MAX_PAYLOAD {
        return Err(DropReason::PayloadTooLarge);
    }
    // Parses the framing only (TOC, frame count and lengths): cheap enough for
    // every packet of every source, so garbage is rejected without decoding.
    opus::packet::parse(payload).map_err(|_| DropReason::CorruptPayload)?;
    let samples = opus::packet::get_nb_samples(payload, crate::SAMPLE_RATE)
        .map_err(|_| DropReason::CorruptPayload)?;
    if !(120..=5760).contains(&samples) {
        return Err(DropReason::BadDuration);
    }
    Ok(samples)
}
