//! Janus AudioBridge under test, for comparison: the Debian `janus` binary
//! started with a minimal configuration in a temporary folder (AudioBridge
//! plugin and the plain HTTP transport on 127.0.0.1 only; every other
//! plugin, transport, logger and event handler disabled; ICE-lite, host
//! candidates only on one test address), driven through its HTTP API.
//!
//! Janus's ICE library ignores loopback addresses, so Janus and the client
//! peers use two addresses on a veth pair that exists only inside the
//! benchmark's own network namespace (see docs/BENCHMARKS.md).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::{json, Value};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind};
use str0m::{Candidate, Rtc};
use tokio::sync::{mpsc, oneshot};

use super::dtx::answer_asks_for_dtx;
use super::engine::{Engine, NewPeer};
use super::Proc;
use crate::process::request;

/// The AudioBridge room the benchmark creates.
const ROOM: u64 = 1234;

/// How Janus mixes: the same work as confcast's mixer where Janus lets us
/// choose (48 kHz, 32 kbit/s, encoder complexity, FEC tuned for 5 % loss).
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub sampling_rate: u32,
    pub quality: u32,
    pub bitrate: u32,
    pub expected_loss: u32,
}

pub struct Janus {
    child: Child,
    api: SocketAddr,
    dir: tempfile::TempDir,
    session: u64,
    /// Events (answer, trickled candidates) per plugin handle being joined.
    waiting: Waiting,
    poller: tokio::task::JoinHandle<()>,
    hangups: Arc<Mutex<u64>>,
    settings: Settings,
    ip: IpAddr,
}

/// Janus's plugin and transport folders (Debian's multiarch layout).
pub fn default_lib_dir() -> PathBuf {
    let triple = match std::env::consts::ARCH {
        "aarch64" => "aarch64-linux-gnu",
        "x86" => "i386-linux-gnu",
        _ => "x86_64-linux-gnu",
    };
    PathBuf::from(format!("/usr/lib/{triple}/janus"))
}

/// Refuses to run unless this network namespace is a closed one, so the
/// traffic cannot leave the machine: no default route (a private namespace
/// has only loopback and the veth pair's subnet). `ip` must be an address
/// of this namespace.
pub fn check_isolated(ip: IpAddr) -> anyhow::Result<()> {
    let refuse = || {
        anyhow::anyhow!(
            "the Janus comparison runs only inside a private network namespace with its test addresses \
             (see docs/BENCHMARKS.md: scripts/bench-audio-mix.sh)"
        )
    };
    let routes = std::fs::read_to_string("/proc/net/route").context("cannot read the routing table")?;
    if routes.lines().skip(1).any(|l| l.split_whitespace().nth(1) == Some("00000000")) {
        return Err(refuse());
    }
    std::net::UdpSocket::bind(SocketAddr::new(ip, 0))
        .with_context(|| format!("{ip} is not an address of this network namespace; set up the veth pair first"))?;
    Ok(())
}

fn write_config(dir: &Path, lib: &Path, port: u16, ip: IpAddr) -> anyhow::Result<()> {
    let lib = lib.display();
    let dir_s = dir.display();
    std::fs::write(
        dir.join("janus.jcfg"),
        format!(
            r#"general: {{
	configs_folder = "{dir_s}"
	plugins_folder = "{lib}/plugins"
	transports_folder = "{lib}/transports"
	events_folder = "{lib}/events"
	loggers_folder = "{lib}/loggers"
	debug_level = 3
	session_timeout = 120
	interface = "{ip}"
}}
media: {{
	rtp_port_range = "20000-40000"
}}
nat: {{
	nice_debug = false
	ice_lite = true
	full_trickle = false
	ice_enforce_list = "{ip}"
	ignore_mdns = true
}}
plugins: {{
	disable = "libjanus_duktape.so,libjanus_echotest.so,libjanus_lua.so,libjanus_nosip.so,libjanus_recordplay.so,libjanus_sip.so,libjanus_streaming.so,libjanus_textroom.so,libjanus_videocall.so,libjanus_videoroom.so,libjanus_voicemail.so"
}}
transports: {{
	disable = "libjanus_websockets.so,libjanus_pfunix.so,libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_rabbitmq.so"
}}
loggers: {{
	disable = "libjanus_jsonlog.so"
}}
events: {{
	broadcast = false
	disable = "libjanus_gelfevh.so,libjanus_mqttevh.so,libjanus_nanomsgevh.so,libjanus_rabbitmqevh.so,libjanus_sampleevh.so,libjanus_wsevh.so"
}}
"#
        ),
    )?;
    std::fs::write(
        dir.join("janus.transport.http.jcfg"),
        format!(
            r#"general: {{
	json = "plain"
	base_path = "/janus"
	http = true
	port = {port}
	ip = "127.0.0.1"
	https = false
}}
admin: {{
	admin_http = false
	admin_https = false
}}
"#
        ),
    )?;
    std::fs::write(dir.join("janus.plugin.audiobridge.jcfg"), "general: {\n\tevents = false\n}\n")?;
    Ok(())
}

