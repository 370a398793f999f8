//! Per-source adaptive jitter buffer.
//!
//! Playout is driven by time, not by how many packets happen to be queued:
//! each source keeps an estimate of `rtp_timestamp - arrival_time` for its
//! earliest-arriving packets (a sliding-window maximum), and at every tick the
//! ideal playout position is `now + that offset - target_delay`. The actual
//! playout position moves one frame per tick and is nudged by whole frames
//! (skip one / hold one) when it drifts a frame away from the ideal. This one
//! rule covers:
//!
//! * jitter and reordering: the target delay follows the observed lateness of
//!   packets (a decaying peak), bounded by the configured min/max;
//! * clock drift between senders: a fast sender's offset grows, so a frame is
//!   skipped every few seconds (preferably during silence); a slow one's
//!   shrinks and a frame is held;
//! * DTX and a sender that stops: nothing arrives, the clock keeps moving, and
//!   when packets resume their timestamps land where the clock already is, so
//!   the buffer never grows across silence;
//! * a sender at twice real time: its offset races ahead, frames are skipped,
//!   and anything beyond the max delay is refused, so memory stays bounded;
//! * timestamp jumps: a packet far off the timeline is refused, unless the
//!   next ones confirm the jump (or the source was idle), then the timeline is
//!   re-anchored.
//!
//! Positions are 48 kHz samples in `i64`: RTP timestamps are unwrapped, and
//! arrival times are samples since the mixer's epoch.

use std::collections::{BTreeMap, VecDeque};

use crate::packet::AudioLevel;

pub(crate) const FRAME: i64 = crate::FRAME_SAMPLES as i64;
/// Window of the earliest-arrival (max offset) estimate. Long enough to
/// contain a packet that got through without queueing, short enough to follow
/// a slow sender's drift.
const OFFSET_WINDOW: i64 = 2 * 48_000;
/// Peak-jitter decay time constant, in samples (5 s).
const JITTER_DECAY: f64 = 5.0 * 48_000.0;
/// Offset change that counts as a timestamp jump rather than jitter.
const JUMP: i64 = 48_000;
/// Candidate jump packets must agree with each other within this.
const JUMP_TOLERANCE: i64 = 4_800;
/// Consecutive consistent packets that confirm a jump.
const JUMP_CONFIRM: u32 = 3;
/// After this long without an accepted packet a jump is accepted at once.
const IDLE: i64 = 48_000;
/// Playout further than this from the ideal is re-anchored, not nudged.
const REANCHOR: i64 = 24_000;
/// Hard cap on queued packets (2.5 ms packets at 200 ms delay need 80).
const MAX_PACKETS: usize = 128;
/// Margin on top of the observed jitter: playout may lag the ideal by up to
/// half a frame before a hold (see `HOLD_AT`), plus 5 ms.
const DELAY_MARGIN: i64 = FRAME / 2 + 240;
/// Playout this far behind the ideal is held back a frame (when the source
/// is quiet or not selected). Half a frame: the band between a hold and a
/// skip (one frame ahead) is 1.5 frames wide, so one nudge of a frame never
/// lands on the other threshold.
pub(crate) const HOLD_AT: i64 = FRAME / 2;
/// Packets kept after playout passed them, to prime a decoder when the source
/// gets selected.
const HISTORY: usize = 2;
/// For this long after a sequence gap, playout waits one frame longer, so
/// the packet after a lost one is usually queued in time to rebuild the lost
/// one from its in-band FEC.
const LOSS_MEMORY: i64 = 10 * 48_000;

/// One queued packet; `ts` and `dur` in samples.
#[derive(Debug)]
pub(crate) struct Queued {
    pub ts: i64,
    pub dur: i64,
    pub level: Option<AudioLevel>,
    pub payload: Vec<u8>,
    /// When it arrived (samples since the epoch), for the latency figures.
    pub arrival: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Insert {
    Buffered,
    BufferedAfterJump,
    Late,
    Duplicate,
    Overflow,
    Outlier,
}

/// What `begin_tick` did to the playout position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Adjust {
    /// Nothing received yet.
    Idle,
    Normal,
    /// First packets: playout position set.
    Anchored,
    /// Too far off (or after a jump): playout position set anew.
    Reanchored,
    /// One frame dropped to catch up.
    Skip,
    /// Play one frame of concealment and don't advance.
    Hold,
}

