//! `s3://bucket[/prefix]` (also `s3:///bucket/prefix`, `s3+http://bucket/prefix`,
//! and duplicity 0.8's `s3://host:port/bucket/prefix`) on any S3-compatible
//! store: AWS, Ceph RGW, Garage, MinIO. Requests are signed with rusty-s3
//! (SigV4, presigned) and sent with reqwest over rustls/ring.
//!
//! - Endpoint, region and addressing come from [`S3Options`], then the
//!   standard AWS variables (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`,
//!   `AWS_REGION`, `AWS_DEFAULT_REGION`); credentials from
//!   `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`(/`AWS_SESSION_TOKEN`), else
//!   the shared credentials file.
//! - An object appears only when its upload completes (S3's own rule), and
//!   every PUT carries `Content-MD5`, which the store checks: nothing partial
//!   ever carries a name. Volumes larger than the chunk size go up as a
//!   multipart upload, each part retried on its own; a failed one is aborted.
//! - Listings follow continuation tokens, so more than 1,000 objects work.
//! - Presigned URLs are bearer tokens: they never appear in messages.

use super::retry::Retry;
use super::spool::SpoolUpload;
use super::{Backend, BackendError, BackendOptions, S3Options, Upload};
use md5::Digest as _;
use rusty_s3::actions::{ObjectIdentifier, S3Action as _};
use rusty_s3::{Bucket, Credentials, UrlStyle};

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// rusty-s3 builds each action's URL; called without credentials its
/// `sign` adds no signature (requests are signed in headers, see `signed`).
const SIGN_FOR: Duration = Duration::from_secs(3600);
/// S3's smallest part (but the last).
const MIN_PART: u64 = 5 << 20;
const MAX_PARTS: u64 = 10_000;

pub struct S3Backend(Arc<Inner>);

struct Inner {
    describe: String,
    bucket: Bucket,
    creds: Credentials,
    /// "" or "some/prefix/".
    prefix: String,
    client: reqwest::Client,
    rt: tokio::runtime::Runtime,
    opts: BackendOptions,
    retry: Retry,
}

/// Where a `s3://` URL points.
#[derive(Debug, PartialEq, Eq)]
struct Where {
    /// An endpoint named in the URL (`s3://host:port/bucket/...`).
    endpoint: Option<String>,
    bucket: String,
    prefix: String,
    http: bool,
}

fn parse_url(url: &str) -> Result<Where, String> {
    let (scheme, rest) = url.split_once("://").ok_or("no scheme://")?;
    let http = scheme == "s3+http";
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    let (endpoint, bucket, prefix) = if host.is_empty() {
        // s3:///bucket/prefix
        let (b, p) = path.split_once('/').unwrap_or((path, ""));
        (None, b.to_string(), p.to_string())
    } else if host.contains(':') {
        // duplicity 0.8: s3://host:port/bucket/prefix
        let (b, p) = path.split_once('/').unwrap_or((path, ""));
        (Some(host.to_string()), b.to_string(), p.to_string())
    } else {
        (None, host.to_string(), path.to_string())
    };
    if bucket.is_empty() {
        return Err("no bucket name".into());
    }
    let prefix = prefix.trim_matches('/');
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    Ok(Where {
        endpoint,
        bucket,
        prefix,
        http,
    })
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Credentials from the environment, else the shared credentials file.
fn credentials(o: &S3Options) -> Result<Credentials, String> {
    if let (Some(k), Some(s)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        return Ok(match env("AWS_SESSION_TOKEN") {
            Some(t) => Credentials::new_with_token(k, s, t),
            None => Credentials::new(k, s),
        });
    }
    let file = o
        .credentials_file
        .clone()
        .or_else(|| env("AWS_SHARED_CREDENTIALS_FILE").map(PathBuf::from))
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map_or_else(|| PathBuf::from("/root"), PathBuf::from)
                .join(".aws/credentials")
        });
    let profile = o
        .profile
        .clone()
        .or_else(|| env("AWS_PROFILE"))
        .unwrap_or_else(|| "default".into());
    let text = std::fs::read_to_string(&file).map_err(|e| {
        format!(
            "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or put them in \
             {} ({e})",
            file.display()
        )
    })?;
    let (mut key, mut secret, mut token) = (None, None, None);
    let mut in_profile = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(sec) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let sec = sec.trim();
            in_profile = sec == profile || sec == format!("profile {profile}");
            continue;
        }
        if !in_profile {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().to_string();
            match k.trim() {
                "aws_access_key_id" => key = Some(v),
                "aws_secret_access_key" => secret = Some(v),
                "aws_session_token" => token = Some(v),
                _ => {}
            }
        }
    }
    match (key, secret) {
        (Some(k), Some(s)) => Ok(match token {
            Some(t) => Credentials::new_with_token(k, s, t),
            None => Credentials::new(k, s),
        }),
        _ => Err(format!(
            "no S3 credentials for profile {profile:?} in {}",
            file.display()
        )),
    }
}

