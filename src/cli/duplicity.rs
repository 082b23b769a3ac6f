//! duplicity's command line, as 0.8 parses it (`duplicity/commandline.py`,
//! optparse): an optional command (any unique prefix, plus 3.x's short
//! aliases), options anywhere, long options by any unique prefix, `--opt=v`
//! or `--opt v`, and the action implied by argument order when no command is
//! given (`SRC URL` backs up, `URL DIR` restores).
//!
//! Every option duplicity knows is recognised. Each is either honoured,
//! accepted as having no effect on Cairn (with the reason in the table), or
//! refused with a message naming it — never silently dropped.

use super::common::{self, Outcome, TargetArgs};
use crate::error::Error;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

/// How Cairn treats an option.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Use {
    /// Honoured.
    Yes,
    /// Accepted; it changes nothing in Cairn, for the reason given.
    NoEffect(&'static str),
    /// Refused, for the reason given.
    No(&'static str),
}

struct Spec {
    name: &'static str,
    /// Number of values the option takes (0, 1, or 2 for `--rename`).
    values: usize,
    usage: Use,
}

const fn opt(name: &'static str, values: usize, usage: Use) -> Spec {
    Spec {
        name,
        values,
        usage,
    }
}

const NOT_BACKEND: &str = "Cairn supports file://, rsync://, sftp:// and s3:// targets";
const CHANGES_IN_SETS: &str = "collection-status cannot list the changes in a set yet; \
     use list-current-files at the set's time instead";
const NOT_PAR2: &str = "par2 redundancy is not supported; keep a second copy of the target instead";

/// Every long option of duplicity 0.8.22, plus the 3.x spellings people use.
const OPTIONS: &[Spec] = &[
    opt("allow-source-mismatch", 0, Use::Yes),
    opt("archive-dir", 1, Use::Yes),
    opt(
        "asynchronous-upload",
        0,
        Use::NoEffect(
            "Cairn sends each volume while it encodes the next already (duplicity 3.x's \
             --concurrency sets how many at once)",
        ),
    ),
    opt("compare-data", 0, Use::Yes),
    opt(
        "config-dir",
        1,
        Use::NoEffect("only the Tahoe-LAFS and similar backends read it"),
    ),
    opt("copy-links", 0, Use::Yes),
    opt("current-time", 1, Use::Yes),
    opt("dry-run", 0, Use::Yes),
    opt("encrypt-key", 1, Use::Yes),
    opt("encrypt-secret-keyring", 1, Use::Yes),
    opt("encrypt-sign-key", 1, Use::Yes),
    opt("exclude", 1, Use::Yes),
    opt("exclude-device-files", 0, Use::Yes),
    opt("exclude-filelist", 1, Use::Yes),
    opt("exclude-filelist-stdin", 0, Use::Yes),
    opt("exclude-globbing-filelist", 1, Use::Yes),
    opt("exclude-if-present", 1, Use::Yes),
    opt("exclude-other-filesystems", 0, Use::Yes),
    opt("exclude-regexp", 1, Use::Yes),
    opt("exclude-older-than", 1, Use::Yes),
    opt(
        "fail-on-volume",
        1,
        Use::No("a duplicity testing option that makes the backup fail on purpose"),
    ),
    opt("file-prefix", 1, Use::Yes),
    opt("file-prefix-manifest", 1, Use::Yes),
    opt("file-prefix-archive", 1, Use::Yes),
    opt("file-prefix-signature", 1, Use::Yes),
    opt(
        "skip-volume",
        1,
        Use::No(
            "skipping volumes on restore is a debugging option; Cairn skips damaged volumes by itself",
        ),
    ),
    opt("file-to-restore", 1, Use::Yes),
    opt("path-to-restore", 1, Use::Yes),
    opt("force", 0, Use::Yes),
    opt("ftp-passive", 0, Use::NoEffect(NOT_BACKEND)),
    opt("ftp-regular", 0, Use::NoEffect(NOT_BACKEND)),
    opt("full-if-older-than", 1, Use::Yes),
    opt("gio", 0, Use::No(NOT_BACKEND)),
    opt(
        "gpg-binary",
        1,
        Use::NoEffect("Cairn does OpenPGP itself, without gpg"),
    ),
    opt("gpg-options", 1, Use::Yes),
    opt("hidden-encrypt-key", 1, Use::Yes),
    opt("idr-fakeroot", 1, Use::No(NOT_BACKEND)),
    opt(
        "ignore-errors",
        0,
        Use::NoEffect(
            "Cairn always carries on past a damaged volume or a failed chown, restores the rest \
             and reports what it could not restore (exit 21)",
        ),
    ),
    opt("imap-full-address", 0, Use::No(NOT_BACKEND)),
    opt("imap-mailbox", 1, Use::No(NOT_BACKEND)),
    opt("include", 1, Use::Yes),
    opt("include-filelist", 1, Use::Yes),
    opt("include-filelist-stdin", 0, Use::Yes),
    opt("include-globbing-filelist", 1, Use::Yes),
    opt("include-regexp", 1, Use::Yes),
    opt("log-fd", 1, Use::Yes),
    opt("log-file", 1, Use::Yes),
    opt(
        "log-timestamp",
        0,
        Use::No(
            "Cairn's messages carry no time stamps; pipe them through `ts` (moreutils) \
             or read them from the journal",
        ),
    ),
    opt(
        "max-blocksize",
        1,
        Use::No("Cairn uses duplicity's default signature block sizes; drop the option"),
    ),
    opt("name", 1, Use::Yes),
    opt("no-encryption", 0, Use::Yes),
    opt("no-compression", 0, Use::Yes),
    opt("no-print-statistics", 0, Use::Yes),
    opt("null-separator", 0, Use::Yes),
    opt("num-retries", 1, Use::Yes),
    opt("numeric-owner", 0, Use::Yes),
    opt("do-not-restore-ownership", 0, Use::Yes),
    opt("no-restore-ownership", 0, Use::Yes),
    opt("restore-ownership", 0, Use::Yes),
    opt(
        "old-filenames",
        0,
        Use::No("old-style file names are read but never written; drop the option"),
    ),
    opt(
        "metadata-sync-mode",
        1,
        Use::NoEffect("Cairn reads remote metadata only for the chain it needs"),
    ),
    opt("par2-redundancy", 1, Use::No(NOT_PAR2)),
    opt("par2-options", 1, Use::No(NOT_PAR2)),
    opt("par2-volumes", 1, Use::No(NOT_PAR2)),
    opt("progress", 0, Use::Yes),
    opt(
        "progress-rate",
        1,
        Use::NoEffect("Cairn's progress display sets its own rate"),
    ),
    opt("pydevd", 0, Use::NoEffect("a Python debugger hook")),
    opt(
        "rename",
        2,
        Use::No("--rename is not supported; restore into a directory and move the files"),
    ),
    opt("restore-time", 1, Use::Yes),
    opt("time", 1, Use::Yes),
    opt("rsync-options", 1, Use::Yes),
    opt(
        "s3-european-buckets",
        0,
        Use::NoEffect("buckets are addressed by endpoint and region"),
    ),
    opt(
        "s3-use-rrs",
        0,
        Use::No("S3 storage classes are not supported yet"),
    ),
    opt(
        "s3-use-ia",
        0,
        Use::No("S3 storage classes are not supported yet"),
    ),
    opt(
        "s3-use-glacier",
        0,
        Use::No("S3 storage classes are not supported yet"),
    ),
    opt(
        "s3-use-glacier-ir",
        0,
        Use::No("S3 storage classes are not supported yet"),
    ),
    opt(
        "s3-use-deep-archive",
        0,
        Use::No("S3 storage classes are not supported yet"),
    ),
    opt(
        "s3-use-onezone-ia",
        0,
        Use::No("S3 storage classes are not supported yet"),
    ),
    opt(
        "s3-use-new-style",
        0,
        Use::NoEffect("Cairn always uses new-style S3 addressing"),
    ),
    opt("s3-unencrypted-connection", 0, Use::Yes),
    opt("s3-multipart-chunk-size", 1, Use::Yes),
    opt(
        "s3-multipart-max-procs",
        1,
        Use::NoEffect("Cairn uploads parts in its own pipeline"),
    ),
    opt(
        "s3-multipart-max-timeout",
        1,
        Use::NoEffect("Cairn uses --timeout for every request"),
    ),
    opt(
        "s3-use-multiprocessing",
        0,
        Use::NoEffect("Cairn uploads parts in its own pipeline"),
    ),
    opt(
        "s3-use-server-side-encryption",
        0,
        Use::No(
            "S3 server-side encryption is not supported; volumes are OpenPGP-encrypted already",
        ),
    ),
    opt(
        "s3-use-server-side-kms-encryption",
        0,
        Use::No(
            "S3 server-side encryption is not supported; volumes are OpenPGP-encrypted already",
        ),
    ),
    opt(
        "s3-kms-key-id",
        1,
        Use::No("S3 server-side encryption is not supported"),
    ),
    opt(
        "s3-kms-grant",
        1,
        Use::No("S3 server-side encryption is not supported"),
    ),
    opt("s3-region-name", 1, Use::Yes),
    opt("s3-endpoint-url", 1, Use::Yes),
    opt("swift-storage-policy", 1, Use::No(NOT_BACKEND)),
    opt("azure-max-single-put-size", 1, Use::No(NOT_BACKEND)),
    opt("azure-max-block-size", 1, Use::No(NOT_BACKEND)),
    opt("azure-max-connections", 1, Use::No(NOT_BACKEND)),
    opt("azure-blob-tier", 1, Use::No(NOT_BACKEND)),
    opt(
        "scp-command",
        1,
        Use::No("Cairn's SFTP client is built in; use sftp:// with keys in ~/.ssh"),
    ),
    opt(
        "sftp-command",
        1,
        Use::No("Cairn's SFTP client is built in; use sftp:// with keys in ~/.ssh"),
    ),
    opt("cf-backend", 1, Use::No(NOT_BACKEND)),
    opt("b2-hide-files", 0, Use::No(NOT_BACKEND)),
    opt(
        "short-filenames",
        0,
        Use::No("short file names are read but never written; drop the option"),
    ),
    opt("sign-key", 1, Use::Yes),
    opt(
        "ssh-askpass",
        0,
        Use::No("Cairn authenticates SFTP with keys only"),
    ),
    opt("ssh-options", 1, Use::Yes),
    opt("ssl-cacert-file", 1, Use::Yes),
    opt(
        "ssl-cacert-path",
        1,
        Use::No("give the CA certificates as one PEM file with --ssl-cacert-file"),
    ),
    opt(
        "ssl-no-check-certificate",
        0,
        Use::No("Cairn always checks certificates; trust a private CA with --ssl-cacert-file"),
    ),
    opt("tempdir", 1, Use::Yes),
    opt("timeout", 1, Use::Yes),
    opt(
        "time-separator",
        1,
        Use::No("old-style time separators are read but never written"),
    ),
    opt(
        "use-agent",
        0,
        Use::NoEffect("Cairn does not use gpg-agent; give PASSPHRASE or a key file"),
    ),
    opt("verbosity", 1, Use::Yes),
    opt("version", 0, Use::Yes),
    opt("mf-purge", 0, Use::No(NOT_BACKEND)),
    opt(
        "mp-segment-size",
        1,
        Use::NoEffect(
            "only duplicity's Swift backend reads it (0.8 and 3.x); Cairn has no Swift target, \
             and its S3 uploads use --s3-multipart-chunk-size",
        ),
    ),
    opt("volsize", 1, Use::Yes),
    opt("file-changed", 1, Use::No(CHANGES_IN_SETS)),
    opt(
        "no-files-changed",
        0,
        Use::No("Cairn always records the changed files in the manifest; drop the option"),
    ),
    opt("show-changes-in-set", 1, Use::No(CHANGES_IN_SETS)),
    opt("backend-retry-delay", 1, Use::Yes),
    opt("jsonstat", 0, Use::Yes),
    opt("help", 0, Use::Yes),
    // duplicity 3.x (`cli_data.py` of 3.2.1).
    opt(
        "check-remote",
        0,
        Use::NoEffect("Cairn always reads the target's file list; this is 3.x's default"),
    ),
    opt(
        "no-check-remote",
        0,
        Use::No(
            "Cairn cannot work from the local cache alone; it always reads the target's file list",
        ),
    ),
    opt("compression", 0, Use::Yes),
    opt("encryption", 0, Use::Yes),
    opt("concurrency", 1, Use::Yes),
    opt(
        "copy-blocksize",
        1,
        Use::NoEffect("Cairn sizes its copy buffers itself; the backup written is the same"),
    ),
    opt("file-prefix-jsonstat", 1, Use::Yes),
    opt(
        "files-changed",
        0,
        Use::NoEffect("Cairn always records the changed files in the manifest (3.x's default)"),
    ),
    opt("files-from", 1, Use::Yes),
    opt("filter-globbing", 0, Use::Yes),
    opt("filter-ignorecase", 0, Use::Yes),
    opt("filter-literal", 0, Use::Yes),
    opt("filter-regexp", 0, Use::Yes),
    opt("filter-strictcase", 0, Use::Yes),
    opt("full-if-n-inc", 1, Use::Yes),
    opt(
        "use-gpgsm",
        0,
        Use::No("Cairn writes OpenPGP (gpg) archives only; gpgsm's PKCS#7 format is not supported"),
    ),
    opt("print-statistics", 0, Use::Yes),
    opt("skip-if-no-change", 0, Use::Yes),
    opt("webdav-headers", 1, Use::NoEffect(NOT_BACKEND)),
];

/// Every long option of duplicity 3.2.1 (`OptionKwargs` in its
/// `duplicity/cli_data.py`, names with `_` as `-`).
const DUPLICITY_3_2_1_OPTIONS: &[&str] = &[
    "allow-source-mismatch",
    "archive-dir",
    "asynchronous-upload",
    "azure-blob-tier",
    "azure-max-connections",
    "azure-max-block-size",
    "azure-max-single-put-size",
    "b2-hide-files",
    "backend-retry-delay",
    "cf-backend",
    "check-remote",
    "compare-data",
    "compression",
    "concurrency",
    "config-dir",
    "copy-blocksize",
    "copy-links",
    "dry-run",
    "encryption",
    "encrypt-key",
    "encrypt-sign-key",
    "encrypt-secret-keyring",
    "exclude",
    "exclude-device-files",
    "exclude-filelist",
    "exclude-if-present",
    "exclude-older-than",
    "exclude-other-filesystems",
    "exclude-regexp",
    "file-changed",
    "file-prefix",
    "file-prefix-archive",
    "file-prefix-manifest",
    "file-prefix-signature",
    "file-prefix-jsonstat",
    "files-changed",
    "files-from",
    "filter-globbing",
    "filter-ignorecase",
    "filter-literal",
    "filter-regexp",
    "filter-strictcase",
    "force",
    "ftp-passive",
    "ftp-regular",
    "full-if-older-than",
    "full-if-n-inc",
    "gpg-binary",
    "gpg-options",
    "use-gpgsm",
    "hidden-encrypt-key",
    "idr-fakeroot",
    "ignore-errors",
    "imap-full-address",
    "imap-mailbox",
    "include",
    "include-filelist",
    "include-regexp",
    "jsonstat",
    "log-fd",
    "log-file",
    "log-timestamp",
    "max-blocksize",
    "metadata-sync-mode",
    "mf-purge",
    "mp-segment-size",
    "name",
    "no-check-remote",
    "no-compression",
    "no-encryption",
    "no-files-changed",
    "no-restore-ownership",
    "no-print-statistics",
    "null-separator",
    "num-retries",
    "numeric-owner",
    "par2-options",
    "par2-redundancy",
    "par2-volumes",
    "path-to-restore",
    "print-statistics",
    "progress",
    "progress-rate",
    "rename",
    "restore-ownership",
    "restore-time",
    "rsync-options",
    "s3-endpoint-url",
    "s3-unencrypted-connection",
    "s3-use-deep-archive",
    "s3-use-glacier",
    "s3-use-glacier-ir",
    "s3-use-ia",
    "s3-use-onezone-ia",
    "s3-use-rrs",
    "s3-multipart-chunk-size",
    "s3-multipart-max-procs",
    "s3-use-server-side-encryption",
    "s3-use-server-side-kms-encryption",
    "s3-kms-key-id",
    "s3-kms-grant",
    "s3-region-name",
    "swift-storage-policy",
    "scp-command",
    "sftp-command",
    "show-changes-in-set",
    "sign-key",
    "skip-if-no-change",
    "ssh-askpass",
    "ssh-options",
    "ssl-cacert-file",
    "ssl-cacert-path",
    "ssl-no-check-certificate",
    "tempdir",
    "timeout",
    "time-separator",
    "use-agent",
    "verbosity",
    "version",
    "volsize",
    "webdav-headers",
    "current-time",
    "pydevd",
    "skip-volume",
];

/// Every long option of duplicity 0.8.22 (`add_option` in its
/// `duplicity/commandline.py`).
const DUPLICITY_0_8_22_OPTIONS: &[&str] = &[
    "allow-source-mismatch",
    "archive-dir",
    "asynchronous-upload",
    "azure-blob-tier",
    "azure-max-block-size",
    "azure-max-connections",
    "azure-max-single-put-size",
    "b2-hide-files",
    "backend-retry-delay",
    "cf-backend",
    "compare-data",
    "config-dir",
    "copy-links",
    "current-time",
    "do-not-restore-ownership",
    "dry-run",
    "encrypt-key",
    "encrypt-secret-keyring",
    "encrypt-sign-key",
    "exclude",
    "exclude-device-files",
    "exclude-filelist",
    "exclude-filelist-stdin",
    "exclude-globbing-filelist",
    "exclude-if-present",
    "exclude-older-than",
    "exclude-other-filesystems",
    "exclude-regexp",
    "fail-on-volume",
    "file-changed",
    "file-prefix",
    "file-prefix-archive",
    "file-prefix-manifest",
    "file-prefix-signature",
    "file-to-restore",
    "force",
    "ftp-passive",
    "ftp-regular",
    "full-if-older-than",
    "gio",
    "gpg-binary",
    "gpg-options",
    "hidden-encrypt-key",
    "idr-fakeroot",
    "ignore-errors",
    "imap-full-address",
    "imap-mailbox",
    "include",
    "include-filelist",
    "include-filelist-stdin",
    "include-globbing-filelist",
    "include-regexp",
    "log-fd",
    "log-file",
    "log-timestamp",
    "max-blocksize",
    "metadata-sync-mode",
    "mf-purge",
    "mp-segment-size",
    "name",
    "no-compression",
    "no-encryption",
    "no-files-changed",
    "no-print-statistics",
    "null-separator",
    "num-retries",
    "numeric-owner",
    "old-filenames",
    "par2-options",
    "par2-redundancy",
    "par2-volumes",
    "progress",
    "progress-rate",
    "pydevd",
    "rename",
    "restore-time",
    "rsync-options",
    "s3-endpoint-url",
    "s3-european-buckets",
    "s3-kms-grant",
    "s3-kms-key-id",
    "s3-multipart-chunk-size",
    "s3-multipart-max-procs",
    "s3-multipart-max-timeout",
    "s3-region-name",
    "s3-unencrypted-connection",
    "s3-use-deep-archive",
    "s3-use-glacier",
    "s3-use-glacier-ir",
    "s3-use-ia",
    "s3-use-multiprocessing",
    "s3-use-new-style",
    "s3-use-onezone-ia",
    "s3-use-rrs",
    "s3-use-server-side-encryption",
    "s3-use-server-side-kms-encryption",
    "scp-command",
    "sftp-command",
    "short-filenames",
    "show-changes-in-set",
    "sign-key",
    "skip-volume",
    "ssh-askpass",
    "ssh-options",
    "ssl-cacert-file",
    "ssl-cacert-path",
    "ssl-no-check-certificate",
    "swift-storage-policy",
    "tempdir",
    "time",
    "time-separator",
    "timeout",
    "use-agent",
    "verbosity",
    "version",
    "volsize",
];

/// One row of the option table, for tests that go through all of it.
#[derive(Clone, Copy, Debug)]
pub struct OptionRow {
    pub name: &'static str,
    /// Number of values the option takes.
    pub values: usize,
    /// `"yes"` (honoured), `"no-effect"` or `"refused"`.
    pub usage: &'static str,
    /// Why it has no effect or is refused (empty when honoured).
    pub reason: &'static str,
    /// Whether duplicity 0.8.22 has it.
    pub in_0_8_22: bool,
    /// Whether duplicity 3.2.1 has it.
    pub in_3_2_1: bool,
}

/// The whole option table.
pub fn option_table() -> Vec<OptionRow> {
    OPTIONS
        .iter()
        .map(|s| {
            let (usage, reason) = match s.usage {
                Use::Yes => ("yes", ""),
                Use::NoEffect(w) => ("no-effect", w),
                Use::No(w) => ("refused", w),
            };
            OptionRow {
                name: s.name,
                values: s.values,
                usage,
                reason,
                in_0_8_22: DUPLICITY_0_8_22_OPTIONS.contains(&s.name),
                in_3_2_1: DUPLICITY_3_2_1_OPTIONS.contains(&s.name),
            }
        })
        .collect()
}

/// Short options: `-r`, `-t`, `-v`, `-V`, `-h`.
fn short_option(c: char) -> Option<&'static str> {
    Some(match c {
        'r' => "file-to-restore",
        't' => "time",
        'v' => "verbosity",
        'V' => "version",
        'h' => "help",
        _ => return None,
    })
}

