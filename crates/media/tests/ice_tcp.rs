//! ICE-TCP at the Room and the Fanout: with a TCP address set, answers carry
//! a passive TCP host candidate beside the UDP one, and a client that can
//! only use TCP connects through `handle_packet(Transport::Tcp, ..)`, every
//! packet back to it marked for TCP.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use confcast_media::fanout::{Fanout, ViewerId};
use confcast_media::room::{Room, RoomEvent, Transport};
use confcast_media::{ParticipantId, Role, RouterConfig};
use confcast_mixer::MixerConfig;
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind};
use str0m::net::{Protocol, Receive, TcpType};
use str0m::{Candidate, Input, Output, Rtc};

const UDP: &str = "192.0.2.10:40000";
const TCP: &str = "192.0.2.10:40001";

fn offer(rtc: &mut Rtc, direction: Direction) -> (String, str0m::change::SdpPendingOffer) {
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Audio, direction, None, None, None);
    change.add_media(MediaKind::Video, direction, None, None, None);
    let (offer, pending) = change.apply().unwrap();
    (offer.to_sdp_string(), pending)
}

fn candidates(sdp: &str) -> Vec<&str> {
    sdp.lines().filter(|l| l.starts_with("a=candidate:")).collect()
}

#[test]
fn a_tcp_only_client_connects_over_ice_tcp() {
    let t0 = Instant::now();
    let (udp, tcp): (SocketAddr, SocketAddr) = (UDP.parse().unwrap(), TCP.parse().unwrap());
    let mut room = Room::new(udp, RouterConfig::default(), MixerConfig::default(), 7, t0).unwrap();
    room.set_tcp_candidate(Some(tcp));

    let client_addr: SocketAddr = "198.51.100.7:9".parse().unwrap();
    let mut client = Rtc::builder().build(t0);
    client.add_local_candidate(Candidate::builder().tcp().host(client_addr).tcptype(TcpType::Active).build().unwrap());
    let (sdp, pending) = offer(&mut client, Direction::SendRecv);
    let answer = room.join(ParticipantId(1), Role::Host, &sdp, t0).unwrap();
    let lines = candidates(&answer);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines.iter().any(|l| l.contains(" udp ") && l.contains(" 40000 typ host")), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains(" tcp ") && l.contains(" 40001 typ host tcptype passive")), "{lines:?}");
    client.sdp_api().accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap()).unwrap();

    // Run the two over an in-memory TCP "connection" until the Room says connected.
    let mut now = t0;
    let mut connected = false;
    let mut to_client = 0;
    while !connected && now < t0 + Duration::from_secs(10) {
        loop {
            match client.poll_output().unwrap() {
                Output::Timeout(_) => break,
                Output::Transmit(t) => {
                    assert_eq!(t.proto, Protocol::Tcp);
                    assert_eq!(t.destination, tcp);
                    assert!(room.handle_packet(Transport::Tcp, t.source, &t.contents, now).unwrap());
                }
                Output::Event(_) => {}
            }
        }
        while let Some(d) = room.poll_transmit() {
            assert_eq!((d.transport, d.source, d.destination), (Transport::Tcp, tcp, client_addr));
            to_client += 1;
            let input = Input::Receive(now, Receive { proto: Protocol::Tcp, source: tcp, destination: client_addr, contents: d.contents.as_slice().try_into().unwrap() });
            client.handle_input(input).unwrap();
        }
        while let Some(event) = room.poll_event() {
            connected |= event == RoomEvent::Connected(ParticipantId(1));
        }
        now += Duration::from_millis(10);
        client.handle_input(Input::Timeout(now)).unwrap();
        room.handle_timeout(now);
    }
    assert!(connected, "ICE and DTLS over TCP did not complete");
    assert!(to_client > 0);
}

#[test]
fn answers_name_the_tcp_candidate_only_when_set() {
    let t0 = Instant::now();
    let udp: SocketAddr = UDP.parse().unwrap();
    let mut fanout = Fanout::new(udp, 4, 1);
    let mut viewer = Rtc::builder().build(t0);
    viewer.add_local_candidate(Candidate::host("198.51.100.8:5000".parse().unwrap(), "udp").unwrap());
    let (sdp, _) = offer(&mut viewer, Direction::RecvOnly);
    let answer = fanout.add_viewer(ViewerId(1), &sdp, t0).unwrap();
    assert_eq!(candidates(&answer).len(), 1, "{answer}");
    fanout.set_tcp_candidate(Some(TCP.parse().unwrap()));
    let answer = fanout.add_viewer(ViewerId(2), &sdp, t0).unwrap();
    let lines = candidates(&answer);
    assert!(lines.iter().any(|l| l.contains(" tcp ") && l.contains("tcptype passive")), "{lines:?}");
    // A Fanout without the TCP address takes no TCP packets.
    let mut plain = Fanout::new(udp, 4, 1);
    assert!(!plain.handle_packet(Transport::Tcp, "198.51.100.8:5000".parse().unwrap(), &[0, 1, 0, 0], t0));
}
