//! The tick clock locks to the dominant speaker's packets: the frame a
//! packet holds is mixed one jitter target after the packet arrived, instead
//! of wherever the mixer's fixed 20 ms clock happened to fall. Simulated
//! time, real Opus, as in mixing.rs.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use confcast_mixer::{LatencyHistogram, LATENCY_BUCKETS, MixerConfig, SourceId};

/// Three tones whose packets all arrive `delay` after the nominal tick.
fn talkers_arriving(delay: Duration) -> Vec<SenderSpec> {
    let mut s = vec![SenderSpec::tone(1, A), SenderSpec::tone(2, B), SenderSpec::tone(3, C)];
    for x in &mut s {
        x.delay = delay;
    }
    s
}

/// Three talkers in phase, 6 ms after the nominal tick with 1 ms of jitter,
/// silent (and saying so) for 60 ms every second, and late now and then as
/// `late` says (see `SenderSpec::late_every`).
fn talkers_with_quiet_moments(late: (u64, std::ops::Range<u64>, Duration)) -> Vec<SenderSpec> {
    let mut senders = talkers_arriving(Duration::from_millis(6));
    for s in &mut senders {
        s.talking = |n| n % 50 < 47;
        s.jitter = Duration::from_millis(1);
        s.late_every = Some(late.clone());
    }
    senders
}

fn lock(on: bool) -> MixerConfig {
    MixerConfig { lock_tick_phase: on, ..MixerConfig::default() }
}

/// The latency quantile `q` of the frames counted after `before`.
fn since(now: &LatencyHistogram, before: &LatencyHistogram, q: f64) -> Duration {
    let counts: Vec<u64> = now.buckets().iter().zip(before.buckets()).map(|(a, b)| a - b).collect();
    let total: u64 = counts.iter().sum();
    assert!(total > 0, "no frames mixed");
    let rank = ((q * total as f64).ceil() as u64).max(1);
    let mut seen = 0;
    for (ms, n) in counts.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return Duration::from_millis(ms as u64 + 1);
        }
    }
    Duration::from_millis(LATENCY_BUCKETS as u64)
}

/// Runs 1 s to settle, then `seconds` more; returns the p95 of the latter
/// and the simulation.
fn steady_p95(cfg: MixerConfig, senders: &[SenderSpec], seconds: u64) -> (Duration, Sim) {
    let ticks = 50 * (1 + seconds);
    let mut sim = Sim::new(cfg, senders, ticks + 10);
    sim.listen(100, None);
    sim.run(50);
    let before = sim.mixer.stats().latency.clone();
    sim.run(ticks - 50);
    (since(&sim.mixer.stats().latency, &before, 0.95), sim)
}

#[test]
fn the_speakers_packets_are_mixed_one_jitter_target_after_they_arrive_whatever_their_phase() {
    let mut worst_unlocked = Duration::ZERO;
    for delay_ms in [1, 4, 7, 10, 13, 16, 19] {
        let senders = talkers_arriving(Duration::from_millis(delay_ms));
        let (locked, sim) = steady_p95(lock(true), &senders, 4);
        let (unlocked, _) = steady_p95(lock(false), &senders, 4);
        eprintln!("arriving {delay_ms} ms after the nominal tick: p95 locked {locked:?}, fixed clock {unlocked:?}");
        worst_unlocked = worst_unlocked.max(unlocked);
        // The jitter target is at its 15 ms minimum (no jitter); the lock
        // plays a quarter frame (5 ms) of its margin; 1 ms buckets.
        assert!(locked <= Duration::from_millis(11), "delay {delay_ms} ms: {locked:?}");
        let st = sim.mixer.stats();
        assert_eq!((st.late, st.plc_frames, st.frames_skipped, st.frames_held), (0, 0, 0, 0), "{st:?}");
        // At most 15 ms to move, 1 ms a tick, then it holds.
        assert!(st.phase_corrections <= 16, "{st:?}");
        let [a, b, c] = abc_db(sim.heard_between(100, 1.0, 5.0));
        for (level, what) in [(a, "A"), (b, "B"), (c, "C")] {
            assert!((level + 12.0).abs() < 3.0, "{what} at {level:.1} dBFS");
        }
    }
    // Without the lock some phases wait most of a frame longer.
    assert!(worst_unlocked >= Duration::from_millis(25), "{worst_unlocked:?}");
}

#[test]
fn ticks_move_by_at_most_a_millisecond_and_listeners_streams_stay_continuous() {
    let senders = talkers_arriving(Duration::from_millis(17));
    let mut sim = Sim::new(lock(true), &senders, 160);
    sim.listen(1, Some(1));
    sim.listen(100, None);
    let mut last = sim.mixer.next_tick_at();
    for _ in 0..150 {
        // `Sim::consume` asserts each listener's seq/timestamp continuity.
        sim.run(1);
        let next = sim.mixer.next_tick_at();
        let step = next - last;
        assert!(
            step >= Duration::from_millis(19) && step <= Duration::from_millis(21),
            "tick interval {step:?}"
        );
        last = next;
    }
}

#[test]
fn the_lock_follows_a_drifting_speaker() {
    // A talks alone, its clock 0.5 % fast; B and C send silence.
    let mut senders = talkers_arriving(Duration::from_millis(9));
    senders[0].rate = 1.005;
    senders[1].freq = None;
    senders[2].freq = None;
    let (locked, sim) = steady_p95(lock(true), &senders, 14);
    eprintln!("drifting speaker: p95 {locked:?}");
    let a = sim.mixer.source_stats(SourceId(1)).unwrap();
    // The mixer's clock follows A: no frame of A is skipped or concealed.
    assert_eq!((a.frames_skipped, a.frames_held, a.late, a.plc_frames), (0, 0, 0, 0), "{a:?}");
    assert!(locked <= Duration::from_millis(11), "{locked:?}");
    assert!((abc_db(sim.heard_between(100, 10.0, 14.0))[0] + 12.0).abs() < 3.0);
}

