//! `rsync://` targets, by running the real `rsync` binary as duplicity's
//! rsync backend does (`duplicity/backends/rsyncbackend.py`):
//!
//! - `rsync://[user[:password]@]host[:port]::[/]module[/path]` talks to an
//!   rsync daemon: `host::module/path/`, the port as `--port=`, the user in
//!   the environment as `USER`;
//! - `rsync://user@host[:port]/rel/path` and `rsync://user@host//abs/path`
//!   run rsync over ssh: `-e 'ssh -p PORT -oBatchMode=yes <--ssh-options>'`.
//!
//! `--rsync-options` are passed through. The password (from the URL, else
//! `FTP_PASSWORD`) reaches rsync only as `RSYNC_PASSWORD` in its
//! environment, never in its arguments; `RSYNC_RSH` is removed, and a
//! user's `RSYNC_CONNECT_PROG` is honoured. `.onion` hosts, and every host
//! when Tor is configured, are reached through `cairn tor-connect` as the
//! connect program (daemon) or ssh's `ProxyCommand` (ssh): see [`super::tor`].
//!
//! # No partial file under a complete-looking name
//!
//! rsync cannot rename a file on the server, so "upload to a temporary name,
//! then rename" is not available. What rsync does offer is enough, with one
//! option forced and three refused:
//!
//! - the receiving rsync always writes into a hidden temporary file
//!   (`.NAME.XXXXXX`) and renames it to NAME only after the whole-file
//!   checksum of the transfer matched. A transfer that dies for any reason —
//!   the daemon killed, the connection cut, the disk full — never produces
//!   NAME;
//! - except with `--partial`, which keeps an interrupted file *under its
//!   final name* (duplicity users pass it to resume big volumes over slow
//!   links). Cairn always adds `--partial-dir=.cairn-partial`, which keeps
//!   the resumable part in that hidden directory instead, so a retry still
//!   resumes, and `--partial` is harmless;
//! - `--inplace`, `--append` and `--append-verify` write into the final
//!   name directly and are refused with a message.
//!
//! Hidden names (rsync's temporaries, the partial directory) are left out of
//! listings. A volume upload that failed for good also has its partial file
//! removed. Verifying size and hash after upload would cost one more
//! connection per file (seconds over Tor) and add nothing to rsync's own
//! whole-file checksum.

use super::retry::Retry;
use super::spool::SpoolUpload;
use super::tor::{self, Route};
use super::url::{redact, split_authority};
use super::{Backend, BackendError, BackendOptions, Upload};
use std::ffi::OsString;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

/// Where the receiving rsync keeps the part of an interrupted upload.
pub const PARTIAL_DIR: &str = ".cairn-partial";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// An rsync daemon: `module[/path]`.
    Daemon { module_path: String },
    /// rsync over ssh: the remote path (relative to the home directory, or
    /// absolute).
    Ssh { path: String },
}

#[derive(Clone)]
pub struct RsyncBackend {
    describe: String,
    mode: Mode,
    host: String,
    user: Option<String>,
    password: Option<String>,
    /// `host::module/path/` or `[user@]host:path/`.
    url_string: String,
    /// rsync arguments before the operands: port, user options, timeouts.
    prefix: Vec<String>,
    /// `RSYNC_CONNECT_PROG` to set for the child, if Cairn routes over Tor.
    connect_prog: Option<String>,
    opts: BackendOptions,
    retry: Retry,
    /// Whether the target directory is known to exist (shared by clones).
    path_ready: Arc<Mutex<bool>>,
}

fn has_opt(opts: &[String], name: &str) -> bool {
    opts.iter()
        .any(|o| o == name || o.starts_with(&format!("{name}=")))
}

