//! NACKs from a receiver map back through the rewriter to the publishers'
//! original sequence numbers, across switches, under seeded loss.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::Sim;
use confcast_media::netem::NetemConfig;
use confcast_media::seq::SeqUnwrapper;
use confcast_media::{
    Codec, ParticipantId, PublicationId, Receiver, Role, RouterConfig, RouterOutput,
};

const H: ParticipantId = ParticipantId(1);
const A: ParticipantId = ParticipantId(2);
const V: ParticipantId = ParticipantId(4);

/// What a receiver has not got yet, between its first and newest packet.
fn missing(sim: &Sim, r: Receiver) -> Vec<u16> {
    let mut u = SeqUnwrapper::new();
    let got: BTreeSet<u64> = sim
        .received(r)
        .iter()
        .map(|p| u.unwrap(u64::from(p.header.sequence_number)))
        .collect();
    let (Some(first), Some(last)) = (got.first(), got.last()) else {
        return Vec::new();
    };
    (*first..*last)
        .filter(|s| !got.contains(s))
        .map(|s| (s & 0xffff) as u16)
        .collect()
}

#[test]
fn nacks_map_back_under_seeded_loss() {
    for seed in [11u64, 12, 13] {
        let downlink = NetemConfig {
            loss: 0.08,
            burst_loss: 0.3,
            delay: Duration::from_millis(15),
            jitter: Duration::from_millis(4),
            ..Default::default()
        };
        let uplink = NetemConfig {
            loss: 0.03,
            delay: Duration::from_millis(10),
            ..Default::default()
        };
        // No keyframe requests for holes: this test is about NACK repair.
        let config = RouterConfig {
            repair_window: None,
            ..Default::default()
        };
        let mut sim = Sim::with_config(seed, config, uplink, downlink);
        sim.join(H, Role::Host, Some(Codec::H264));
        sim.join(A, Role::Member, Some(Codec::H264));
        sim.join(V, Role::Member, None);
        let v = Receiver::Participant(V);
        for round in 0..150 {
            sim.step();
            if round % 15 == 14 {
                // Switch between H and A now and then.
                let speaker = if round % 30 == 14 { A } else { H };
                sim.router
                    .set_active_speaker(Some(speaker), sim.now)
                    .expect("speaker");
                sim.drain();
            }
            let lost = missing(&sim, v);
            sim.router.handle_nack(v, &lost).expect("receiver");
            sim.drain();
        }
        // Stop sending; keep repairing until nothing is missing.
        for _ in 0..30 {
            let lost = missing(&sim, v);
            if lost.is_empty() {
                break;
            }
            sim.router.handle_nack(v, &lost).expect("receiver");
            sim.drain();
            let end = sim.now + Duration::from_millis(50);
            sim.deliver_until(end);
        }
        assert!(
            missing(&sim, v).is_empty(),
            "seed {seed}: unrepaired {:?}",
            missing(&sim, v)
        );

        // Every NACK went to the right publisher with the right numbers.
        let truth = &sim.forwarded[&v];
        let ssrc_to_publication: BTreeMap<u32, PublicationId> =
            [(0xa001, PublicationId(100)), (0xa002, PublicationId(200))].into();
        let mut nacked = 0;
        for o in &sim.outputs {
            if let RouterOutput::Nack {
                publication,
                ssrc,
                sequence_numbers,
            } = o
            {
                assert_eq!(ssrc_to_publication[ssrc], *publication);
                for s in sequence_numbers {
                    nacked += 1;
                    // The packet was sent by that publisher (its RTX cache has it).
                    let publisher = sim
                        .publishers
                        .values()
                        .find(|p| p.publication == *publication)
                        .expect("publisher");
                    assert!(publisher.sent.contains_key(s));
                }
            }
        }
        assert!(nacked > 20, "seed {seed}: loss produced NACKs ({nacked})");
        // Ground truth: each received outgoing number carries the packet it was assigned.
        for r in sim.received(v) {
            let (ssrc, seq) = truth[&r.header.sequence_number];
            assert_eq!(r.origin.1, ssrc);
            let publisher = sim
                .publishers
                .values()
                .find(|p| p.video.ssrc() == ssrc)
                .expect("publisher");
            assert_eq!(
                publisher.sent[&seq].payload, r.payload,
                "retransmission is the same packet"
            );
        }
        let switches = sim.received(v).iter().filter(|r| r.switched).count();
        assert!(switches >= 3, "seed {seed}: {switches} switches");
    }
}