async fn call(api: SocketAddr, path: &str, mut body: Value) -> anyhow::Result<Value> {
    body["transaction"] = json!(format!("t{}", rand_u64()));
    let (status, reply) = request(api, "POST", path, None, Some(body)).await?;
    if status != 200 {
        bail!("Janus answered {status}: {reply}");
    }
    if reply["janus"] == "error" {
        bail!("Janus error: {}", reply["error"]);
    }
    Ok(reply)
}

type Waiting = Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Value>>>>;

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher as _, RandomState};
    RandomState::new().hash_one(Instant::now())
}

impl Janus {
    pub async fn start(binary: &Path, lib: &Path, ip: IpAddr, settings: Settings) -> anyhow::Result<Janus> {
        let dir = tempfile::tempdir()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        write_config(dir.path(), lib, port, ip)?;
        let log = std::fs::File::create(dir.path().join("janus.log"))?;
        let child = Command::new(binary)
            .arg(format!("--configs-folder={}", dir.path().display()))
            .arg(format!("--config={}", dir.path().join("janus.jcfg").display()))
            .arg("--disable-colors")
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("cannot start {} (apt-get install janus)", binary.display()))?;
        let api = SocketAddr::from(([127, 0, 0, 1], port));
        let mut child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        let session = loop {
            if let Ok(reply) = call(api, "/janus", json!({"janus": "create"})).await {
                break reply["data"]["id"].as_u64().context("no session id")?;
            }
            if Instant::now() > deadline || child.as_mut().and_then(|c| c.try_wait().ok().flatten()).is_some() {
                if let Some(mut c) = child.take() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                let log = std::fs::read_to_string(dir.path().join("janus.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                bail!("Janus did not start; its log ends:\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let child = child.context("no child")?;
        let waiting: Waiting = Arc::default();
        let hangups: Arc<Mutex<u64>> = Arc::default();
        let poller = tokio::spawn(long_poll(api, session, waiting.clone(), hangups.clone()));
        let janus = Janus { child, api, dir, session, waiting, poller, hangups, settings, ip };
        janus.create_room().await?;
        Ok(janus)
    }

    pub fn process(&self) -> Proc {
        Proc(self.child.id())
    }

    /// Participants Janus hung up on so far.
    pub fn hangups(&self) -> u64 {
        *self.hangups.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn attach(&self) -> anyhow::Result<u64> {
        let reply =
            call(self.api, &format!("/janus/{}", self.session), json!({"janus": "attach", "plugin": "janus.plugin.audiobridge"})).await?;
        reply["data"]["id"].as_u64().context("no handle id")
    }

    async fn create_room(&self) -> anyhow::Result<()> {
        let handle = self.attach().await?;
        let s = self.settings;
        let body = json!({
            "request": "create",
            "room": ROOM,
            "description": "confcast-bench",
            "sampling_rate": s.sampling_rate,
            "audiolevel_ext": true,
            "audiolevel_event": false,
            "record": false,
            "default_bitrate": s.bitrate,
            "default_expectedloss": s.expected_loss,
        });
        let reply = call(self.api, &format!("/janus/{}/{handle}", self.session), json!({"janus": "message", "body": body})).await?;
        let data = &reply["plugindata"]["data"];
        if data["audiobridge"] != "created" {
            bail!("AudioBridge did not create the room: {data}");
        }
        Ok(())
    }

    /// Joins one participant (audio-only sendrecv offer) and hands its
    /// peer to the engine. Only the candidate on Janus's test address is
    /// kept from the answer.
    pub async fn join(
        &self,
        client_ip: IpAddr,
        name: &str,
        engine: &Engine,
        talker: Option<usize>,
        probe: bool,
        honour_dtx: bool,
    ) -> anyhow::Result<oneshot::Receiver<()>> {
        let handle = self.attach().await?;
        let udp = std::net::UdpSocket::bind(SocketAddr::new(client_ip, 0))?;
        let local = udp.local_addr()?;
        let mut rtc = Rtc::builder().build(Instant::now());
        rtc.add_local_candidate(Candidate::host(local, "udp")?);
        let mut change = rtc.sdp_api();
        let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = change.apply().context("no offer")?;
        let mut pending = Some(pending);

        let (tx, mut events) = mpsc::unbounded_channel();
        self.waiting.lock().unwrap_or_else(|p| p.into_inner()).insert(handle, tx);
        let s = self.settings;
        let body = json!({
            "request": "join",
            "room": ROOM,
            "display": name,
            "quality": s.quality,
            "bitrate": s.bitrate,
            "expected_loss": s.expected_loss,
        });
        let path = format!("/janus/{}/{handle}", self.session);
        let message = json!({"janus": "message", "body": body, "jsep": {"type": "offer", "sdp": offer.to_sdp_string()}});
        call(self.api, &path, message).await?;
        // Our one candidate is in the offer; say that there are no more.
        call(self.api, &path, json!({"janus": "trickle", "candidate": {"completed": true}})).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut answered = false;
        let mut have_candidate = false;
        let mut dtx = false;
        while !(answered && have_candidate) {
            let event = tokio::time::timeout_at(deadline, events.recv())
                .await
                .context("no answer (or no candidate) from Janus in time")?
                .context("Janus's event stream ended")?;
            if let Some(sdp) = event["jsep"]["sdp"].as_str() {
                dtx = honour_dtx && answer_asks_for_dtx(sdp);
                let sdp = only_candidates_on(sdp, self.ip);
                have_candidate |= sdp.contains("a=candidate:");
                rtc.sdp_api().accept_answer(pending.take().context("two answers")?, SdpAnswer::from_sdp_string(&sdp)?)?;
                answered = true;
            } else if let Some(c) = event["candidate"]["candidate"].as_str() {
                // Trickled by Janus when it had not gathered before answering.
                if let Some(addr) = candidate_address(c).filter(|a| a.ip() == self.ip) {
                    rtc.add_remote_candidate(Candidate::host(addr, "udp")?);
                    have_candidate = true;
                }
            }
        }
        self.waiting.lock().unwrap_or_else(|p| p.into_inner()).remove(&handle);
        let (connected, done) = oneshot::channel();
        engine.add(NewPeer { rtc, socket: udp, mid, talker, probe, dtx, connected })?;
        Ok(done)
    }
}

impl Drop for Janus {
    fn drop(&mut self) {
        self.poller.abort();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = &self.dir;
    }
}

/// The address of an ICE candidate line (`candidate:f 1 udp prio ADDR PORT typ ...`).
fn candidate_address(line: &str) -> Option<SocketAddr> {
    let mut fields = line.trim_start_matches("a=").split_whitespace().skip(4);
    let ip: IpAddr = fields.next()?.parse().ok()?;
    let port: u16 = fields.next()?.parse().ok()?;
    Some(SocketAddr::new(ip, port))
}

/// Removes every ICE candidate that is not on `ip`.
fn only_candidates_on(sdp: &str, ip: IpAddr) -> String {
    let ip = ip.to_string();
    sdp.split("\r\n")
        .filter(|line| {
            let Some(rest) = line.strip_prefix("a=candidate:") else { return true };
            // foundation component transport priority address port typ ...
            rest.split_whitespace().nth(4) == Some(ip.as_str())
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// Janus's event stream for the session (which also keeps it alive).
async fn long_poll(
    api: SocketAddr,
    session: u64,
    waiting: Waiting,
    hangups: Arc<Mutex<u64>>,
) {
    loop {
        let path = format!("/janus/{session}?maxev=100&rid={}", rand_u64());
        let events = match request(api, "GET", &path, None, None).await {
            Ok((200, Value::Array(events))) => events,
            Ok((200, event)) => vec![event],
            _ => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        for event in events {
            match event["janus"].as_str() {
                Some("event" | "trickle") => {
                    let Some(sender) = event["sender"].as_u64() else { continue };
                    let waiter = waiting.lock().unwrap_or_else(|p| p.into_inner()).get(&sender).cloned();
                    if let Some(w) = waiter {
                        let _ = w.send(event);
                    }
                }
                Some("hangup") => *hangups.lock().unwrap_or_else(|p| p.into_inner()) += 1,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_elsewhere_are_removed() {
        let sdp = "v=0\r\na=candidate:1 1 udp 2015363327 10.77.0.1 20001 typ host\r\n\
                   a=candidate:2 1 udp 2015363327 192.0.2.7 20002 typ host\r\na=end-of-candidates\r\n";
        let kept = only_candidates_on(sdp, "10.77.0.1".parse().expect("ip"));
        assert!(kept.contains("10.77.0.1 20001"));
        assert!(!kept.contains("192.0.2.7"));
        assert!(kept.contains("a=end-of-candidates"));
        assert_eq!(
            candidate_address("candidate:1 1 udp 2015363583 10.77.0.1 34290 typ host"),
            Some("10.77.0.1:34290".parse().expect("addr"))
        );
    }
}