/// The commands, in 0.8's order (prefix matching uses it).
const COMMANDS: &[&str] = &[
    "cleanup",
    "collection-status",
    "full",
    "incremental",
    "list-current-files",
    "remove-older-than",
    "remove-all-but-n-full",
    "remove-all-inc-of-but-n-full",
    "restore",
    "verify",
    "replicate",
];

/// 3.x's short command aliases.
fn alias(cmd: &str) -> Option<&'static str> {
    Some(match cmd {
        "bu" | "backup" => "backup",
        "fb" => "full",
        "inc" | "incr" | "ib" => "incremental",
        "rb" => "restore",
        "vb" => "verify",
        "st" => "collection-status",
        "ls" => "list-current-files",
        "ro" => "remove-older-than",
        "ra" => "remove-all-but-n-full",
        "ri" => "remove-all-inc-of-but-n-full",
        "cl" => "cleanup",
        _ => return None,
    })
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("no such option: {0}")]
    Unknown(String),
    #[error("ambiguous option: {0} (could be {1})")]
    Ambiguous(String, String),
    #[error("{0} option requires {1} argument(s)")]
    MissingValue(String, usize),
    #[error("--{0} option does not take a value")]
    UnexpectedValue(String),
    #[error("command '{0}' not unique, could be {1}")]
    AmbiguousCommand(String, String),
    #[error("option --{0} is not supported by Cairn: {1}")]
    Unsupported(String, &'static str),
}

