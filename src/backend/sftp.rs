//! `sftp://[user[:password]@]host[:port]/rel/path` (relative to the login
//! directory) and `sftp://user@host//abs/path`, with russh and russh-sftp
//! (pure Rust). The server's host key must be in a known_hosts file
//! (`~/.ssh/known_hosts`, `/etc/ssh/ssh_known_hosts`, or the files given):
//! an unknown key is refused with its fingerprint and the command that
//! records it, a changed key is refused as a possible attack. Nothing is
//! trusted blindly. Authentication is by key (`~/.ssh/id_ed25519`,
//! `id_ecdsa`, `id_rsa`, or the files given), then by password if the URL or
//! `FTP_PASSWORD` has one.
//!
//! Uploads are written as `.cairn-upload.NAME.PID`, synced (where the server
//! offers `fsync@openssh.com`), closed, then renamed to NAME: a partial file
//! never carries a complete-looking name.

use super::retry::Retry;
use super::spool::SpoolUpload;
use super::tor::{self, Route};
use super::url::{TargetUrl, redact};
use super::{Backend, BackendError, BackendOptions, Upload};
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh_sftp::client::SftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{OpenFlags, StatusCode};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct SftpBackend(Arc<Inner>);

struct Inner {
    describe: String,
    user: String,
    password: Option<String>,
    host: String,
    port: u16,
    /// The target directory: "" (login directory), relative, or absolute.
    dir: String,
    opts: BackendOptions,
    retry: Retry,
    route: Route,
    identities: Vec<PathBuf>,
    known_hosts: Vec<PathBuf>,
    rt: tokio::runtime::Runtime,
    conn: Mutex<Option<Arc<Conn>>>,
    dir_ready: Mutex<bool>,
}

struct Conn {
    sftp: SftpSession,
    _ssh: russh::client::Handle<Client>,
    _child: Option<tokio::process::Child>,
}

struct Client {
    host: String,
    port: u16,
    known_hosts: Vec<PathBuf>,
    verdict: Arc<Mutex<Option<String>>>,
}

fn host_label(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

impl russh::client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            *self.verdict.lock().unwrap() = Some(
                "the server offered a host certificate; Cairn checks plain host keys only".into(),
            );
            return Ok(false);
        };
        let label = host_label(&self.host, self.port);
        for kh in &self.known_hosts {
            match russh::keys::check_known_hosts_path(&self.host, self.port, key, kh) {
                Ok(true) => return Ok(true),
                Ok(false) => {}
                Err(russh::keys::Error::KeyChanged { line }) => {
                    *self.verdict.lock().unwrap() = Some(format!(
                        "the host key of {label} ({} {}) does NOT match line {line} of {}: \
                         someone may be intercepting the connection, or the server was \
                         reinstalled; check with its administrator before fixing known_hosts",
                        key.algorithm(),
                        key.fingerprint(HashAlg::Sha256),
                        kh.display()
                    ));
                    return Ok(false);
                }
                Err(_) => {}
            }
        }
        let files: Vec<String> = self
            .known_hosts
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let port_opt = if self.port == 22 {
            String::new()
        } else {
            format!("-p {} ", self.port)
        };
        *self.verdict.lock().unwrap() = Some(format!(
            "unknown host key for {label}: {} {} is not in {}; check the fingerprint with \
             the server's administrator, then record it, e.g. `ssh-keyscan {port_opt}{} >> \
             ~/.ssh/known_hosts`",
            key.algorithm(),
            key.fingerprint(HashAlg::Sha256),
            if files.is_empty() {
                "any known_hosts file".to_string()
            } else {
                files.join(", ")
            },
            self.host,
        ));
        Ok(false)
    }
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from)
}

/// `-oName=value`, `-o Name=value` and `-i file` from `--ssh-options`.
fn ssh_option(opts: &[String], name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = opts.iter().peekable();
    while let Some(o) = it.next() {
        let body = if o == "-o" {
            it.next().cloned()
        } else {
            o.strip_prefix("-o").map(str::to_string)
        };
        if let Some(b) = body {
            let (k, v) = b.split_once(['=', ' ']).unwrap_or((b.as_str(), ""));
            if k.eq_ignore_ascii_case(name) {
                out.push(v.trim().to_string());
            }
        } else if name == "IdentityFile"
            && o == "-i"
            && let Some(f) = it.next()
        {
            out.push(f.clone());
        }
    }
    out
}

