//! The real `confcast` process for tests that need one (a crash, a
//! signal): starting it, waiting for it, and plain HTTP/1.1 requests to it.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The `confcast` binary with no `CONFCAST_*` variable inherited: only what
/// each test sets.
pub fn confcast() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_confcast"));
    for (name, _) in std::env::vars() {
        if name.starts_with("CONFCAST_") {
            command.env_remove(name);
        }
    }
    command
}

/// A free loopback port (a tiny race with other tests is acceptable here).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `confcast serve` on `port` with the data folder `data` and
/// `extra` settings; its output (stdout and stderr) goes to `run{run}.log`
/// in the data folder.
pub fn start(data: &Path, port: u16, run: u32, extra: &[&str]) -> Child {
    let log = std::fs::File::create(data.join(format!("run{run}.log"))).unwrap();
    confcast()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--media-port", "0"])
        .args(extra)
        .arg("--data")
        .arg(data)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// One HTTP/1.1 request (Connection: close); the status and the body.
pub async fn http(addr: SocketAddr, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if !body.is_empty() {
        request.push_str("Content-Type: application/json\r\n");
    }
    request.push_str("\r\n");
    request.push_str(&body);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut payload = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let mut out = Vec::new();
        let mut rest = &payload[..];
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap().trim(), 16).unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
            rest = &rest[line_end + 2 + size + 2..];
        }
        payload = out;
    }
    (status, payload)
}

pub async fn json_of(addr: SocketAddr, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let (status, bytes) = http(addr, method, path, token, body).await;
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

pub async fn wait_healthy(addr: SocketAddr) {
    let wait = async {
        loop {
            if TcpStream::connect(addr).await.is_ok() && http(addr, "GET", "/healthz", None, None).await.0 == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait).await.expect("the server starts");
}

/// Stored segment objects of a recording.
pub fn stored(folder: &Path, prefix: &str) -> usize {
    std::fs::read_dir(folder).map(|d| d.filter_map(Result::ok).filter(|e| e.file_name().to_string_lossy().starts_with(prefix)).count()).unwrap_or(0)
}