impl RsyncBackend {
    pub fn new(url: &str, opts: &BackendOptions) -> Result<RsyncBackend, BackendError> {
        let describe = redact(url);
        let bad = |reason: &str| BackendError::BadUrl {
            url: describe.clone(),
            reason: reason.to_string(),
        };
        let rest = url
            .strip_prefix("rsync://")
            .ok_or_else(|| bad("not an rsync:// URL"))?;
        // duplicity's test for a daemon URL: `::` with no `:` after it.
        let daemon_at = rest.rfind("::").filter(|&i| !rest[i + 2..].contains(':'));
        let (mode, user, password, host, port) = if let Some(i) = daemon_at {
            let (user, password, host, port) = split_authority(url, &rest[..i])?;
            let module_path = rest[i + 2..].trim_start_matches(['/', ':']).to_string();
            if module_path.is_empty() {
                return Err(bad("no module after :: (rsync://host::module/path)"));
            }
            (Mode::Daemon { module_path }, user, password, host, port)
        } else {
            let slash = rest
                .find('/')
                .ok_or_else(|| bad("no path after the host"))?;
            let (user, password, host, port) = split_authority(url, &rest[..slash])?;
            let p = &rest[slash..];
            let path = match p.strip_prefix("//") {
                Some(abs) => format!("/{abs}"),
                None => p[1..].to_string(),
            };
            (Mode::Ssh { path }, user, password, host, port)
        };
        let path_part = match &mode {
            Mode::Daemon { module_path } => module_path.clone(),
            Mode::Ssh { path } => path.clone(),
        };
        let mut dir = path_part.trim_end_matches('/').to_string();
        dir.push('/');
        if dir == "/" && matches!(mode, Mode::Ssh { .. }) && !path_part.starts_with('/') {
            dir.clear(); // the home directory itself
        }
        let host_addr = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let url_string = match &mode {
            Mode::Daemon { .. } => format!("{host_addr}::{dir}"),
            Mode::Ssh { .. } => match &user {
                Some(u) => format!("{u}@{host_addr}:{dir}"),
                None => format!("{host_addr}:{dir}"),
            },
        };

        if opts.max_upload_rate.is_some() && has_opt(&opts.rsync_options, "--bwlimit") {
            return Err(BackendError::Setup {
                target: describe,
                detail: "max_upload_rate and --rsync-options --bwlimit both set the upload \
                         rate; keep one of them"
                    .into(),
            });
        }
        for refused in ["--inplace", "--append", "--append-verify"] {
            if has_opt(&opts.rsync_options, refused) {
                return Err(BackendError::Setup {
                    target: describe,
                    detail: format!(
                        "--rsync-options {refused} is refused: it writes uploads under their \
                         final name, so an interrupted upload would look complete"
                    ),
                });
            }
        }
        let mut prefix = Vec::new();
        if let (Mode::Daemon { .. }, Some(p)) = (&mode, port) {
            prefix.push(format!("--port={p}"));
        }
        prefix.extend(opts.rsync_options.iter().cloned());
        let env_prog = std::env::var_os("RSYNC_CONNECT_PROG").is_some_and(|v| !v.is_empty());
        let route = tor::route(opts, &describe, &host, env_prog)?;
        let mut io_timeout = opts.timeout.as_secs();
        let mut connect_prog = None;
        match (&mode, &route) {
            (Mode::Daemon { .. }, Route::Helper(argv)) => {
                let port = port.unwrap_or(873);
                let prog = format!(
                    "exec {} %H {port}",
                    tor::shell_join(argv).replace('%', "%%")
                );
                connect_prog = Some(prog);
                io_timeout += opts.tor.connect_timeout.as_secs();
            }
            (Mode::Ssh { .. }, _) => {
                let mut ssh = String::from("ssh");
                if let Some(p) = port {
                    ssh.push_str(&format!(" -p {p}"));
                }
                ssh.push_str(" -oBatchMode=yes");
                if !opts
                    .ssh_options
                    .iter()
                    .any(|o| o.to_ascii_lowercase().contains("connecttimeout"))
                {
                    ssh.push_str(&format!(
                        " -oConnectTimeout={}",
                        opts.timeout.as_secs().max(1)
                    ));
                }
                if let Route::Helper(argv) = &route {
                    let pc = tor::shell_join(argv);
                    if pc.contains('"') {
                        return Err(BackendError::Setup {
                            target: describe,
                            detail: "the tor-connect helper's path cannot be quoted for ssh".into(),
                        });
                    }
                    ssh.push_str(&format!(" \"-oProxyCommand={pc} %h %p\""));
                    io_timeout += opts.tor.connect_timeout.as_secs();
                }
                for o in &opts.ssh_options {
                    ssh.push(' ');
                    if o.contains(' ') {
                        ssh.push_str(&format!("'{o}'"));
                    } else {
                        ssh.push_str(o);
                    }
                }
                prefix.push("-e".into());
                prefix.push(ssh);
            }
            // A user's RSYNC_CONNECT_PROG is usually `nc -x` to tor: allow
            // for a slow circuit before the daemon's greeting.
            (Mode::Daemon { .. }, Route::Direct) if env_prog => {
                io_timeout += opts.tor.connect_timeout.as_secs();
            }
            _ => {}
        }
        if !has_opt(&opts.rsync_options, "--timeout") && io_timeout > 0 {
            prefix.push(format!("--timeout={io_timeout}"));
        }
        if matches!(mode, Mode::Daemon { .. })
            && connect_prog.is_none()
            && !env_prog
            && !has_opt(&opts.rsync_options, "--contimeout")
            && opts.timeout.as_secs() > 0
        {
            prefix.push(format!("--contimeout={}", opts.timeout.as_secs()));
        }
        let password = password.or_else(|| std::env::var("FTP_PASSWORD").ok());
        Ok(RsyncBackend {
            describe,
            mode,
            host,
            user,
            password,
            url_string,
            prefix,
            connect_prog,
            opts: opts.clone(),
            retry: Retry::new(opts),
            path_ready: Arc::new(Mutex::new(false)),
        })
    }

