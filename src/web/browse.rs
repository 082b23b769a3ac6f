//! Browsing what is stored, from the catalog (no click waits on the
//! target): sets, a directory at any time, search, a path's history; and a
//! download of a file or directory as a tar stream built while restoring.
//!
//! Paths are data: they are parsed as paths inside the backup (no `..`, no
//! leading `/`) and only ever looked up in the catalog or the archive, never
//! opened on the appliance.

use super::{App, answer, blocking, error};
use crate::appliance::config::{Config, Plan};
use crate::appliance::runner;
use crate::archive::index::Index;
use crate::catalog::{Catalog, DirEntry, SetRow, Version};
use crate::time::Seconds;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// What the browse routes take.
#[derive(Debug, Default, Deserialize)]
pub struct Where {
    /// The plan (default: the first).
    pub plan: Option<String>,
    /// A set's time (default: the newest).
    pub t: Option<Seconds>,
    /// A path inside the backup (default: the top).
    pub path: Option<String>,
    /// A search: a word, or a glob with `*` and `?`.
    pub q: Option<String>,
    /// A download's format: `tar` (the default) or `zip`.
    pub format: Option<String>,
}

/// A plan's configuration and its catalog.
pub struct Opened {
    pub config: Config,
    pub plan: Plan,
    pub catalog: Catalog,
}

impl Opened {
    pub fn url(&self) -> &str {
        self.plan.target()
    }
}

/// Opens the catalog of `plan` (or the first plan).
pub fn open(app: &App, plan: Option<&str>) -> Result<Opened, String> {
    let config = app.daemon.config().map_err(|e| e.to_string())?;
    let plan = match plan {
        Some(id) => config.plan(id).ok_or(format!("no plan called `{id}`"))?,
        None => config.plans.first().ok_or("no plan is configured")?,
    }
    .clone();
    let path = runner::target_args(&config, &plan)
        .catalog
        .ok_or("the plan has no catalog")?;
    let catalog = Catalog::open(&path).map_err(|e| e.to_string())?;
    Ok(Opened {
        config,
        plan,
        catalog,
    })
}

/// A path from a client: a relative path inside the backup, or an error
/// that says what is wrong with it.
pub fn parse_path(p: Option<&str>) -> Result<Index, String> {
    let p = p.unwrap_or("").trim_matches('/');
    if p.split('/').any(|c| c == "." || c == "..") || p.contains('\0') {
        return Err(format!(
            "{p:?} is not a path inside the backup (no `.` or `..` components)"
        ));
    }
    Index::parse(p.as_bytes()).map_err(|e| e.to_string())
}

/// One set, as the API shows it.
#[derive(Debug, Serialize)]
pub struct SetView {
    pub time: Seconds,
    pub chain: Seconds,
    pub full: bool,
    pub volumes: u64,
    pub stored_bytes: Option<u64>,
    pub source_bytes: u64,
    pub files: u64,
    pub new: u64,
    pub changed: u64,
    pub deleted: u64,
    pub indexed: bool,
}

impl From<&SetRow> for SetView {
    fn from(s: &SetRow) -> SetView {
        SetView {
            time: s.end_time,
            chain: s.chain_start,
            full: s.full,
            volumes: s.volumes,
            stored_bytes: s.stored_bytes,
            source_bytes: s.source_bytes,
            files: s.files,
            new: s.new_paths,
            changed: s.changed_paths,
            deleted: s.deleted_paths,
            indexed: s.indexed,
        }
    }
}

/// One path's state, as the API shows it.
#[derive(Debug, Serialize)]
pub struct EntryView {
    pub name: String,
    /// The path inside the backup.
    pub path: String,
    /// `reg`, `dir`, `sym`, …; None if deleted.
    pub kind: Option<String>,
    pub size: u64,
    pub mtime: i64,
    pub change: &'static str,
    /// When the version was recorded (history and search).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_time: Option<Seconds>,
}

fn entry(path: &Index, v: &Version, set_time: Option<Seconds>) -> EntryView {
    let name = path
        .components()
        .last()
        .map_or_else(String::new, |c| String::from_utf8_lossy(c).into_owned());
    EntryView {
        name,
        path: if path.is_root() {
            String::new()
        } else {
            path.to_string()
        },
        kind: v.kind.clone(),
        size: v.size,
        mtime: v.mtime,
        change: v.change.as_str(),
        set_time,
    }
}

