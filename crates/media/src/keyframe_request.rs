//! Throttling of keyframe requests (PLI/FIR) towards Publications.
//!
//! Many receivers may want a keyframe from the same Publication at once
//! (several switch to the new speaker, or a lossy receiver keeps sending
//! PLIs). Encoders answer every request with a big IDR frame, so requests
//! are merged: at most one per `min_interval` per Publication; a request
//! arriving inside that window is deferred to its end, and dropped if a
//! keyframe arrives meanwhile. Retrying an unanswered request is the
//! requester's job (see [`crate::switch::Switcher`]), because only it knows
//! whether the keyframe it got was usable.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::ids::PublicationId;

#[derive(Debug, Clone, Default)]
struct State {
    last_sent: Option<Instant>,
    deferred: bool,
}

/// Merges keyframe requests per Publication.
#[derive(Debug, Clone)]
pub struct KeyframeRequestThrottle {
    min_interval: Duration,
    states: BTreeMap<PublicationId, State>,
}

impl Default for KeyframeRequestThrottle {
    fn default() -> Self {
        Self::new(Duration::from_millis(300))
    }
}

impl KeyframeRequestThrottle {
    pub fn new(min_interval: Duration) -> Self {
        Self {
            min_interval,
            states: BTreeMap::new(),
        }
    }

    /// Someone wants a keyframe from `publication`. Returns `true` if a
    /// request should be sent right now; otherwise it is deferred and
    /// reported by [`KeyframeRequestThrottle::poll`] later.
    pub fn request(&mut self, publication: PublicationId, now: Instant) -> bool {
        let min = self.min_interval;
        let state = self.states.entry(publication).or_default();
        match state.last_sent {
            Some(t) if now.saturating_duration_since(t) < min => {
                state.deferred = true;
                false
            }
            _ => {
                state.last_sent = Some(now);
                state.deferred = false;
                true
            }
        }
    }

    /// A keyframe from `publication` arrived: deferred requests are moot.
    pub fn keyframe_received(&mut self, publication: PublicationId) {
        if let Some(s) = self.states.get_mut(&publication) {
            s.deferred = false;
        }
    }

    /// Forget a Publication that was unpublished.
    pub fn remove(&mut self, publication: PublicationId) {
        self.states.remove(&publication);
    }

    /// Returns the next deferred request that is due at `now`, if any.
    pub fn poll(&mut self, now: Instant) -> Option<PublicationId> {
        let min = self.min_interval;
        let (id, state) = self.states.iter_mut().find(|(_, s)| {
            s.deferred
                && s.last_sent
                    .is_none_or(|t| now.saturating_duration_since(t) >= min)
        })?;
        state.deferred = false;
        state.last_sent = Some(now);
        Some(*id)
    }

    /// When [`KeyframeRequestThrottle::poll`] should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.states
            .values()
            .filter(|s| s.deferred)
            .filter_map(|s| s.last_sent.map(|t| t + self.min_interval))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: PublicationId = PublicationId(7);

    #[test]
    fn merges_requests_within_window() {
        let t0 = Instant::now();
        let mut k = KeyframeRequestThrottle::default();
        assert!(k.request(P, t0));
        assert!(!k.request(P, t0 + Duration::from_millis(10)));
        assert!(!k.request(P, t0 + Duration::from_millis(20)));
        assert_eq!(k.poll_timeout(), Some(t0 + Duration::from_millis(300)));
        assert_eq!(k.poll(t0 + Duration::from_millis(299)), None);
        assert_eq!(k.poll(t0 + Duration::from_millis(300)), Some(P));
        assert_eq!(k.poll(t0 + Duration::from_millis(900)), None);
        assert!(k.request(P, t0 + Duration::from_millis(600)));
    }

    #[test]
    fn keyframe_cancels_deferred() {
        let t0 = Instant::now();
        let mut k = KeyframeRequestThrottle::default();
        assert!(k.request(P, t0));
        assert!(!k.request(P, t0 + Duration::from_millis(100)));
        k.keyframe_received(P);
        assert_eq!(k.poll_timeout(), None);
        assert_eq!(k.poll(t0 + Duration::from_secs(1)), None);
    }
}