/// The `<Code>` and `<Message>` of an S3 error document.
fn error_code(body: &str) -> (String, String) {
    let tag = |t: &str| {
        let open = format!("<{t}>");
        let close = format!("</{t}>");
        body.find(&open)
            .and_then(|i| {
                let rest = &body[i + open.len()..];
                rest.find(&close).map(|j| rest[..j].to_string())
            })
            .unwrap_or_default()
    };
    (tag("Code"), tag("Message"))
}

impl S3Backend {
    pub fn new(url: &str, opts: &BackendOptions) -> Result<S3Backend, BackendError> {
        let describe = super::url::redact(url);
        let bad = |reason: String| BackendError::BadUrl {
            url: describe.clone(),
            reason,
        };
        let w = parse_url(url).map_err(|r| bad(r.to_string()))?;
        let o = &opts.s3;
        let region = o
            .region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".into());
        let scheme = if w.http || o.unencrypted_connection {
            "http"
        } else {
            "https"
        };
        let (endpoint, custom) = match o
            .endpoint
            .clone()
            .or_else(|| w.endpoint.as_ref().map(|h| format!("{scheme}://{h}")))
            .or_else(|| env("AWS_ENDPOINT_URL_S3"))
            .or_else(|| env("AWS_ENDPOINT_URL"))
        {
            Some(e) => (e, true),
            None => (format!("{scheme}://s3.{region}.amazonaws.com"), false),
        };
        let style = if o.path_style.unwrap_or(custom) {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let endpoint_url = endpoint
            .parse()
            .map_err(|e| bad(format!("bad S3 endpoint {endpoint:?}: {e}")))?;
        let bucket = Bucket::new(endpoint_url, style, w.bucket.clone(), region)
            .map_err(|e| bad(format!("bucket {:?} at {endpoint}: {e}", w.bucket)))?;
        let creds = credentials(o).map_err(|detail| BackendError::Auth {
            target: describe.clone(),
            detail,
        })?;
        let setup = |detail: String| BackendError::Setup {
            target: describe.clone(),
            detail,
        };
        // rustls needs a process-wide provider: ring (also arti's).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut cb = reqwest::Client::builder()
            .connect_timeout(opts.timeout.max(Duration::from_secs(1)))
            .read_timeout(opts.timeout.max(Duration::from_secs(1)))
            .no_proxy();
        if let Some(ca) = &o.ca_file {
            let pem =
                std::fs::read(ca).map_err(|e| setup(format!("reading {}: {e}", ca.display())))?;
            for c in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| setup(format!("{}: {e}", ca.display())))?
            {
                cb = cb.add_root_certificate(c);
            }
        }
        let client = cb
            .build()
            .map_err(|e| setup(format!("cannot start the HTTP client: {e}")))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("cairn-s3")
            .enable_all()
            .build()
            .map_err(|e| setup(format!("cannot start the HTTP client: {e}")))?;
        Ok(S3Backend(Arc::new(Inner {
            describe,
            bucket,
            creds,
            prefix: w.prefix,
            client,
            rt,
            opts: opts.clone(),
            retry: Retry::new(opts),
        })))
    }
}

