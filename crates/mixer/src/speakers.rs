//! Which K sources are decoded and mixed, and who is the dominant speaker.
//!
//! Speakers live in K slots. Changes are deliberately slow: a source enters
//! a free slot once it is talking (which itself takes several speech frames),
//! leaves after its talk hangover, and replaces the quietest occupant only
//! when it is clearly louder for a while and that occupant has had its
//! minimum time. A leaving speaker keeps its slot one more tick to fade out,
//! so at most K sources are ever decoded and at most K mix-minus streams
//! encoded.

use crate::packet::SourceId;

#[derive(Clone, Copy, Debug)]
pub(crate) struct SelectorConfig {
    pub slots: usize,
    pub switch_margin_db: f32,
    pub switch_hold_ticks: u32,
    pub min_speaker_ticks: u32,
    pub dominant_margin_db: f32,
    pub dominant_hold_ticks: u32,
}

/// A source's view for selection this tick.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Candidate {
    pub id: SourceId,
    pub speaking: bool,
    pub loudness: f32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SlotState {
    Free,
    /// Mixed; `since` is the tick it entered.
    Active {
        source: SourceId,
        since: u64,
    },
    /// Mixed this tick with a fade-out, free the next.
    Fading {
        source: SourceId,
    },
}

impl SlotState {
    pub fn source(&self) -> Option<SourceId> {
        match *self {
            SlotState::Free => None,
            SlotState::Active { source, .. } | SlotState::Fading { source } => Some(source),
        }
    }
}

/// Slot changes of one tick.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    /// (slot, source) that start being mixed this tick.
    pub entered: Vec<(usize, SourceId)>,
    /// (slot, source) mixed for the last time (faded out) this tick.
    pub leaving: Vec<(usize, SourceId)>,
}

#[derive(Debug)]
pub(crate) struct Selector {
    cfg: SelectorConfig,
    slots: Vec<SlotState>,
    challenger: Option<(SourceId, u32)>,
    dominant: Option<SourceId>,
    dominant_challenger: Option<(SourceId, u32)>,
}

impl Selector {
    pub fn new(cfg: SelectorConfig) -> Self {
        Selector {
            slots: vec![SlotState::Free; cfg.slots.max(1)],
            cfg,
            challenger: None,
            dominant: None,
            dominant_challenger: None,
        }
    }

    pub fn slots(&self) -> &[SlotState] {
        &self.slots
    }

    pub fn slot_of(&self, id: SourceId) -> Option<usize> {
        self.slots.iter().position(|s| s.source() == Some(id))
    }

    pub fn dominant(&self) -> Option<SourceId> {
        self.dominant
    }

    /// Frees the slot of a removed source at once (no fade: its audio is gone).
    pub fn remove(&mut self, id: SourceId) -> Option<usize> {
        let slot = self.slot_of(id)?;
        self.slots[slot] = SlotState::Free;
        if self.challenger.is_some_and(|(c, _)| c == id) {
            self.challenger = None;
        }
        if self.dominant_challenger.is_some_and(|(c, _)| c == id) {
            self.dominant_challenger = None;
        }
        Some(slot)
    }

    /// Forgets `id` as dominant (it was removed); returns whether it was.
    pub fn clear_dominant(&mut self, id: SourceId) -> bool {
        if self.dominant == Some(id) {
            self.dominant = None;
            true
        } else {
            false
        }
    }

    /// One tick of slot assignment. `talking` holds every talking source
    /// (any order); `lookup` gives the current view of a slot's occupant.
    pub fn update(
        &mut self,
        tick: u64,
        talking: &[Candidate],
        lookup: impl Fn(SourceId) -> Option<Candidate>,
    ) -> Changes {
        let mut changes = Changes::default();

        // Last tick's fade-outs are done.
        for s in &mut self.slots {
            if matches!(s, SlotState::Fading { .. }) {
                *s = SlotState::Free;
            }
        }
        // Speakers that stopped talking fade out.
        for (i, s) in self.slots.iter_mut().enumerate() {
            if let SlotState::Active { source, .. } = *s
                && !lookup(source).is_some_and(|c| c.speaking)
            {
                *s = SlotState::Fading { source };
                changes.leaving.push((i, source));
            }
        }

        // Waiting talkers, loudest first (ties: lower id) for determinism.
        let mut waiting: Vec<Candidate> = talking
            .iter()
            .filter(|c| c.speaking && self.slot_of(c.id).is_none())
            .copied()
            .collect();
        waiting.sort_by(|a, b| b.loudness.total_cmp(&a.loudness).then(a.id.cmp(&b.id)));

        // Replace the quietest speaker when a waiting one is clearly louder
        // for long enough.
        let has_free = self.slots.contains(&SlotState::Free);
        if !has_free && let Some(best) = waiting.first() {
            let weakest = self
                .slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| match *s {
                    SlotState::Active { source, since }
                        if tick.saturating_sub(since) >= u64::from(self.cfg.min_speaker_ticks) =>
                    {
                        lookup(source).map(|c| (i, c))
                    }
                    _ => None,
                })
                .min_by(|a, b| a.1.loudness.total_cmp(&b.1.loudness));
            match weakest {
                Some((slot, w)) if best.loudness > w.loudness + self.cfg.switch_margin_db => {
                    let count = match self.challenger {
                        Some((id, n)) if id == best.id => n + 1,
                        _ => 1,
                    };
                    if count >= self.cfg.switch_hold_ticks {
                        self.slots[slot] = SlotState::Fading { source: w.id };
                        changes.leaving.push((slot, w.id));
                        self.challenger = None;
                    } else {
                        self.challenger = Some((best.id, count));
                    }
                }
                _ => self.challenger = None,
            }
        } else {
            self.challenger = None;
        }

