//! Detection of incoming video that stays non-contiguous.
//!
//! Browsers' H.264 encoders (OpenH264 in Chromium) send no periodic
//! keyframes: once a packet is lost for good, every receiver of that
//! Publication stays frozen until someone asks for a keyframe. Missing
//! sequence numbers are therefore remembered; if one is still missing after
//! `repair_window` (time for NACK/RTX to fix it), or a jump is too large to
//! track, a keyframe is wanted from the Publication.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::seq::SeqUnwrapper;

/// Tracks holes in one Publication's sequence numbers.
#[derive(Debug, Clone)]
pub struct GapDetector {
    repair_window: Duration,
    max_missing: usize,
    unwrapper: SeqUnwrapper,
    newest: Option<u64>,
    missing: BTreeMap<u64, Instant>,
}

impl GapDetector {
    /// `repair_window`: how long a hole may wait for a retransmission;
    /// `max_missing`: larger holes ask for a keyframe at once.
    pub fn new(repair_window: Duration, max_missing: usize) -> Self {
        Self {
            repair_window,
            max_missing,
            unwrapper: SeqUnwrapper::new(),
            newest: None,
            missing: BTreeMap::new(),
        }
    }

    /// Records a received packet. Returns `true` if a keyframe is wanted now.
    pub fn on_packet(&mut self, sequence_number: u16, now: Instant) -> bool {
        let ext = self.unwrapper.unwrap(u64::from(sequence_number));
        let Some(newest) = self.newest else {
            self.newest = Some(ext);
            return false;
        };
        if ext <= newest {
            self.missing.remove(&ext);
            return false;
        }
        self.newest = Some(ext);
        let hole = ext - newest - 1;
        if hole as usize + self.missing.len() > self.max_missing {
            self.missing.clear();
            return true;
        }
        for s in newest + 1..ext {
            self.missing.insert(s, now);
        }
        false
    }

    /// Returns `true` if a hole outlived the repair window (holes are then forgotten:
    /// the keyframe makes them irrelevant).
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        let expired = self
            .missing
            .values()
            .any(|t| now.saturating_duration_since(*t) >= self.repair_window);
        if expired {
            self.missing.clear();
        }
        expired
    }

    /// When [`GapDetector::handle_timeout`] should run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.missing.values().min().map(|t| *t + self.repair_window)
    }

    /// Sequence numbers currently missing (for tests and stats).
    pub fn missing(&self) -> usize {
        self.missing.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repaired_hole_needs_no_keyframe() {
        let t0 = Instant::now();
        let mut g = GapDetector::new(Duration::from_millis(200), 100);
        assert!(!g.on_packet(65534, t0));
        assert!(!g.on_packet(1, t0)); // 65535 and 0 missing
        assert_eq!(g.missing(), 2);
        assert!(!g.on_packet(65535, t0));
        assert!(!g.on_packet(0, t0));
        assert_eq!(g.poll_timeout(), None);
        assert!(!g.handle_timeout(t0 + Duration::from_secs(1)));
    }

    #[test]
    fn unrepaired_hole_wants_keyframe() {
        let t0 = Instant::now();
        let mut g = GapDetector::new(Duration::from_millis(200), 100);
        g.on_packet(10, t0);
        g.on_packet(12, t0);
        assert_eq!(g.poll_timeout(), Some(t0 + Duration::from_millis(200)));
        assert!(!g.handle_timeout(t0 + Duration::from_millis(199)));
        assert!(g.handle_timeout(t0 + Duration::from_millis(200)));
        assert_eq!(g.missing(), 0);
    }

    #[test]
    fn huge_jump_wants_keyframe_at_once() {
        let t0 = Instant::now();
        let mut g = GapDetector::new(Duration::from_millis(200), 100);
        g.on_packet(10, t0);
        assert!(g.on_packet(5000, t0));
        assert_eq!(g.missing(), 0);
    }
}
