//! The catalog: a SQLite index of every backup set at a target and of every
//! path in it, so that "which sets exist", "what did this directory look like
//! at time T", "every version of this file" and "what changed" are index
//! lookups instead of a listing and a read of every signature file.
//!
//! It is a cache of the target, never a second source of truth: it is
//! filled as a backup writes its set ([`Recorder`]), and brought up to date
//! from the target's listing and signature files alone ([`Catalog::sync`])
//! whenever it is missing, damaged, from another schema version, or
//! disagrees with the listing. Deleting it loses nothing but the run log.
//!
//! Durability: WAL, `synchronous=FULL`, one transaction per set; a power cut
//! at any moment leaves the previous state or the new one.
//!
//! | file | concept |
//! | --- | --- |
//! | `schema` | the tables, as migrations |
//! | `index` | recording one set, from the backup or from its signatures |
//! | `sync` | bringing the catalog in line with the target |
//! | `query` | sets, directory listings at a time, history, find, changes |

mod index;
mod query;
mod schema;
mod sync;

pub use index::{Entry, Recorder, SetFacts, VolumeFacts, size_from_signature};
pub use query::{Change, Difference, DirEntry, Found, RunRow, SetRow, Version, compare};
pub use sync::SyncReport;

use rusqlite::{Connection, OpenFlags, params};
use std::path::{Path, PathBuf};

/// The catalog's file name in a target's archive directory.
pub const FILE_NAME: &str = "cairn-catalog.sqlite";

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(
        "the catalog {path}: {cause}. It is only a cache of the target: backups go on without \
         it, and it catches up from the target once it can be written (or give --catalog FILE \
         elsewhere)"
    )]
    Sqlite {
        path: PathBuf,
        cause: rusqlite::Error,
    },
    #[error(
        "cannot create the catalog's directory {path} ({cause}); give --catalog FILE elsewhere"
    )]
    Dir {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("the catalog {path} {why}, and a new one could not be started in its place")]
    Unusable { path: PathBuf, why: String },
    /// (Not a `#[source]`: the message already carries it, and a chain
    /// printed whole would say it twice.)
    #[error("cannot read the target to update the catalog: {0}")]
    Target(crate::Error),
    #[error("{0}")]
    Query(String),
}

pub type Result<T> = std::result::Result<T, CatalogError>;

impl From<crate::Error> for CatalogError {
    fn from(e: crate::Error) -> Self {
        CatalogError::Target(e)
    }
}

/// An open catalog.
pub struct Catalog {
    conn: Connection,
    path: PathBuf,
    /// What opening it had to do (a damaged or newer file moved aside), for
    /// the caller to tell the user.
    pub notes: Vec<String>,
}

