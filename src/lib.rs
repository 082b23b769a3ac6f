//! Cairn: a backup appliance whose archives are duplicity's, byte for byte.
//!
//! # Modules
//!
//! | module | concept |
//! | --- | --- |
//! | [`appliance`] | the daemon: configuration with plans, scheduler, job queue, the runner that drives the engine through [`target`], LEDs and button (simulated or the Pi's), notifications, metrics |
//! | [`time`] | duplicity's time strings (`20261125T073022Z`, short forms, `2W3D` intervals) |
//! | [`archive`] | the format: file [`names`](archive::names), [`manifest`](archive::manifest)s, the [`collection`](archive::collection) of sets and chains, volume tars ([`difftar`](archive::difftar), [`tarfmt`](archive::tarfmt)), the downloads' zip records ([`zipfmt`](archive::zipfmt)), signature tars ([`sigtar`](archive::sigtar)), and the [`codec`](archive::codec) that gzips or encrypts a volume |
//! | [`crypto`] | OpenPGP: a [`Keyring`](crypto::Keyring) of passphrase, keys and GnuPG, and the messages duplicity's gpg writes and reads |
//! | [`delta`] | rsync signatures, deltas and patches (librsync's format) |
//! | [`backend`] | where archive files live: `file://`, `rsync://` (daemon, ssh, Tor), `sftp://`, `s3://` |
//! | [`target`] | opening a target the one way every front end does: backend, cache, keys, storage settings, the catalog's record of a new set |
//! | [`repo`] | one target plus its local archive-dir cache: listing, fetching with hash checks, atomic writes, the lock |
//! | [`source`] | walking the tree to back up, with duplicity's [`selection`](source::selection) rules |
//! | [`backup`] | full and incremental sets, split into volumes, uploaded while the next is encoded, resumed after an interruption |
//! | [`restore`] | a point in time back into a directory, [`over the original`](restore::replace), or as a [`tar`](restore::tar) or [`zip`](restore::zip) stream; and `verify` |
//! | [`catalog`] | a SQLite index of every set and every path in it, filled as a backup writes and rebuilt from the target's signatures alone |
//! | [`maintenance`] | retention and `cleanup`: what to delete, shown before it is deleted |
//! | [`replicate`] | copying a target's archive files to another target (duplicity's `replicate`), manifests last |
//! | [`profile`] | the TOML profile the native CLI and the appliance read |
//! | [`progress`] | progress events, for the terminal or the dashboard |
//! | [`cli`] | the native `cairn` command line and the duplicity-compatible one |
//! | [`serve`] | `cairn serve`: starts the [`appliance`] daemon and the [`web`] dashboard, stops both on SIGTERM |
//! | [`web`] | the dashboard: claim and setup, sessions and CSRF, overview, sets, browse and download, jobs with live progress, settings, the JSON API, optional HTTPS |
//! | [`error`] | the library's error type, with what to do about each |
//! | [`fault`] | deterministic kill points at every step boundary, for the crash tests |
//!
//! # How data flows
//!
//! Backup: [`source`] yields paths in duplicity's index order → [`backup`]
//! compares each with the previous signatures ([`archive::sigtar`]) and emits a
//! snapshot, a [`delta`] or a deletion → [`archive::difftar`] lays them into
//! tar volumes and new signatures → [`archive::codec`] compresses (1 MiB
//! segments of one deflate stream, on every core) and encrypts → [`repo`]
//! stages each volume for the [`backend`], which commits it under its final
//! name on a thread of its own while the next volume is encoded (at most
//! `--concurrency` at once); a volume goes into the manifest once it is
//! stored, in order, and the manifest goes last, so a set looks complete only
//! when it is.
//! As the signatures are written, [`backup::Observer`] hands each entry to
//! a [`catalog::Recorder`] (a spool file); once the set is complete the
//! [`catalog`] indexes it in one transaction. Every later use of the catalog
//! compares it with the target's listing and indexes what it lacks from the
//! signature files alone ([`catalog::Catalog::sync`]).
//!
//! The appliance ([`serve`] → [`appliance::daemon`]): the scheduler queues a
//! plan's backup when its cron slot comes ([`appliance::schedule`]); the
//! worker takes jobs one at a time, begins a run in the [`catalog`], and
//! [`appliance::runner`] opens the target with [`target`] (the same calls
//! the CLI makes) and runs [`backup`] then [`maintenance`] (retention),
//! [`restore`] or verify; the run is ended in the catalog, the plan's state
//! updated, notifications sent ([`appliance::notify`]). The LED thread draws
//! that state ([`appliance::leds`]); the button thread turns edges into
//! gestures ([`appliance::button`]) and gestures into jobs. The dashboard
//! ([`web`]) reads the same state and the [`catalog`], queues jobs, and
//! streams downloads from [`restore::tar`] and [`restore::zip`] (a restore
//! written as a tar or zip stream).
//!
//! Restore runs the other way: [`repo`] lists the target into an
//! [`archive::collection`], picks the chain for the requested time, fetches
//! and checks each volume, [`archive::codec`] decodes it, and [`restore`]
//! merges the sets' tar streams in index order, patching deltas as it goes and
//! writing into the destination without ever following a path outside it.

pub mod appliance;
pub mod archive;
pub mod backend;
pub mod backup;
pub mod catalog;
pub mod cli;
pub mod crypto;
pub mod delta;
pub mod error;
pub mod fault;
pub mod maintenance;
pub mod profile;
pub mod progress;
pub mod replicate;
pub mod repo;
pub mod restore;
pub mod serve;
pub mod source;
pub mod target;
pub mod time;
pub mod web;

pub use error::{Error, Result};