impl Inner {
    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// A request signed with AWS Signature V4 in its headers (not a
    /// presigned URL: signatures stay out of URLs, and so out of any proxy's
    /// or server's request log). The payload's SHA-256 is signed too, so the
    /// store rejects a body that arrives altered.
    fn signed(
        &self,
        method: reqwest::Method,
        url: reqwest::Url,
        body: &[u8],
    ) -> reqwest::RequestBuilder {
        let now = chrono::Utc::now();
        let h = sigv4::sign(
            method.as_str(),
            &url,
            body,
            &sigv4::Key {
                id: self.creds.key(),
                secret: self.creds.secret(),
                token: self.creds.token(),
                region: self.bucket.region(),
            },
            &now.format("%Y%m%dT%H%M%SZ").to_string(),
        );
        let mut req = self.client.request(method, url);
        for (k, v) in h {
            req = req.header(k, v);
        }
        req
    }

    fn net_err(&self, op: &'static str, name: &str, e: reqwest::Error) -> BackendError {
        let e = e.without_url();
        let target = self.describe.clone();
        if e.is_timeout() {
            BackendError::Timeout {
                target,
                op,
                name: name.to_string(),
                secs: self.opts.timeout.as_secs(),
            }
        } else if e.is_connect() {
            BackendError::Unreachable {
                target,
                detail: format!("{e}: {}", source_chain(&e)),
            }
        } else {
            BackendError::Remote {
                target,
                op,
                name: name.to_string(),
                detail: format!("{e}: {}", source_chain(&e)),
            }
        }
    }

    /// Maps an S3 error response.
    fn http_err(&self, op: &'static str, name: &str, status: u16, body: &str) -> BackendError {
        classify(&self.describe, self.bucket.name(), op, name, status, body)
    }

    /// Sends a request; returns the body of a 2xx answer.
    async fn send(
        &self,
        op: &'static str,
        name: &str,
        req: reqwest::RequestBuilder,
        limit: Duration,
    ) -> Result<String, BackendError> {
        let fut = async {
            let resp = req.send().await.map_err(|e| self.net_err(op, name, e))?;
            let status = resp.status().as_u16();
            let body = resp.text().await.map_err(|e| self.net_err(op, name, e))?;
            if !(200..300).contains(&status) {
                return Err(self.http_err(op, name, status, &body));
            }
            Ok(body)
        };
        tokio::time::timeout(limit, fut)
            .await
            .map_err(|_| BackendError::Timeout {
                target: self.describe.clone(),
                op,
                name: name.to_string(),
                secs: limit.as_secs(),
            })?
    }

    /// Time allowed to send `bytes`: the timeout, plus the bytes at a floor
    /// of 64 KiB/s.
    fn transfer_limit(&self, bytes: u64) -> Duration {
        self.opts.timeout.max(Duration::from_secs(1)) + Duration::from_secs(bytes / (64 << 10))
    }

    fn put_single(&self, name: &str, data: Vec<u8>) -> Result<(), BackendError> {
        let key = self.key(name);
        let md5 = b64(&md5::Md5::digest(&data));
        let limit = self.transfer_limit(data.len() as u64);
        self.retry.run(|_| {
            let url = self.bucket.put_object(None, &key).sign(SIGN_FOR);
            let req = self
                .signed(reqwest::Method::PUT, url, &data)
                .header("Content-MD5", &md5)
                .body(data.clone());
            self.rt
                .block_on(self.send("upload", name, req, limit))
                .map(|_| ())
        })
    }

