//! Where an export lives: a local directory or an S3 prefix, behind one small enum.
//!
//! Two implementations and no more, so an enum rather than a trait object. Keys are always
//! relative to the store's root and use `/` separators on both sides. [`ObjectReader`] gives the
//! Parquet reader ranged, footer-first access to one object in either place.

use crate::error::{Error, Result};
use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One object under the store's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Key relative to the root, `/`-separated.
    pub key: String,
    pub size: u64,
}

/// A local directory or an S3 bucket and prefix.
#[derive(Clone, Debug)]
pub enum Store {
    Local(PathBuf),
    S3 {
        client: aws_sdk_s3::Client,
        bucket: String,
        /// Prefix without leading or trailing `/`; may be empty.
        prefix: String,
    },
}

/// Builds an S3 client from the ambient AWS configuration. Honours `AWS_ENDPOINT_URL` (the local
/// emulator) and then uses path-style addressing, which an IP endpoint needs.
pub async fn s3_client() -> aws_sdk_s3::Client {
    let config = aws_config::load_from_env().await;
    let mut builder = aws_sdk_s3::config::Builder::from(&config);
    if config.endpoint_url().is_some() {
        builder = builder.force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(builder.build())
}

/// `s3://bucket/some/prefix` -> (`bucket`, `some/prefix`), the prefix without outer `/`.
pub fn split_s3_uri(uri: &str) -> Result<(&str, &str)> {
    let rest = uri
        .strip_prefix("s3://")
        .ok_or_else(|| Error::Usage(format!("{uri:?} is not an s3:// URL (s3://bucket/prefix)")))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(Error::Usage(format!(
            "{uri:?} names no bucket: expected s3://bucket/prefix/export-id"
        )));
    }
    Ok((bucket, prefix.trim_matches('/')))
}

impl Store {
    /// Opens `s3://bucket/prefix` or a local directory path.
    pub async fn open(location: &str) -> Result<Store> {
        if location.starts_with("s3://") {
            Store::s3(&s3_client().await, location)
        } else {
            let path = PathBuf::from(location);
            if !path.is_dir() {
                return Err(Error::Usage(format!(
                    "{location:?} is not a directory (and not an s3:// URL)"
                )));
            }
            Ok(Store::Local(path))
        }
    }

