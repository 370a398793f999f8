//! Opus DTX as browsers send it: the encoder with DTX on, and of its 1-2 byte
//! DTX frames only the first in a row sent (so a silent sender sends a
//! comfort-noise refresh and one DTX frame about every 400 ms). The gaps
//! between are silence, not loss: nothing is concealed, the jitter buffer
//! does not grow, and silent sources cost no decodes.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use confcast_mixer::{MixerConfig, SourceId};

#[test]
fn silent_participants_in_dtx_send_about_every_400_ms_and_cost_nothing() {
    let mut senders = vec![SenderSpec::tone(1, A), SenderSpec::tone(2, B), SenderSpec::tone(3, C)];
    for id in 10..30 {
        let mut s = SenderSpec::silent(id);
        s.opus_dtx = true;
        senders.push(s);
    }
    let mut sim = Sim::new(MixerConfig::default(), &senders, 520);
    sim.listen(100, None);
    sim.listen(10, Some(10));
    for _ in 0..500 {
        sim.run(1);
        for id in 10..30 {
            assert!(sim.mixer.source_stats(SourceId(id)).unwrap().buffered <= 2);
        }
    }
    for id in 10..30 {
        let s = sim.mixer.source_stats(SourceId(id)).unwrap();
        // 10 s: the first 200 ms in full (the encoder waits that long before
        // DTX), then two packets per 420 ms.
        eprintln!("silent {id}: {} packets in 10 s", s.packets_received);
        assert!((40..=70).contains(&s.packets_received), "{s:?}");
        assert_eq!((s.decodes, s.late, s.lost_estimate, s.packets_dropped), (0, 0, 0, 0), "{s:?}");
        assert!(s.target_delay_ms <= 15.0, "{s:?}");
    }
    let st = sim.mixer.stats();
    assert_eq!((st.plc_frames, st.fec_frames, st.late), (0, 0, 0), "{st:?}");
    let [a, b, c] = abc_db(sim.heard_between(10, 2.0, 10.0));
    for (level, what) in [(a, "A"), (b, "B"), (c, "C")] {
        assert!((level + 12.0).abs() < 3.0, "{what} at {level:.1} dBFS");
    }
}

#[test]
fn a_speaker_that_falls_silent_in_dtx_is_silence_not_loss() {
    let mut senders = vec![SenderSpec::tone(1, A), SenderSpec::tone(2, B), SenderSpec::tone(3, C)];
    // A talks, is silent (DTX) from 2 s to 5 s, talks again.
    senders[0].opus_dtx = true;
    senders[0].talking = |n| !(100..250).contains(&n);
    let mut sim = Sim::new(MixerConfig::default(), &senders, 420);
    sim.listen(100, None);
    sim.run(100);
    let before = sim.mixer.source_stats(SourceId(1)).unwrap();
    sim.run(300);
    let a = sim.mixer.source_stats(SourceId(1)).unwrap();
    eprintln!("A: {a:?}");
    // Still selected through the 500 ms talk hangover, most of it in DTX:
    // those gaps are played as silence, not concealed.
    assert!(a.dtx_frames >= 10, "{a:?}");
    assert_eq!((a.plc_frames, a.fec_frames, a.late, a.lost_estimate), (0, 0, 0, 0), "{a:?}");
    assert_eq!(a.target_delay_ms, before.target_delay_ms, "the jitter target did not grow");
    assert!(a.buffered <= 2);
    let st = sim.mixer.stats();
    assert_eq!((st.plc_frames, st.fec_frames), (0, 0), "{st:?}");
    let silent = abc_db(sim.heard_between(100, 3.0, 4.8))[0];
    assert!(silent < -42.0, "A during its silence: {silent:.1} dBFS");
    let back = abc_db(sim.heard_between(100, 6.0, 8.0))[0];
    assert!((back + 12.0).abs() < 3.0, "A after DTX: {back:.1} dBFS");
}
