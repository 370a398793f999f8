//! Identifiers shared by every piece of the forwarding core.
//!
//! They are opaque numbers: the I/O shell maps its own ids (database rows,
//! WebRTC mids, SSRCs) onto them, which keeps this crate free of any
//! transport detail.

use std::fmt;

/// A Participant of a Room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ParticipantId(pub u64);

/// A Publication: one track a Participant publishes (here: camera video).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicationId(pub u64);

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "participant-{}", self.0)
    }
}

impl fmt::Display for PublicationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "publication-{}", self.0)
    }
}
