//! Opening the object store recordings go to: a local folder (the default,
//! under the data folder) or an S3-compatible bucket.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use object_store::local::LocalFileSystem;
use object_store::ObjectStore;

/// Opens `spec`: `s3://bucket/optional/prefix` (credentials, region and
/// endpoint from the usual `AWS_*` variables, e.g. `AWS_ENDPOINT` and
/// `AWS_ALLOW_HTTP=true` for a local S3-compatible server), `file:///path`,
/// or a plain folder path (created if missing).
pub fn open(spec: &str) -> anyhow::Result<Arc<dyn ObjectStore>> {
    if spec.starts_with("s3://") {
        let url = url_parts(spec).context("--recordings: expected s3://bucket/prefix")?;
        let s3 = object_store::aws::AmazonS3Builder::from_env()
            .with_url(format!("s3://{}", url.0))
            .build()
            .with_context(|| format!("--recordings: cannot use {spec}"))?;
        return Ok(match url.1 {
            Some(prefix) => Arc::new(object_store::prefix::PrefixStore::new(s3, prefix)),
            None => Arc::new(s3),
        });
    }
    if spec.contains("://") && !spec.starts_with("file://") {
        anyhow::bail!("--recordings: only s3:// URLs, file:// URLs and folders are supported, not {spec}");
    }
    let folder = Path::new(spec.strip_prefix("file://").unwrap_or(spec));
    std::fs::create_dir_all(folder).with_context(|| format!("cannot create the recordings folder {}", folder.display()))?;
    let local = LocalFileSystem::new_with_prefix(folder)
        .with_context(|| format!("cannot use the recordings folder {}", folder.display()))?
        .with_automatic_cleanup(true);
    Ok(Arc::new(local))
}

/// `s3://bucket/a/b` -> ("bucket", Some("a/b")).
fn url_parts(spec: &str) -> Option<(String, Option<String>)> {
    let rest = spec.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return None;
    }
    let prefix = prefix.trim_matches('/');
    Some((bucket.to_owned(), (!prefix.is_empty()).then(|| prefix.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls() {
        assert_eq!(url_parts("s3://media"), Some(("media".into(), None)));
        assert_eq!(url_parts("s3://media/confcast/recordings/"), Some(("media".into(), Some("confcast/recordings".into()))));
        assert_eq!(url_parts("s3:///x"), None);
        assert!(open("ftp://example/x").is_err());
    }
}