/// A parsed command line.
#[derive(Debug, Default)]
pub struct Invocation {
    /// The command, if one was given.
    pub command: Option<String>,
    pub args: Vec<String>,
    /// Option values by long name, in order; flags have an empty value list
    /// per occurrence.
    pub values: BTreeMap<&'static str, Vec<String>>,
    /// Options accepted without effect, with why, for `-v info` and up.
    pub no_effect: Vec<(String, &'static str)>,
    /// Every option in command-line order (selection options depend on it).
    pub ordered: Vec<(&'static str, String)>,
}

impl Invocation {
    pub fn flag(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// The last value given for an option.
    pub fn last(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    pub fn all(&self, name: &str) -> &[String] {
        self.values.get(name).map_or(&[], Vec::as_slice)
    }
}

fn lookup(name: &str) -> Result<&'static Spec, ParseError> {
    if let Some(s) = OPTIONS.iter().find(|s| s.name == name) {
        return Ok(s);
    }
    let matches: Vec<&Spec> = OPTIONS
        .iter()
        .filter(|s| s.name.starts_with(name))
        .collect();
    match matches.len() {
        1 => Ok(matches[0]),
        0 => Err(ParseError::Unknown(format!("--{name}"))),
        _ => Err(ParseError::Ambiguous(
            format!("--{name}"),
            matches
                .iter()
                .map(|s| format!("--{}", s.name))
                .collect::<Vec<_>>()
                .join(", "),
        )),
    }
}

/// Parses duplicity's arguments (without the program name).
pub fn parse(argv: &[String]) -> Result<Invocation, ParseError> {
    let mut inv = Invocation::default();
    let mut positionals = Vec::new();
    let mut i = 0;
    let take = |spec: &'static Spec,
                inline: Option<String>,
                i: &mut usize,
                inv: &mut Invocation|
     -> Result<(), ParseError> {
        let mut vals = Vec::new();
        if spec.values == 0 {
            if inline.is_some() {
                return Err(ParseError::UnexpectedValue(spec.name.into()));
            }
        } else {
            let mut need = spec.values;
            if let Some(v) = inline {
                vals.push(v);
                need -= 1;
            }
            for _ in 0..need {
                *i += 1;
                let v = argv.get(*i).ok_or_else(|| {
                    ParseError::MissingValue(format!("--{}", spec.name), spec.values)
                })?;
                vals.push(v.clone());
            }
        }
        match spec.usage {
            Use::No(why) => return Err(ParseError::Unsupported(spec.name.into(), why)),
            Use::NoEffect(why) => inv.no_effect.push((spec.name.into(), why)),
            Use::Yes => {}
        }
        let joined = vals.join(" ");
        inv.ordered.push((spec.name, joined.clone()));
        inv.values.entry(spec.name).or_default().push(joined);
        Ok(())
    };
    while i < argv.len() {
        let a = &argv[i];
        if a == "--" {
            positionals.extend(argv[i + 1..].iter().cloned());
            break;
        }
        if let Some(long) = a.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let spec = lookup(name)?;
            take(spec, inline, &mut i, &mut inv)?;
        } else if a.len() > 1 && a.starts_with('-') {
            let mut chars = a[1..].chars();
            let c = chars.next().expect("nonempty");
            let name = short_option(c).ok_or_else(|| ParseError::Unknown(format!("-{c}")))?;
            let spec = lookup(name)?;
            let rest: String = chars.collect();
            let inline = (!rest.is_empty()).then_some(rest);
            if spec.values == 0 && inline.is_some() {
                return Err(ParseError::Unknown(a.clone()));
            }
            take(spec, inline, &mut i, &mut inv)?;
        } else {
            positionals.push(a.clone());
        }
        i += 1;
    }
    if let Some(first) = positionals.first().cloned() {
        if let Some(c) = alias(&first) {
            inv.command = Some(c.to_string());
            positionals.remove(0);
        } else {
            let possible: Vec<&str> = COMMANDS
                .iter()
                .copied()
                .filter(|c| c.starts_with(first.as_str()))
                .collect();
            match possible.len() {
                0 => {}
                1 => {
                    inv.command = Some(possible[0].to_string());
                    positionals.remove(0);
                }
                _ if possible.contains(&first.as_str()) => {
                    inv.command = Some(first.clone());
                    positionals.remove(0);
                }
                _ => return Err(ParseError::AmbiguousCommand(first, format!("{possible:?}"))),
            }
        }
    }
    inv.args = positionals;
    Ok(inv)
}

/// A command-line error: exit 23 with duplicity 3.x's `CommandLineError`
/// record (0.8 exits 2; Cairn follows 3.x, as for a bad target URL).
fn command_line_error(msg: impl std::fmt::Display) -> i32 {
    eprintln!("Command line error: {msg}\nEnter 'duplicity --help' for help screen.");
    let text = format!("{msg}\nEnter 'duplicity --help' for help screen.");
    super::machine_log::error(23, Some("CommandLineError"), &text);
    23
}

/// `--log-file`/`--log-fd` values found in a command line that did not
/// parse, so that the error still reaches the log, as in duplicity 3.x
/// (which opens each log as it meets the option).
fn log_options_of_unparsed(argv: &[String]) -> (Vec<String>, Vec<String>) {
    let (mut files, mut fds) = (Vec::new(), Vec::new());
    for (i, a) in argv.iter().enumerate() {
        let Some(long) = a.strip_prefix("--") else {
            continue;
        };
        let (name, inline) = match long.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (long, argv.get(i + 1).cloned()),
        };
        let Some(value) = inline else { continue };
        match lookup(name).map(|s| s.name) {
            Ok("log-file") => files.push(value),
            Ok("log-fd") => fds.push(value),
            _ => {}
        }
    }
    (files, fds)
}

/// Opens the machine-readable logs the command line asks for.
fn open_logs(inv: &Invocation) -> Result<(), super::machine_log::LogError> {
    super::machine_log::open(inv.all("log-file"), inv.all("log-fd"), verbosity(inv))
}

/// duplicity 3.x exits 23 for what Cairn calls a usage error.
fn usage_is_command_line_error(e: anyhow::Error) -> anyhow::Error {
    match e.downcast::<Error>() {
        Ok(Error::Usage(msg)) => common::CliError::Usage(msg).into(),
        Ok(other) => other.into(),
        Err(e) => e,
    }
}

/// duplicity's `-v` level as a number (0 error … 9 debug; letters and words
/// as duplicity takes them); 3 (notice) when absent or not understood.
fn verbosity(inv: &Invocation) -> u8 {
    let Some(v) = inv.last("verbosity") else {
        return 3;
    };
    let v = v.to_ascii_lowercase();
    if let Ok(n) = v.parse::<u8>() {
        return n.min(9);
    }
    match v.chars().next() {
        Some('e') => 0,
        Some('w') => 2,
        Some('n') => 3,
        Some('i') => 5,
        Some('d') => 9,
        _ => 3,
    }
}

/// The target options shared with the native CLI.
fn target_args(inv: &Invocation) -> Result<TargetArgs, String> {
    Ok(TargetArgs {
        archive_dir: inv.last("archive-dir").map(PathBuf::from),
        name: inv.last("name").map(str::to_string),
        passphrase_file: None,
        tempdir: inv
            .last("tempdir")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("TMPDIR").map(PathBuf::from)),
        secret_keys: inv
            .all("encrypt-secret-keyring")
            .iter()
            .map(PathBuf::from)
            .collect(),
        gnupg_home: None,
        remote: remote_args(inv)?,
        prefixes: prefixes(inv),
        catalog: None,
    })
}