    /// The rsync command with its environment (no operands yet).
    fn command(&self) -> Command {
        let mut c = Command::new(&self.opts.rsync_program);
        // rsync dies with the thread that waits for it. Otherwise an upload
        // would go on after Cairn was killed (a power cut spares nothing,
        // but the OOM killer does) and could land an old volume over the
        // one the next run stored under the same name.
        // SAFETY: between fork and exec the closure only calls prctl(2),
        // which is async-signal-safe, and allocates nothing.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut c, || {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                    .map_err(std::io::Error::from)
            });
        }
        c.env_remove("RSYNC_RSH");
        if let Some(u) = &self.user {
            c.env("USER", u);
        }
        match &self.password {
            Some(p) => {
                c.env("RSYNC_PASSWORD", p);
            }
            None => {
                // Without a password rsync would ask on the terminal and
                // hang an unattended run; an empty one fails at once.
                if std::env::var_os("RSYNC_PASSWORD").is_none()
                    && !has_opt(&self.opts.rsync_options, "--password-file")
                {
                    c.env("RSYNC_PASSWORD", "");
                }
            }
        }
        if let Some(p) = &self.connect_prog {
            c.env("RSYNC_CONNECT_PROG", p);
        }
        c.args(&self.prefix);
        c.stdin(Stdio::null());
        c
    }

    /// Runs rsync with `args` after the prefix.
    fn run(&self, op: &'static str, name: &str, args: &[OsString]) -> Result<Output, BackendError> {
        let mut c = self.command();
        c.args(args);
        let out = c.output().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                BackendError::Setup {
                    target: self.describe.clone(),
                    detail: format!(
                        "the rsync program {:?} is not installed (apt-get install rsync)",
                        self.opts.rsync_program
                    ),
                }
            } else {
                BackendError::Io {
                    target: self.describe.clone(),
                    op,
                    name: name.to_string(),
                    source: e,
                }
            }
        })?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(self.classify(op, name, &out))
        }
    }

    /// Turns a failed rsync run into an error that says what went wrong.
    fn classify(&self, op: &'static str, name: &str, out: &Output) -> BackendError {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let code = out.status.code();
        let target = self.describe.clone();
        let detail = summarize(&stderr, code);
        let has = |s: &str| stderr.contains(s);
        if let Some(d) = tor::helper_failure(&stderr) {
            let rest: String = stderr
                .lines()
                .filter(|l| !l.starts_with("cairn tor-connect:"))
                .collect::<Vec<_>>()
                .join("\n");
            return BackendError::Unreachable {
                target,
                detail: format!("{d}; {}", summarize(&rest, code)),
            };
        }
        if let Some(e) = permanent_failure(&stderr, code, &target, name) {
            return e;
        }
        if has("@ERROR: Unknown module") {
            let module = match &self.mode {
                Mode::Daemon { module_path } => {
                    module_path.split('/').next().unwrap_or("").to_string()
                }
                Mode::Ssh { .. } => String::new(),
            };
            return BackendError::MissingContainer {
                target,
                what: format!("rsync module {module:?}"),
                detail,
            };
        }
        if has("Host key verification failed") || has("REMOTE HOST IDENTIFICATION HAS CHANGED") {
            return BackendError::HostKey { target, detail };
        }
        if has("No space left on device") || has("Disk quota exceeded") || has("(28)") {
            return BackendError::NoSpace {
                target,
                name: name.to_string(),
                detail,
            };
        }
        if has("failed to connect to")
            || has("Connection refused")
            || has("Could not resolve hostname")
            || has("Name or service not known")
            || has("No route to host")
            || has("Network is unreachable")
            || has("getaddrinfo")
        {
            return BackendError::Unreachable { target, detail };
        }
        if matches!(code, Some(30) | Some(35)) || has("timeout") || has("timed out") {
            return BackendError::Timeout {
                target,
                op,
                name: name.to_string(),
                secs: self.opts.timeout.as_secs(),
            };
        }
        if op != "upload" && op != "delete" && has("No such file or directory") {
            return BackendError::NotFound {
                target,
                name: name.to_string(),
            };
        }
        BackendError::Remote {
            target,
            op,
            name: name.to_string(),
            detail,
        }
    }

    fn check_name(&self, name: &str) -> Result<(), BackendError> {
        if name.is_empty()
            || name.starts_with('.')
            || name.contains(['/', '\n', '*', '?', '[', '\\'])
        {
            return Err(BackendError::BadUrl {
                url: self.describe.clone(),
                reason: format!("refusing file name {name:?}"),
            });
        }
        Ok(())
    }

    /// Creates the directories under the module (or home) that the target
    /// path names, as duplicity 3.x's `ensure_remote_path` does: mirror them
    /// in an empty local tree and send that.
    fn ensure_path(&self) -> Result<(), BackendError> {
        let mut ready = self.path_ready.lock().unwrap_or_else(|e| e.into_inner());
        if *ready {
            return Ok(());
        }
        let (base, rel) = match &self.mode {
            Mode::Daemon { module_path } => {
                let mut parts = module_path.trim_end_matches('/').splitn(2, '/');
                let module = parts.next().unwrap_or("");
                let rel = parts.next().unwrap_or("").to_string();
                (format!("{}::{module}/", self.host_addr()), rel)
            }
            Mode::Ssh { path } => {
                let login = match &self.user {
                    Some(u) => format!("{u}@{}", self.host_addr()),
                    None => self.host_addr(),
                };
                match path.strip_prefix('/') {
                    Some(abs) => (format!("{login}:/"), abs.trim_end_matches('/').to_string()),
                    None => (format!("{login}:"), path.trim_end_matches('/').to_string()),
                }
            }
        };
        if !rel.is_empty() {
            let tmp = self.tempdir("mkpath")?;
            std::fs::create_dir_all(tmp.path().join(&rel)).map_err(|e| self.io("upload", "", e))?;
            let src = format!("{}/", tmp.path().display());
            self.retry.run(|_| {
                self.run(
                    "create the directory",
                    &rel,
                    &[
                        "--recursive".into(),
                        src.clone().into(),
                        base.clone().into(),
                    ],
                )
            })?;
        }
        *ready = true;
        Ok(())
    }

    fn host_addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }

    fn tempdir(&self, what: &str) -> Result<tempfile::TempDir, BackendError> {
        tempfile::Builder::new()
            .prefix(&format!("cairn-rsync-{what}-"))
            .tempdir_in(self.opts.tempdir())
            .map_err(|e| self.io(what_op(what), "", e))
    }

    fn io(&self, op: &'static str, name: &str, source: std::io::Error) -> BackendError {
        BackendError::Io {
            target: self.describe.clone(),
            op,
            name: name.to_string(),
            source,
        }
    }

    /// Sends `local` as `name`.
    fn put(&self, local: &Path, name: &str) -> Result<(), BackendError> {
        self.ensure_path()?;
        let mut args: Vec<OsString> = Vec::new();
        if !has_opt(&self.opts.rsync_options, "--partial-dir") {
            args.push(format!("--partial-dir={PARTIAL_DIR}").into());
        }
        if let Some(rate) = self.opts.max_upload_rate {
            // rsync's unit is 1024 bytes per second.
            args.push(format!("--bwlimit={}", (rate / 1024).max(1)).into());
        }
        args.push(local.into());
        args.push(format!("{}{name}", self.url_string).into());
        let r = self
            .retry
            .run(|_| self.run("upload", name, &args).map(|_| ()));
        if r.is_err() {
            // Best effort: the resumable part is of no use to a later run.
            let _ = self.remove(&[format!("{PARTIAL_DIR}/{name}")]);
        }
        r
    }

    /// Deletes exactly `paths` (relative to the target directory): an empty
    /// local tree is sent with `--delete`, including only those paths.
    fn remove(&self, paths: &[String]) -> Result<(), BackendError> {
        let tmp = self.tempdir("delete")?;
        let src = tmp.path().join("src");
        std::fs::create_dir(&src).map_err(|e| self.io("delete", "", e))?;
        let mut rules = String::new();
        let mut dirs = std::collections::BTreeSet::new();
        for p in paths {
            if let Some((d, _)) = p.rsplit_once('/')
                && dirs.insert(d.to_string())
            {
                std::fs::create_dir_all(src.join(d)).map_err(|e| self.io("delete", "", e))?;
                rules.push_str(&format!("+ /{d}/\n"));
            }
        }
        for p in paths {
            rules.push_str(&format!("+ /{p}\n"));
        }
        rules.push_str("- *\n");
        let filter = tmp.path().join("filter");
        std::fs::write(&filter, rules).map_err(|e| self.io("delete", "", e))?;
        let args: Vec<OsString> = vec![
            "--recursive".into(),
            "--delete".into(),
            format!("--filter=merge {}", filter.display()).into(),
            format!("{}/", src.display()).into(),
            self.url_string.clone().into(),
        ];
        let name = paths.join(", ");
        self.retry
            .run(|_| self.run("delete", &name, &args).map(|_| ()))
    }
}