    /// `s3://bucket/prefix` on an existing client (the Lambdas build theirs once, at cold start).
    pub fn s3(client: &aws_sdk_s3::Client, uri: &str) -> Result<Store> {
        let (bucket, prefix) = split_s3_uri(uri)?;
        Ok(Store::S3 {
            client: client.clone(),
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// A human-readable name of an object, for messages.
    pub fn display(&self, key: &str) -> String {
        match self {
            Store::Local(root) => root.join(key).display().to_string(),
            Store::S3 { bucket, .. } => format!("s3://{bucket}/{}", self.full_key(key)),
        }
    }

    fn full_key(&self, key: &str) -> String {
        match self {
            Store::S3 { prefix, .. } if !prefix.is_empty() => format!("{prefix}/{key}"),
            _ => key.to_string(),
        }
    }

    /// Every object under the root, recursively, sorted by key.
    pub async fn list(&self) -> Result<Vec<ObjectMeta>> {
        let mut out = match self {
            Store::Local(root) => {
                let root = root.clone();
                tokio::task::spawn_blocking(move || list_local(&root))
                    .await
                    .map_err(|e| Error::Usage(format!("listing task failed: {e}")))??
            }
            Store::S3 {
                client,
                bucket,
                prefix,
            } => {
                let list_prefix = if prefix.is_empty() {
                    String::new()
                } else {
                    format!("{prefix}/")
                };
                let mut pages = client
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix(&list_prefix)
                    .into_paginator()
                    .send();
                let mut out = Vec::new();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| Error::S3 {
                        operation: "ListObjectsV2",
                        bucket: bucket.clone(),
                        key: list_prefix.clone(),
                        reason: aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
                    })?;
                    for obj in page.contents() {
                        if let Some(key) = obj.key() {
                            out.push(ObjectMeta {
                                key: key[list_prefix.len()..].to_string(),
                                size: obj.size().unwrap_or(0).max(0) as u64,
                            });
                        }
                    }
                }
                out
            }
        };
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// A whole small object, or `None` when there is no object of that key.
    pub async fn get_if_exists(&self, key: &str) -> Result<Option<Bytes>> {
        match self {
            Store::Local(root) => match tokio::fs::read(root.join(key)).await {
                Ok(data) => Ok(Some(Bytes::from(data))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::io(root.join(key), e)),
            },
            Store::S3 { client, bucket, .. } => {
                let full = self.full_key(key);
                match client.get_object().bucket(bucket).key(&full).send().await {
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
                    Err(e) => Err(Error::S3 {
                        operation: "GetObject",
                        bucket: bucket.clone(),
                        key: full,
                        reason: aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
                    }),
                    Ok(resp) => {
                        let body = resp.body.collect().await.map_err(|e| Error::S3 {
                            operation: "GetObject",
                            bucket: bucket.clone(),
                            key: full.clone(),
                            reason: e.to_string(),
                        })?;
                        Ok(Some(body.into_bytes()))
                    }
                }
            }
        }
    }

    /// A whole object (used for the small metadata files only).
    pub async fn get(&self, key: &str) -> Result<Bytes> {
        match self {
            Store::Local(root) => {
                let path = root.join(key);
                tokio::fs::read(&path)
                    .await
                    .map(Bytes::from)
                    .map_err(|e| Error::io(path, e))
            }
            Store::S3 { client, bucket, .. } => {
                let full = self.full_key(key);
                let s3_err = |reason: String| Error::S3 {
                    operation: "GetObject",
                    bucket: bucket.clone(),
                    key: full.clone(),
                    reason,
                };
                let resp = client
                    .get_object()
                    .bucket(bucket)
                    .key(&full)
                    .send()
                    .await
                    .map_err(|e| s3_err(aws_sdk_s3::error::DisplayErrorContext(&e).to_string()))?;
                let body = resp
                    .body
                    .collect()
                    .await
                    .map_err(|e| s3_err(e.to_string()))?;
                Ok(body.into_bytes())
            }
        }
    }

    /// Writes an object, replacing any object of the same key.
    pub async fn put(&self, key: &str, data: Bytes) -> Result<()> {
        match self {
            Store::Local(root) => {
                let path = root.join(key);
                if let Some(parent) = path.parent() {
                    tokio::fs::create_dir_all(parent)
                        .await
                        .map_err(|e| Error::io(parent, e))?;
                }
                tokio::fs::write(&path, &data)
                    .await
                    .map_err(|e| Error::io(path, e))
            }
            Store::S3 { client, bucket, .. } => {
                let full = self.full_key(key);
                client
                    .put_object()
                    .bucket(bucket)
                    .key(&full)
                    .body(data.into())
                    .send()
                    .await
                    .map_err(|e| Error::S3 {
                        operation: "PutObject",
                        bucket: bucket.clone(),
                        key: full.clone(),
                        reason: aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
                    })?;
                Ok(())
            }
        }
    }

    /// A ranged reader over one object, for the Parquet reader.
    pub async fn reader(&self, obj: &ObjectMeta) -> Result<ObjectReader> {
        match self {
            Store::Local(root) => {
                let path = root.join(&obj.key);
                let file = tokio::fs::File::open(&path)
                    .await
                    .map_err(|e| Error::io(path, e))?;
                Ok(ObjectReader::Local(file))
            }
            Store::S3 { client, bucket, .. } => Ok(ObjectReader::S3 {
                client: client.clone(),
                bucket: bucket.clone(),
                key: self.full_key(&obj.key),
                size: obj.size,
            }),
        }
    }
}

fn list_local(root: &Path) -> Result<Vec<ObjectMeta>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let path = entry.path();
            let meta = entry.metadata().map_err(|e| Error::io(&path, e))?;
            if meta.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(root) {
                let key = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push(ObjectMeta {
                    key,
                    size: meta.len(),
                });
            }
        }
    }
    Ok(out)
}

/// Ranged access to one object: a local file, or S3 `GetObject` with a `Range` header.
pub enum ObjectReader {
    Local(tokio::fs::File),
    S3 {
        client: aws_sdk_s3::Client,
        bucket: String,
        key: String,
        size: u64,
    },
}

impl AsyncFileReader for ObjectReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        match self {
            ObjectReader::Local(file) => file.get_bytes(range),
            ObjectReader::S3 {
                client,
                bucket,
                key,
                ..
            } => async move {
                if range.start >= range.end {
                    return Ok(Bytes::new());
                }
                let resp = client
                    .get_object()
                    .bucket(bucket.as_str())
                    .key(key.as_str())
                    .range(format!("bytes={}-{}", range.start, range.end - 1))
                    .send()
                    .await
                    .map_err(|e| {
                        parquet::errors::ParquetError::External(
                            aws_sdk_s3::error::DisplayErrorContext(&e)
                                .to_string()
                                .into(),
                        )
                    })?;
                let body = resp
                    .body
                    .collect()
                    .await
                    .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))?;
                Ok(body.into_bytes())
            }
            .boxed(),
        }
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        match self {
            ObjectReader::Local(file) => file.get_metadata(options),
            ObjectReader::S3 { size, .. } => {
                let size = *size;
                async move {
                    let meta = ParquetMetaDataReader::new()
                        .load_and_finish(self, size)
                        .await?;
                    Ok(Arc::new(meta))
                }
                .boxed()
            }
        }
    }
}
