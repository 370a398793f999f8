//! Certificates from PEM files: loading with clear errors, the resolver the
//! TLS listener asks on every handshake, and reloading (SIGHUP, or when the
//! files change) that keeps the old certificate if the new one is unusable.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, Context as _};
use base64::Engine as _;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{Error as TlsError, InconsistentKeys, ServerConfig};
use sha2::{Digest as _, Sha256};

/// How often the certificate files' modification times are looked at.
pub const POLL_EVERY: Duration = Duration::from_secs(3);

/// The one crypto provider (aws-lc-rs, which the media side's DTLS uses too).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Reads a certificate chain and its private key and checks they belong
/// together.
pub fn load(cert_path: &Path, key_path: &Path) -> anyhow::Result<Arc<CertifiedKey>> {
    let cert_pem = std::fs::read(cert_path).with_context(|| format!("cannot read the TLS certificate {}", cert_path.display()))?;
    let key_pem = std::fs::read(key_path).with_context(|| format!("cannot read the TLS key {}", key_path.display()))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("the TLS certificate {} is not valid PEM: {e}", cert_path.display()))?;
    if chain.is_empty() {
        return Err(anyhow!(
            "the TLS certificate {} holds no certificate (expected a PEM block -----BEGIN CERTIFICATE-----)",
            cert_path.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        anyhow!("the TLS key {} holds no usable private key (expected PEM: PKCS#8, PKCS#1 or SEC1): {e}", key_path.display())
    })?;
    let certified = CertifiedKey::from_der(chain, key, &provider()).map_err(|e| match e {
        TlsError::InconsistentKeys(InconsistentKeys::KeyMismatch) => anyhow!(
            "the TLS key {} does not belong to the certificate {}",
            key_path.display(),
            cert_path.display()
        ),
        other => anyhow!("cannot use the TLS certificate {} with the key {}: {other}", cert_path.display(), key_path.display()),
    })?;
    Ok(Arc::new(certified))
}

/// Base64 of the SHA-256 of the certificate's public key (SubjectPublicKeyInfo),
/// as browsers' `--ignore-certificate-errors-spki-list` and HPKP name it.
pub fn spki_sha256(certified: &CertifiedKey) -> String {
    match certified.key.public_key() {
        Some(spki) => base64::engine::general_purpose::STANDARD.encode(Sha256::digest(spki.as_ref())),
        None => "unknown".to_owned(),
    }
}

/// Hands the current certificate to every handshake; replaced on reload.
#[derive(Debug)]
pub struct CertResolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertResolver {
    pub fn new(certified: Arc<CertifiedKey>) -> CertResolver {
        CertResolver { current: RwLock::new(certified) }
    }

    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn replace(&self, certified: Arc<CertifiedKey>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = certified;
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The server side of TLS: TLS 1.2 and 1.3, HTTP/1.1 (which is what the
/// application speaks, WebSockets included).
pub fn server_config(resolver: Arc<CertResolver>) -> anyhow::Result<Arc<ServerConfig>> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// What a file looked like when last read: a change means reload.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Reloads the certificate on SIGHUP and when either file changes. A new pair
/// that cannot be used is logged and the old certificate stays.
pub async fn watch(cert: PathBuf, key: PathBuf, resolver: Arc<CertResolver>) {
    #[cfg(unix)]
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGHUP; the certificate is still reloaded when its files change");
            None
        }
    };
    let mut seen = (stamp(&cert), stamp(&key));
    let mut every = tokio::time::interval(POLL_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        #[cfg(unix)]
        let asked = async {
            match hangup.as_mut() {
                Some(signal) => signal.recv().await.is_some(),
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let asked = std::future::pending::<bool>();
        let why = tokio::select! {
            _ = every.tick() => {
                let now = (stamp(&cert), stamp(&key));
                if now == seen {
                    continue;
                }
                seen = now;
                "the files changed"
            }
            true = asked => {
                seen = (stamp(&cert), stamp(&key));
                "SIGHUP"
            }
        };
        let (cert, key) = (cert.clone(), key.clone());
        let loaded = tokio::task::spawn_blocking(move || load(&cert, &key)).await;
        match loaded {
            Ok(Ok(certified)) => {
                tracing::info!(reason = why, spki_sha256 = %spki_sha256(&certified), "TLS certificate reloaded");
                resolver.replace(certified);
            }
            Ok(Err(error)) => tracing::error!(reason = why, error = %format!("{error:#}"), "TLS certificate not reloaded; the previous one stays in use"),
            Err(error) => tracing::error!(%error, "TLS certificate reload failed"),
        }
    }
}