/// `--file-prefix`, `--file-prefix-archive`, `-manifest`, `-signature`.
fn prefixes(inv: &Invocation) -> crate::archive::names::Prefixes {
    let get = |name: &str| inv.last(name).unwrap_or_default().to_string();
    crate::archive::names::Prefixes {
        all: get("file-prefix"),
        archive: get("file-prefix-archive"),
        manifest: get("file-prefix-manifest"),
        signature: get("file-prefix-signature"),
        jsonstat: get("file-prefix-jsonstat"),
    }
}

/// duplicity's transfer options; a number that does not parse is refused
/// as optparse refuses it.
fn remote_args(inv: &Invocation) -> Result<crate::profile::Remote, String> {
    let num = |name: &str| -> Result<Option<u64>, String> {
        inv.last(name)
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| format!("option --{name}: invalid integer value: '{v}'"))
            })
            .transpose()
    };
    Ok(crate::profile::Remote {
        num_retries: num("num-retries")?.map(|n| n.min(u32::MAX.into()) as u32),
        retry_delay: num("backend-retry-delay")?,
        timeout: num("timeout")?,
        rsync_options: inv.all("rsync-options").to_vec(),
        ssh_options: inv.all("ssh-options").to_vec(),
        s3_endpoint: inv.last("s3-endpoint-url").map(str::to_string),
        s3_region: inv.last("s3-region-name").map(str::to_string),
        s3_unencrypted_connection: inv.flag("s3-unencrypted-connection"),
        s3_multipart_chunk_size: num("s3-multipart-chunk-size")?,
        ca_file: inv.last("ssl-cacert-file").map(PathBuf::from),
        ..Default::default()
    })
}

