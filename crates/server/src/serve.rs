//! Running the server: open the data folder, listen (HTTP, or HTTPS with
//! `--tls-*`), drain and stop cleanly on SIGINT/SIGTERM (drain.rs).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use confcast_store::Store;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::clock::Clock;
use crate::conference::{self, MediaConfig};
use crate::config::ServeArgs;
use crate::forwarded::TrustedProxies;
use crate::recording::{self, RecordingConfig, Recordings};
use crate::routes::app;
use crate::state::{AppState, Settings};
use crate::tls::{self, listener::{TlsListener, WithPeer}};

/// How often expired sessions and invite links are swept from the database.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    crate::metrics::started();
    let tls_source = args.tls.source()?;
    let node = args.nodes.check().map_err(anyhow::Error::msg)?;
    std::fs::create_dir_all(&args.data).with_context(|| format!("cannot create data folder {}", args.data.display()))?;
    // The certificate comes first: one that cannot be used stops the start
    // before anything is opened, so nothing is served half-configured.
    let tls = match &tls_source {
        Some(source) => {
            let tls = tls::setup(source, &args)?;
            let config = tls::certs::server_config(tls.resolver.clone())?;
            Some((tls, config))
        }
        None => None,
    };
    let db_path = args.data.join("confcast.sqlite");
    let store = Store::open(&db_path).await.with_context(|| format!("cannot open database {}", db_path.display()))?;
    // No Program survives a restart: whatever was on air has ended.
    let ended = store.end_stale_broadcasts(Clock::system().now()).await?;
    if ended > 0 {
        tracing::info!(ended, "ended broadcasts left over from the last run");
    }
    let settings = Settings {
        session_ttl_secs: args.session_ttl,
        max_body_bytes: args.max_body,
        secure_cookies: tls.is_some(),
        trusted_proxies: TrustedProxies::new(args.proxy.trusted_proxy.clone()),
        turn: args.ice.turn().map_err(anyhow::Error::msg)?,
        data_dir: Some(args.data.clone()),
        ..Settings::default()
    };
    let media = MediaConfig {
        bind: SocketAddr::new(args.listen.ip(), args.media_port),
        public_ip: args.public_ip,
        ice_timeout: Duration::from_secs(15),
        ice_tcp: args.ice.ice_tcp_port(args.media_port).map(|port| SocketAddr::new(args.listen.ip(), port)),
    };
    let conference = conference::start(media).await.with_context(|| format!("cannot open the media port {}", args.media_port))?;
    let state = AppState::new(store.clone(), Clock::system(), settings).with_conference(conference).with_node(node);
    let recordings_spec = args.recordings.clone().unwrap_or_else(|| args.data.join("recordings").to_string_lossy().into_owned());
    let storage = recording::storage::open(&recordings_spec)?;
    let recording_config = RecordingConfig {
        max_age: (args.recording_max_age > 0).then(|| Duration::from_secs(args.recording_max_age)),
        max_bytes: (args.recording_max_bytes > 0).then_some(args.recording_max_bytes),
        ..RecordingConfig::default()
    };
    let recordings = Recordings::new(storage, store.clone(), state.hub.clone(), state.clock.clone(), recording_config);
    let state = state.with_recordings(recordings.clone());
    // Recordings a crash left open are finished from what storage holds,
    // then retention runs (now and periodically).
    let finisher = tokio::spawn(async move {
        recordings.finish_unfinished().await;
        recording::retention_loop(recordings).await;
    });

    let purger = tokio::spawn(purge_expired(store.clone(), state.clock.clone()));
    let listener = TcpListener::bind(args.listen).await.with_context(|| format!("cannot listen on {}", args.listen))?;
    let local = listener.local_addr()?;
    let drain_timeout = Duration::from_secs(args.drain_timeout);
    if !args.proxy.trusted_proxy.is_empty() {
        let networks: Vec<String> = args.proxy.trusted_proxy.iter().map(ToString::to_string).collect();
        tracing::info!(trusted_proxies = %networks.join(","), "X-Forwarded-For/-Proto are believed from these networks");
    }
    match tls {
        None => {
            tracing::info!(address = %local, data = %args.data.display(), recordings = %recordings_spec, "confcast is listening on http://{local}/");
            let (stop, stopped) = oneshot::channel::<()>();
            let server = axum::serve(listener, app(state.clone()).into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(async { let _ = stopped.await; });
            run_until_drained(server.into_future(), &state, drain_timeout, stop).await?;
        }
        Some((tls, config)) => {
            let watcher = tls.files.map(|(cert, key)| tokio::spawn(tls::certs::watch(cert, key, tls.resolver.clone())));
            tracing::info!(address = %local, data = %args.data.display(), recordings = %recordings_spec, "confcast is listening on https://{local}/");
            let (stop, stopped) = oneshot::channel::<()>();
            let server = axum::serve(TlsListener::new(listener, config)?, WithPeer(app(state.clone())))
                .with_graceful_shutdown(async { let _ = stopped.await; });
            run_until_drained(server.into_future(), &state, drain_timeout, stop).await?;
            if let Some(watcher) = watcher {
                watcher.abort();
            }
        }
    }
    purger.abort();
    finisher.abort();
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Serves until SIGINT/SIGTERM, then drains (participants told, broadcasts
/// ended, recordings finished) and stops serving. Connections still open
/// after the drain time (event streams, idle keep-alives) are cut.
async fn run_until_drained(
    server: impl std::future::Future<Output = std::io::Result<()>> + Send + 'static,
    state: &AppState,
    timeout: Duration,
    stop: oneshot::Sender<()>,
) -> anyhow::Result<()> {
    let mut server = tokio::spawn(server);
    tokio::select! {
        result = &mut server => return Ok(result??),
        () = shutdown_signal() => {}
    }
    let started = std::time::Instant::now();
    tracing::info!(timeout_secs = timeout.as_secs(), "draining");
    if tokio::time::timeout(timeout, crate::drain::drain(state, timeout)).await.is_err() {
        tracing::warn!("the drain did not end in time");
    }
    let _ = stop.send(());
    let rest = timeout.saturating_sub(started.elapsed()).max(Duration::from_secs(1));
    match tokio::time::timeout(rest, &mut server).await {
        Ok(result) => Ok(result??),
        Err(_) => {
            tracing::info!("closing the connections still open");
            server.abort();
            Ok(())
        }
    }
}

async fn purge_expired(store: Store, clock: Clock) {
    let mut every = tokio::time::interval(PURGE_EVERY);
    loop {
        every.tick().await;
        match store.purge_expired(clock.now()).await {
            Ok(n) if n > 0 => tracing::debug!(removed = n, "purged expired sessions and links"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "purging expired sessions failed"),
        }
    }
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
