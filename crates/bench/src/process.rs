//! The server under test: a real `confcast serve` child process.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;

pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    binary: PathBuf,
    extra: Vec<String>,
    data: tempfile::TempDir,
}

fn spawn(binary: &PathBuf, addr: SocketAddr, data: &std::path::Path, extra: &[String]) -> anyhow::Result<Child> {
    Command::new(binary)
        .args(["serve", "--listen", &addr.to_string(), "--log", "warn", "--data"])
        .arg(data)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))
}

/// Waits until `/healthz` answers 200.
async fn wait_healthy(addr: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok((status, _)) = request(addr, "GET", "/healthz", None, None).await
            && status == 200
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the server did not become healthy")
}

impl Server {
    /// Starts `binary serve` on a free loopback port and waits for /healthz.
    pub async fn start(binary: &PathBuf) -> anyhow::Result<Server> {
        Server::start_with(binary, &[]).await
    }

    /// Like [`Server::start`], with more arguments for `serve`.
    pub async fn start_with(binary: &PathBuf, extra: &[&str]) -> anyhow::Result<Server> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let data = tempfile::tempdir()?;
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        let child = spawn(binary, addr, data.path(), &extra)?;
        let server = Server { child, addr, binary: binary.clone(), extra, data };
        wait_healthy(addr).await?;
        Ok(server)
    }

    /// Stops the server (SIGTERM, then waits for it) and starts it again on
    /// the same address and data folder: a fresh process that knows the same
    /// accounts and sessions.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id())?);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.child = spawn(&self.binary, self.addr, self.data.path(), &self.extra)?;
        wait_healthy(self.addr).await
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time (user + system) the server has used so far.
    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        cpu_from_stat(&std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?)
    }

    /// Resident memory of the server.
    pub fn rss_bytes(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .context("no VmRSS")?
            .parse()?;
        Ok(kib * 1024)
    }
}

/// User + system CPU time from the contents of a `/proc/.../stat` file.
pub fn cpu_from_stat(stat: &str) -> anyhow::Result<Duration> {
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("odd /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // Linux reports in clock ticks of 1/100 s on every mainstream build.
    Ok(Duration::from_millis(ticks * 10))
}

/// CPU time (user + system) of this process so far.
pub fn own_cpu_time() -> anyhow::Result<Duration> {
    cpu_from_stat(&std::fs::read_to_string("/proc/self/stat")?)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request on a fresh connection; returns status and body.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    json: Option<serde_json::Value>,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut builder = Request::builder().method(method).uri(path).header("host", addr.to_string());
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let body = match json {
        Some(j) => {
            builder = builder.header("content-type", "application/json");
            Full::new(Bytes::from(j.to_string()))
        }
        None => Full::new(Bytes::new()),
    };
    let response = sender.send_request(builder.body(body)?).await?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)))
}

/// GET of a plain-text resource (e.g. `/metrics`): status and body.
pub async fn get_text(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let request = Request::builder().method("GET").uri(path).header("host", addr.to_string()).body(Full::new(Bytes::new()))?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

/// Registers a user and returns its bearer token.
pub async fn register(addr: SocketAddr, username: &str) -> anyhow::Result<String> {
    let body = serde_json::json!({"username": username, "password": "benchmark password", "display_name": username});
    let (status, reply) = request(addr, "POST", "/api/v1/auth/register", None, Some(body)).await?;
    if status != 201 {
        bail!("register answered {status}: {reply}");
    }
    Ok(reply["token"].as_str().context("no token")?.to_owned())
}

/// The 1, 5 and 15 minute load averages, as /proc/loadavg gives them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// Starts `perf record` on the server for `length` (call graphs into `file`).
pub fn record_profile(server: &Server, file: &PathBuf, length: Duration) -> anyhow::Result<tokio::process::Child> {
    tokio::process::Command::new("perf")
        .args(["record", "-q", "-e", "cpu-clock", "-F", "999", "--call-graph", "dwarf,16384", "-p"])
        .arg(server.pid().to_string())
        .arg("-o")
        .arg(file)
        .args(["--", "sleep"])
        .arg(length.as_secs().to_string())
        .spawn()
        .context("cannot start perf")
}
