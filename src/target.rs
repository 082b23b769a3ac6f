//! One target, opened the one way the command lines, the appliance and the
//! dashboard all open it: the URL's backend with its transport options, the
//! local archive-dir cache, the keys, and the storage settings of new
//! volumes. Also what a profile says about selection, and the catalog's
//! record of a set a backup just wrote.

use crate::archive::names::Naming;
use crate::backup::{BackupReport, Storage};
use crate::catalog::{Catalog, CatalogError, Recorder, SetFacts};
use crate::crypto::Keyring;
use crate::error::{Error, Result};
use crate::repo::{self, Repo};
use std::path::{Path, PathBuf};

/// Options that say how to reach and read a target.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct TargetArgs {
    /// Local cache of signatures and manifests (duplicity's --archive-dir).
    /// Default: ~/.cache/duplicity, shared with duplicity.
    #[arg(long, value_name = "DIR")]
    pub archive_dir: Option<PathBuf>,
    /// Name of this backup inside the archive directory. Default: the MD5 of
    /// the target URL, as duplicity names it.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Read the passphrase from this file instead of the PASSPHRASE
    /// environment variable.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Where to put downloads and work files. Default: $TMPDIR or /tmp.
    #[arg(long, value_name = "DIR")]
    pub tempdir: Option<PathBuf>,
    /// OpenPGP secret key file(s) for archives encrypted to a public key
    /// (otherwise the GnuPG keyring is asked for the recipients' keys).
    #[arg(long = "secret-key", value_name = "FILE")]
    pub secret_keys: Vec<PathBuf>,
    /// GnuPG home to take keys from (default: GNUPGHOME or ~/.gnupg).
    #[arg(long, value_name = "DIR")]
    pub gnupg_home: Option<PathBuf>,
    #[command(flatten)]
    pub remote: crate::profile::Remote,
    /// Name prefixes (duplicity's `--file-prefix*`), on write and on read.
    #[arg(skip)]
    pub prefixes: crate::archive::names::Prefixes,
    /// The catalog file (default: cairn-catalog.sqlite in the archive
    /// directory). It is a cache of the target, rebuilt when missing.
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
}

/// The passphrase from a file (trailing newline dropped) or `PASSPHRASE`.
pub fn passphrase(file: Option<&PathBuf>) -> Result<Option<String>> {
    if let Some(f) = file {
        let text = std::fs::read_to_string(f).map_err(|source| Error::Read {
            file: format!("passphrase file {}", f.display()),
            source,
        })?;
        return Ok(Some(text.trim_end_matches(['\n', '\r']).to_string()));
    }
    Ok(std::env::var("PASSPHRASE").ok())
}

/// The target at `url`: its backend, its cache directory in the archive
/// dir (named as duplicity names it), and the keys to read it.
pub fn open(url: &str, args: &TargetArgs) -> Result<Repo> {
    let options = args
        .remote
        .backend_options(args.tempdir.clone())
        .map_err(Error::Usage)?;
    let mut repo = Repo::open_with(url, &options)?;
    repo.naming = Naming::new(args.prefixes.clone());
    let root = args
        .archive_dir
        .clone()
        .unwrap_or_else(repo::default_archive_root);
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| repo::default_backup_name(url));
    repo.archive_dir = Some(root.join(name));
    if let Some(t) = &args.tempdir {
        repo.tempdir = t.clone();
    }
    let mut keys = Keyring::default();
    if let Some(p) = passphrase(args.passphrase_file.as_ref())? {
        keys.passphrase = Some(p.into());
    }
    for f in &args.secret_keys {
        keys.add_key_file(f)?;
    }
    keys.gnupg = Some(crate::crypto::gnupg::GnupgHome {
        homedir: args.gnupg_home.clone(),
    });
    repo.keys = keys;
    Ok(repo)
}

/// Where the catalog of this target lives: `--catalog`, else beside the
/// cache in the archive directory.
pub fn catalog_path(repo: &Repo, args: &TargetArgs) -> Option<PathBuf> {
    args.catalog
        .clone()
        .or_else(|| repo.archive_dir.as_deref().map(Catalog::path_in))
}

/// How stored files are to be encrypted and compressed.
#[derive(Debug, Clone, Default)]
pub struct EncryptionRequest {
    pub encrypt: bool,
    pub compress: bool,
    /// `--gpg-options`, space-joined.
    pub gpg_options: String,
    /// Key IDs, fingerprints or key files to encrypt to.
    pub encrypt_keys: Vec<String>,
    pub hidden_keys: Vec<String>,
    pub sign_key: Option<String>,
}