impl SftpBackend {
    pub fn new(url: &str, opts: &BackendOptions) -> Result<SftpBackend, BackendError> {
        let u = TargetUrl::parse(url)?;
        let describe = redact(url);
        let dir = match u.path.strip_prefix("//") {
            Some(abs) => format!("/{}", abs.trim_end_matches('/')),
            None => u
                .path
                .trim_start_matches('/')
                .trim_end_matches('/')
                .to_string(),
        };
        let user = u
            .user
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "root".into());
        let password = u
            .password
            .clone()
            .or_else(|| std::env::var("FTP_PASSWORD").ok());
        let mut identities: Vec<PathBuf> = opts.sftp.identity_files.clone();
        identities.extend(
            ssh_option(&opts.ssh_options, "IdentityFile")
                .into_iter()
                .map(PathBuf::from),
        );
        if identities.is_empty() {
            for n in ["id_ed25519", "id_ecdsa", "id_rsa"] {
                identities.push(home().join(".ssh").join(n));
            }
        }
        let mut known_hosts: Vec<PathBuf> = opts.sftp.known_hosts.clone();
        known_hosts.extend(
            ssh_option(&opts.ssh_options, "UserKnownHostsFile")
                .iter()
                .flat_map(|v| v.split_whitespace().map(PathBuf::from).collect::<Vec<_>>()),
        );
        if known_hosts.is_empty() {
            known_hosts.push(home().join(".ssh/known_hosts"));
            known_hosts.push(PathBuf::from("/etc/ssh/ssh_known_hosts"));
        }
        let port = u.port.unwrap_or(22);
        let route = tor::route(opts, &describe, &u.host, false)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("cairn-sftp")
            .enable_all()
            .build()
            .map_err(|e| BackendError::Setup {
                target: describe.clone(),
                detail: format!("cannot start the SFTP client: {e}"),
            })?;
        Ok(SftpBackend(Arc::new(Inner {
            describe,
            user,
            password,
            host: u.host,
            port,
            dir,
            opts: opts.clone(),
            retry: Retry::new(opts),
            route,
            identities,
            known_hosts,
            rt,
            conn: Mutex::new(None),
            dir_ready: Mutex::new(false),
        })))
    }
}