#[test]
fn other_speakers_bound_the_lock_and_are_never_worse_off() {
    // A leads and drifts 0.5 % fast; B and C talk at the nominal rate, so
    // following A all the way would push them into a hold: the lock stops
    // short of that, and A is skipped as it would be with a fixed clock.
    let mut senders = talkers_arriving(Duration::from_millis(9));
    senders[0].amplitude = 0.35;
    senders[0].rate = 1.005;
    let (locked, sim) = steady_p95(lock(true), &senders, 14);
    let (unlocked, fixed) = steady_p95(lock(false), &senders, 14);
    eprintln!("drifting dominant speaker among two others: p95 {locked:?}, fixed clock {unlocked:?}");
    assert!(locked <= unlocked, "{locked:?} > {unlocked:?}");
    for id in [2, 3] {
        let s = sim.mixer.source_stats(SourceId(id)).unwrap();
        let f = fixed.mixer.source_stats(SourceId(id)).unwrap();
        assert_eq!((s.late, s.plc_frames, s.frames_held, s.frames_skipped), (0, 0, 0, 0), "{s:?}");
        assert_eq!((f.late, f.plc_frames), (0, 0), "{f:?}");
    }
    let [a, b, c] = abc_db(sim.heard_between(100, 10.0, 14.0));
    for (level, what) in [(a - 20.0 * (0.35f64 / 0.25).log10(), "A"), (b, "B"), (c, "C")] {
        assert!((level + 12.0).abs() < 3.0, "{what} at {level:.1} dBFS");
    }
}

#[test]
fn when_the_dominant_speaker_changes_the_lock_moves_to_the_new_one() {
    let mut senders = talkers_arriving(Duration::from_millis(3));
    // A (dominant, arriving 3 ms after the nominal tick) stops after 3 s;
    // B arrives 14 ms after it and then leads.
    senders[0].amplitude = 0.35;
    senders[0].talking = |n| n < 150;
    senders[1].delay = Duration::from_millis(14);
    senders.remove(2);
    let mut sim = Sim::new(lock(true), &senders, 420);
    sim.listen(100, None);
    sim.run(100);
    assert_eq!(sim.mixer.dominant_speaker(), Some(SourceId(1)));
    sim.run(150);
    assert_eq!(sim.mixer.dominant_speaker(), Some(SourceId(2)));
    let before = sim.mixer.stats().latency.clone();
    sim.run(150);
    let p95 = since(&sim.mixer.stats().latency, &before, 0.95);
    eprintln!("after the change: p95 {p95:?}");
    assert!(p95 <= Duration::from_millis(11), "{p95:?}");
    let b = sim.mixer.source_stats(SourceId(2)).unwrap();
    assert_eq!((b.late, b.plc_frames), (0, 0), "{b:?}");
    assert!((abc_db(sim.heard_between(100, 6.0, 8.0))[1] + 12.0).abs() < 3.0);
}

#[test]
fn quiet_moments_and_jitter_do_not_nudge_speakers_the_lock_holds() {
    // Three talkers in phase with 60 ms of silence (level says so) every
    // second, a millisecond of jitter and now and then a packet 8 ms late,
    // which raises the jitter target at once: the lock follows the target's
    // changes 1 ms at a time; no frame of theirs is held or skipped at a
    // quiet moment (which would move their audio by a whole frame).
    // Just before a quiet moment, every 6 s (the jitter peak decays over
    // 5 s, so each one raises the target again).
    let senders = talkers_with_quiet_moments((300, 45..46, Duration::from_millis(8)));
    let (locked, sim) = steady_p95(lock(true), &senders, 19);
    let (unlocked, _) = steady_p95(lock(false), &senders, 19);
    eprintln!("jitter and quiet moments: p95 locked {locked:?}, fixed clock {unlocked:?}");
    for id in 1..=3 {
        let s = sim.mixer.source_stats(SourceId(id)).unwrap();
        assert_eq!((s.frames_held, s.frames_skipped, s.late), (0, 0, 0), "{s:?}");
    }
    // Target: up to 9 ms of jitter + 15 ms, the lock plays 5 ms of it.
    assert!(locked <= Duration::from_millis(20), "{locked:?}");
}

#[test]
fn a_late_packet_of_a_speaker_in_lock_is_concealed_and_playout_stays() {
    // Now and then two packets in a row 14 ms late, more than the lock's
    // margin: the first raises the jitter target at once, the second is
    // missing at its tick. It is concealed (one frame, as a hold would also
    // cost) and dropped when it comes, but the speakers' playout does not
    // move a frame later.
    let senders = talkers_with_quiet_moments((300, 120..122, Duration::from_millis(14)));
    let (locked, sim) = steady_p95(lock(true), &senders, 19);
    eprintln!("late packets: p95 {locked:?}");
    for id in 1..=3 {
        let s = sim.mixer.source_stats(SourceId(id)).unwrap();
        assert_eq!((s.frames_held, s.frames_skipped), (0, 0), "{s:?}");
        assert!(s.late <= 4, "{s:?}");
    }
    assert!(locked <= Duration::from_millis(24), "{locked:?}");
}