const HELP: &str = "Usage (Cairn's duplicity-compatible command line):
  duplicity [full|incremental] [options] source_dir target_url
  duplicity [restore] [options] source_url target_dir
  duplicity verify [options] source_url target_dir
  duplicity collection-status [options] target_url
  duplicity list-current-files [options] target_url
  duplicity cleanup [--force] [options] target_url
  duplicity remove-older-than time [--force] [options] target_url
  duplicity remove-all-but-n-full count [--force] [options] target_url
  duplicity remove-all-inc-of-but-n-full count [--force] [options] target_url
Run `cairn --help` for Cairn's own command line.";

/// Runs a duplicity command line and returns the exit code.
pub fn main(argv: Vec<OsString>) -> i32 {
    let argv: Vec<String> = argv
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let inv = match parse(&argv) {
        Ok(inv) => inv,
        Err(e) => {
            let (files, fds) = log_options_of_unparsed(&argv);
            let _ = super::machine_log::open(&files, &fds, 3);
            return command_line_error(e);
        }
    };
    if let Err(e) = open_logs(&inv) {
        return command_line_error(e);
    }
    if inv.flag("version") {
        println!("duplicity 0.8.22 (Cairn {})", env!("CARGO_PKG_VERSION"));
        return 0;
    }
    if inv.flag("help") {
        println!("{HELP}");
        return 0;
    }
    if verbosity(&inv) >= 5 {
        for (name, why) in &inv.no_effect {
            eprintln!("--{name} has no effect on Cairn: {why}");
        }
    }
    let command = inv.command.clone();
    let args = &inv.args;
    if let Err(e) = ask_passphrase(&inv) {
        return common::report(Err(e));
    }
    let expect = |n: usize| -> Result<(), i32> {
        if args.len() != n {
            return Err(command_line_error(format!(
                "Expected {n} args, got {}",
                args.len()
            )));
        }
        Ok(())
    };
    let target = match target_args(&inv) {
        Ok(t) => t,
        Err(e) => return command_line_error(e),
    };
    let result = match command.as_deref() {
        Some("collection-status") => {
            if let Err(c) = expect(1) {
                return c;
            }
            common::status(&args[0], &target)
        }
        Some("list-current-files") => {
            if let Err(c) = expect(1) {
                return c;
            }
            common::list_current_files(&args[0], &target, inv.last("time"))
        }
        Some("restore") => {
            if let Err(c) = expect(2) {
                return c;
            }
            restore(&inv, &args[0], &args[1], target)
        }
        None if args.len() == 2
            && crate::backend::is_url(&args[0])
            && !crate::backend::is_url(&args[1]) =>
        {
            restore(&inv, &args[0], &args[1], target)
        }
        Some("verify") => {
            if let Err(c) = expect(2) {
                return c;
            }
            let dir = PathBuf::from(&args[1]);
            match selection(&inv, &dir) {
                Ok(sel) => common::verify(
                    &args[0],
                    &target,
                    &dir,
                    inv.last("time").or(inv.last("restore-time")),
                    inv.last("path-to-restore").or(inv.last("file-to-restore")),
                    inv.flag("compare-data"),
                    &sel,
                ),
                Err(e) => Err(e),
            }
        }
        Some("cleanup") => {
            if let Err(c) = expect(1) {
                return c;
            }
            common::cleanup(&args[0], &target, inv.flag("force"), inv.flag("dry-run"))
        }
        Some(
            cmd @ ("remove-older-than" | "remove-all-but-n-full" | "remove-all-inc-of-but-n-full"),
        ) => {
            if args.is_empty() {
                return command_line_error(if cmd == "remove-older-than" {
                    "Missing time string for remove-older-than".to_string()
                } else {
                    format!("Missing count for {cmd}")
                });
            }
            if let Err(c) = expect(2) {
                return c;
            }
            let how = if cmd == "remove-older-than" {
                match common::parse_time(&args[0]) {
                    Ok(t) => crate::maintenance::Removal::OlderThan(t),
                    Err(e) => return command_line_error(e),
                }
            } else {
                let n: usize = match args[0].parse() {
                    Ok(n) if n > 0 => n,
                    _ => return command_line_error(format!("{cmd} count must be > 0")),
                };
                if cmd == "remove-all-but-n-full" {
                    crate::maintenance::Removal::AllButNFull(n)
                } else {
                    crate::maintenance::Removal::IncrementalsOfAllButNFull(n)
                }
            };
            common::remove(
                &args[1],
                &target,
                how,
                inv.flag("force"),
                inv.flag("dry-run"),
            )
        }
        Some("full") | Some("incremental") | Some("backup") => {
            if let Err(c) = expect(2) {
                return c;
            }
            backup(&inv, command.as_deref(), &args[0], &args[1], target)
        }
        None if args.len() == 2
            && !crate::backend::is_url(&args[0])
            && crate::backend::is_url(&args[1]) =>
        {
            backup(&inv, None, &args[0], &args[1], target)
        }
        None if args.len() != 2 => {
            return command_line_error(format!("Expected 2 args, got {}", args.len()));
        }
        other => Err(anyhow::Error::new(Error::Usage(format!(
            "the {} action is not available in this build of Cairn yet",
            other.unwrap_or("backup")
        )))),
    };
    common::report(result.map_err(usage_is_command_line_error))
}

