//! A live server on loopback (HTTP + WebSocket + the media port) and a
//! browser-like WebRTC client, for tests that go over real sockets.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use confcast_server::conference::{self, MediaConfig};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::{TcpListener, UdpSocket};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;

use super::{test_app, TestApp};

pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The app with a media loop, served on a loopback port.
pub async fn live_app() -> (TestApp, SocketAddr) {
    let mut app = test_app().await;
    let media = MediaConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        public_ip: None,
        ice_timeout: Duration::from_secs(3),
        ice_tcp: None,
    };
    let conference = conference::start(media).await.unwrap();
    app.state = app.state.clone().with_conference(conference);
    app.router = confcast_server::app(app.state.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = app.router.clone().into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await });
    (app, addr)
}

pub async fn connect(addr: SocketAddr, room: &str, token: Option<&str>) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let mut request = format!("ws://{addr}/api/v1/rooms/{room}/ws").into_client_request().unwrap();
    if let Some(token) = token {
        request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    tokio_tungstenite::connect_async(request).await.map(|(socket, _)| socket)
}

pub async fn send(socket: &mut Socket, message: Value) {
    socket.send(Message::Text(message.to_string().into())).await.unwrap();
}

/// The next message of `kind`, skipping others.
pub async fn expect(socket: &mut Socket, kind: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next()).await.unwrap_or_else(|_| panic!("no {kind} in time"));
        match frame {
            Some(Ok(Message::Text(text))) => {
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["type"] == kind {
                    return value;
                }
            }
            Some(Ok(Message::Close(_))) | None => panic!("socket closed while waiting for {kind}"),
            _ => {}
        }
    }
}

/// A browser-like WebRTC client: audio + video sendrecv, over a real UDP socket.
pub struct Peer {
    pub rtc: Rtc,
    pub udp: UdpSocket,
    pub local: SocketAddr,
    pub video: str0m::media::Mid,
}

impl Peer {
    pub async fn offer() -> (Peer, String, str0m::change::SdpPendingOffer) {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let local = udp.local_addr().unwrap();
        let mut rtc = Rtc::builder().build(Instant::now());
        rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
        let mut change = rtc.sdp_api();
        change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let video = change.add_media(MediaKind::Video, Direction::SendRecv, None, None, None);
        let (offer, pending) = change.apply().unwrap();
        (Peer { rtc, udp, local, video }, offer.to_sdp_string(), pending)
    }

    /// Drives the peer until it reports `Connected` (or the time runs out).
    pub async fn connect(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut buffer = vec![0u8; 2048];
        while Instant::now() < deadline {
            let timeout = loop {
                match self.rtc.poll_output().unwrap() {
                    Output::Timeout(t) => break t,
                    Output::Transmit(t) => {
                        self.udp.send_to(&t.contents, t.destination).await.unwrap();
                    }
                    Output::Event(Event::Connected) => return true,
                    Output::Event(_) => {}
                }
            };
            let wait = timeout.saturating_duration_since(Instant::now()).min(Duration::from_millis(50));
            match tokio::time::timeout(wait, self.udp.recv_from(&mut buffer)).await {
                Ok(Ok((n, from))) => {
                    let input = Input::Receive(
                        Instant::now(),
                        Receive { proto: Protocol::Udp, source: from, destination: self.local, contents: buffer[..n].try_into().unwrap() },
                    );
                    self.rtc.handle_input(input).unwrap();
                }
                _ => self.rtc.handle_input(Input::Timeout(Instant::now())).unwrap(),
            }
        }
        false
    }
}

/// Joins over `socket` with a fresh client peer and completes ICE + DTLS.
pub async fn join(socket: &mut Socket) -> (Peer, Value) {
    let (mut peer, offer, pending) = Peer::offer().await;
    send(socket, json!({"type": "join", "version": 1, "sdp": offer})).await;
    let joined = expect(socket, "joined").await;
    let answer = SdpAnswer::from_sdp_string(joined["sdp"].as_str().unwrap()).unwrap();
    peer.rtc.sdp_api().accept_answer(pending, answer).unwrap();
    assert!(peer.connect(Duration::from_secs(10)).await, "ICE and DTLS complete over the media port");
    (peer, joined)
}