fn what_op(what: &str) -> &'static str {
    match what {
        "delete" => "delete",
        "get" => "download",
        _ => "upload",
    }
}

/// The lines of rsync's stderr that say what happened, and its exit code.
fn summarize(stderr: &str, code: Option<i32>) -> String {
    let mut lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines.dedup();
    let mut s = lines.into_iter().take(4).collect::<Vec<_>>().join("; ");
    if s.len() > 600 {
        let mut cut = 600;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    match code {
        Some(c) => format!("{s} (rsync exit code {c}: {})", exit_meaning(c)),
        None => format!("{s} (rsync was killed by a signal)"),
    }
}

/// rsync(1)'s EXIT VALUES.
fn exit_meaning(code: i32) -> &'static str {
    match code {
        1 => "syntax or usage error",
        2 => "protocol incompatibility",
        3 => "errors selecting input/output files, dirs",
        4 => "requested action not supported",
        5 => "error starting client-server protocol",
        6 => "daemon unable to append to log-file",
        10 => "error in socket I/O",
        11 => "error in file I/O",
        12 => "error in rsync protocol data stream",
        13 => "errors with program diagnostics",
        14 => "error in IPC code",
        20 => "received SIGUSR1 or SIGINT",
        21 => "some error returned by waitpid()",
        22 => "error allocating core memory buffers",
        23 => "partial transfer due to error",
        24 => "partial transfer due to vanished source files",
        25 => "the --max-delete limit stopped deletions",
        30 => "timeout in data send/receive",
        35 => "timeout waiting for daemon connection",
        127 => "command not found",
        255 => "ssh failed",
        _ => "unknown",
    }
}

