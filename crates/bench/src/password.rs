//! What a login costs: the argon2id hash on its own, and a whole login over
//! HTTP (which also checks the rate limit and creates a session).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::bail;
use confcast_server::auth::password;

use crate::process::{register, request, Server};

#[derive(clap::Args)]
pub struct Args {
    /// The confcast binary to measure.
    #[arg(long, default_value = "target/release/confcast")]
    binary: PathBuf,
    /// Hashes (and logins) to time.
    #[arg(long, default_value_t = 20)]
    count: u32,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let params = password::params();
    println!(
        "argon2id parameters  m = {} KiB, t = {}, p = {}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost()
    );
    let started = Instant::now();
    for i in 0..args.count {
        password::hash(&format!("benchmark password {i}"))?;
    }
    let per_hash = started.elapsed() / args.count.max(1);
    println!("time per hash        {:.1} ms (one core, this binary)", per_hash.as_secs_f64() * 1000.0);

    let server = Server::start(&args.binary).await?;
    register(server.addr, "bench").await?;
    let body = serde_json::json!({"username": "bench", "password": "benchmark password"});
    let mut times = Vec::new();
    for _ in 0..args.count {
        let t = Instant::now();
        let (status, reply) = request(server.addr, "POST", "/api/v1/auth/login", None, Some(body.clone())).await?;
        if status != 200 {
            bail!("login answered {status}: {reply}");
        }
        times.push(t.elapsed());
    }
    times.sort();
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    println!("login over HTTP      p50 {:.1} ms, max {:.1} ms ({} serial logins)", ms(times[times.len() / 2]), ms(times[times.len() - 1]), times.len());
    println!("logins per core      ~{:.0} per second", 1.0 / per_hash.as_secs_f64());
    Ok(())
}