        // Fill free slots.
        let mut next = waiting.iter();
        for (i, s) in self.slots.iter_mut().enumerate() {
            if *s != SlotState::Free {
                continue;
            }
            let Some(c) = next.next() else { break };
            *s = SlotState::Active {
                source: c.id,
                since: tick,
            };
            changes.entered.push((i, c.id));
        }
        changes
    }

    /// One tick of dominant-speaker tracking; returns `Some(new)` on change.
    pub fn update_dominant(
        &mut self,
        talking: &[Candidate],
        lookup: impl Fn(SourceId) -> Option<Candidate>,
    ) -> Option<Option<SourceId>> {
        let loudest = talking
            .iter()
            .filter(|c| c.speaking)
            .max_by(|a, b| a.loudness.total_cmp(&b.loudness).then(b.id.cmp(&a.id)))
            .copied();
        let current = self.dominant.and_then(&lookup);
        let Some(loudest) = loudest else {
            // Nobody talks: keep the last dominant speaker (video stays put).
            self.dominant_challenger = None;
            return None;
        };
        let switch_to = match current {
            Some(cur) if cur.id == loudest.id => {
                self.dominant_challenger = None;
                None
            }
            Some(cur) if cur.speaking => {
                if loudest.loudness > cur.loudness + self.cfg.dominant_margin_db {
                    let count = match self.dominant_challenger {
                        Some((id, n)) if id == loudest.id => n + 1,
                        _ => 1,
                    };
                    if count >= self.cfg.dominant_hold_ticks {
                        Some(loudest.id)
                    } else {
                        self.dominant_challenger = Some((loudest.id, count));
                        None
                    }
                } else {
                    self.dominant_challenger = None;
                    None
                }
            }
            // The dominant one stopped talking (or is gone): take over now.
            _ => Some(loudest.id),
        };
        let new = switch_to?;
        self.dominant = Some(new);
        self.dominant_challenger = None;
        Some(Some(new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const CFG: SelectorConfig = SelectorConfig {
        slots: 2,
        switch_margin_db: 6.0,
        switch_hold_ticks: 10,
        min_speaker_ticks: 25,
        dominant_margin_db: 3.0,
        dominant_hold_ticks: 15,
    };

    fn cand(id: u64, loudness: f32) -> Candidate {
        Candidate {
            id: SourceId(id),
            speaking: true,
            loudness,
        }
    }

    fn run(sel: &mut Selector, tick: u64, talking: &[Candidate]) -> Changes {
        let map: HashMap<SourceId, Candidate> = talking.iter().map(|c| (c.id, *c)).collect();
        sel.update(tick, talking, |id| map.get(&id).copied())
    }

    #[test]
    fn fills_free_slots_loudest_first() {
        let mut sel = Selector::new(CFG);
        let ch = run(&mut sel, 0, &[cand(1, 50.0), cand(2, 80.0), cand(3, 70.0)]);
        assert_eq!(ch.entered, vec![(0, SourceId(2)), (1, SourceId(3))]);
    }

    #[test]
    fn louder_source_needs_margin_hold_and_min_time() {
        let mut sel = Selector::new(CFG);
        run(&mut sel, 0, &[cand(1, 60.0), cand(2, 60.0)]);
        // Slightly louder newcomer never replaces anyone.
        for t in 1..100 {
            let ch = run(&mut sel, t, &[cand(1, 60.0), cand(2, 60.0), cand(3, 64.0)]);
            assert!(ch.leaving.is_empty() && ch.entered.is_empty());
        }
        // Clearly louder: after the hold, the quietest fades, then 3 enters.
        let mut swapped_at = None;
        for t in 100..130 {
            let ch = run(&mut sel, t, &[cand(1, 60.0), cand(2, 58.0), cand(3, 75.0)]);
            if !ch.leaving.is_empty() {
                assert_eq!(ch.leaving, vec![(1, SourceId(2))]);
                swapped_at = Some(t);
            }
            if !ch.entered.is_empty() {
                assert_eq!(ch.entered, vec![(1, SourceId(3))]);
                assert_eq!(Some(t - 1), swapped_at);
            }
        }
        assert_eq!(swapped_at, Some(109));
    }

    #[test]
    fn dominant_switches_with_hysteresis() {
        let mut sel = Selector::new(CFG);
        let map = |v: &[Candidate]| -> HashMap<SourceId, Candidate> {
            v.iter().map(|c| (c.id, *c)).collect()
        };
        let a = [cand(1, 60.0)];
        let m = map(&a);
        assert_eq!(
            sel.update_dominant(&a, |id| m.get(&id).copied()),
            Some(Some(SourceId(1)))
        );
        let b = [cand(1, 60.0), cand(2, 70.0)];
        let m = map(&b);
        let mut changed = 0;
        for _ in 0..15 {
            if sel.update_dominant(&b, |id| m.get(&id).copied()).is_some() {
                changed += 1;
            }
        }
        assert_eq!(changed, 1);
        assert_eq!(sel.dominant(), Some(SourceId(2)));
    }
}