/// Sliding-window maximum of `ts - arrival` plus a decaying jitter peak.
#[derive(Debug, Default)]
struct DelayEstimator {
    /// Monotonically decreasing in offset: (arrival, offset).
    window: VecDeque<(i64, i64)>,
    offset: Option<i64>,
    peak_jitter: f64,
    last_arrival: Option<i64>,
}

impl DelayEstimator {
    fn observe(&mut self, arrival: i64, offset: i64) {
        while self.window.back().is_some_and(|&(_, o)| o <= offset) {
            self.window.pop_back();
        }
        self.window.push_back((arrival, offset));
        while self.window.len() > 1
            && self
                .window
                .front()
                .is_some_and(|&(a, _)| a < arrival.saturating_sub(OFFSET_WINDOW))
        {
            self.window.pop_front();
        }
        while self.window.len() > 256 {
            self.window.pop_front();
        }
        let best = self.window.front().map_or(offset, |&(_, o)| o);
        self.offset = Some(best);

        let dt = self
            .last_arrival
            .map_or(0, |l| arrival.saturating_sub(l).max(0));
        self.last_arrival = Some(arrival);
        self.peak_jitter *= (-(dt as f64) / JITTER_DECAY).exp();
        let jitter = best.saturating_sub(offset).max(0) as f64;
        if jitter > self.peak_jitter {
            self.peak_jitter = jitter;
        }
    }

    fn reset(&mut self) {
        *self = DelayEstimator::default();
    }
}

#[derive(Debug)]
struct JumpCandidate {
    offset: i64,
    count: u32,
}

/// Unwraps a 16/32-bit RTP counter against the highest accepted value.
fn unwrap(reference: Option<i64>, value: u32, bits: u32) -> i64 {
    let Some(r) = reference else {
        return i64::from(value);
    };
    let modulus = 1i64 << bits;
    let half = modulus / 2;
    let delta = (i64::from(value) - r).rem_euclid(modulus);
    let delta = if delta >= half {
        delta - modulus
    } else {
        delta
    };
    r.saturating_add(delta)
}

/// `reference + k*FRAME` nearest to `x`.
fn grid_round(x: i64, reference: i64) -> i64 {
    let diff = x.saturating_sub(reference);
    let k = diff.div_euclid(FRAME);
    let r = diff.rem_euclid(FRAME);
    let k = if r >= FRAME / 2 { k + 1 } else { k };
    reference.saturating_add(k.saturating_mul(FRAME))
}

#[derive(Debug)]
pub(crate) struct JitterBuffer {
    min_delay: i64,
    max_delay: i64,
    packets: BTreeMap<i64, Queued>,
    history: VecDeque<Queued>,
    ts_ref: Option<i64>,
    seq_ref: Option<i64>,
    delay: DelayEstimator,
    jump: Option<JumpCandidate>,
    last_accepted: Option<i64>,
    /// Next sample to be played (start of this tick's frame).
    play: Option<i64>,
    /// Next sample not yet decoded; `read - play` samples wait in the
    /// decoder's pending buffer.
    read: i64,
    /// Highest extended sequence number seen and packets accepted, for the
    /// loss estimate.
    first_seq: Option<i64>,
    accepted: u64,
    /// Arrival time of the last packet that followed a sequence gap.
    last_gap: Option<i64>,
    /// Whether the FEC frame of delay is currently added.
    fec_margin: bool,
}

impl JitterBuffer {
    pub fn new(min_delay: i64, max_delay: i64) -> Self {
        let min_delay = min_delay.max(0);
        JitterBuffer {
            min_delay,
            max_delay: max_delay.max(min_delay),
            packets: BTreeMap::new(),
            history: VecDeque::with_capacity(HISTORY + 1),
            ts_ref: None,
            seq_ref: None,
            delay: DelayEstimator::default(),
            jump: None,
            last_accepted: None,
            play: None,
            read: 0,
            first_seq: None,
            accepted: 0,
            last_gap: None,
            fec_margin: false,
        }
    }

    /// Current playout delay target, samples.
    pub fn target_delay(&self) -> i64 {
        let fec = if self.fec_margin { FRAME } else { 0 };
        (self.delay.peak_jitter as i64)
            .saturating_add(DELAY_MARGIN + fec)
            .clamp(self.min_delay, self.max_delay)
    }