    fn put(&self, local: &Path, size: u64, name: &str) -> Result<(), BackendError> {
        let io = |source| BackendError::Io {
            target: self.describe.clone(),
            op: "upload",
            name: name.to_string(),
            source,
        };
        let chunk = self.opts.s3.multipart_chunk_size.max(MIN_PART);
        let mut f = std::fs::File::open(local).map_err(io)?;
        if size <= chunk {
            let mut data = Vec::with_capacity(size as usize);
            f.read_to_end(&mut data).map_err(io)?;
            return self.put_single(name, data);
        }
        let part_size = chunk.max(size.div_ceil(MAX_PARTS));
        let key = self.key(name);
        let body = self.retry.run(|_| {
            let url = self
                .bucket
                .create_multipart_upload(None, &key)
                .sign(SIGN_FOR);
            self.rt.block_on(self.send(
                "start the multipart upload of",
                name,
                self.signed(reqwest::Method::POST, url, b""),
                self.transfer_limit(0),
            ))
        })?;
        let created =
            rusty_s3::actions::CreateMultipartUpload::parse_response(&body).map_err(|e| {
                BackendError::Remote {
                    target: self.describe.clone(),
                    op: "upload",
                    name: name.to_string(),
                    detail: format!("unreadable answer to CreateMultipartUpload: {e}"),
                }
            })?;
        let upload_id = created.upload_id().to_string();
        let r = self.upload_parts(&mut f, size, part_size, name, &key, &upload_id);
        if r.is_err() {
            // Best effort: drop the parts so they cost nothing.
            let url = self
                .bucket
                .abort_multipart_upload(None, &key, &upload_id)
                .sign(SIGN_FOR);
            let _ = self.rt.block_on(self.send(
                "abort the upload of",
                name,
                self.signed(reqwest::Method::DELETE, url, b""),
                self.transfer_limit(0),
            ));
        }
        r
    }