/// Every set, oldest first.
pub fn sets_of(o: &Opened) -> Result<Vec<SetView>, String> {
    let sets = o.catalog.sets(o.url()).map_err(|e| e.to_string())?;
    Ok(sets.iter().map(SetView::from).collect())
}

/// A directory's entries at a time (the newest set by default); the time
/// of the set shown.
pub fn list(
    o: &Opened,
    t: Option<Seconds>,
    dir: &Index,
) -> Result<(Seconds, Vec<EntryView>), String> {
    let t = t.unwrap_or(Seconds::MAX);
    let set = o.catalog.set_at(o.url(), t).map_err(|e| e.to_string())?;
    let entries: Vec<DirEntry> = o
        .catalog
        .list_dir(o.url(), set.end_time, dir)
        .map_err(|e| e.to_string())?;
    let views = entries
        .iter()
        .map(|e| entry(&dir.child(&e.name), &e.version, None))
        .collect();
    Ok((set.end_time, views))
}

/// Paths whose names match `q`, at most 200.
pub fn search(o: &Opened, q: &str) -> Result<Vec<EntryView>, String> {
    let found = o.catalog.find(o.url(), q, 200).map_err(|e| e.to_string())?;
    Ok(found
        .iter()
        .map(|f| entry(&f.path, &f.version, Some(f.set_time)))
        .collect())
}

/// Every recorded version of a path, oldest first.
pub fn versions(o: &Opened, path: &Index) -> Result<Vec<EntryView>, String> {
    let h = o
        .catalog
        .history(o.url(), path)
        .map_err(|e| e.to_string())?;
    Ok(h.iter()
        .map(|(s, v)| entry(path, v, Some(s.end_time)))
        .collect())
}

/// The runs and events the catalog of the first plan recorded.
pub fn history_of_runs(app: &App, limit: usize) -> Result<serde_json::Value, String> {
    let o = open(app, None)?;
    let runs = o.catalog.runs(limit).map_err(|e| e.to_string())?;
    let events = o.catalog.events(limit).map_err(|e| e.to_string())?;
    Ok(serde_json::json!({
        "runs": runs.iter().map(|r| serde_json::json!({
            "id": r.id, "kind": r.kind, "started": r.started, "ended": r.ended,
            "outcome": r.outcome, "bytes": r.bytes, "set_time": r.set_time, "error": r.error,
        })).collect::<Vec<_>>(),
        "events": events.iter().map(|(t, level, kind, message)| serde_json::json!({
            "time": t, "level": level, "kind": kind, "message": message,
        })).collect::<Vec<_>>(),
    }))
}

/// One recorded run and its log (every event recorded with it, oldest first).
pub fn run_log(app: &App, id: i64) -> Result<serde_json::Value, String> {
    let o = open(app, None)?;
    let lines = o.catalog.run_events(id).map_err(|e| e.to_string())?;
    if lines.is_empty() {
        return Err(format!("no run {id} with a log is recorded"));
    }
    Ok(serde_json::json!({
        "id": id,
        "lines": lines.iter().map(|(t, level, kind, message)| serde_json::json!({
            "time": t, "level": level, "kind": kind, "message": message,
        })).collect::<Vec<_>>(),
    }))
}

pub async fn sets(State(app): State<App>, Query(w): Query<Where>) -> Response {
    answer(blocking(move || sets_of(&open(&app, w.plan.as_deref())?)).await)
}

pub async fn ls(State(app): State<App>, Query(w): Query<Where>) -> Response {
    answer(
        blocking(move || {
            let dir = parse_path(w.path.as_deref())?;
            let o = open(&app, w.plan.as_deref())?;
            let (t, entries) = list(&o, w.t, &dir)?;
            Ok(serde_json::json!({"time": t, "path": dir.to_string(), "entries": entries}))
        })
        .await,
    )
}

pub async fn find(State(app): State<App>, Query(w): Query<Where>) -> Response {
    answer(
        blocking(move || {
            let q =
                w.q.clone()
                    .filter(|q| !q.trim().is_empty())
                    .ok_or("say what to find: ?q=WORD")?;
            search(&open(&app, w.plan.as_deref())?, q.trim())
        })
        .await,
    )
}

pub async fn history(State(app): State<App>, Query(w): Query<Where>) -> Response {
    answer(
        blocking(move || {
            let path = parse_path(w.path.as_deref())?;
            versions(&open(&app, w.plan.as_deref())?, &path)
        })
        .await,
    )
}