    pub fn len(&self) -> usize {
        self.packets.len()
    }

    /// Packets the sequence numbers say were sent but never arrived.
    pub fn lost_estimate(&self) -> u64 {
        match (self.first_seq, self.seq_ref) {
            (Some(f), Some(h)) => {
                let expected = u64::try_from(h.saturating_sub(f).saturating_add(1)).unwrap_or(0);
                expected.saturating_sub(self.accepted)
            }
            _ => 0,
        }
    }

    /// Queues a validated packet that arrived at `arrival` (samples since epoch).
    pub fn insert(
        &mut self,
        seq: u16,
        ts: u32,
        dur: i64,
        level: Option<AudioLevel>,
        payload: Vec<u8>,
        arrival: i64,
    ) -> Insert {
        let ext_ts = unwrap(self.ts_ref, ts, 32);
        let ext_seq = unwrap(self.seq_ref, u32::from(seq), 16);
        let offset = ext_ts.saturating_sub(arrival);

        let mut jumped = false;
        if let Some(est) = self.delay.offset
            && offset.saturating_sub(est).saturating_abs() > JUMP
        {
            let idle = self
                .last_accepted
                .is_none_or(|a| arrival.saturating_sub(a) > IDLE);
            let confirmed = match &mut self.jump {
                Some(c) if offset.saturating_sub(c.offset).saturating_abs() <= JUMP_TOLERANCE => {
                    c.count += 1;
                    c.offset = c.offset.max(offset);
                    c.count >= JUMP_CONFIRM
                }
                _ => {
                    self.jump = Some(JumpCandidate { offset, count: 1 });
                    false
                }
            };
            if !(idle || confirmed) {
                return Insert::Outlier;
            }
            // A real jump: start a new timeline from this packet.
            self.jump = None;
            self.packets.clear();
            self.history.clear();
            self.delay.reset();
            self.play = None;
            self.ts_ref = Some(ext_ts);
            self.seq_ref = Some(ext_seq);
            self.first_seq = Some(ext_seq);
            self.accepted = 0;
            jumped = true;
        } else {
            self.jump = None;
        }

        if self.seq_ref.is_some_and(|r| ext_seq > r.saturating_add(1)) {
            self.last_gap = Some(arrival);
        }
        // Late packets still tell us about jitter, so they feed the estimate.
        self.delay.observe(arrival, offset);
        self.last_accepted = Some(arrival);
        self.ts_ref = Some(self.ts_ref.map_or(ext_ts, |r| r.max(ext_ts)));
        self.seq_ref = Some(self.seq_ref.map_or(ext_seq, |r| r.max(ext_seq)));
        self.first_seq = Some(self.first_seq.map_or(ext_seq, |f| f.min(ext_seq)));
        self.accepted += 1;

        if let Some(play) = self.play {
            if ext_ts < self.read {
                return Insert::Late;
            }
            if ext_ts
                >= play
                    .saturating_add(self.max_delay)
                    .saturating_add(4 * FRAME)
            {
                return Insert::Overflow;
            }
        }
        if self.packets.contains_key(&ext_ts) {
            return Insert::Duplicate;
        }
        if self.packets.len() >= MAX_PACKETS {
            return Insert::Overflow;
        }
        self.packets.insert(
            ext_ts,
            Queued {
                ts: ext_ts,
                dur,
                level,
                payload,
                arrival,
            },
        );
        if jumped {
            Insert::BufferedAfterJump
        } else {
            Insert::Buffered
        }
    }

