//! confcast under test: the real binary, users made members through the
//! HTTP API, and one WebSocket + one WebRTC peer per participant, joining
//! as docs/protocol.md describes.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind};
use str0m::{Candidate, Rtc};
use tokio::sync::{oneshot, watch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;

use super::dtx::answer_asks_for_dtx;
use super::engine::{Engine, NewPeer};
use super::Proc;
use crate::process::request;

pub struct Confcast {
    child: Child,
    pub addr: SocketAddr,
    _data: tempfile::TempDir,
}

impl Confcast {
    /// `confcast serve` on a free loopback port, media on a free UDP port.
    pub async fn start(binary: &Path) -> anyhow::Result<Confcast> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let data = tempfile::tempdir()?;
        let child = Command::new(binary)
            .args(["serve", "--listen", &addr.to_string(), "--media-port", "0", "--log", "warn", "--data"])
            .arg(data.path())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let server = Confcast { child, addr, _data: data };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok((200, _)) = request(addr, "GET", "/healthz", None, None).await {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("confcast did not become healthy")
    }

    pub fn process(&self) -> Proc {
        Proc(self.child.id())
    }
}

impl Drop for Confcast {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A registered user: bearer token and personal room.
pub struct User {
    pub token: String,
    pub room: String,
}

async fn register(addr: SocketAddr, name: &str) -> anyhow::Result<User> {
    let body = json!({"username": name, "password": "benchmark password", "display_name": name});
    let (status, reply) = request(addr, "POST", "/api/v1/auth/register", None, Some(body)).await?;
    if status != 201 {
        bail!("register {name}: {status} {reply}");
    }
    Ok(User {
        token: reply["token"].as_str().context("no token")?.to_owned(),
        room: reply["room"]["id"].as_str().context("no room")?.to_owned(),
    })
}

/// Registers `n` users (8 at a time: each costs an argon2 hash on the
/// server) and makes them members of the first one's room with one invite
/// link. Returns the users and the room.
pub async fn members(addr: SocketAddr, n: usize) -> anyhow::Result<(Vec<User>, String)> {
    let users: Vec<User> = futures_util::stream::iter(0..n)
        .map(|i| async move { register(addr, &format!("p{i:04}")).await })
        .buffered(8)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let room = users.first().context("no users")?.room.clone();
    let host = &users[0].token;
    let (status, link) = request(addr, "POST", &format!("/api/v1/rooms/{room}/invite-links"), Some(host), Some(json!({}))).await?;
    if status != 201 {
        bail!("invite link: {status} {link}");
    }
    let link = link["token"].as_str().context("no link token")?.to_owned();
    let accepted: Vec<anyhow::Result<()>> = futures_util::stream::iter(users.iter().skip(1))
        .map(|u| {
            let path = format!("/api/v1/invite-links/{link}/accept");
            async move {
                let (status, reply) = request(addr, "POST", &path, Some(&u.token), None).await?;
                if status != 200 {
                    bail!("accept: {status} {reply}");
                }
                Ok(())
            }
        })
        .buffered(16)
        .collect()
        .await;
    accepted.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    Ok((users, room))
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Joins one participant: WebSocket, offer (audio + video sendrecv, as the
/// protocol requires), answer, then the peer goes to the engine. The socket
/// is kept open (and read, so the server never blocks on it) until `stop`.
pub async fn join(
    addr: SocketAddr,
    room: &str,
    user: &User,
    engine: &Engine,
    talker: Option<usize>,
    probe: bool,
    honour_dtx: bool,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<oneshot::Receiver<()>> {
    let mut req = format!("ws://{addr}/api/v1/rooms/{room}/ws").into_client_request()?;
    req.headers_mut().insert("authorization", format!("Bearer {}", user.token).parse()?);
    let (mut socket, _) = tokio_tungstenite::connect_async(req).await.context("WebSocket")?;

    let udp = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let local = udp.local_addr()?;
    let mut rtc = Rtc::builder().build(Instant::now());
    rtc.add_local_candidate(Candidate::host(local, "udp")?);
    let mut change = rtc.sdp_api();
    let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    change.add_media(MediaKind::Video, Direction::SendRecv, None, None, None);
    let (offer, pending) = change.apply().context("no offer")?;
    let join = json!({"type": "join", "version": 1, "sdp": offer.to_sdp_string()});
    socket.send(Message::Text(join.to_string().into())).await?;
    let joined = expect(&mut socket, "joined").await?;
    let sdp = joined["sdp"].as_str().context("no sdp")?;
    let dtx = honour_dtx && answer_asks_for_dtx(sdp);
    let answer = SdpAnswer::from_sdp_string(sdp)?;
    rtc.sdp_api().accept_answer(pending, answer)?;

    let (connected, done) = oneshot::channel();
    engine.add(NewPeer { rtc, socket: udp, mid, talker, probe, dtx, connected })?;
    tokio::spawn(keep_open(socket, stop));
    Ok(done)
}

async fn expect(socket: &mut Socket, kind: &str) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next()).await.with_context(|| format!("no {kind} in time"))?;
        match frame {
            Some(Ok(Message::Text(text))) => {
                let value: Value = serde_json::from_str(&text)?;
                if value["type"] == kind {
                    return Ok(value);
                }
                if value["type"] == "error" {
                    bail!("server error while waiting for {kind}: {value}");
                }
            }
            Some(Ok(Message::Close(_))) | None => bail!("socket closed while waiting for {kind}"),
            Some(Err(e)) => return Err(e.into()),
            _ => {}
        }
    }
}

/// Reads (and drops) everything the server sends until `stop`, then leaves.
async fn keep_open(mut socket: Socket, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            frame = socket.next() => match frame {
                Some(Ok(_)) => {}
                _ => return,
            },
            _ = stop.changed() => {
                let _ = socket.close(None).await;
                return;
            }
        }
    }
}