impl Inner {
    fn path(&self, name: &str) -> String {
        if self.dir.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.dir)
        }
    }

    fn list_dir(&self) -> String {
        if self.dir.is_empty() {
            ".".into()
        } else {
            self.dir.clone()
        }
    }

    fn connect_timeout(&self) -> Duration {
        match self.route {
            Route::Direct => self.opts.timeout,
            Route::Helper(_) => self.opts.timeout + self.opts.tor.connect_timeout,
        }
    }

    /// The open session, connecting (and authenticating) if there is none.
    fn conn(&self) -> Result<Arc<Conn>, BackendError> {
        let mut g = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = g.as_ref() {
            return Ok(c.clone());
        }
        let c = Arc::new(self.rt.block_on(self.connect())?);
        *g = Some(c.clone());
        Ok(c)
    }

    /// Forgets a session after an error, so the next attempt reconnects.
    fn reset(&self) {
        let old = self.conn.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(old);
    }

    async fn connect(&self) -> Result<Conn, BackendError> {
        let target = self.describe.clone();
        let unreachable = |detail: String| BackendError::Unreachable {
            target: target.clone(),
            detail,
        };
        let verdict = Arc::new(Mutex::new(None));
        let handler = Client {
            host: self.host.clone(),
            port: self.port,
            known_hosts: self.known_hosts.clone(),
            verdict: verdict.clone(),
        };
        let config = Arc::new(russh::client::Config {
            keepalive_interval: Some(Duration::from_secs(15)),
            keepalive_max: 4,
            ..Default::default()
        });
        let limit = self.connect_timeout();
        let timed_out = || BackendError::Timeout {
            target: target.clone(),
            op: "connect to",
            name: host_label(&self.host, self.port),
            secs: limit.as_secs(),
        };
        let mut child = None;
        let connected = match &self.route {
            Route::Direct => {
                let addr = (self.host.as_str(), self.port);
                tokio::time::timeout(limit, russh::client::connect(config, addr, handler)).await
            }
            Route::Helper(argv) => {
                let mut c = tokio::process::Command::new(&argv[0]);
                c.args(&argv[1..])
                    .arg(&self.host)
                    .arg(self.port.to_string())
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .kill_on_drop(true);
                let mut ch = c
                    .spawn()
                    .map_err(|e| unreachable(format!("cannot run {}: {e}", argv[0])))?;
                let stream = tokio::io::join(
                    ch.stdout.take().expect("piped"),
                    ch.stdin.take().expect("piped"),
                );
                let stderr = ch.stderr.take();
                child = Some((ch, stderr));
                tokio::time::timeout(
                    limit,
                    russh::client::connect_stream(config, stream, handler),
                )
                .await
            }
        };
        let handle = match connected {
            Err(_) => return Err(timed_out()),
            Ok(Ok(h)) => h,
            Ok(Err(e)) => {
                if let Some(v) = verdict.lock().unwrap().take() {
                    return Err(BackendError::HostKey { target, detail: v });
                }
                if let Some((_, Some(mut err))) = child.take() {
                    let mut s = String::new();
                    let _ =
                        tokio::time::timeout(Duration::from_secs(2), err.read_to_string(&mut s))
                            .await;
                    if let Some(d) = tor::helper_failure(&s) {
                        return Err(unreachable(d));
                    }
                }
                return Err(unreachable(format!("{e}")));
            }
        };
        let mut handle = handle;
        tokio::time::timeout(limit, self.authenticate(&mut handle))
            .await
            .map_err(|_| timed_out())??;
        let channel = handle
            .channel_open_session()
            .await
            .map_err(|e| unreachable(format!("opening an SSH channel: {e}")))?;
        channel
            .request_subsystem(true, "sftp")
            .await
            .map_err(|e| unreachable(format!("starting the sftp subsystem: {e}")))?;
        let cfg = russh_sftp::client::Config {
            request_timeout_secs: self.opts.timeout.as_secs().max(1),
            ..Default::default()
        };
        let sftp = tokio::time::timeout(
            limit,
            SftpSession::new_with_config(channel.into_stream(), cfg),
        )
        .await
        .map_err(|_| timed_out())?
        .map_err(|e| unreachable(format!("the sftp subsystem did not start: {e}")))?;
        Ok(Conn {
            sftp,
            _ssh: handle,
            _child: child.map(|(c, _)| c),
        })
    }

    async fn authenticate(
        &self,
        handle: &mut russh::client::Handle<Client>,
    ) -> Result<(), BackendError> {
        let mut tried = Vec::new();
        let mut problems = Vec::new();
        for id in &self.identities {
            if !id.exists() {
                continue;
            }
            let key = match russh::keys::load_secret_key(id, None) {
                Ok(k) => k,
                Err(e) => {
                    problems.push(format!("{}: {e}", id.display()));
                    continue;
                }
            };
            let hash = handle
                .best_supported_rsa_hash()
                .await
                .ok()
                .flatten()
                .flatten();
            let k = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
            tried.push(id.display().to_string());
            match handle.authenticate_publickey(&self.user, k).await {
                Ok(r) if r.success() => return Ok(()),
                Ok(_) => {}
                Err(e) => problems.push(format!("{}: {e}", id.display())),
            }
        }
        if let Some(pw) = &self.password {
            tried.push("a password".into());
            match handle.authenticate_password(&self.user, pw).await {
                Ok(r) if r.success() => return Ok(()),
                Ok(_) => {}
                Err(e) => problems.push(format!("password: {e}")),
            }
        }
        let mut detail = if tried.is_empty() {
            format!(
                "no usable private key (looked for {}) and no password",
                self.identities
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            format!(
                "the server refused user {:?} with {}",
                self.user,
                tried.join(", ")
            )
        };
        if !problems.is_empty() {
            detail.push_str(&format!(" ({})", problems.join("; ")));
        }
        Err(BackendError::Auth {
            target: self.describe.clone(),
            detail,
        })
    }

    fn sftp_err(&self, op: &'static str, name: &str, e: SftpError) -> BackendError {
        let target = self.describe.clone();
        match e {
            SftpError::Status(s) if s.status_code == StatusCode::NoSuchFile => {
                BackendError::NotFound {
                    target,
                    name: name.to_string(),
                }
            }
            SftpError::Status(s) if s.status_code == StatusCode::PermissionDenied => {
                BackendError::Setup {
                    target,
                    detail: format!(
                        "cannot {op} {name}: permission denied ({})",
                        s.error_message
                    ),
                }
            }
            SftpError::Timeout => BackendError::Timeout {
                target,
                op,
                name: name.to_string(),
                secs: self.opts.timeout.as_secs(),
            },
            other => BackendError::Remote {
                target,
                op,
                name: name.to_string(),
                detail: other.to_string(),
            },
        }
    }

    /// Runs one operation on a connected session, with retries; a failed
    /// attempt drops the session so that the next one reconnects.
    fn with_conn<T>(
        &self,
        f: impl Fn(Arc<Conn>) -> Result<T, BackendError>,
    ) -> Result<T, BackendError> {
        self.retry.run(|_| {
            let c = self.conn()?;
            let r = f(c);
            if let Err(e) = &r
                && e.is_transient()
            {
                self.reset();
            }
            r
        })
    }

    fn ensure_dir(&self, c: &Conn) -> Result<(), BackendError> {
        let mut ready = self.dir_ready.lock().unwrap_or_else(|e| e.into_inner());
        if *ready || self.dir.is_empty() {
            return Ok(());
        }
        self.rt.block_on(async {
            let mut path = if self.dir.starts_with('/') {
                String::from("")
            } else {
                String::new()
            };
            for part in self.dir.split('/') {
                if part.is_empty() {
                    continue;
                }
                if !path.is_empty() || self.dir.starts_with('/') {
                    path.push('/');
                }
                path.push_str(part);
                match c.sftp.metadata(path.clone()).await {
                    Ok(m) if m.is_dir() => continue,
                    Ok(_) => {
                        return Err(BackendError::Setup {
                            target: self.describe.clone(),
                            detail: format!("{path} exists and is not a directory"),
                        });
                    }
                    Err(_) => {}
                }
                if let Err(e) = c.sftp.create_dir(path.clone()).await {
                    // Another client may have made it meanwhile.
                    if !matches!(c.sftp.metadata(path.clone()).await, Ok(m) if m.is_dir()) {
                        return Err(self.sftp_err("create the directory", &path, e));
                    }
                }
            }
            Ok(())
        })?;
        *ready = true;
        Ok(())
    }

    fn put(&self, local: &Path, size: u64, name: &str) -> Result<(), BackendError> {
        let dest = self.path(name);
        let temp = self.path(&format!(".cairn-upload.{name}.{}", std::process::id()));
        self.with_conn(|c| {
            self.ensure_dir(&c)?;
            let r = self
                .rt
                .block_on(self.put_once(&c, local, &temp, &dest, name));
            if r.is_err() {
                // Best effort: no half-written temporary is left behind.
                let _ = self.rt.block_on(async {
                    tokio::time::timeout(Duration::from_secs(5), c.sftp.remove_file(temp.clone()))
                        .await
                });
            }
            match r {
                Err(BackendError::Remote { .. }) => {
                    // OpenSSH's sftp-server reports a full disk as a plain
                    // "Failure": ask the file system how much room is left.
                    let dir = self.list_dir();
                    let st = self.rt.block_on(async {
                        tokio::time::timeout(Duration::from_secs(5), c.sftp.fs_info(dir)).await
                    });
                    if let Ok(Ok(Some(st))) = st {
                        let free = st.blocks_avail.saturating_mul(st.fragment_size.max(1));
                        if free < size {
                            return Err(BackendError::NoSpace {
                                target: self.describe.clone(),
                                name: name.to_string(),
                                detail: format!("{free} bytes free, {size} needed"),
                            });
                        }
                    }
                    r
                }
                r => r,
            }
        })
    }

    async fn put_once(
        &self,
        c: &Conn,
        local: &Path,
        temp: &str,
        dest: &str,
        name: &str,
    ) -> Result<(), BackendError> {
        let io = |source| BackendError::Io {
            target: self.describe.clone(),
            op: "upload",
            name: name.to_string(),
            source,
        };
        let mut f = c
            .sftp
            .open_with_flags(
                temp.to_string(),
                OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE,
            )
            .await
            .map_err(|e| self.sftp_err("upload", name, e))?;
        let mut src = std::fs::File::open(local).map_err(io)?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = src.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            tokio::time::timeout(
                self.opts.timeout.max(Duration::from_secs(1)),
                f.write_all(&buf[..n]),
            )
            .await
            .map_err(|_| BackendError::Timeout {
                target: self.describe.clone(),
                op: "upload",
                name: name.to_string(),
                secs: self.opts.timeout.as_secs(),
            })?
            .map_err(|e| self.remote_io("upload", name, e))?;
        }
        f.flush()
            .await
            .map_err(|e| self.remote_io("upload", name, e))?;
        // fsync@openssh.com where offered; not every server has it.
        let _ = f.sync_all().await;
        f.shutdown()
            .await
            .map_err(|e| self.remote_io("upload", name, e))?;
        drop(f);
        if let Err(e) = c.sftp.rename(temp.to_string(), dest.to_string()).await {
            // SFTP v3 rename refuses to replace: a retry after a lost reply
            // finds its own file there.
            let have = c
                .sftp
                .metadata(dest.to_string())
                .await
                .ok()
                .map(|m| m.len());
            let want = std::fs::metadata(local).map_err(io)?.len();
            if have == Some(want) {
                let _ = c.sftp.remove_file(temp.to_string()).await;
                return Ok(());
            }
            if have.is_some() {
                c.sftp
                    .remove_file(dest.to_string())
                    .await
                    .map_err(|e| self.sftp_err("upload", name, e))?;
                c.sftp
                    .rename(temp.to_string(), dest.to_string())
                    .await
                    .map_err(|e| self.sftp_err("upload", name, e))?;
                return Ok(());
            }
            return Err(self.sftp_err("upload", name, e));
        }
        Ok(())
    }

    fn remote_io(&self, op: &'static str, name: &str, e: std::io::Error) -> BackendError {
        BackendError::Remote {
            target: self.describe.clone(),
            op,
            name: name.to_string(),
            detail: e.to_string(),
        }
    }

    fn get(&self, name: &str, dest: &Path) -> Result<(), BackendError> {
        let path = self.path(name);
        self.with_conn(|c| {
            self.rt.block_on(async {
                let mut f = c
                    .sftp
                    .open(path.clone())
                    .await
                    .map_err(|e| self.sftp_err("download", name, e))?;
                let io = |source| BackendError::Io {
                    target: self.describe.clone(),
                    op: "download",
                    name: name.to_string(),
                    source,
                };
                let mut out = std::fs::File::create(dest).map_err(io)?;
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    let n = tokio::time::timeout(
                        self.opts.timeout.max(Duration::from_secs(1)),
                        f.read(&mut buf),
                    )
                    .await
                    .map_err(|_| BackendError::Timeout {
                        target: self.describe.clone(),
                        op: "download",
                        name: name.to_string(),
                        secs: self.opts.timeout.as_secs(),
                    })?
                    .map_err(|e| self.remote_io("download", name, e))?;
                    if n == 0 {
                        break;
                    }
                    std::io::Write::write_all(&mut out, &buf[..n]).map_err(io)?;
                }
                out.sync_all().map_err(io)?;
                Ok(())
            })
        })
    }
}