/// When a command asks for the passphrase, as duplicity's `get_passphrase`
/// decides: never with `--no-encryption` or for the commands that read no
/// encrypted data; not for a backup (or a listing) encrypted to public keys;
/// twice, to confirm it, for a backup with a passphrase.
#[derive(Debug, PartialEq, Eq)]
enum Ask {
    No,
    Once,
    Confirmed,
}

fn passphrase_ask(inv: &Invocation) -> Ask {
    let to_keys = !inv.all("encrypt-key").is_empty()
        || !inv.all("encrypt-sign-key").is_empty()
        || !inv.all("hidden-encrypt-key").is_empty();
    if !last_flag(inv, "encryption", "no-encryption", true) {
        return Ask::No;
    }
    let backup_args = inv.args.len() == 2
        && !crate::backend::is_url(&inv.args[0])
        && crate::backend::is_url(&inv.args[1]);
    match inv.command.as_deref() {
        Some("full" | "incremental" | "backup") => {}
        None if backup_args => {}
        Some("list-current-files") if to_keys => return Ask::No,
        Some("restore" | "verify" | "list-current-files") | None => return Ask::Once,
        _ => return Ask::No,
    }
    if to_keys { Ask::No } else { Ask::Confirmed }
}

/// Asks for the passphrase on the terminal (standard input and error) when
/// duplicity would and PASSPHRASE is not set. Without one nothing is asked; a command
/// that then needs the passphrase says so in its own terms.
fn ask_passphrase(inv: &Invocation) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let ask = passphrase_ask(inv);
    let terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if ask == Ask::No || std::env::var_os("PASSPHRASE").is_some() || !terminal {
        return Ok(());
    }
    let term = console::Term::stderr();
    let read = |prompt: &str| -> anyhow::Result<String> {
        use anyhow::Context;
        term.write_str(prompt)?;
        term.read_secure_line()
            .context("reading the passphrase from the terminal")
    };
    let pass = loop {
        let first = read("GnuPG passphrase for decryption: ")?;
        if ask == Ask::Once || read("Retype passphrase for decryption to confirm: ")? == first {
            break first;
        }
        eprintln!("First and second passphrases do not match!  Please try again.");
    };
    // SAFETY: no other thread runs yet; the engines read PASSPHRASE later.
    unsafe { std::env::set_var("PASSPHRASE", pass) };
    Ok(())
}

/// The selection options, in command-line order.
fn selection(
    inv: &Invocation,
    source: &std::path::Path,
) -> anyhow::Result<crate::source::selection::Selection> {
    use anyhow::Context;
    let mut sel = crate::source::selection::Selection::default();
    sel.copy_links = inv.flag("copy-links");
    let null = inv.flag("null-separator");
    for (opt, val) in &inv.ordered {
        match *opt {
            "include"
            | "exclude"
            | "include-regexp"
            | "exclude-regexp"
            | "exclude-if-present"
            | "exclude-device-files"
            | "exclude-other-filesystems"
            | "exclude-older-than" => sel.add(opt, val, source)?,
            "include-filelist"
            | "exclude-filelist"
            | "include-globbing-filelist"
            | "exclude-globbing-filelist" => {
                let text = std::fs::read_to_string(val)
                    .with_context(|| format!("cannot open file list {val}"))?;
                sel.add_filelist(&text, opt.starts_with("include"), null, source)?;
            }
            "filter-globbing" | "filter-literal" | "filter-regexp" | "filter-ignorecase"
            | "filter-strictcase" => sel.add(opt, val, source)?,
            "files-from" => {
                let text =
                    std::fs::read(val).with_context(|| format!("cannot open file list {val}"))?;
                sel.add_files_from(&text, null)?;
            }
            "include-filelist-stdin" | "exclude-filelist-stdin" => {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                    .context("reading the file list from standard input")?;
                sel.add_filelist(&text, opt.starts_with("include"), null, source)?;
            }
            _ => {}
        }
    }
    sel.check()?;
    Ok(sel)
}

