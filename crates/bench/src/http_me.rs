//! Open-loop load on an authenticated endpoint: requests are sent on a fixed
//! schedule whatever the server does, and latency is measured from the
//! scheduled send time, so a slow server cannot hide its queueing delay
//! (no coordinated omission).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::bail;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;

use crate::process::{register, Server};

#[derive(clap::Args)]
pub struct Args {
    /// The confcast binary to measure.
    #[arg(long, default_value = "target/release/confcast")]
    binary: PathBuf,
    /// Offered load, requests per second.
    #[arg(long, default_value_t = 2000)]
    rate: u32,
    /// How long to apply it, in seconds (after one second of warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Keep-alive connections the load is spread over.
    #[arg(long, default_value_t = 32)]
    connections: u32,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.rate == 0 || args.connections == 0 {
        bail!("rate and connections must be positive");
    }
    let server = Server::start(&args.binary).await?;
    let token = register(server.addr, "bench").await?;

    // Warm-up: a second at the same rate, not recorded.
    drive(&server, &token, &args, Duration::from_secs(1)).await?;

    let cpu_before = server.cpu_time()?;
    let started = Instant::now();
    let (histogram, errors) = drive(&server, &token, &args, Duration::from_secs(args.seconds)).await?;
    let elapsed = started.elapsed();
    let cpu = server.cpu_time()?.saturating_sub(cpu_before);

    let done = histogram.len();
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    println!("GET /api/v1/me (authenticated, bearer token), open loop over {} connections", args.connections);
    println!("offered load      {} req/s for {} s", args.rate, args.seconds);
    println!("achieved          {:.0} req/s ({} ok, {} errors)", done as f64 / elapsed.as_secs_f64(), done, errors);
    println!("latency p50       {:.3} ms", ms(0.50));
    println!("latency p99       {:.3} ms", ms(0.99));
    println!("latency p99.9     {:.3} ms", ms(0.999));
    println!("latency max       {:.3} ms", histogram.max() as f64 / 1000.0);
    println!("server CPU        {:.1} % of one core ({:.1} µs per request)",
        100.0 * cpu.as_secs_f64() / elapsed.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / done.max(1) as f64);
    println!("server RSS        {:.1} MiB", server.rss_bytes()? as f64 / (1024.0 * 1024.0));
    Ok(())
}

/// Runs the schedule for `duration`; returns latencies (µs) and the error count.
async fn drive(server: &Server, token: &str, args: &Args, duration: Duration) -> anyhow::Result<(Histogram<u64>, u64)> {
    let per_connection = Duration::from_secs_f64(f64::from(args.connections) / f64::from(args.rate));
    let start = Instant::now() + Duration::from_millis(20);
    let mut tasks = Vec::new();
    for c in 0..args.connections {
        let addr = server.addr;
        let auth = format!("Bearer {token}");
        // Stagger connections so requests are evenly spread in time.
        let first = start + per_connection.mul_f64(f64::from(c) / f64::from(args.connections));
        tasks.push(tokio::spawn(async move {
            let mut histogram = Histogram::<u64>::new(3).expect("3 significant figures is valid");
            let mut errors = 0u64;
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let mut due = first;
            while due < start + duration {
                tokio::time::sleep_until(due.into()).await;
                let request = Request::get("/api/v1/me")
                    .header("host", addr.to_string())
                    .header("authorization", &auth)
                    .body(Empty::<Bytes>::new())?;
                match sender.send_request(request).await {
                    Ok(response) => {
                        let ok = response.status().is_success();
                        response.into_body().collect().await?;
                        if ok {
                            histogram.record(due.elapsed().as_micros() as u64)?;
                        } else {
                            errors += 1;
                        }
                    }
                    Err(_) => errors += 1,
                }
                due += per_connection;
            }
            anyhow::Ok((histogram, errors))
        }));
    }
    let mut total = Histogram::<u64>::new(3)?;
    let mut errors = 0;
    for task in tasks {
        let (h, e) = task.await??;
        total.add(h)?;
        errors += e;
    }
    Ok((total, errors))
}
