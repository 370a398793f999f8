//! HTTPS: the certificate (PEM files reloaded when they change or on SIGHUP,
//! or a self-signed one for trying the server on a LAN) and the listener that
//! speaks TLS in front of the same application.

pub mod certs;
pub mod listener;
pub mod self_signed;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::bail;
use clap::{ArgAction, Args};

use crate::config::ServeArgs;

/// The TLS flags (part of `serve`'s settings).
#[derive(Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// Serve HTTPS with this certificate chain (PEM, the server's own
    /// certificate first). Needs --tls-key. Reloaded on SIGHUP and when the
    /// file changes.
    #[arg(long, env = "CONFCAST_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "CONFCAST_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// Serve HTTPS with a self-signed certificate for the listening
    /// address, this machine's addresses and names (made once, kept in the
    /// data folder's `tls/`). For trying the server on a LAN.
    #[arg(long, env = "CONFCAST_TLS_SELF_SIGNED", num_args = 0..=1, require_equals = true,
        default_missing_value = "true", default_value_t = false, action = ArgAction::Set)]
    pub tls_self_signed: bool,
}

/// Where the certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    Files { cert: PathBuf, key: PathBuf },
    SelfSigned,
}

impl TlsArgs {
    /// The certificate's source, `None` for plain HTTP, or why the flags do
    /// not fit together.
    pub fn source(&self) -> anyhow::Result<Option<TlsSource>> {
        match (&self.tls_cert, &self.tls_key, self.tls_self_signed) {
            (None, None, false) => Ok(None),
            (None, None, true) => Ok(Some(TlsSource::SelfSigned)),
            (Some(_), _, true) | (_, Some(_), true) => {
                bail!("--tls-self-signed and --tls-cert/--tls-key exclude each other: choose one")
            }
            (Some(cert), Some(key), false) => Ok(Some(TlsSource::Files { cert: cert.clone(), key: key.clone() })),
            (Some(_), None, false) => bail!("--tls-cert needs --tls-key (the certificate's private key)"),
            (None, Some(_), false) => bail!("--tls-key needs --tls-cert (the certificate it belongs to)"),
        }
    }
}

/// The HTTPS side once set up: what the listener serves, and (for
/// certificate files) the files to watch.
pub struct Tls {
    pub resolver: Arc<certs::CertResolver>,
    pub files: Option<(PathBuf, PathBuf)>,
}

/// Loads (or makes) the certificate; any problem is an error here, before
/// anything is served.
pub fn setup(source: &TlsSource, args: &ServeArgs) -> anyhow::Result<Tls> {
    match source {
        TlsSource::Files { cert, key } => {
            let certified = certs::load(cert, key)?;
            tracing::info!(cert = %cert.display(), key = %key.display(), spki_sha256 = %certs::spki_sha256(&certified), "TLS certificate loaded");
            Ok(Tls { resolver: Arc::new(certs::CertResolver::new(certified)), files: Some((cert.clone(), key.clone())) })
        }
        TlsSource::SelfSigned => {
            let folder = args.data.join("tls");
            let names = self_signed::names_for(args.listen.ip(), args.public_ip);
            let (cert, key) = self_signed::ensure(&folder, &names)?;
            let certified = certs::load(&cert, &key)?;
            tracing::info!(cert = %cert.display(), spki_sha256 = %certs::spki_sha256(&certified), names = %names.join(","),
                "self-signed TLS certificate (browsers will warn; see docs/deploy.md)");
            Ok(Tls { resolver: Arc::new(certs::CertResolver::new(certified)), files: None })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flags_must_fit_together() {
        let args = |cert: Option<&str>, key: Option<&str>, self_signed| TlsArgs {
            tls_cert: cert.map(PathBuf::from),
            tls_key: key.map(PathBuf::from),
            tls_self_signed: self_signed,
        };
        assert_eq!(args(None, None, false).source().expect("plain"), None);
        assert_eq!(args(None, None, true).source().expect("self-signed"), Some(TlsSource::SelfSigned));
        assert!(matches!(args(Some("c"), Some("k"), false).source(), Ok(Some(TlsSource::Files { .. }))));
        assert!(args(Some("c"), None, false).source().expect_err("no key").to_string().contains("needs --tls-key"));
        assert!(args(None, Some("k"), false).source().expect_err("no cert").to_string().contains("needs --tls-cert"));
        assert!(args(Some("c"), Some("k"), true).source().is_err());
    }
}
