//! Keyframe-gated switching and RTP continuity through the Router.

mod common;

use std::time::Duration;

use common::{FRAME, Sim, check_clean_stream};
use confcast_media::{
    Actor, Choice, Codec, ParticipantId, PublicationId, Receiver, Role, RouterOutput,
};

const H: ParticipantId = ParticipantId(1);
const A: ParticipantId = ParticipantId(2);
const B: ParticipantId = ParticipantId(3);
const V: ParticipantId = ParticipantId(4);

fn ssrc_of(p: ParticipantId) -> u32 {
    0xa000 + p.0 as u32
}

#[test]
fn switch_happens_exactly_at_the_keyframe() {
    let mut sim = Sim::new(1);
    sim.join(H, Role::Host, Some(Codec::H264));
    sim.join(A, Role::Member, Some(Codec::H264));
    sim.join(V, Role::Member, None);
    sim.steps(15);
    // V watches the host (auto); now asks for A, whose encoder is slow to answer.
    let slow_until = sim.now + Duration::from_millis(400);
    sim.publishers.get_mut(&A).expect("A").keyframes_from = Some(slow_until);
    let asked_at = sim.now;
    let before = sim.received(Receiver::Participant(V)).len();
    sim.router
        .watch(V, Choice::Participant(A), sim.now)
        .expect("watch");
    sim.drain();
    assert!(
        sim.keyframe_requests
            .contains(&(asked_at, PublicationId(200))),
        "keyframe asked from A at once: {:?}",
        sim.keyframe_requests
    );
    sim.steps(20);
    let got = &sim.received(Receiver::Participant(V))[before..];
    let first_a = got
        .iter()
        .position(|r| r.origin.1 == ssrc_of(A))
        .expect("switched to A");
    // Until the keyframe, V kept seeing the host, never a packet of A.
    assert!(got[..first_a].iter().all(|r| r.origin.1 == ssrc_of(H)));
    assert!(got[first_a].at >= slow_until, "not before A's keyframe");
    assert!(got[first_a].at < slow_until + FRAME * 2);
    assert!(got[first_a..].iter().all(|r| r.origin.1 == ssrc_of(A)));
    let origins = check_clean_stream(sim.received(Receiver::Participant(V)), Codec::H264);
    assert_eq!(origins, vec![ssrc_of(H), ssrc_of(A)]);
    // The throttle repeated nothing within 300 ms.
    let to_a: Vec<_> = sim
        .keyframe_requests
        .iter()
        .filter(|(_, p)| *p == PublicationId(200))
        .collect();
    assert!(
        to_a.windows(2)
            .all(|w| w[1].0 - w[0].0 >= Duration::from_millis(300))
    );
}

#[test]
fn keyframe_request_is_repeated_when_none_arrives() {
    let mut sim = Sim::new(2);
    sim.join(H, Role::Host, Some(Codec::H264));
    sim.join(A, Role::Member, Some(Codec::H264));
    sim.join(V, Role::Member, None);
    sim.steps(15);
    sim.publishers.get_mut(&A).expect("A").keyframes_from =
        Some(sim.now + Duration::from_millis(2500));
    let t = sim.now;
    sim.router
        .watch(V, Choice::Participant(A), t)
        .expect("watch");
    sim.drain();
    sim.steps(90);
    let to_a: Vec<Duration> = sim
        .keyframe_requests
        .iter()
        .filter(|(at, p)| *p == PublicationId(200) && *at >= t)
        .map(|(at, _)| *at - t)
        .collect();
    // Asked at once, then about every second until the keyframe came.
    assert!(to_a.len() >= 3, "{to_a:?}");
    assert_eq!(to_a[0], Duration::ZERO);
    assert!(
        to_a[1] >= Duration::from_secs(1) && to_a[1] < Duration::from_millis(1100),
        "{to_a:?}"
    );
    assert_eq!(
        sim.router.forwarding(Receiver::Participant(V)),
        Some(PublicationId(200))
    );
}