    fn upload_parts(
        &self,
        f: &mut std::fs::File,
        size: u64,
        part_size: u64,
        name: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), BackendError> {
        let io = |source| BackendError::Io {
            target: self.describe.clone(),
            op: "upload",
            name: name.to_string(),
            source,
        };
        let mut etags = Vec::new();
        let mut offset = 0u64;
        let mut number: u16 = 1;
        while offset < size {
            let len = part_size.min(size - offset);
            let mut data = vec![0u8; len as usize];
            f.seek(SeekFrom::Start(offset)).map_err(io)?;
            f.read_exact(&mut data).map_err(io)?;
            let md5 = b64(&md5::Md5::digest(&data));
            let limit = self.transfer_limit(len);
            let etag = self.retry.run(|_| {
                let url = self
                    .bucket
                    .upload_part(None, key, number, upload_id)
                    .sign(SIGN_FOR);
                let req = self
                    .signed(reqwest::Method::PUT, url, &data)
                    .header("Content-MD5", &md5)
                    .body(data.clone());
                self.rt.block_on(async {
                    let fut = async {
                        let resp = req
                            .send()
                            .await
                            .map_err(|e| self.net_err("upload", name, e))?;
                        let status = resp.status().as_u16();
                        let etag = resp
                            .headers()
                            .get("etag")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string);
                        let body = resp
                            .text()
                            .await
                            .map_err(|e| self.net_err("upload", name, e))?;
                        if !(200..300).contains(&status) {
                            return Err(self.http_err("upload", name, status, &body));
                        }
                        etag.ok_or_else(|| BackendError::Remote {
                            target: self.describe.clone(),
                            op: "upload",
                            name: name.to_string(),
                            detail: format!("no ETag for part {number}"),
                        })
                    };
                    tokio::time::timeout(limit, fut)
                        .await
                        .map_err(|_| BackendError::Timeout {
                            target: self.describe.clone(),
                            op: "upload",
                            name: name.to_string(),
                            secs: limit.as_secs(),
                        })?
                })
            })?;
            etags.push(etag);
            offset += len;
            number += 1;
        }
        self.retry.run(|_| {
            let action = self.bucket.complete_multipart_upload(
                None,
                key,
                upload_id,
                etags.iter().map(String::as_str),
            );
            let url = action.sign(SIGN_FOR);
            let body = action.body();
            let req = self
                .signed(reqwest::Method::POST, url, body.as_bytes())
                .body(body);
            let answer = self.rt.block_on(self.send(
                "finish the multipart upload of",
                name,
                req,
                self.transfer_limit(0) + Duration::from_secs(60),
            ))?;
            // S3 may answer 200 with an error document.
            if answer.contains("<Error>") {
                let (code, message) = error_code(&answer);
                return Err(BackendError::Remote {
                    target: self.describe.clone(),
                    op: "finish the multipart upload of",
                    name: name.to_string(),
                    detail: format!("{code}: {message}"),
                });
            }
            Ok(())
        })
    }

    fn get(&self, name: &str, dest: &Path) -> Result<(), BackendError> {
        let key = self.key(name);
        self.retry.run(|_| {
            let url = self.bucket.get_object(None, &key).sign(SIGN_FOR);
            let io = |source| BackendError::Io {
                target: self.describe.clone(),
                op: "download",
                name: name.to_string(),
                source,
            };
            self.rt.block_on(async {
                let mut resp = self
                    .signed(reqwest::Method::GET, url, b"")
                    .send()
                    .await
                    .map_err(|e| self.net_err("download", name, e))?;
                let status = resp.status().as_u16();
                if !(200..300).contains(&status) {
                    let body = resp.text().await.unwrap_or_default();
                    return Err(self.http_err("download", name, status, &body));
                }
                let mut out = std::fs::File::create(dest).map_err(io)?;
                while let Some(chunk) = resp
                    .chunk()
                    .await
                    .map_err(|e| self.net_err("download", name, e))?
                {
                    std::io::Write::write_all(&mut out, &chunk).map_err(io)?;
                }
                out.sync_all().map_err(io)?;
                Ok(())
            })
        })
    }

    /// The objects under the prefix, with their sizes where listed.
    fn list(&self) -> Result<Vec<(String, Option<u64>)>, BackendError> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let body = self.retry.run(|_| {
                let mut action = self.bucket.list_objects_v2(None);
                if !self.prefix.is_empty() {
                    action.with_prefix(self.prefix.as_str());
                }
                action.with_delimiter("/");
                if let Some(t) = &token {
                    action.with_continuation_token(t.as_str());
                }
                let url = action.sign(SIGN_FOR);
                let req = self.signed(reqwest::Method::GET, url, b"");
                self.rt
                    .block_on(self.send("list", "", req, self.transfer_limit(0)))
            })?;
            let parsed = rusty_s3::actions::ListObjectsV2::parse_response(&body).map_err(|e| {
                BackendError::Remote {
                    target: self.describe.clone(),
                    op: "list",
                    name: String::new(),
                    detail: format!("unreadable listing: {e}"),
                }
            })?;
            for c in parsed.contents {
                if let Some(n) = c.key.strip_prefix(&self.prefix)
                    && !n.is_empty()
                    && !n.contains('/')
                {
                    names.push((n.to_string(), c.size));
                }
            }
            match parsed.next_continuation_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => break,
            }
        }
        names.sort();
        Ok(names)
    }

    fn delete(&self, names: &[String]) -> Result<(), BackendError> {
        for batch in names.chunks(1000) {
            let ids: Vec<ObjectIdentifier> = batch
                .iter()
                .map(|n| ObjectIdentifier::new(self.key(n)))
                .collect();
            let body = self.retry.run(|_| {
                let mut action = self.bucket.delete_objects(None, ids.iter());
                action.set_quiet(true);
                let url = action.sign(SIGN_FOR);
                let (body, md5) = action.body_with_md5();
                let req = self
                    .signed(reqwest::Method::POST, url, body.as_bytes())
                    .header("Content-MD5", md5)
                    .body(body);
                self.rt.block_on(self.send(
                    "delete",
                    &batch.join(", "),
                    req,
                    self.transfer_limit(0),
                ))
            })?;
            if body.contains("<Error>") {
                let (code, message) = error_code(&body);
                if code != "NoSuchKey" {
                    return Err(BackendError::Remote {
                        target: self.describe.clone(),
                        op: "delete",
                        name: batch.join(", "),
                        detail: format!("{code}: {message}"),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Maps an S3 error response to what went wrong.
fn classify(
    target: &str,
    bucket: &str,
    op: &'static str,
    name: &str,
    status: u16,
    body: &str,
) -> BackendError {
    let (code, message) = error_code(body);
    let target = target.to_string();
    let detail = if code.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status} {code}: {message}")
    };
    match (status, code.as_str()) {
        (507, _)
        | (
            _,
            "QuotaExceeded"
            | "XMinioStorageFull"
            | "InsufficientStorage"
            | "XMinioAdminBucketQuotaExceeded",
        ) => BackendError::NoSpace {
            target,
            name: name.to_string(),
            detail,
        },
        (
            _,
            "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "AccessDenied"
            | "ExpiredToken"
            | "InvalidToken",
        )
        | (401 | 403, _) => BackendError::Auth { target, detail },
        (_, "NoSuchBucket") => BackendError::MissingContainer {
            target,
            what: format!("bucket {:?}", bucket),
            detail,
        },
        (_, "NoSuchKey") | (404, "") => BackendError::NotFound {
            target,
            name: name.to_string(),
        },
        _ => BackendError::Remote {
            target,
            op,
            name: name.to_string(),
            detail,
        },
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut cur = e.source();
    while let Some(s) = cur {
        parts.push(s.to_string());
        cur = s.source();
    }
    if parts.is_empty() {
        "no further detail".into()
    } else {
        parts.join(": ")
    }
}

fn b64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// AWS Signature Version 4 for S3, in headers.
mod sigv4 {
    use sha2::{Digest, Sha256};

    pub struct Key<'a> {
        pub id: &'a str,
        pub secret: &'a str,
        pub token: Option<&'a str>,
        pub region: &'a str,
    }

    fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
        let mut k = [0u8; 64];
        if key.len() > 64 {
            k[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            k[..key.len()].copy_from_slice(key);
        }
        let mut inner = Sha256::new();
        inner.update(k.map(|b| b ^ 0x36));
        inner.update(msg);
        let mut outer = Sha256::new();
        outer.update(k.map(|b| b ^ 0x5c));
        outer.update(inner.finalize());
        outer.finalize().into()
    }

    /// RFC 3986 encoding as SigV4 wants it (unreserved characters kept).
    fn enc(s: &str) -> String {
        let mut o = String::new();
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                o.push(b as char);
            } else {
                o.push_str(&format!("%{b:02X}"));
            }
        }
        o
    }

    /// The headers to add: x-amz-date, x-amz-content-sha256, the session
    /// token if any, and Authorization.
    pub fn sign(
        method: &str,
        url: &reqwest::Url,
        body: &[u8],
        key: &Key,
        amz_date: &str,
    ) -> Vec<(&'static str, String)> {
        let date = &amz_date[..8];
        let payload = hex::encode(Sha256::digest(body));
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
            None => url.host_str().unwrap_or("").to_string(),
        };
        let mut q: Vec<(String, String)> =
            url.query_pairs().map(|(k, v)| (enc(&k), enc(&v))).collect();
        q.sort();
        let query = q
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let mut headers = vec![
            ("host", host),
            ("x-amz-content-sha256", payload.clone()),
            ("x-amz-date", amz_date.to_string()),
        ];
        if let Some(t) = key.token {
            headers.push(("x-amz-security-token", t.to_string()));
        }
        let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let signed: String = headers
            .iter()
            .map(|(k, _)| *k)
            .collect::<Vec<_>>()
            .join(";");
        let canonical = format!(
            "{method}\n{}\n{query}\n{canonical_headers}\n{signed}\n{payload}",
            url.path()
        );
        let scope = format!("{date}/{}/s3/aws4_request", key.region);
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let mut k = hmac(format!("AWS4{}", key.secret).as_bytes(), date.as_bytes());
        for part in [key.region, "s3", "aws4_request"] {
            k = hmac(&k, part.as_bytes());
        }
        let sig = hex::encode(hmac(&k, to_sign.as_bytes()));
        let mut out: Vec<(&'static str, String)> =
            headers.into_iter().filter(|(k, _)| *k != "host").collect();
        out.push((
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={sig}",
                key.id
            ),
        ));
        out
    }

    #[cfg(test)]
    mod tests {
        /// The header layout and the HMAC chain. That the signatures are
        /// right is shown by tests/backend_s3.rs against moto with IAM
        /// authentication switched on (a good key works, a bad one fails).
        #[test]
        fn hmac_and_header_layout() {
            let url: reqwest::Url = "https://examplebucket.s3.amazonaws.com/test.txt"
                .parse()
                .unwrap();
            let h = super::sign(
                "GET",
                &url,
                b"",
                &super::Key {
                    id: "AKIAIOSFODNN7EXAMPLE",
                    secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                    token: None,
                    region: "us-east-1",
                },
                "20130524T000000Z",
            );
            let auth = &h.iter().find(|(k, _)| *k == "authorization").unwrap().1;
            assert!(auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature="
            ));
            // RFC 4231 test case 2 for HMAC-SHA256.
            assert_eq!(
                hex::encode(super::hmac(b"Jefe", b"what do ya want for nothing?")),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
            );
        }
    }
}

