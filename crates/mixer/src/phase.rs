//! Locks the mixer's 20 ms tick phase to the dominant speaker's packets.
//!
//! A speaker's playout is aligned to its own packet grid, so one outgoing
//! frame is exactly one of its packets, and the tick that plays that packet
//! can only come at one of the mixer's ticks. With a fixed tick clock the
//! wait from the packet's arrival to its tick is the jitter target plus
//! wherever the speaker's packets happen to fall between two ticks: up to
//! almost a frame more than needed, fixed by chance at join time.
//!
//! The jitter buffer knows, per tick, how far its playout position lags the
//! ideal one (`ideal - play`, samples): positive means the packet to play was
//! due earlier, i.e. the tick came late for this source. The lock moves the
//! tick clock by at most [`STEP`] per tick towards a fixed error for the
//! reference source (the dominant speaker), so its packets are played a
//! fixed time after they arrive (see [`AIM`]), not up to a frame later.
//!
//! Moving the clock moves every other source's error by the same amount.
//! The lock never pushes another *selected* speaker out of the band in which
//! its jitter buffer leaves it alone (a speaker past it would be held or
//! skipped a frame, audibly, while it talks): with speakers at different
//! phases the dominant one gets the best phase the others allow. Sources
//! that are not mixed only pass their packets through; their nudges cost
//! nothing. Receivers see at most [`STEP`] of extra jitter per packet while
//! the lock moves, none once it holds.

use crate::jitter::{FRAME, HOLD_AT};

/// Largest change of the tick clock per tick, in samples (1 ms).
pub(crate) const STEP: i64 = 48;
/// Errors this close to [`AIM`] are left alone (a quarter millisecond).
const DEADBAND: i64 = 12;
/// Distance kept from another speaker's hold and skip thresholds.
const GUARD: i64 = 48;
/// The error the lock aims at: playout a quarter frame ahead of the ideal
/// position. The jitter target keeps half a frame of margin for playout
/// running up to half a frame ahead of the ideal (the jitter buffer holds a
/// frame back beyond that), so a quarter frame ahead keeps a quarter frame of
/// that margin and a quarter frame of distance from the hold threshold: the
/// speaker's packets are mixed `target - 5 ms` after they arrive, which is
/// still 10 ms more than the worst lateness seen recently.
pub(crate) const AIM: i64 = -(FRAME / 4);

/// Whether the lock can bring a reference whose playout error is `error`
/// back to its aim by itself, a millisecond a tick (a jump of the jitter
/// target moves the error at once; anything within a frame below or half a
/// frame above the ideal): then the speakers in phase with it are left to
/// the lock instead of being held or skipped a frame (at a quiet moment or
/// for a missing packet, which is concealed instead: the mixer's tick).
pub(crate) fn holds(error: i64) -> bool {
    error > -FRAME && error < FRAME / 2
}

/// Whether a speaker whose playout error is `error` plays in phase with the
/// reference's `reference` (within 1 ms): a shift of the clock moves both
/// alike.
pub(crate) fn in_phase(error: i64, reference: i64) -> bool {
    error.abs_diff(reference) <= STEP.unsigned_abs()
}

/// How far the tick clock may move before another selected speaker would
/// be nudged: (earlier, later), samples. Start with [`Room::default`] and
/// add each other speaker's playout error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Room {
    earlier: i64,
    later: i64,
}

impl Default for Room {
    fn default() -> Self {
        Room { earlier: i64::MAX, later: i64::MAX }
    }
}

impl Room {
    /// Another selected speaker whose playout error is `error`: moving the
    /// ticks earlier lowers it towards the hold threshold, later raises it
    /// towards the skip threshold.
    pub fn add(&mut self, error: i64) {
        let earlier = error.saturating_add(HOLD_AT).saturating_sub(GUARD).max(0);
        let later = FRAME.saturating_sub(GUARD).saturating_sub(error).max(0);
        self.earlier = self.earlier.min(earlier);
        self.later = self.later.min(later);
    }
}
/// Nanoseconds per 48 kHz sample, as a fraction: 1e9 / 48000 = 62500 / 3.
const NANOS_PER_SAMPLE_NUM: i64 = 62_500;
const NANOS_PER_SAMPLE_DEN: i64 = 3;

/// The offset of the mixer's tick clock from its nominal 20 ms grid.
#[derive(Debug, Default, Clone)]
pub(crate) struct PhaseLock {
    /// Offset added to every tick time from now on, in nanoseconds
    /// (negative: ticks come earlier).
    offset_ns: i64,
}

impl PhaseLock {
    /// Offset of the tick clock, nanoseconds.
    pub fn offset_ns(&self) -> i64 {
        self.offset_ns
    }

    /// Feeds the reference source's playout error of this tick (`ideal -
    /// play`, samples) and moves the following ticks towards [`AIM`]: an
    /// error above it means the ticks come later than needed for this
    /// source, so they come earlier. Returns the correction applied, samples.
    /// `room`: how far the other selected speakers let it move.
    pub fn update(&mut self, error: i64, room: Room) -> i64 {
        let off = error.saturating_sub(AIM);
        if off.saturating_abs() <= DEADBAND {
            return 0;
        }
        let step = off.clamp(-STEP, STEP).clamp(-room.later, room.earlier);
        if step == 0 {
            return 0;
        }
        self.offset_ns = self
            .offset_ns
            .saturating_sub(step.saturating_mul(NANOS_PER_SAMPLE_NUM) / NANOS_PER_SAMPLE_DEN);
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_at_most_one_step_towards_zero_error() {
        let free = Room::default();
        let mut p = PhaseLock::default();
        assert_eq!(p.update(AIM + 5, free), 0, "inside the dead band");
        assert_eq!(p.offset_ns(), 0);
        assert_eq!(p.update(AIM + 480, free), STEP);
        assert_eq!(p.offset_ns(), -1_000_000, "late ticks come 1 ms earlier");
        assert_eq!(p.update(AIM - 30, free), -30);
        assert_eq!(p.offset_ns(), -1_000_000 + 625_000);
        assert_eq!(p.update(i64::MIN, free), -STEP, "no overflow on absurd input");
        assert_eq!(p.update(i64::MAX, free), STEP);
    }

    #[test]
    fn other_speakers_are_not_pushed_into_a_hold_or_a_skip() {
        let mut p = PhaseLock::default();
        // Another speaker 10 samples short of its guarded hold threshold.
        let mut room = Room::default();
        room.add(-HOLD_AT + GUARD + 10);
        assert_eq!(p.update(AIM + 480, room), 10);
        let mut room = Room::default();
        room.add(-HOLD_AT);
        assert_eq!(p.update(AIM + 480, room), 0, "already at its threshold");
        // Later ticks raise the other's error towards a skip.
        let mut room = Room::default();
        room.add(FRAME - GUARD - 20);
        room.add(0);
        assert_eq!(p.update(AIM - 480, room), -20);
        assert_eq!(p.update(i64::MIN, room), -20);
    }
}