#[test]
fn continuity_across_many_switches_and_wraparounds() {
    for codec in [Codec::H264, Codec::Vp8] {
        let mut sim = Sim::new(3);
        sim.join(H, Role::Host, Some(codec));
        sim.join(A, Role::Member, Some(codec));
        sim.join(B, Role::Member, Some(codec));
        sim.join(V, Role::Member, None);
        let speakers = [A, B, H, A, B, A, H, B];
        for (i, s) in speakers.iter().enumerate() {
            sim.steps(7 + i);
            sim.router
                .set_active_speaker(Some(*s), sim.now)
                .expect("speaker");
            sim.drain();
        }
        sim.steps(10);
        for receiver in [
            Receiver::Participant(V),
            Receiver::Participant(H),
            Receiver::Program,
        ] {
            let stream = sim.received(receiver);
            let origins = check_clean_stream(stream, codec);
            assert!(origins.len() >= 6, "{codec:?} {receiver:?}: {origins:?}");
            // Both counters wrapped during the run.
            let seqs: Vec<u16> = stream.iter().map(|r| r.header.sequence_number).collect();
            assert!(seqs.contains(&65535) && seqs.contains(&0));
            assert!(
                stream
                    .windows(2)
                    .any(|w| w[1].header.timestamp < w[0].header.timestamp)
            );
        }
        // The speaker never sees themself; V follows the speakers.
        let v = check_clean_stream(sim.received(Receiver::Participant(V)), codec);
        assert_eq!(
            v,
            vec![
                0xa001, 0xa002, 0xa003, 0xa001, 0xa002, 0xa003, 0xa002, 0xa001, 0xa003
            ]
        );
        if codec == Codec::Vp8 {
            // Picture IDs stay continuous across switches too.
            let ids: Vec<u16> = sim
                .received(Receiver::Participant(V))
                .iter()
                .filter_map(|r| confcast_media::vp8::inspect_payload(&r.payload).ok())
                .filter(|i| i.frame_start)
                .filter_map(|i| i.picture_id)
                .collect();
            assert!(
                ids.windows(2).all(|w| w[1] == (w[0] + 1) & 0x7fff),
                "{ids:?}"
            );
        }
    }
}

#[test]
fn lock_moves_everyone_and_program_gets_video_params() {
    let mut sim = Sim::new(4);
    sim.join(H, Role::Host, Some(Codec::H264));
    sim.join(A, Role::Member, Some(Codec::H264));
    sim.join(B, Role::Member, Some(Codec::H264));
    sim.publishers.get_mut(&B).expect("B").video.width = 1280;
    sim.publishers.get_mut(&B).expect("B").video.height = 720;
    sim.steps(5);
    sim.router
        .lock(Actor::Participant(H), B, sim.now)
        .expect("lock");
    sim.drain();
    sim.steps(5);
    assert_eq!(
        sim.router.forwarding(Receiver::Participant(A)),
        Some(PublicationId(300))
    );
    assert_eq!(
        sim.router.forwarding(Receiver::Participant(H)),
        Some(PublicationId(300))
    );
    assert_eq!(
        sim.router.forwarding(Receiver::Program),
        Some(PublicationId(300))
    );
    let params: Vec<(u32, u32)> = sim
        .outputs
        .iter()
        .filter_map(|o| match o {
            RouterOutput::ProgramVideoParams { params } => Some((params.width, params.height)),
            _ => None,
        })
        .collect();
    assert_eq!(params, vec![(640, 480), (1280, 720)]);
    for r in [
        Receiver::Participant(A),
        Receiver::Participant(H),
        Receiver::Program,
    ] {
        check_clean_stream(sim.received(r), Codec::H264);
    }
    // A watch while locked is refused, nothing changes.
    assert!(
        sim.router
            .watch(A, Choice::Participant(H), sim.now)
            .is_err()
    );
    sim.steps(3);
    assert_eq!(
        sim.router.forwarding(Receiver::Participant(A)),
        Some(PublicationId(300))
    );
}

#[test]
fn late_packets_of_the_old_source_are_discarded() {
    use confcast_media::netem::NetemConfig;
    // Reordering uplinks: some packets of the old source arrive after the switch.
    let uplink = NetemConfig {
        delay: Duration::from_millis(5),
        reorder: 0.2,
        reorder_delay: Duration::from_millis(45),
        ..Default::default()
    };
    let mut sim = Sim::with_config(5, Default::default(), uplink, NetemConfig::default());
    sim.join(H, Role::Host, Some(Codec::H264));
    sim.join(A, Role::Member, Some(Codec::H264));
    sim.join(V, Role::Member, None);
    for i in 0..12 {
        sim.steps(12);
        let target = if i % 2 == 0 { A } else { H };
        sim.router
            .watch(
                V,
                Choice::Participant(target),
                sim.now + Duration::from_secs(i),
            )
            .expect("watch");
        sim.drain();
    }
    sim.steps(10);
    let stream = sim.received(Receiver::Participant(V));
    // After each switch, a packet of another source may only arrive if it
    // fills a hole left before the switch (a late copy keeps its number).
    let mut unwrap = confcast_media::seq::SeqUnwrapper::new();
    let mut current: Option<(u32, u64)> = None;
    let (mut switches, mut late_fills) = (0, 0);
    for r in stream {
        let ext = unwrap.unwrap(u64::from(r.header.sequence_number));
        if r.switched {
            switches += 1;
            current = Some((r.origin.1, ext));
        } else if let Some((origin, first)) = current
            && r.origin.1 != origin
        {
            assert!(ext < first, "old source packet after the switch point");
            late_fills += 1;
        }
    }
    assert_eq!(switches, 13);
    assert!(late_fills < 20, "{late_fills}");
    let mut seen = std::collections::BTreeSet::new();
    for r in stream {
        assert!(
            seen.insert(r.header.sequence_number),
            "sequence number reused"
        );
    }
}