impl Backend for S3Backend {
    fn describe(&self) -> String {
        self.0.describe.clone()
    }

    fn list(&self) -> Result<Vec<String>, BackendError> {
        Ok(self.0.list()?.into_iter().map(|(n, _)| n).collect())
    }

    fn list_sized(&self) -> Result<Vec<(String, Option<u64>)>, BackendError> {
        self.0.list()
    }

    fn open(&self, name: &str) -> Result<Box<dyn Read + Send + Sync>, BackendError> {
        let dir = self.0.opts.tempdir();
        super::spool::download(&dir, &self.describe(), name, |dest| self.0.get(name, dest))
    }

    fn get(&self, name: &str, dest: &Path) -> Result<(), BackendError> {
        self.0.get(name, dest)
    }

    fn create(&self, name: &str) -> Result<Box<dyn Upload>, BackendError> {
        if name.is_empty() || name.contains('/') {
            return Err(BackendError::BadUrl {
                url: self.describe(),
                reason: format!("refusing file name {name:?}"),
            });
        }
        let inner = self.0.clone();
        let n = name.to_string();
        Ok(Box::new(SpoolUpload::new(
            &self.0.opts.tempdir(),
            &self.0.describe,
            name,
            Box::new(move |path: &Path, size| inner.put(path, size, &n)),
        )?))
    }