/// The failures that waiting cannot cure: a program the connection needs is
/// missing, the credentials are refused, the server may not write the file.
fn permanent_failure(
    stderr: &str,
    code: Option<i32>,
    target: &str,
    name: &str,
) -> Option<BackendError> {
    let has = |s: &str| stderr.contains(s);
    let detail = summarize(stderr, code);
    let target = target.to_string();
    let missing_program = code == Some(127)
        || has("command not found")
        || stderr
            .lines()
            .any(|l| l.starts_with("sh: ") && l.ends_with(": not found"));
    if missing_program {
        return Some(BackendError::Setup {
            target,
            detail: format!(
                "a program the connection needs cannot be run ({detail}); install it, or fix \
                 RSYNC_CONNECT_PROG / --rsync-options"
            ),
        });
    }
    if has("@ERROR: auth failed")
        || stderr
            .split("Permission denied (")
            .skip(1)
            .any(|rest| rest.starts_with(|c: char| c.is_ascii_alphabetic()))
        || has("Permission denied, please try again")
        || has("password file")
    {
        return Some(BackendError::Auth { target, detail });
    }
    if has("Permission denied (13)") || has("@ERROR: module is read only") {
        return Some(BackendError::Denied {
            target,
            name: name.to_string(),
            detail,
        });
    }
    None
}