impl Peer {
    /// Publishes `clip` (H.264 access units, 30 fps, looping) as the camera
    /// for `duration`, while serving the network.
    pub async fn camera(&mut self, clip: &[Vec<u8>], duration: Duration) {
        let start = Instant::now();
        let end = start + duration;
        let mut frame = 0u64;
        let mut buffer = vec![0u8; 2048];
        while Instant::now() < end {
            let due = start + Duration::from_millis(frame * 1000 / 30);
            if Instant::now() >= due && self.rtc.is_connected() {
                let pt = self.h264_pt();
                let au = clip[(frame as usize) % clip.len()].clone();
                let media_time = str0m::media::MediaTime::from_90khz(frame * 3000);
                if let Some(writer) = self.rtc.writer(self.video) {
                    writer.write(pt, Instant::now(), media_time, au).unwrap();
                }
                frame += 1;
            }
            let timeout = loop {
                match self.rtc.poll_output().unwrap() {
                    Output::Timeout(t) => break t,
                    Output::Transmit(t) => {
                        self.udp.send_to(&t.contents, t.destination).await.unwrap();
                    }
                    Output::Event(_) => {}
                }
            };
            let wait = timeout.min(due).saturating_duration_since(Instant::now()).min(Duration::from_millis(10));
            match tokio::time::timeout(wait, self.udp.recv_from(&mut buffer)).await {
                Ok(Ok((n, from))) => {
                    let input = Input::Receive(
                        Instant::now(),
                        Receive { proto: Protocol::Udp, source: from, destination: self.local, contents: buffer[..n].try_into().unwrap() },
                    );
                    self.rtc.handle_input(input).unwrap();
                }
                _ => self.rtc.handle_input(Input::Timeout(Instant::now())).unwrap(),
            }
        }
    }

    fn h264_pt(&self) -> str0m::media::Pt {
        let remote = self.rtc.media(self.video).unwrap().remote_pts().to_vec();
        self.rtc
            .codec_config()
            .params()
            .iter()
            .find(|p| p.spec().codec == str0m::format::Codec::H264 && remote.contains(&p.pt()))
            .map(|p| p.pt())
            .expect("H.264 negotiated")
    }
}

/// A short real H.264 clip (constrained baseline, a keyframe every second),
/// made with ffmpeg and split into access units.
pub fn h264_clip(dir: &std::path::Path, colour: &str) -> Vec<Vec<u8>> {
    let path = dir.join(format!("{colour}.h264"));
    let status = std::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("color=c={colour}:s=320x240:r=30"))
        .args(["-t", "2", "-c:v", "libx264", "-profile:v", "baseline", "-bf", "0", "-g", "30", "-pix_fmt", "yuv420p", "-f", "h264"])
        .arg(&path)
        .status()
        .expect("ffmpeg is required for this test (scripts/setup.sh installs it)");
    assert!(status.success(), "ffmpeg failed");
    split_access_units(&std::fs::read(&path).unwrap())
}

/// Splits an Annex-B stream into access units: parameter sets and SEI join
/// the next slice; each slice (one per picture here) ends a unit.
fn split_access_units(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i..].starts_with(&[0, 0, 1]) {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut units = Vec::new();
    let mut current = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(stream.len(), |&n| n - 3);
        let nal = stream[s..end].strip_suffix(&[0]).unwrap_or(&stream[s..end]);
        current.extend_from_slice(&[0, 0, 0, 1]);
        current.extend_from_slice(nal);
        if matches!(nal.first().map(|b| b & 0x1f), Some(1 | 5)) {
            units.push(std::mem::take(&mut current));
        }
    }
    units
}