    fn delete(&self, names: &[String]) -> Result<(), BackendError> {
        self.0.delete(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let w = parse_url("s3://bucket/a/b/").unwrap();
        assert_eq!(
            (w.bucket.as_str(), w.prefix.as_str(), w.endpoint),
            ("bucket", "a/b/", None)
        );
        let w = parse_url("s3:///bucket").unwrap();
        assert_eq!((w.bucket.as_str(), w.prefix.as_str()), ("bucket", ""));
        let w = parse_url("s3://minio.lan:9000/bucket/p").unwrap();
        assert_eq!(w.endpoint.as_deref(), Some("minio.lan:9000"));
        assert_eq!(w.bucket, "bucket");
        assert!(parse_url("s3+http://b/x").unwrap().http);
        assert!(parse_url("s3:///").is_err());
    }

    #[test]
    fn maps_errors_and_encodes() {
        assert_eq!(
            error_code("<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>"),
            ("NoSuchKey".to_string(), "gone".to_string())
        );
        fn c(status: u16, body: &str) -> BackendError {
            classify("s3://b/p", "b", "upload", "n", status, body)
        }
        let doc = |code: &str| format!("<Error><Code>{code}</Code><Message>m</Message></Error>");
        assert!(matches!(
            c(403, &doc("SignatureDoesNotMatch")),
            BackendError::Auth { .. }
        ));
        assert!(matches!(
            c(404, &doc("NoSuchBucket")),
            BackendError::MissingContainer { .. }
        ));
        assert!(matches!(
            c(404, &doc("NoSuchKey")),
            BackendError::NotFound { .. }
        ));
        assert!(matches!(c(507, ""), BackendError::NoSpace { .. }));
        assert!(matches!(
            c(403, &doc("QuotaExceeded")),
            BackendError::NoSpace { .. }
        ));
        assert!(matches!(
            c(400, &doc("XMinioStorageFull")),
            BackendError::NoSpace { .. }
        ));
        let e = c(503, &doc("SlowDown"));
        assert!(e.is_transient(), "{e}");
        assert!(e.to_string().contains("HTTP 503 SlowDown"), "{e}");
        assert_eq!(b64(b"hello"), "aGVsbG8=");
        assert_eq!(b64(b"hi"), "aGk=");
        assert_eq!(b64(b"abc"), "YWJj");
    }
}