/// Parses `rsync host::module/dir/` listing lines:
/// `-rw-r--r--      1,234 2026/11/25 07:30:22 name`. Regular files only;
/// hidden names (rsync temporaries, the partial directory) are left out.
/// A size that does not read as a number is None (unknown, never 0).
pub fn parse_listing(stdout: &str) -> Vec<(String, Option<u64>)> {
    let mut out = Vec::new();
    for line in stdout.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 5 || !fields[0].starts_with('-') {
            continue;
        }
        // The name is everything after the fourth field (it may hold spaces).
        let mut rest = line;
        for _ in 0..4 {
            rest = rest.trim_start();
            let end = rest.find(' ').unwrap_or(rest.len());
            rest = &rest[end..];
        }
        let name = rest.trim_start().to_string();
        if name.is_empty() || name.starts_with('.') {
            continue;
        }
        let size = fields[1].replace([',', '.'], "").parse().ok();
        out.push((name, size));
    }
    out.sort();
    out
}

impl RsyncBackend {
    /// The target's files and sizes (`rsync --list-only`).
    fn listing(&self) -> Result<Vec<(String, Option<u64>)>, BackendError> {
        let args = [OsString::from(&self.url_string)];
        match self.retry.run(|_| self.run("list", "", &args)) {
            Ok(out) => Ok(parse_listing(&String::from_utf8_lossy(&out.stdout))),
            // A target directory that does not exist yet holds nothing.
            Err(BackendError::NotFound { .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
}

impl Backend for RsyncBackend {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn list(&self) -> Result<Vec<String>, BackendError> {
        Ok(self.listing()?.into_iter().map(|(n, _)| n).collect())
    }

    fn list_sized(&self) -> Result<Vec<(String, Option<u64>)>, BackendError> {
        self.listing()
    }

    fn open(&self, name: &str) -> Result<Box<dyn Read + Send + Sync>, BackendError> {
        let dir = self.opts.tempdir();
        super::spool::download(&dir, &self.describe(), name, |dest| self.get(name, dest))
    }

    fn get(&self, name: &str, dest: &Path) -> Result<(), BackendError> {
        self.check_name(name)?;
        let args = [
            OsString::from(format!("{}{name}", self.url_string)),
            OsString::from(dest),
        ];
        self.retry
            .run(|_| self.run("download", name, &args).map(|_| ()))
    }

    fn create(&self, name: &str) -> Result<Box<dyn Upload>, BackendError> {
        self.check_name(name)?;
        let me = self.clone();
        let n = name.to_string();
        let upload = SpoolUpload::new(
            &self.opts.tempdir(),
            &self.describe,
            name,
            Box::new(move |path: &Path, _size| me.put(path, &n)),
        )?;
        Ok(Box::new(upload))
    }

    fn delete(&self, names: &[String]) -> Result<(), BackendError> {
        if names.is_empty() {
            return Ok(());
        }
        for n in names {
            self.check_name(n)?;
        }
        let mut paths: Vec<String> = names.to_vec();
        paths.extend(names.iter().map(|n| format!("{PARTIAL_DIR}/{n}")));
        match self.remove(&paths) {
            Err(BackendError::NotFound { .. }) => Ok(()),
            r => r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permanent_failures_are_told_apart_from_transient_ones() {
        let f = |stderr: &str, code| permanent_failure(stderr, Some(code), "t", "vol1");
        let missing = f(
            "sh: 1: nc: not found\nrsync: did not see server greeting\n",
            5,
        );
        assert!(
            matches!(&missing, Some(BackendError::Setup { detail, .. }) if detail.contains("nc: not found")),
            "{missing:?}"
        );
        assert!(matches!(
            f(
                "rsync: [receiver] mkstemp \"/m/.x.abc\" failed: Permission denied (13)\n",
                23
            ),
            Some(BackendError::Denied { .. })
        ));
        assert!(matches!(
            f("alice@host: Permission denied (publickey,password).\n", 255),
            Some(BackendError::Auth { .. })
        ));
        assert!(matches!(
            f("@ERROR: auth failed on module backup\n", 5),
            Some(BackendError::Auth { .. })
        ));
        assert!(f("rsync: connection unexpectedly closed\n", 12).is_none());
        assert!(f("rsync error: timeout in data send/receive\n", 30).is_none());
        for e in [missing.unwrap(), f("x Permission denied (13)", 23).unwrap()] {
            assert!(!e.is_transient(), "{e}");
        }
    }

    fn b(url: &str, o: &BackendOptions) -> RsyncBackend {
        RsyncBackend::new(url, o).unwrap()
    }

    #[test]
    fn builds_commands_as_duplicity() {
        let o = BackendOptions::default();
        let d = b("rsync://alice:pw@127.0.0.1:8873::/backup/sub", &o);
        assert_eq!(d.url_string, "127.0.0.1::backup/sub/");
        assert!(d.prefix.contains(&"--port=8873".to_string()));
        assert_eq!(d.password.as_deref(), Some("pw"));
        assert_eq!(d.describe(), "rsync://alice@127.0.0.1:8873::/backup/sub");
        assert!(!d.prefix.iter().any(|a| a.contains("pw")));
        let d = b("rsync://alice@host::backup", &o);
        assert_eq!(d.url_string, "host::backup/");
        let s = b("rsync://alice@host:2222//srv/backups/x", &o);
        assert_eq!(s.url_string, "alice@host:/srv/backups/x/");
        let e = s.prefix.iter().position(|a| a == "-e").unwrap();
        assert!(s.prefix[e + 1].starts_with("ssh -p 2222 -oBatchMode=yes"));
        let s = b("rsync://alice@host/relative/dir", &o);
        assert_eq!(s.url_string, "alice@host:relative/dir/");
        assert!(RsyncBackend::new("rsync://host::", &o).is_err());

        let mut o = BackendOptions {
            rsync_options: vec!["--inplace".into()],
            ..BackendOptions::default()
        };
        assert!(matches!(
            RsyncBackend::new("rsync://h::m", &o),
            Err(BackendError::Setup { .. })
        ));
        o.rsync_options = vec!["--partial".into(), "--timeout=7".into()];
        let d = b("rsync://h::m/p", &o);
        assert!(d.prefix.contains(&"--partial".to_string()));
        assert_eq!(
            d.prefix
                .iter()
                .filter(|a| a.starts_with("--timeout"))
                .count(),
            1
        );

        let mut o = BackendOptions::default();
        o.tor.helper = Some("/usr/bin/cairn".into());
        let t = b("rsync://u@abcdefgh.onion::backup/x", &o);
        let prog = t.connect_prog.as_deref().unwrap();
        assert!(
            prog.starts_with("exec /usr/bin/cairn tor-connect"),
            "{prog}"
        );
        assert!(prog.ends_with("--socks 127.0.0.1:9050 %H 873"), "{prog}");
    }

    #[test]
    fn parses_listings() {
        let out = "drwxr-xr-x          4,096 2026/11/25 07:30:22 .\n\
                   -rw-r--r--      1,234,567 2026/11/25 07:30:22 duplicity-full.20261125T073022Z.vol1.difftar.gpg\n\
                   -rw-------             10 2026/11/25 07:30:22 .duplicity-full.x.AbC123\n\
                   drwx------          4,096 2026/11/25 07:30:22 .cairn-partial\n\
                   -rw-r--r--              3 2026/11/25 07:30:22 with space\n";
        assert_eq!(
            parse_listing(out),
            vec![
                (
                    "duplicity-full.20261125T073022Z.vol1.difftar.gpg".to_string(),
                    Some(1234567)
                ),
                ("with space".to_string(), Some(3))
            ]
        );
        let odd = "-rw-r--r--   1.2G 2026/11/25 07:30:22 big\n";
        assert_eq!(parse_listing(odd), vec![("big".to_string(), None)]);
    }
}
