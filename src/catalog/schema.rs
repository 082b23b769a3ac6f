//! The catalog's tables, as migrations (`rusqlite_migration`, versioned by
//! SQLite's `user_version`).
//!
//! Paths are stored once, as a tree of names (`path`), shared by every set,
//! chain and target. A set stores only what it did (`version`: one row per
//! path it added, changed or deleted); the state of a chain at a set is, for
//! each path, its latest version at or before that set. A chain of 26 weekly
//! sets over 1,000,000 files with 1 % change is 1.26 million version rows, not
//! 26 million.

use rusqlite_migration::{M, Migrations};

/// `change` values in `version`.
pub const NEW: i64 = 1;
pub const DELTA: i64 = 2;
pub const SNAPSHOT: i64 = 3;
pub const DELETED: i64 = 4;

/// The root path's id (`parent` 0, empty name).
pub const ROOT: i64 = 1;

/// `kind` values in `version`, in order from 1.
pub const KINDS: [&str; 6] = ["reg", "dir", "sym", "fifo", "chr", "blk"];

/// The code of a kind name (1-based), as stored.
pub fn kind_code(name: &str) -> Option<i64> {
    KINDS.iter().position(|k| *k == name).map(|i| i as i64 + 1)
}

/// The name of a stored kind code.
pub fn kind_name(code: i64) -> Option<&'static str> {
    usize::try_from(code - 1)
        .ok()
        .and_then(|i| KINDS.get(i).copied())
}

const V1: &str = "
CREATE TABLE target (
    id INTEGER PRIMARY KEY,
    url TEXT NOT NULL UNIQUE            -- without passwords
);
CREATE TABLE chain (
    id INTEGER PRIMARY KEY,
    target INTEGER NOT NULL REFERENCES target(id) ON DELETE CASCADE,
    start_time INTEGER NOT NULL,        -- the full set's time
    UNIQUE (target, start_time)
);
CREATE TABLE backup_set (
    id INTEGER PRIMARY KEY,
    chain INTEGER NOT NULL REFERENCES chain(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,               -- 0 for the full, then 1, 2, …
    kind TEXT NOT NULL CHECK (kind IN ('full', 'inc')),
    start_time INTEGER,                 -- incrementals: the time extended
    end_time INTEGER NOT NULL,          -- the set's time
    volumes INTEGER NOT NULL,
    stored_bytes INTEGER,               -- NULL when the target did not say
    source_bytes INTEGER NOT NULL,      -- regular files' bytes at this set …
    source_slack INTEGER NOT NULL,      -- … give or take this many
    files INTEGER NOT NULL,             -- paths that exist at this set
    new_paths INTEGER NOT NULL,
    changed_paths INTEGER NOT NULL,
    deleted_paths INTEGER NOT NULL,
    writer TEXT,                        -- 'cairn' when Cairn recorded it as it wrote it
    indexed INTEGER NOT NULL,           -- 0: signatures missing, no paths recorded
    UNIQUE (chain, seq),
    UNIQUE (chain, end_time)
);
CREATE TABLE volume (
    set_id INTEGER NOT NULL REFERENCES backup_set(id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    name TEXT NOT NULL,
    size INTEGER,
    sha1 TEXT,
    PRIMARY KEY (set_id, number)
) WITHOUT ROWID;
-- A name is stored once; it is found through a 32-bit hash of it (the
-- index holds the hash, not the name: half the size of an index on names).
CREATE TABLE path (
    id INTEGER PRIMARY KEY,
    parent INTEGER NOT NULL,
    hash INTEGER NOT NULL,              -- index::name_hash(name)
    name BLOB NOT NULL
);
CREATE INDEX path_by_hash ON path (parent, hash);
INSERT INTO path (id, parent, hash, name) VALUES (1, 0, -2128831035, x'');
-- Owners are few: each (uid, gid, names) once.
CREATE TABLE owner (
    id INTEGER PRIMARY KEY,
    uid INTEGER NOT NULL,
    gid INTEGER NOT NULL,
    uname BLOB NOT NULL,
    gname BLOB NOT NULL,
    UNIQUE (uid, gid, uname, gname)
);
CREATE TABLE version (
    path INTEGER NOT NULL,
    chain INTEGER NOT NULL REFERENCES chain(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    change INTEGER NOT NULL,            -- 1 new, 2 delta, 3 snapshot, 4 deleted
    kind INTEGER,                       -- 1 reg 2 dir 3 sym 4 fifo 5 chr 6 blk; NULL if deleted
    size INTEGER NOT NULL,              -- regular files; an upper bound if slack > 0
    slack INTEGER NOT NULL,
    mode INTEGER NOT NULL,
    owner INTEGER NOT NULL REFERENCES owner(id),
    mtime INTEGER NOT NULL,
    link BLOB,
    PRIMARY KEY (path, chain, seq)
) WITHOUT ROWID;
CREATE INDEX version_by_set ON version (chain, seq);
CREATE TABLE run (
    id INTEGER PRIMARY KEY,
    target INTEGER REFERENCES target(id) ON DELETE SET NULL,
    kind TEXT NOT NULL,                 -- backup retention cleanup verify restore rebuild
    started INTEGER NOT NULL,
    ended INTEGER,
    outcome TEXT NOT NULL,              -- running ok failed interrupted
    bytes INTEGER,
    set_time INTEGER,
    error TEXT,
    pid INTEGER
);
CREATE TABLE event (
    id INTEGER PRIMARY KEY,
    time INTEGER NOT NULL,
    run INTEGER REFERENCES run(id) ON DELETE CASCADE,
    level TEXT NOT NULL,                -- info warning error
    kind TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX event_by_time ON event (time);
";

/// Version 2: runs remember the appliance plan they belong to; the
/// rotating check remembers when it last read each volume.
const V2: &str = "ALTER TABLE run ADD COLUMN plan TEXT;
CREATE INDEX run_by_plan ON run (plan, kind);
CREATE TABLE volume_check (
    target INTEGER NOT NULL REFERENCES target(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    checked INTEGER NOT NULL,
    problem TEXT,
    PRIMARY KEY (target, name)
) WITHOUT ROWID;";

pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(V1), M::up(V2)])
}

/// The newest schema version this build knows.
pub const VERSION: i64 = 2;

#[cfg(test)]
mod tests {
    #[test]
    fn the_root_row_has_the_empty_names_hash() {
        assert_eq!(crate::catalog::index::name_hash(b""), -2128831035);
    }

    #[test]
    fn migrations_are_valid() {
        super::migrations().validate().unwrap();
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let pending = super::migrations().pending_migrations(&conn).unwrap();
        assert_eq!(i64::from(pending), super::VERSION);
    }
}