/// A channel's sending half as a `Write`: each 64 KiB goes to the HTTP body;
/// a client that went away ends the restore.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 64 * 1024;

impl std::io::Write for ChannelWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "download cancelled"))
    }
}

/// A download's format.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Tar,
    Zip,
}

impl Format {
    fn parse(s: Option<&str>) -> Result<Format, String> {
        match s.unwrap_or("tar") {
            "tar" => Ok(Format::Tar),
            "zip" => Ok(Format::Zip),
            other => Err(format!("format {other:?}: ask for tar or zip")),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Tar => "application/x-tar",
            Format::Zip => "application/zip",
        }
    }
}

/// `GET /api/download?plan=&t=&path=&format=`: a file or directory
/// (everything by default) at a time, as a tar (or zip) stream written while
/// it is restored. What cannot start (no such path) is an error before the
/// first byte.
pub async fn download(State(app): State<App>, Query(w): Query<Where>) -> Response {
    let format = match Format::parse(w.format.as_deref()) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<Result<String, String>>();
    std::thread::spawn(move || stream_download(&app, &w, format, tx, first_tx));
    let name = match first_rx.await {
        Ok(Ok(name)) => name,
        Ok(Err(e)) => return error(StatusCode::NOT_FOUND, e),
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "the restore stopped"),
    };
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    (
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Restores into the channel; says on `first` whether it could start (and
/// the file name) once the sets are chosen and the path is known to exist.
fn stream_download(
    app: &App,
    w: &Where,
    format: Format,
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    first: tokio::sync::oneshot::Sender<Result<String, String>>,
) {
    let start = || -> Result<(Opened, Index, Seconds), String> {
        let path = parse_path(w.path.as_deref())?;
        let o = open(app, w.plan.as_deref())?;
        let set = o
            .catalog
            .set_at(o.url(), w.t.unwrap_or(Seconds::MAX))
            .map_err(|e| e.to_string())?;
        if !path.is_root() {
            let all = versions(&o, &path)?;
            let at_t = all.iter().rfind(|v| v.set_time <= Some(set.end_time));
            if at_t.is_none_or(|v| v.kind.is_none()) {
                return Err(format!(
                    "{path} is not in the backup of {}",
                    crate::time::to_pretty(set.end_time)
                ));
            }
        }
        Ok((o, path, set.end_time))
    };
    let (o, path, t) = match start() {
        Ok(x) => x,
        Err(e) => {
            let _ = first.send(Err(e));
            return;
        }
    };
    let args = runner::target_args(&o.config, &o.plan);
    let tempdir = args.tempdir.clone().unwrap_or_else(std::env::temp_dir);
    let _ = std::fs::create_dir_all(&tempdir);
    let base = path.components().last().map_or_else(
        || o.plan.id.clone(),
        |c| String::from_utf8_lossy(c).into_owned(),
    );
    let safe: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let ext = if format == Format::Zip { "zip" } else { "tar" };
    let name = format!("{safe}-{}.{ext}", crate::time::to_string(t));
    let sel = (!path.is_root()).then_some(&path);
    // The sets are chosen (manifests read) before the answer starts, so an
    // unreachable target or a wrong passphrase is an error, not a torn file.
    let chosen = crate::target::open(o.url(), &args)
        .and_then(|repo| crate::restore::select(&repo, Some(t), sel).map(|s| (repo, s)));
    let (repo, chosen) = match chosen {
        Ok(x) => x,
        Err(e) => {
            let _ = first.send(Err(e.to_string()));
            return;
        }
    };
    let _ = first.send(Ok(name));
    let out = ChannelWriter {
        tx: tx.clone(),
        buf: Vec::with_capacity(CHUNK),
    };
    let result = match format {
        Format::Tar => crate::restore::tar::restore_to_tar(&repo, chosen, sel, &tempdir, out),
        Format::Zip => crate::restore::zip::restore_to_zip(&repo, chosen, sel, &tempdir, out),
    };
    let shown = path.to_string();
    match result {
        Ok(r) => {
            for p in r.problems.iter().chain(&r.unrestored) {
                crate::appliance::daemon::log(4, &format!("download of {shown:?}: {p}"));
            }
        }
        Err(e) => {
            crate::appliance::daemon::log(4, &format!("download of {shown:?}: {e}"));
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    }
}