impl EncryptionRequest {
    /// What a profile's `[encryption]` table asks for.
    pub fn from_profile(enc: &crate::profile::Encryption) -> EncryptionRequest {
        EncryptionRequest {
            encrypt: enc.enabled.unwrap_or(true),
            compress: enc.compress.unwrap_or(true),
            gpg_options: enc.gpg_options.clone().unwrap_or_default(),
            encrypt_keys: enc.encrypt_keys.clone(),
            hidden_keys: enc.hidden_keys.clone(),
            sign_key: enc.sign_key.clone(),
        }
    }
}

/// Builds the storage settings: keys looked up, gpg options applied.
pub fn storage(
    req: &EncryptionRequest,
    repo: &Repo,
    gnupg_home: Option<&PathBuf>,
) -> Result<Storage> {
    use crate::crypto::{EncryptConfig, gnupg::GnupgHome, gpgopts};
    let gpg = gpgopts::parse(&req.gpg_options)?;
    if !req.encrypt {
        if !req.encrypt_keys.is_empty() || req.sign_key.is_some() {
            return Err(Error::Usage(
                "--no-encryption cannot be combined with --encrypt-key or --sign-key".into(),
            ));
        }
        return Ok(if req.compress {
            Storage::Gzip
        } else {
            Storage::Plain
        });
    }
    let home = GnupgHome {
        homedir: gpg.homedir.clone().or_else(|| gnupg_home.cloned()),
    };
    let mut cfg = EncryptConfig::symmetric("");
    cfg.passphrase = repo.keys.passphrase.clone();
    for k in &req.encrypt_keys {
        cfg.recipients.extend(home.public(k)?);
    }
    for k in &req.hidden_keys {
        cfg.hidden_recipients.extend(home.public(k)?);
    }
    let public_key_mode = !cfg.recipients.is_empty() || !cfg.hidden_recipients.is_empty();
    if !public_key_mode && cfg.passphrase.is_none() {
        return Err(crate::crypto::CryptoError::NoPassphraseToEncrypt.into());
    }
    if let Some(k) = &req.sign_key {
        let sign_pass = std::env::var("SIGN_PASSPHRASE")
            .ok()
            .or_else(|| std::env::var("PASSPHRASE").ok());
        let certs = home.secret(k, sign_pass.as_deref())?;
        cfg.sign_key = certs.into_iter().next();
        cfg.sign_passphrase = sign_pass.map(Into::into);
    }
    if let Some(c) = gpg.cipher {
        cfg.cipher = c;
    }
    if let Some(c) = gpg.compression {
        cfg.compression = c;
    }
    if !req.compress {
        cfg.compression = sequoia_openpgp::types::CompressionAlgorithm::Uncompressed;
    }
    cfg.compress_level = gpg.compress_level;
    Ok(Storage::Encrypted(Box::new(cfg)))
}

/// A profile's selection rules (duplicity's file-list form) for `source`.
pub fn selection(
    rules: &[String],
    source: &Path,
) -> std::result::Result<
    crate::source::selection::Selection,
    crate::source::selection::SelectionError,
> {
    let mut sel = crate::source::selection::Selection::default();
    if !rules.is_empty() {
        sel.add_filelist(&rules.join("\n"), false, false, source)?;
    }
    sel.check()?;
    Ok(sel)
}

/// Indexes the set a backup just wrote (its entries spooled by `recorder`)
/// in the catalog at `path`, and returns the catalog's notes (a damaged
/// file moved aside, …) for the caller to say.
pub fn index_backup(
    path: &Path,
    repo: &Repo,
    url: &str,
    report: &BackupReport,
    encoding: crate::archive::names::Encoding,
    recorder: &std::sync::Mutex<Recorder>,
) -> std::result::Result<(Catalog, Vec<String>), CatalogError> {
    let mut cat = Catalog::open(path)?;
    let notes = std::mem::take(&mut cat.notes);
    let facts = SetFacts::after_backup(repo, report, encoding)?;
    let mut rec = recorder.lock().unwrap_or_else(|e| e.into_inner());
    cat.record(repo, url, &facts, &mut rec)?;
    Ok((cat, notes))
}