impl SftpBackend {
    /// The target's files, with their sizes where the server gives them.
    fn listing(&self) -> Result<Vec<(String, Option<u64>)>, BackendError> {
        let me = &self.0;
        let dir = me.list_dir();
        let r = me.with_conn(|c| {
            me.rt.block_on(async {
                let rd = c
                    .sftp
                    .read_dir(dir.clone())
                    .await
                    .map_err(|e| me.sftp_err("list", &dir, e))?;
                let mut files: Vec<(String, Option<u64>)> = rd
                    .filter(|e| e.file_type().is_file())
                    .map(|e| (e.file_name(), e.metadata().size))
                    .filter(|(n, _)| !n.starts_with('.'))
                    .collect();
                files.sort();
                Ok(files)
            })
        });
        match r {
            // A target directory that does not exist yet holds nothing.
            Err(BackendError::NotFound { .. }) => Ok(Vec::new()),
            r => r,
        }
    }
}

impl Backend for SftpBackend {
    fn describe(&self) -> String {
        self.0.describe.clone()
    }

    fn list(&self) -> Result<Vec<String>, BackendError> {
        Ok(self.listing()?.into_iter().map(|(n, _)| n).collect())
    }

    fn list_sized(&self) -> Result<Vec<(String, Option<u64>)>, BackendError> {
        self.listing()
    }

    fn open(&self, name: &str) -> Result<Box<dyn Read + Send + Sync>, BackendError> {
        let dir = self.0.opts.tempdir();
        super::spool::download(&dir, &self.describe(), name, |dest| self.0.get(name, dest))
    }

    fn get(&self, name: &str, dest: &Path) -> Result<(), BackendError> {
        self.0.get(name, dest)
    }

    fn create(&self, name: &str) -> Result<Box<dyn Upload>, BackendError> {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
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
        let me = &self.0;
        for name in names {
            let path = me.path(name);
            let r = me.with_conn(|c| {
                me.rt
                    .block_on(c.sftp.remove_file(path.clone()))
                    .map_err(|e| me.sftp_err("delete", name, e))
            });
            match r {
                Ok(()) | Err(BackendError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ssh_options() {
        let o: Vec<String> = [
            "-oIdentityFile=/k1",
            "-o",
            "UserKnownHostsFile=/kh",
            "-i",
            "/k2",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(ssh_option(&o, "IdentityFile"), vec!["/k1", "/k2"]);
        assert_eq!(ssh_option(&o, "UserKnownHostsFile"), vec!["/kh"]);
    }
}