impl Catalog {
    /// Opens the catalog at `path`, creating it if missing. A file that is
    /// not a readable catalog of this schema (damaged, truncated, from a
    /// newer Cairn) is moved aside, never deleted, and a new one started;
    /// [`Catalog::sync`] then fills it from the target.
    pub fn open(path: &Path) -> Result<Catalog> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| CatalogError::Dir {
                path: dir.to_path_buf(),
                cause: source,
            })?;
        }
        let mut notes = Vec::new();
        let conn = match Self::try_open(path) {
            Ok(c) => c,
            Err(Unusable::File(why)) if path.exists() => {
                let aside = move_aside(path, &why)?;
                notes.push(format!(
                    "The catalog {} {why}; it was moved to {} and is rebuilt from the target.",
                    path.display(),
                    aside.display()
                ));
                Self::try_open(path).map_err(|e| e.into_error(path))?
            }
            Err(e) => return Err(e.into_error(path)),
        };
        let mut c = Catalog {
            conn,
            path: path.to_path_buf(),
            notes,
        };
        c.close_interrupted_runs()?;
        Ok(c)
    }

    /// Opens and checks the file: `Unusable::File` when the file itself
    /// is unusable (damaged, from a newer Cairn), `Unusable::Io` when the
    /// disk is (read-only, full, missing directory): that file is left alone.
    fn try_open(path: &Path) -> std::result::Result<Connection, Unusable> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags).map_err(Unusable::classify)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(Unusable::classify)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(Unusable::classify)?;
        if version > schema::VERSION {
            return Err(Unusable::File(format!(
                "was written by a newer Cairn (schema {version}; this one knows {})",
                schema::VERSION
            )));
        }
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(Unusable::classify)?;
        if check != "ok" {
            return Err(Unusable::File(format!("is damaged ({check})")));
        }
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
             PRAGMA journal_size_limit = 16777216;",
        )
        .map_err(Unusable::classify)?;
        schema::migrations()
            .to_latest(&mut conn)
            .map_err(|e| match e {
                rusqlite_migration::Error::RusqliteError { err, .. } => Unusable::classify(err),
                e => Unusable::File(format!("cannot be brought to the current schema ({e})")),
            })?;
        Ok(conn)
    }

    /// The default location: the target's archive directory.
    pub fn path_in(archive_dir: &Path) -> PathBuf {
        archive_dir.join(FILE_NAME)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: rusqlite::Error) -> CatalogError {
        CatalogError::Sqlite {
            path: self.path.clone(),
            cause: source,
        }
    }

    /// The target's id, registered on first use.
    pub fn target_id(&self, url: &str) -> Result<i64> {
        let url = public_url(url);
        self.conn
            .execute("INSERT OR IGNORE INTO target (url) VALUES (?1)", [&url])
            .map_err(|e| self.err(e))?;
        self.conn
            .query_row("SELECT id FROM target WHERE url = ?1", [&url], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Indexes the set a backup just completed, from what it recorded. If
    /// the catalog does not hold the set it extends, it is brought up to
    /// date from the target instead ([`Catalog::sync`]).
    pub fn record(
        &mut self,
        repo: &crate::repo::Repo,
        url: &str,
        facts: &SetFacts,
        recorder: &mut Recorder,
    ) -> Result<()> {
        let target = self.target_id(url)?;
        let path = self.path.clone();
        let wrap = |cause| CatalogError::Sqlite {
            path: path.clone(),
            cause,
        };
        let mut facts = facts.clone();
        let tx = self.conn.transaction().map_err(wrap)?;
        if !facts.full {
            match sync::extends_last(&tx, target, &facts).map_err(wrap)? {
                Some(start) => facts.chain_start = start,
                None => {
                    drop(tx);
                    self.sync(repo, url, &crate::progress::Silent)?;
                    return Ok(());
                }
            }
        }
        let entries = recorder.entries().map_err(CatalogError::Query)?;
        sync::drop_set(&tx, target, &facts).map_err(wrap)?;
        let mut ix = index::SetIndexer::begin(&tx, target, &facts).map_err(wrap)?;
        for e in entries {
            let e = e.map_err(|e| CatalogError::Query(e.to_string()))?;
            ix.add(&e).map_err(wrap)?;
        }
        ix.finish().map_err(wrap)?;
        tx.commit().map_err(wrap)
    }

    /// Indexes one set from entries given directly, in one transaction:
    /// for an incremental, `facts.chain_start` is its chain's full time and
    /// `facts.start_time` the time of the set it extends. Returns the set id.
    pub fn index_entries(
        &mut self,
        url: &str,
        facts: &SetFacts,
        entries: impl IntoIterator<Item = Entry>,
    ) -> Result<i64> {
        let target = self.target_id(url)?;
        let path = self.path.clone();
        let wrap = |cause| CatalogError::Sqlite {
            path: path.clone(),
            cause,
        };
        let tx = self.conn.transaction().map_err(wrap)?;
        sync::drop_set(&tx, target, facts).map_err(wrap)?;
        let mut ix = index::SetIndexer::begin(&tx, target, facts).map_err(wrap)?;
        for e in entries {
            ix.add(&e).map_err(wrap)?;
        }
        let id = ix.finish().map_err(wrap)?;
        tx.commit().map_err(wrap)?;
        Ok(id)
    }

    /// Starts a run record (`backup`, `retention`, `cleanup`, `verify`,
    /// `restore`, `rebuild`); [`Catalog::finish_run`] ends it.
    pub fn start_run(&self, url: &str, kind: &str) -> Result<i64> {
        let target = self.target_id(url)?;
        self.conn
            .execute(
                "INSERT INTO run (target, kind, started, outcome, pid) VALUES (?1, ?2, ?3, 'running', ?4)",
                params![target, kind, crate::time::now(), std::process::id()],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records a run that has ended (`error` None for success).
    pub fn record_run(
        &self,
        url: &str,
        kind: &str,
        started: crate::time::Seconds,
        bytes: Option<u64>,
        set_time: Option<i64>,
        error: Option<&str>,
    ) -> Result<i64> {
        let run = self.start_run(url, kind)?;
        self.conn
            .execute(
                "UPDATE run SET started = ?2 WHERE id = ?1",
                params![run, started],
            )
            .map_err(|e| self.err(e))?;
        self.finish_run(run, bytes, set_time, error)?;
        Ok(run)
    }

    /// Ends a run: `error` None for success.
    pub fn finish_run(
        &self,
        run: i64,
        bytes: Option<u64>,
        set_time: Option<i64>,
        error: Option<&str>,
    ) -> Result<()> {
        let end = RunEnd {
            bytes,
            set_time,
            error: error.map(str::to_string),
        };
        let outcome = if error.is_some() { "failed" } else { "ok" };
        self.end_run(run, crate::time::now(), outcome, &end)
    }

    /// Starts a run of an appliance plan at `at` (its clock);
    /// [`Catalog::end_run`] ends it. A run never ended is found
    /// `interrupted` by the next open once its process is gone.
    pub fn begin_run(
        &self,
        url: &str,
        kind: &str,
        plan: &str,
        at: crate::time::Seconds,
    ) -> Result<i64> {
        let target = self.target_id(url)?;
        self.conn
            .execute(
                "INSERT INTO run (target, kind, started, outcome, pid, plan)
                 VALUES (?1, ?2, ?3, 'running', ?4, ?5)",
                params![target, kind, at, std::process::id(), plan],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Ends a run begun with [`Catalog::begin_run`]: `outcome` is `ok`,
    /// `failed` or `cancelled`.
    pub fn end_run(
        &self,
        run: i64,
        at: crate::time::Seconds,
        outcome: &str,
        r: &RunEnd,
    ) -> Result<()> {
        self.conn
            .execute(
                "UPDATE run SET ended = ?2, outcome = ?3, bytes = ?4, set_time = ?5, error = ?6
                 WHERE id = ?1",
                params![
                    run,
                    at,
                    outcome,
                    r.bytes.map(|b| b as i64),
                    r.set_time,
                    r.error
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// When each volume of the target was last checked, by name.
    pub fn volume_checks(&self, url: &str) -> Result<std::collections::HashMap<String, i64>> {
        let target = self.target_id(url)?;
        let mut st = self
            .conn
            .prepare("SELECT name, checked FROM volume_check WHERE target = ?1")
            .map_err(|e| self.err(e))?;
        st.query_map([target], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(Iterator::collect)
            .map_err(|e| self.err(e))
    }

    /// Records that volume `name` was checked at `at`, and what was found;
    /// forgets volumes no longer at the target (`current`).
    pub fn record_checks(
        &self,
        url: &str,
        at: i64,
        checked: &[(String, Option<String>)],
        current: &[String],
    ) -> Result<()> {
        let target = self.target_id(url)?;
        let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
        for (name, problem) in checked {
            tx.execute(
                "INSERT OR REPLACE INTO volume_check (target, name, checked, problem) VALUES (?1, ?2, ?3, ?4)",
                params![target, name, at, problem],
            )
            .map_err(|e| self.err(e))?;
        }
        let keep: std::collections::HashSet<&str> = current.iter().map(String::as_str).collect();
        let known: Vec<String> = {
            let mut st = tx
                .prepare("SELECT name FROM volume_check WHERE target = ?1")
                .map_err(|e| self.err(e))?;
            st.query_map([target], |r| r.get(0))
                .and_then(Iterator::collect)
                .map_err(|e| self.err(e))?
        };
        for name in known.iter().filter(|n| !keep.contains(n.as_str())) {
            tx.execute(
                "DELETE FROM volume_check WHERE target = ?1 AND name = ?2",
                params![target, name],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// A new catalog at `path` built from the target alone; the old one is
    /// replaced only once the new one is complete (`<path>.rebuild` until
    /// then), keeping its run log, events and volume checks, which the
    /// target cannot give back. The replacement is SQLite's backup into the
    /// old file, one transaction under SQLite's locks, so a connection that
    /// another process (or thread) holds open sees the new catalog, never a
    /// deleted file or a half-copied one.
    pub fn rebuild(
        path: &Path,
        repo: &crate::repo::Repo,
        url: &str,
        coll: &crate::archive::collection::Collection,
        progress: &dyn crate::progress::Progress,
    ) -> Result<SyncReport> {
        let fresh = PathBuf::from(format!("{}.rebuild", path.display()));
        remove_db(&fresh)?;
        let mut cat = Catalog::open(&fresh)?;
        let r = cat.sync_with(repo, url, coll, progress)?;
        if path.exists()
            && let Ok(old) = Catalog::open(path)
        {
            cat.copy_runs_from(&old)?;
        }
        drop(cat);
        replace_db(path, &fresh)?;
        Ok(r)
    }

    /// Records an event (`level`: info, warning, error).
    pub fn event(&self, run: Option<i64>, level: &str, kind: &str, message: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO event (time, run, level, kind, message) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![crate::time::now(), run, level, kind, message],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Marks the runs of appliance plan `plan` still `running` as
    /// `interrupted`: called by the daemon as it starts, when none can be
    /// its own, whatever pid they name.
    pub fn interrupt_plan_runs(&self, plan: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE run SET outcome = 'interrupted' WHERE outcome = 'running' AND plan = ?1",
                [plan],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Runs whose process is gone without ending them were interrupted.
    fn close_interrupted_runs(&mut self) -> Result<()> {
        let running: Vec<(i64, i64)> = {
            let mut st = self
                .conn
                .prepare("SELECT id, pid FROM run WHERE outcome = 'running'")
                .map_err(|e| self.err(e))?;
            st.query_map([], |r| {
                Ok((r.get(0)?, r.get::<_, Option<i64>>(1)?.unwrap_or(0)))
            })
            .and_then(Iterator::collect)
            .map_err(|e| self.err(e))?
        };
        for (id, pid) in running {
            let alive = pid > 0
                && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok();
            if !alive {
                self.conn
                    .execute("UPDATE run SET outcome = 'interrupted' WHERE id = ?1", [id])
                    .map_err(|e| self.err(e))?;
            }
        }
        Ok(())
    }
}

/// Copies the database `fresh` over the one at `path` (SQLite's backup API:
/// atomic, safe with other connections open), then removes `fresh`. A file
/// at `path` that SQLite cannot open is replaced by renaming.
fn replace_db(path: &Path, fresh: &Path) -> Result<()> {
    let copied = Connection::open(path).and_then(|mut dst| {
        dst.restore(
            rusqlite::MAIN_DB,
            fresh,
            None::<fn(rusqlite::backup::Progress)>,
        )
    });
    if copied.is_ok() {
        return remove_db(fresh);
    }
    remove_db(path)?;
    std::fs::rename(fresh, path).map_err(|cause| CatalogError::Dir {
        path: path.to_path_buf(),
        cause,
    })
}

/// Removes a database and its WAL files, if there.
fn remove_db(path: &Path) -> Result<()> {
    for suffix in ["-wal", "-shm", ""] {
        let p = PathBuf::from(format!("{}{suffix}", path.display()));
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(cause) => return Err(CatalogError::Dir { path: p, cause }),
        }
    }
    Ok(())
}

/// What a run ended with.
#[derive(Debug, Default, Clone)]
pub struct RunEnd {
    pub bytes: Option<u64>,
    pub set_time: Option<crate::time::Seconds>,
    pub error: Option<String>,
}

/// Why a catalog file could not be opened.
enum Unusable {
    /// The file: damaged, or from a newer Cairn. It is moved aside.
    File(String),
    /// The disk or the system: left as it is, and said.
    Io(rusqlite::Error),
}

impl Unusable {
    fn classify(e: rusqlite::Error) -> Unusable {
        use rusqlite::ErrorCode::{DatabaseCorrupt, NotADatabase};
        match e.sqlite_error_code() {
            Some(DatabaseCorrupt | NotADatabase) => Unusable::File(format!("is damaged ({e})")),
            _ => Unusable::Io(e),
        }
    }

    fn into_error(self, path: &Path) -> CatalogError {
        let path = path.to_path_buf();
        match self {
            Unusable::Io(cause) => CatalogError::Sqlite { path, cause },
            Unusable::File(why) => CatalogError::Unusable { path, why },
        }
    }
}

/// Moves a file that cannot be used aside (with its WAL), never deleting it.
fn move_aside(path: &Path, why: &str) -> Result<PathBuf> {
    let tag = if why.contains("newer") {
        "newer"
    } else {
        "damaged"
    };
    let aside = PathBuf::from(format!(
        "{}.{tag}-{}",
        path.display(),
        crate::time::to_string(crate::time::now())
    ));
    for suffix in ["", "-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", path.display()));
        if from.exists() {
            let to = PathBuf::from(format!("{}{suffix}", aside.display()));
            std::fs::rename(&from, &to).map_err(|source| CatalogError::Dir {
                path: from.clone(),
                cause: source,
            })?;
        }
    }
    Ok(aside)
}

/// A target URL without its password (`scheme://user:secret@host` →
/// `scheme://user@host`).
pub fn public_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let host_end = rest.find('/').unwrap_or(rest.len());
    let (auth, tail) = rest.split_at(host_end);
    match auth.rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split_once(':').map_or(user, |(u, _)| u);
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_run_left_running_is_interrupted_at_the_daemon_start() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::open(&dir.path().join("c.sqlite")).unwrap();
        // This process is alive: only the daemon's start can tell it is stale.
        cat.begin_run("file:///t", "backup", "main", 100).unwrap();
        let cli = cat.start_run("file:///t", "backup").unwrap();
        cat.interrupt_plan_runs("main").unwrap();
        let (last, success) = cat.last_plan_run("main", "backup").unwrap();
        assert_eq!(last.unwrap().outcome, "interrupted");
        assert_eq!(success, None);
        let runs = cat.runs(10).unwrap();
        let other = runs.iter().find(|r| r.id == cli).unwrap();
        assert_eq!(other.outcome, "running", "a CLI run is not the daemon's");
    }

    #[test]
    fn urls_lose_their_passwords() {
        assert_eq!(
            public_url("sftp://me:s3cret@host:22/backups"),
            "sftp://me@host:22/backups"
        );
        assert_eq!(public_url("file:///mnt/usb"), "file:///mnt/usb");
        assert_eq!(public_url("rsync://u@host::mod/x"), "rsync://u@host::mod/x");
    }

    #[test]
    fn a_damaged_file_is_moved_aside_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(FILE_NAME);
        std::fs::write(&p, vec![0x55u8; 8192]).unwrap();
        let c = Catalog::open(&p).unwrap();
        assert_eq!(c.notes.len(), 1, "{:?}", c.notes);
        assert!(c.notes[0].contains("damaged"), "{}", c.notes[0]);
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".damaged-"))
            .collect();
        assert_eq!(aside.len(), 1);
        assert_eq!(std::fs::read(aside[0].path()).unwrap(), vec![0x55u8; 8192]);
    }

    #[test]
    fn a_newer_schema_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(FILE_NAME);
        Catalog::open(&p).unwrap();
        let c = Connection::open(&p).unwrap();
        c.execute_batch("PRAGMA user_version = 99").unwrap();
        drop(c);
        let c = Catalog::open(&p).unwrap();
        assert!(c.notes[0].contains("newer Cairn"), "{:?}", c.notes);
    }

    #[test]
    fn runs_left_running_by_a_dead_process_are_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(FILE_NAME);
        let c = Catalog::open(&p).unwrap();
        let run = c.start_run("file:///x", "backup").unwrap();
        c.conn
            .execute("UPDATE run SET pid = 999999999 WHERE id = ?1", [run])
            .unwrap();
        let ok = c.start_run("file:///x", "backup").unwrap();
        c.finish_run(ok, Some(5), Some(7), None).unwrap();
        drop(c);
        let c = Catalog::open(&p).unwrap();
        let runs = c.runs(10).unwrap();
        assert_eq!(runs[0].outcome, "ok");
        assert_eq!(runs[1].outcome, "interrupted");
    }
}
