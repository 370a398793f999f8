//! Hostile input never panics: seeded random payloads and headers through
//! every parser and through the Router.

use std::time::{Duration, Instant};

use confcast_media::netem::SeededRng;
use confcast_media::synth::SyntheticVideo;
use confcast_media::{
    Codec, FrameInspector, ParticipantId, PublicationId, Receiver, Role, Router, RouterConfig,
    RtpHeader, StreamInit, h264, vp8,
};

fn stream(n: u32) -> StreamInit {
    StreamInit {
        ssrc: n,
        initial_sequence_number: 0,
        initial_timestamp: 0,
    }
}

/// Random bytes, mutated valid packets, and known nasty shapes.
fn payloads(rng: &mut SeededRng, valid: &[Vec<u8>]) -> Vec<u8> {
    match rng.below(6) {
        0 => {
            let len = rng.below(40) as usize;
            rng.bytes(len)
        }
        1 | 2 => {
            // A valid packet, truncated and with a few bytes flipped.
            let mut p = valid[rng.below(valid.len() as u64) as usize].clone();
            let cut = rng.below(p.len() as u64 + 1) as usize;
            p.truncate(cut);
            for _ in 0..rng.below(3) {
                if !p.is_empty() {
                    let i = rng.below(p.len() as u64) as usize;
                    p[i] ^= (rng.next_u64() & 0xff) as u8;
                }
            }
            p
        }
        3 => {
            // STAP-A / STAP-B with random (often lying) sizes.
            let mut p = vec![if rng.chance(0.5) { 0x78 } else { 0x79 }];
            let extra = rng.below(12) as usize;
            p.extend(rng.bytes(extra));
            p
        }
        4 => {
            // FU-A / FU-B, maybe without FU header.
            let mut p = vec![0x7c | rng.below(2) as u8];
            let extra = rng.below(3) as usize;
            p.extend(rng.bytes(extra));
            p
        }
        _ => {
            // VP8 descriptor with every optional field announced.
            let mut p = vec![0x90 | (rng.next_u64() & 0x0f) as u8, 0xf0];
            let extra = rng.below(6) as usize;
            p.extend(rng.bytes(extra));
            p
        }
    }
}

#[test]
fn known_nasty_payloads() {
    for p in [
        &[][..],
        &[0x7c],                   // FU-A without FU header
        &[0x78],                   // empty STAP-A
        &[0x78, 0x00],             // STAP-A with half a size field
        &[0x78, 0x00, 0x00],       // zero-sized NAL
        &[0x78, 0xff, 0xff, 0x65], // size beyond the end
        &[0x79, 0x00],             // STAP-B without DON
        &[0x7a, 0x00, 0x00],       // MTAP16
        &[0x1f],
        &[0x67],                                              // SPS with nothing in it
        &[0x67, 0x64, 0, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff], // absurd Exp-Golomb
        &[0x67, 0x42, 0, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0, 0],    // 32+ leading zeros
    ] {
        let _ = h264::inspect_payload(p);
        let _ = h264::parse_sps(p);
        let _ = vp8::inspect_payload(p);
        let mut copy = p.to_vec();
        let _ = vp8::rewrite_descriptor(&mut copy, Some(1), Some(1));
        let _ = RtpHeader::parse(p);
    }
    assert!(h264::inspect_payload(&[0x7c]).is_err());
    assert!(h264::inspect_payload(&[0x78]).is_err());
}

#[test]
fn seeded_fuzz_never_panics() {
    let mut valid = Vec::new();
    for codec in [Codec::H264, Codec::Vp8] {
        let mut v = SyntheticVideo::new(codec, 1, 0, 0);
        for f in 0..4 {
            if f == 2 {
                v.request_keyframe();
            }
            valid.extend(v.next_frame().into_iter().map(|p| p.payload));
        }
    }
    valid.push(confcast_media::synth::sps_nal(100, 1918, 1078));

    let t0 = Instant::now();
    for seed in 0..8u64 {
        let mut rng = SeededRng::new(seed);
        let mut router = Router::new(RouterConfig::default(), stream(1));
        for p in 1..=3u64 {
            let role = if p == 1 { Role::Host } else { Role::Member };
            router
                .join(ParticipantId(p), role, stream(p as u32 + 10), t0)
                .expect("join");
        }
        router
            .publish_video(ParticipantId(1), PublicationId(1), Codec::H264, t0)
            .expect("publish");
        router
            .publish_video(ParticipantId(2), PublicationId(2), Codec::Vp8, t0)
            .expect("publish");
        let mut inspectors = [
            FrameInspector::new(Codec::H264),
            FrameInspector::new(Codec::Vp8),
        ];
        for i in 0..5_000u64 {
            let now = t0 + Duration::from_millis(i);
            let payload = payloads(&mut rng, &valid);
            let _ = h264::inspect_payload(&payload);
            let _ = vp8::inspect_payload(&payload);
            let mut sps = vec![0x67];
            sps.extend_from_slice(&payload);
            let _ = h264::parse_sps(&sps);
            let _ = RtpHeader::parse(&payload);
            let mut copy = payload.clone();
            let _ = vp8::rewrite_descriptor(&mut copy, Some(rng.below(1 << 16) as u16), Some(7));
            let header = RtpHeader {
                payload_type: 96,
                marker: rng.chance(0.3),
                sequence_number: rng.next_u64() as u16,
                timestamp: rng.next_u64() as u32,
                ssrc: rng.below(3) as u32,
            };
            for k in &mut inspectors {
                let _ = k.inspect(header.sequence_number, header.timestamp, &payload);
            }
            let publication = PublicationId(1 + rng.below(3));
            if let Ok(forwards) = router.handle_rtp(publication, &header, &payload, now) {
                for f in forwards {
                    let _ = f.payload(&payload);
                }
            }
            let receiver = Receiver::Participant(ParticipantId(1 + rng.below(4)));
            let nack: Vec<u16> = (0..rng.below(5)).map(|_| rng.next_u64() as u16).collect();
            let _ = router.handle_nack(receiver, &nack);
            if rng.chance(0.05) {
                let _ = router.handle_keyframe_request(receiver, now);
            }
            if rng.chance(0.02) {
                let _ = router.set_active_speaker(Some(ParticipantId(1 + rng.below(4))), now);
            }
            router.handle_timeout(now);
            while router.poll_output().is_some() {}
        }
    }
}