fn backup(
    inv: &Invocation,
    command: Option<&str>,
    src: &str,
    url: &str,
    target: TargetArgs,
) -> anyhow::Result<Outcome> {
    use crate::backup::Mode;
    let volsize = match inv.last("volsize") {
        Some(v) => v.parse::<u64>().map_err(|_| {
            Error::Usage(format!("--volsize wants a whole number of MiB, not {v:?}"))
        })?,
        None => 200,
    };
    let current_time = inv
        .last("current-time")
        .map(|v| {
            v.parse::<i64>()
                .map_err(|_| Error::Usage(format!("--current-time wants epoch seconds, not {v:?}")))
        })
        .transpose()?;
    common::backup(
        url,
        &target,
        common::BackupRequest {
            source: PathBuf::from(src),
            mode: match command {
                Some("full") => Mode::Full,
                Some("incremental") => Mode::Incremental,
                _ => Mode::Auto,
            },
            volsize_mib: volsize,
            concurrency: count_option(inv, "concurrency")?.unwrap_or(1),
            encryption: encryption(inv),
            selection: selection(inv, std::path::Path::new(src))?,
            allow_source_mismatch: inv.flag("allow-source-mismatch"),
            full_if_older_than: inv.last("full-if-older-than").map(str::to_string),
            current_time,
            print_statistics: last_flag(inv, "print-statistics", "no-print-statistics", true),
            full_if_n_inc: count_option(inv, "full-if-n-inc")?,
            skip_if_no_change: inv.flag("skip-if-no-change"),
            jsonstat: inv.flag("jsonstat"),
            progress: inv.flag("progress"),
            dry_run: inv.flag("dry-run"),
            verbosity: verbosity(inv),
            // duplicity's command line leaves the archive dir as duplicity does.
            catalog: false,
        },
    )
}

/// The encryption options; `--no-encryption` wins over keys, as in
/// duplicity (which then ignores them).
fn encryption(inv: &Invocation) -> common::EncryptionRequest {
    let compress = last_flag(inv, "compression", "no-compression", true);
    if !last_flag(inv, "encryption", "no-encryption", true) {
        return common::EncryptionRequest {
            encrypt: false,
            compress,
            ..Default::default()
        };
    }
    common::EncryptionRequest {
        encrypt: true,
        compress,
        gpg_options: inv.all("gpg-options").join(" "),
        encrypt_keys: inv
            .all("encrypt-key")
            .iter()
            .chain(inv.all("encrypt-sign-key"))
            .cloned()
            .collect(),
        hidden_keys: inv.all("hidden-encrypt-key").to_vec(),
        sign_key: inv
            .last("sign-key")
            .or(inv.last("encrypt-sign-key"))
            .map(str::to_string),
    }
}

fn restore(inv: &Invocation, url: &str, dest: &str, target: TargetArgs) -> anyhow::Result<Outcome> {
    let path = inv
        .last("path-to-restore")
        .or(inv.last("file-to-restore"))
        .map(str::to_string);
    let time = inv
        .last("time")
        .or(inv.last("restore-time"))
        .map(str::to_string);
    common::restore(
        url,
        &target,
        common::RestoreRequest {
            dest: PathBuf::from(dest),
            time,
            path,
            force: inv.flag("force"),
            numeric_owner: inv.flag("numeric-owner"),
            restore_owner: restore_ownership(inv),
            dry_run: inv.flag("dry-run"),
        },
    )
}

/// Two opposite flags (3.x's `--compression`/`--no-compression` and the
/// like): the last one given wins; `default` when neither is.
fn last_flag(inv: &Invocation, yes: &str, no: &str, default: bool) -> bool {
    inv.ordered
        .iter()
        .rev()
        .find_map(|(name, _)| match *name {
            n if n == yes => Some(true),
            n if n == no => Some(false),
            _ => None,
        })
        .unwrap_or(default)
}

/// A whole-number option such as `--full-if-n-inc`.
fn count_option(inv: &Invocation, name: &str) -> Result<Option<usize>, Error> {
    inv.last(name)
        .map(|v| {
            v.trim()
                .parse::<usize>()
                .map_err(|_| Error::Usage(format!("--{name} wants a whole number, not {v:?}")))
        })
        .transpose()
}