    /// Positions playout for the tick whose frame starts at `now`
    /// (samples since epoch). `selected` sources are only nudged while
    /// `quiet` (or when far off); a hold also needs `pending_empty`, so the
    /// concealment frame continues exactly where the decoder stopped.
    pub fn begin_tick(
        &mut self,
        now: i64,
        selected: bool,
        quiet: bool,
        pending_empty: bool,
    ) -> Adjust {
        let Some(offset) = self.delay.offset else {
            return Adjust::Idle;
        };
        self.fec_margin = self
            .last_gap
            .is_some_and(|g| now.saturating_sub(g) < LOSS_MEMORY);
        let ideal = now
            .saturating_add(offset)
            .saturating_sub(self.target_delay());
        let Some(play) = self.play else {
            let Some((&first, _)) = self.packets.iter().next() else {
                return Adjust::Idle;
            };
            let p = grid_round(ideal, first);
            self.play = Some(p);
            self.read = p;
            self.drop_stale();
            return Adjust::Anchored;
        };
        let err = ideal.saturating_sub(play);
        if err.saturating_abs() > REANCHOR {
            let reference = self.packets.keys().next().copied().unwrap_or(play);
            let p = grid_round(ideal, reference);
            self.play = Some(p);
            self.read = p;
            self.drop_stale();
            return Adjust::Reanchored;
        }
        let relaxed = !selected || quiet;
        if err >= FRAME && (relaxed || err >= 2 * FRAME) {
            let p = play + FRAME;
            self.play = Some(p);
            self.read = self.read.max(p);
            self.drop_stale();
            return Adjust::Skip;
        }
        if err <= -HOLD_AT && ((relaxed && pending_empty) || err <= -2 * FRAME) {
            return Adjust::Hold;
        }
        Adjust::Normal
    }

    /// Ends the tick: playout moves one frame unless this tick was a hold.
    pub fn end_tick(&mut self, held: bool) {
        if let Some(play) = self.play {
            let p = if held { play } else { play + FRAME };
            self.play = Some(p);
            self.read = self.read.max(p);
            self.drop_stale();
        }
    }

    /// Moves packets that playout has passed into the priming history.
    fn drop_stale(&mut self) {
        while let Some(entry) = self.packets.first_entry() {
            let q = entry.get();
            if q.ts.saturating_add(q.dur) > self.read {
                break;
            }
            let q = entry.remove();
            self.history.push_back(q);
            if self.history.len() > HISTORY {
                self.history.pop_front();
            }
        }
    }

    pub fn play(&self) -> Option<i64> {
        self.play
    }

    /// How far playout lags the ideal position at `now` (`ideal - play`,
    /// samples): positive when this tick came later than the source needed.
    pub fn playout_error(&self, now: i64) -> Option<i64> {
        let ideal = now
            .saturating_add(self.delay.offset?)
            .saturating_sub(self.target_delay());
        Some(ideal.saturating_sub(self.play?))
    }

    /// When the packet holding sample `pos` would have arrived at this
    /// source's smallest observed delay (samples since the epoch): the
    /// reference for audio that is concealed because its packet is missing.
    pub fn expected_arrival(&self, pos: i64) -> Option<i64> {
        self.delay.offset.map(|o| pos.saturating_sub(o))
    }

    pub fn read(&self) -> i64 {
        self.read
    }

    /// Samples decoded ahead of the playout position.
    pub fn pending(&self) -> usize {
        self.play.map_or(0, |p| {
            usize::try_from(self.read.saturating_sub(p)).unwrap_or(0)
        })
    }

    /// Records that samples up to `pos` have been decoded (or concealed).
    pub fn set_read(&mut self, pos: i64) {
        self.read = self.read.max(pos);
    }

    /// Forgets what was decoded ahead (the source is no longer decoded).
    pub fn discard_pending(&mut self) {
        if let Some(p) = self.play {
            self.read = p;
        }
    }

    /// Takes the packet that covers `pos`, discarding ones entirely before it.
    pub fn take_at(&mut self, pos: i64) -> Option<Queued> {
        while let Some(entry) = self.packets.first_entry() {
            let q = entry.get();
            if q.ts.saturating_add(q.dur) <= pos {
                entry.remove();
                continue;
            }
            if q.ts <= pos {
                return Some(entry.remove());
            }
            return None;
        }
        None
    }

    /// The next queued packet starting after `pos`: (start, payload).
    pub fn next_after(&self, pos: i64) -> Option<(i64, &[u8])> {
        self.packets
            .range(pos.saturating_add(1)..)
            .next()
            .map(|(&ts, q)| (ts, q.payload.as_slice()))
    }

    /// Level of the packet at the playout position, if queued.
    pub fn level_at_play(&self) -> Option<Option<AudioLevel>> {
        let play = self.play?;
        let (_, q) = self.packets.range(..=play).next_back()?;
        (q.ts.saturating_add(q.dur) > play).then_some(q.level)
    }