/// Whether to restore owners: the last of `--restore-ownership` (3.x) and
/// `--no-restore-ownership`/`--do-not-restore-ownership` wins; yes if none.
fn restore_ownership(inv: &Invocation) -> bool {
    inv.ordered
        .iter()
        .rev()
        .find_map(|(name, _)| match *name {
            "restore-ownership" => Some(true),
            "no-restore-ownership" | "do-not-restore-ownership" => Some(false),
            _ => None,
        })
        .unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Invocation, ParseError> {
        parse(&s.split_whitespace().map(str::to_string).collect::<Vec<_>>())
    }

    #[test]
    fn cron_lines_parse() {
        let inv = p("--full-if-older-than 2M --gpg-options=--cipher-algo=AES256 --rsync-options=--partial /src rsync://u@h::backups/").unwrap();
        assert_eq!(inv.command, None);
        assert_eq!(inv.args, vec!["/src", "rsync://u@h::backups/"]);
        assert_eq!(inv.last("full-if-older-than"), Some("2M"));
        assert_eq!(inv.last("gpg-options"), Some("--cipher-algo=AES256"));

        let inv = p("remove-all-but-n-full 12 --force rsync://u@h::backups/").unwrap();
        assert_eq!(inv.command.as_deref(), Some("remove-all-but-n-full"));
        assert_eq!(inv.args, vec!["12", "rsync://u@h::backups/"]);
        assert!(inv.flag("force"));
    }

    #[test]
    fn prefixes_aliases_and_short_options() {
        assert_eq!(
            p("coll file:///x").unwrap().command.as_deref(),
            Some("collection-status")
        );
        assert_eq!(
            p("inc a file:///x").unwrap().command.as_deref(),
            Some("incremental")
        );
        assert_eq!(
            p("rb file:///x d").unwrap().command.as_deref(),
            Some("restore")
        );
        assert!(matches!(
            p("remove-all x file:///x"),
            Err(ParseError::AmbiguousCommand(..))
        ));
        let inv = p("restore -t 3D -r sub/x --no-enc file:///x d").unwrap();
        assert_eq!(inv.last("time"), Some("3D"));
        assert_eq!(inv.last("file-to-restore"), Some("sub/x"));
        assert!(inv.flag("no-encryption"), "unique prefix of a long option");
        assert_eq!(
            p("-v4 collection-status file:///x")
                .unwrap()
                .last("verbosity"),
            Some("4")
        );
        assert_eq!(
            p("-tnow collection-status file:///x").unwrap().last("time"),
            Some("now")
        );
    }

    #[test]
    fn verbosity_levels_as_duplicity_spells_them() {
        for (arg, level) in [
            ("", 3),
            ("-v4", 4),
            ("-vi", 5),
            ("--verbosity=debug", 9),
            ("-v0", 0),
        ] {
            let inv = p(&format!("{arg} collection-status file:///x")).unwrap();
            assert_eq!(verbosity(&inv), level, "{arg}");
        }
    }

    #[test]
    fn errors_name_the_option() {
        assert_eq!(
            p("--frobnicate file:///x d").unwrap_err(),
            ParseError::Unknown("--frobnicate".into())
        );
        assert!(matches!(
            p("--no file:///x d"),
            Err(ParseError::Ambiguous(..))
        ));
        assert!(matches!(
            p("--par2-redundancy 10 a file:///x"),
            Err(ParseError::Unsupported(..))
        ));
        assert!(matches!(
            p("restore file:///x d --time"),
            Err(ParseError::MissingValue(..))
        ));
        assert!(matches!(
            p("--force=yes file:///x d"),
            Err(ParseError::UnexpectedValue(_))
        ));
        let inv = p("--asynchronous-upload a file:///x").unwrap();
        assert_eq!(inv.no_effect.len(), 1);
    }

    #[test]
    fn restore_ownership_last_one_wins() {
        assert!(restore_ownership(&p("restore file:///x d").unwrap()));
        assert!(!restore_ownership(
            &p("restore --no-restore-ownership file:///x d").unwrap()
        ));
        assert!(restore_ownership(
            &p("restore --do-not-restore-ownership --restore-ownership file:///x d").unwrap()
        ));
    }

    /// The code that reads the parsed options: everything from the first
    /// function after parsing up to these tests. The table, the parser and
    /// the short-option map are not in it.
    fn reading_code() -> &'static str {
        let src = include_str!("duplicity.rs");
        let start = src
            .find("fn command_line_error")
            .expect("the reading code starts after the parser");
        let end = src[start..]
            .find("#[cfg(test)]")
            .map_or(src.len(), |e| start + e);
        &src[start..end]
    }

    /// An option marked honoured must be read somewhere past the table;
    /// otherwise it is accepted and dropped, which the table must never
    /// allow. Mark it `Use::No` or `Use::NoEffect` (with the true reason).
    #[test]
    fn every_honoured_option_is_read() {
        let code = reading_code();
        let unread: Vec<&str> = OPTIONS
            .iter()
            .filter(|s| s.usage == Use::Yes)
            .map(|s| s.name)
            .filter(|name| !code.contains(&format!("\"{name}\"")))
            .collect();
        assert!(
            unread.is_empty(),
            "options marked Use::Yes that no code reads: {unread:?}"
        );
    }

    /// One version's options, as the README lists them: honoured, without
    /// effect (grouped by reason), refused (grouped by reason).
    fn options_markdown(version: &str, names: &[&str]) -> String {
        let specs: Vec<&Spec> = names
            .iter()
            .map(|n| OPTIONS.iter().find(|s| s.name == *n).expect("known"))
            .collect();
        let flag = |n: &str| format!("`--{n}`");
        let mut out = format!("**duplicity {version}** ({} options)\n\n", specs.len());
        let yes: Vec<String> = specs
            .iter()
            .filter(|s| s.usage == Use::Yes)
            .map(|s| flag(s.name))
            .collect();
        out.push_str(&format!(
            "- Honoured ({}): {}.\n",
            yes.len(),
            yes.join(", ")
        ));
        for (title, pick) in [
            (
                "No effect",
                (|u: Use| match u {
                    Use::NoEffect(w) => Some(w),
                    _ => None,
                }) as fn(Use) -> Option<&'static str>,
            ),
            ("Refused", |u: Use| match u {
                Use::No(w) => Some(w),
                _ => None,
            }),
        ] {
            let mut by_reason: Vec<(&str, Vec<String>)> = Vec::new();
            for s in &specs {
                let Some(why) = pick(s.usage) else { continue };
                match by_reason.iter_mut().find(|(w, _)| *w == why) {
                    Some((_, v)) => v.push(flag(s.name)),
                    None => by_reason.push((why, vec![flag(s.name)])),
                }
            }
            let n: usize = by_reason.iter().map(|(_, v)| v.len()).sum();
            out.push_str(&format!("- {title} ({n}):\n"));
            for (why, v) in by_reason {
                out.push_str(&format!("  - {}: {why}.\n", v.join(", ")));
            }
        }
        out
    }

    /// The README's option lists are the table's: this fails when they
    /// disagree. `CAIRN_WRITE_README=1 cargo test --lib readme` rewrites them.
    #[test]
    fn readme_lists_the_option_table() {
        const BEGIN: &str = "<!-- duplicity options: generated from src/cli/duplicity.rs -->\n";
        const END: &str = "<!-- end of duplicity options -->";
        let generated = format!(
            "{}\n{}",
            options_markdown("0.8.22", DUPLICITY_0_8_22_OPTIONS),
            options_markdown("3.2.1", DUPLICITY_3_2_1_OPTIONS)
        );
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let readme = std::fs::read_to_string(path).unwrap();
        let start = readme
            .find(BEGIN)
            .expect("the README has the options marker")
            + BEGIN.len();
        let end = start + readme[start..].find(END).expect("and its end marker");
        if std::env::var_os("CAIRN_WRITE_README").is_some() {
            let new = format!("{}{generated}{}", &readme[..start], &readme[end..]);
            std::fs::write(path, new).unwrap();
            return;
        }
        assert!(
            readme[start..end] == generated,
            "README.md's option lists differ from OPTIONS; run \
             `CAIRN_WRITE_README=1 cargo test --lib readme` and review the diff"
        );
    }

    /// Every 0.8.22 option is in the table too.
    #[test]
    fn every_duplicity_0_8_option_is_known() {
        for n in DUPLICITY_0_8_22_OPTIONS {
            assert!(OPTIONS.iter().any(|s| s.name == *n), "--{n}");
        }
    }

    /// Every 3.2.1 option is in the table (honoured, without effect, or
    /// refused by name), as are its short aliases.
    #[test]
    fn every_duplicity_3_option_is_known() {
        let unknown: Vec<&str> = DUPLICITY_3_2_1_OPTIONS
            .iter()
            .copied()
            .filter(|n| !OPTIONS.iter().any(|s| s.name == *n))
            .collect();
        assert!(
            unknown.is_empty(),
            "3.2.1 options missing from OPTIONS: {unknown:?}"
        );
        for (short, long) in [
            ('r', "file-to-restore"),
            ('t', "time"),
            ('v', "verbosity"),
            ('V', "version"),
        ] {
            assert_eq!(short_option(short), Some(long));
        }
        let mut names: Vec<&str> = OPTIONS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "an option is in the table twice");
    }

    #[test]
    fn opposite_flags_last_one_wins() {
        let inv = p("--no-compression --compression a file:///x").unwrap();
        assert!(last_flag(&inv, "compression", "no-compression", true));
        let inv = p("--encryption --no-encryption a file:///x").unwrap();
        assert!(!last_flag(&inv, "encryption", "no-encryption", true));
        let inv = p("a file:///x").unwrap();
        assert!(last_flag(
            &inv,
            "print-statistics",
            "no-print-statistics",
            true
        ));
    }

    /// And the check itself sees a missing read.
    #[test]
    fn the_read_check_finds_an_unread_name() {
        assert!(reading_code().contains("\"dry-run\""));
        assert!(!reading_code().contains("\"fail-on-volume\""));
    }
}