    /// Already-played packets just before `before`, oldest first, for priming.
    pub fn take_history(&mut self, before: i64) -> Vec<Queued> {
        let h: Vec<Queued> = self.history.drain(..).collect();
        h.into_iter()
            .filter(|q| q.ts < before && q.ts >= before.saturating_sub(3 * FRAME))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(jb: &mut JitterBuffer, n: u32, arrival: i64) -> Insert {
        jb.insert(n as u16, n * 960, 960, None, vec![0; 10], arrival)
    }

    #[test]
    fn unwraps_counters() {
        assert_eq!(unwrap(Some(65_535), 0, 16), 65_536);
        assert_eq!(unwrap(Some(65_536), 65_535, 16), 65_535);
        assert_eq!(unwrap(Some(10), 5, 16), 5);
        assert_eq!(
            unwrap(Some(u32::MAX as i64), 959, 32),
            u32::MAX as i64 + 960
        );
    }

    #[test]
    fn steady_stream_plays_in_order_with_small_delay() {
        let mut jb = JitterBuffer::new(960, 9600);
        let mut played = Vec::new();
        for t in 0..100u32 {
            let now = i64::from(t) * 960;
            assert_eq!(push(&mut jb, t, now + 100), Insert::Buffered);
            let adj = jb.begin_tick(now + 960, false, true, true);
            assert!(matches!(adj, Adjust::Normal | Adjust::Anchored), "{adj:?}");
            if let Some(p) = jb.play() {
                played.push(p);
            }
            jb.end_tick(false);
        }
        assert!(played.windows(2).all(|w| w[1] - w[0] == 960));
        assert!(
            jb.len() <= 3,
            "buffer should stay shallow, has {}",
            jb.len()
        );
    }

    #[test]
    fn dtx_gap_does_not_grow_buffer() {
        let mut jb = JitterBuffer::new(960, 9600);
        for t in 0..300u32 {
            let now = i64::from(t) * 960;
            // Silent (no packets) from 50 to 250.
            if !(50..250).contains(&t) {
                assert_eq!(push(&mut jb, t, now + 100), Insert::Buffered, "t={t}");
            }
            jb.begin_tick(now + 960, false, true, true);
            jb.end_tick(false);
            assert!(jb.len() <= 3);
        }
    }

    #[test]
    fn fast_sender_is_skipped_not_buffered() {
        let mut jb = JitterBuffer::new(960, 9600);
        let mut skips = 0;
        // Sender clock 1% fast: sends 960-sample packets every 19.8 ms.
        for t in 0..2000u32 {
            let arrival = (f64::from(t) * 960.0 / 1.01) as i64;
            push(&mut jb, t, arrival);
        }
        let _ = &mut skips;
        let mut jb2 = JitterBuffer::new(960, 9600);
        let mut next = 0u32;
        for tick in 0..1900i64 {
            let now = tick * 960;
            while (f64::from(next) * 960.0 / 1.01) as i64 <= now {
                push(&mut jb2, next, (f64::from(next) * 960.0 / 1.01) as i64);
                next += 1;
            }
            if jb2.begin_tick(now, false, true, true) == Adjust::Skip {
                skips += 1;
            }
            jb2.end_tick(false);
            assert!(jb2.len() <= 4, "len {}", jb2.len());
        }
        // 1% of 1900 frames.
        assert!((15..=22).contains(&skips), "skips {skips}");
    }

    #[test]
    fn single_wild_timestamp_is_an_outlier_but_a_real_jump_is_followed() {
        let mut jb = JitterBuffer::new(960, 9600);
        for t in 0..10u32 {
            push(&mut jb, t, i64::from(t) * 960);
        }
        let wild = jb.insert(10, 10 * 960 + 10_000_000, 960, None, vec![0; 10], 10 * 960);
        assert_eq!(wild, Insert::Outlier);
        assert_eq!(push(&mut jb, 11, 11 * 960), Insert::Buffered);
        let mut outcomes = Vec::new();
        for t in 12..16u32 {
            outcomes.push(jb.insert(
                t as u16,
                t * 960 + 5_000_000,
                960,
                None,
                vec![0; 10],
                i64::from(t) * 960,
            ));
        }
        assert_eq!(outcomes[..2], [Insert::Outlier, Insert::Outlier]);
        assert_eq!(outcomes[2], Insert::BufferedAfterJump);
        assert_eq!(outcomes[3], Insert::Buffered);
    }
}
