//! A backup profile: one TOML file naming what to back up, where to, what to
//! leave out, how to encrypt, which secrets files to read, and how many old
//! backups to keep. The native command line reads it with `--config`; the
//! appliance keeps one on its data partition.
//!
//! ```toml
//! source = "/home/me"
//! target = "rsync://me@backup.example::backups/laptop"
//! volsize = 200                    # MiB
//! concurrency = 1                  # volumes uploading while the next is encoded
//! full_if_older_than = "1M"        # a new full chain every month
//! selection = ["- **/.cache", "+ /home/me/docs", "- /home/me/tmp"]
//!
//! [encryption]
//! passphrase_file = "/data/cairn/secrets/passphrase"
//!
//! [retention]
//! keep_full = 12                   # remove-all-but-n-full 12
//!
//! [remote]
//! tor = "arti"                     # reach .onion targets with the embedded Tor client
//! num_retries = 5
//! max_upload_rate = "1M"           # leave the home uplink room (rsync:// targets)
//! ```

use crate::backend::{BackendOptions, TorMode};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The directory to back up.
    pub source: Option<PathBuf>,
    /// The target URL.
    pub target: Option<String>,
    pub archive_dir: Option<PathBuf>,
    /// The catalog file (default: `cairn-catalog.sqlite` in the archive
    /// directory; `/data/cairn/catalog.sqlite` on the appliance).
    pub catalog: Option<PathBuf>,
    /// The backup's name in the archive directory.
    pub name: Option<String>,
    pub tempdir: Option<PathBuf>,
    /// Volume size in MiB.
    pub volsize: Option<u64>,
    /// Volumes uploaded at once while the next is encoded (default 1; 0
    /// uploads each volume before encoding the next).
    pub concurrency: Option<usize>,
    pub full_if_older_than: Option<String>,
    /// Selection rules in duplicity's file-list form, first match wins:
    /// `- PATTERN` excludes, `+ PATTERN` includes.
    #[serde(default)]
    pub selection: Vec<String>,
    #[serde(default)]
    pub encryption: Encryption,
    #[serde(default)]
    pub retention: Retention,
    #[serde(default)]
    pub remote: Remote,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Encryption {
    /// `false` stores volumes unencrypted (gzip).
    pub enabled: Option<bool>,
    /// `false` stores volumes uncompressed.
    pub compress: Option<bool>,
    /// A file holding the passphrase (symmetric mode, or a secret key's).
    pub passphrase_file: Option<PathBuf>,
    /// Public keys to encrypt to: key files, or IDs in the GnuPG keyring.
    #[serde(default)]
    pub encrypt_keys: Vec<String>,
    #[serde(default)]
    pub hidden_keys: Vec<String>,
    pub sign_key: Option<String>,
    pub sign_passphrase_file: Option<PathBuf>,
    /// As duplicity's `--gpg-options`.
    pub gpg_options: Option<String>,
}

/// Which old backups `prune` removes. At most one of the three.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Keep this many full chains (`remove-all-but-n-full`).
    pub keep_full: Option<usize>,
    /// Keep the incrementals of only this many chains
    /// (`remove-all-inc-of-but-n-full`).
    pub keep_incrementals_of: Option<usize>,
    /// Remove chains that ended before this age or time (`remove-older-than`).
    pub older_than: Option<String>,
}

impl Retention {
    /// The removal the rule asks for, times relative to `now`; `None` when
    /// no rule is set. Of the three, the first one set counts.
    pub fn removal(
        &self,
        now: crate::time::Seconds,
    ) -> Result<Option<crate::maintenance::Removal>, crate::time::TimeError> {
        use crate::maintenance::Removal;
        Ok(
            match (self.keep_full, self.keep_incrementals_of, &self.older_than) {
                (Some(n), _, _) => Some(Removal::AllButNFull(n)),
                (_, Some(n), _) => Some(Removal::IncrementalsOfAllButNFull(n)),
                (_, _, Some(t)) => Some(Removal::OlderThan(crate::time::parse_user_time(t, now)?)),
                _ => None,
            },
        )
    }
}

/// How to reach the target: the same settings on the command line (where
/// they override) and in the profile's `[remote]` table. Unset fields keep
/// duplicity's defaults (see [`BackendOptions`]).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct Remote {
    /// Attempts per transfer before giving up (duplicity counts the first try).
    #[arg(long, value_name = "N")]
    pub num_retries: Option<u32>,
    /// Seconds to wait before the first retry; doubles with each retry.
    #[arg(long = "backend-retry-delay", value_name = "SECONDS")]
    pub retry_delay: Option<u64>,
    /// Network timeout in seconds (connecting, or a stalled transfer).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Extra rsync options, split as a shell would.
    #[arg(long, value_name = "OPTIONS", allow_hyphen_values = true)]
    #[serde(default)]
    pub rsync_options: Vec<String>,
    /// Extra ssh options for rsync over ssh, split as a shell would.
    #[arg(long, value_name = "OPTIONS", allow_hyphen_values = true)]
    #[serde(default)]
    pub ssh_options: Vec<String>,
    /// How to use Tor: auto (.onion hosts through the system tor at
    /// 127.0.0.1:9050), off, socks:HOST:PORT (every host), or arti (every
    /// host through the embedded client).
    #[arg(long, value_name = "MODE")]
    pub tor: Option<String>,
    /// arti's state and cache directory (default ~/.local/state/cairn/arti).
    #[arg(long, value_name = "DIR")]
    pub arti_dir: Option<PathBuf>,
    /// An arti configuration file (for a private Tor network).
    #[arg(long, value_name = "FILE")]
    pub arti_config: Option<PathBuf>,
    /// S3 endpoint, e.g. http://127.0.0.1:9000 (default: AWS_ENDPOINT_URL or AWS).
    #[arg(long = "s3-endpoint-url", value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// S3 region (default: AWS_REGION or us-east-1).
    #[arg(long = "s3-region-name", value_name = "REGION")]
    pub s3_region: Option<String>,
    /// Address buckets as ENDPOINT/BUCKET (true) or BUCKET.ENDPOINT (false).
    /// Default: path style for custom endpoints, virtual hosts for AWS.
    #[arg(long, value_name = "BOOL")]
    pub s3_path_style: Option<bool>,
    /// Use plain http to AWS's default endpoint.
    #[arg(long)]
    #[serde(default)]
    pub s3_unencrypted_connection: bool,
    /// Upload volumes larger than this many MiB in parts (default 20, at least 5).
    #[arg(long, value_name = "MIB")]
    pub s3_multipart_chunk_size: Option<u64>,
    /// An AWS credentials file for s3:// targets (profile only: the command
    /// line reads `AWS_SHARED_CREDENTIALS_FILE` or the environment's keys).
    #[arg(skip)]
    pub s3_credentials_file: Option<PathBuf>,
    /// Extra CA certificates (PEM) to trust for S3 over https.
    #[arg(long = "ssl-cacert-file", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// SSH private key(s) for sftp:// targets.
    #[arg(long = "identity-file", value_name = "FILE")]
    #[serde(default)]
    pub identity_files: Vec<PathBuf>,
    /// known_hosts file(s) to check sftp:// servers against.
    #[arg(long = "known-hosts", value_name = "FILE")]
    #[serde(default)]
    pub known_hosts: Vec<PathBuf>,
    /// Cap uploads at this rate, e.g. 500K or 2M (per second; K = 1024
    /// bytes), to leave a shared uplink room. rsync:// targets, through
    /// rsync's own --bwlimit; a file:// target (a local disk) is not held
    /// back; sftp:// and s3:// refuse it.
    #[arg(long, value_name = "RATE")]
    pub max_upload_rate: Option<String>,
}

impl Remote {
    /// `max_upload_rate` holds each rsync process to the rate, so uploads
    /// running side by side would add up to more: refused with a
    /// `concurrency` above 1.
    pub fn check_rate_with(&self, concurrency: usize) -> Result<(), String> {
        if concurrency > crate::backup::MAX_CONCURRENCY {
            return Err(format!(
                "concurrency {concurrency}: at most {} uploads at once; each one stages a \
                 whole volume in the temporary directory",
                crate::backup::MAX_CONCURRENCY
            ));
        }
        match (&self.max_upload_rate, concurrency) {
            (Some(rate), 2..) => Err(format!(
                "max_upload_rate {rate} holds one upload at a time to the rate, and concurrency \
                 {concurrency} runs {concurrency} at once, which would add up to more; use \
                 concurrency 1 (the default) with a rate limit"
            )),
            _ => Ok(()),
        }
    }

    /// These settings, with `fallback`'s wherever these leave one unset.
    pub fn or(mut self, fallback: &Remote) -> Remote {
        let f = fallback.clone();
        self.num_retries = self.num_retries.or(f.num_retries);
        self.retry_delay = self.retry_delay.or(f.retry_delay);
        self.timeout = self.timeout.or(f.timeout);
        if self.rsync_options.is_empty() {
            self.rsync_options = f.rsync_options;
        }
        if self.ssh_options.is_empty() {
            self.ssh_options = f.ssh_options;
        }
        self.tor = self.tor.or(f.tor);
        self.arti_dir = self.arti_dir.or(f.arti_dir);
        self.arti_config = self.arti_config.or(f.arti_config);
        self.s3_endpoint = self.s3_endpoint.or(f.s3_endpoint);
        self.s3_region = self.s3_region.or(f.s3_region);
        self.s3_path_style = self.s3_path_style.or(f.s3_path_style);
        self.s3_unencrypted_connection |= f.s3_unencrypted_connection;
        self.s3_multipart_chunk_size = self.s3_multipart_chunk_size.or(f.s3_multipart_chunk_size);
        self.ca_file = self.ca_file.or(f.ca_file);
        self.s3_credentials_file = self.s3_credentials_file.or(f.s3_credentials_file);
        if self.identity_files.is_empty() {
            self.identity_files = f.identity_files;
        }
        if self.known_hosts.is_empty() {
            self.known_hosts = f.known_hosts;
        }
        self.max_upload_rate = self.max_upload_rate.or(f.max_upload_rate);
        self
    }

    /// The options the backends take; `tempdir` is where uploads are staged.
    pub fn backend_options(&self, tempdir: Option<PathBuf>) -> Result<BackendOptions, String> {
        let mut o = BackendOptions {
            tempdir,
            ..BackendOptions::default()
        };
        if let Some(n) = self.num_retries {
            if n == 0 {
                return Err("--num-retries must be at least 1 (it counts the first try)".into());
            }
            o.num_retries = n;
        }
        if let Some(s) = self.retry_delay {
            o.retry_delay = Duration::from_secs(s);
        }
        if let Some(s) = self.timeout {
            if s == 0 {
                return Err("--timeout must be at least 1 second".into());
            }
            o.timeout = Duration::from_secs(s);
        }
        o.rsync_options = crate::backend::split_options(&self.rsync_options)
            .map_err(|e| format!("--rsync-options: {e}"))?;
        if let Some(r) = &self.max_upload_rate {
            o.max_upload_rate =
                Some(crate::backend::parse_rate(r).map_err(|e| format!("max_upload_rate: {e}"))?);
        }
        o.ssh_options = crate::backend::split_options(&self.ssh_options)
            .map_err(|e| format!("--ssh-options: {e}"))?;
        o.tor.mode = match self.tor.as_deref() {
            None | Some("auto") => {
                if self.arti_dir.is_some() || self.arti_config.is_some() {
                    return Err("--arti-dir and --arti-config need --tor arti".into());
                }
                TorMode::Auto
            }
            Some("off") => TorMode::Off,
            Some("arti") => TorMode::Arti {
                dir: self
                    .arti_dir
                    .clone()
                    .unwrap_or_else(crate::backend::tor::default_arti_dir),
                config: self.arti_config.clone(),
            },
            Some(m) => match m.strip_prefix("socks:") {
                Some(addr) if addr.contains(':') => TorMode::Socks(addr.to_string()),
                _ => {
                    return Err(format!(
                        "unknown Tor mode {m:?}: use auto, off, socks:HOST:PORT or arti"
                    ));
                }
            },
        };
        o.s3.endpoint = self.s3_endpoint.clone();
        o.s3.region = self.s3_region.clone();
        o.s3.path_style = self.s3_path_style;
        o.s3.unencrypted_connection = self.s3_unencrypted_connection;
        if let Some(mib) = self.s3_multipart_chunk_size {
            if mib < 5 {
                return Err(
                    "--s3-multipart-chunk-size must be at least 5 (MiB), S3's minimum part size"
                        .into(),
                );
            }
            o.s3.multipart_chunk_size = mib << 20;
        }
        o.s3.ca_file = self.ca_file.clone();
        if let Some(f) = &self.s3_credentials_file {
            o.s3.credentials_file = Some(f.clone());
        }
        o.sftp.identity_files = self.identity_files.clone();
        o.sftp.known_hosts = self.known_hosts.clone();
        Ok(o)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read profile {0}: {1}")]
    Read(String, std::io::Error),
    #[error("profile {0} is not valid: {1}")]
    Parse(String, String),
    #[error("profile {0}: {1}")]
    Invalid(String, String),
}

impl Profile {
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let shown = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| ProfileError::Read(shown.clone(), e))?;
        Profile::parse(&text, &shown)
    }

    /// Parses a profile's text; `origin` names it in errors (the file's path).
    pub fn parse(text: &str, origin: &str) -> Result<Profile, ProfileError> {
        let shown = origin.to_string();
        let p: Profile =
            toml::from_str(text).map_err(|e| ProfileError::Parse(shown.clone(), e.to_string()))?;
        let r = &p.retention;
        let rules = [
            r.keep_full.is_some(),
            r.keep_incrementals_of.is_some(),
            r.older_than.is_some(),
        ];
        if rules.iter().filter(|x| **x).count() > 1 {
            return Err(ProfileError::Invalid(
                shown,
                "[retention] takes one of keep_full, keep_incrementals_of, older_than".into(),
            ));
        }
        if r.keep_full == Some(0) || r.keep_incrementals_of == Some(0) {
            return Err(ProfileError::Invalid(
                shown,
                "[retention] counts must be at least 1".into(),
            ));
        }
        Ok(p)
    }
}

/// Reads a secret from a file: the first line, without its newline. Warns
/// (through the returned note) when others may read the file.
pub fn read_secret(path: &Path) -> Result<(String, Option<String>), ProfileError> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ProfileError::Read(shown.clone(), e))?;
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode())
        .unwrap_or(0);
    let note = (mode & 0o077 != 0).then(|| {
        format!(
            "warning: secret file {shown} can be read by other users (mode {:o}); chmod 600 it",
            mode & 0o777
        )
    });
    let line = text.lines().next().unwrap_or("").to_string();
    Ok((line, note))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("p.toml");
        std::fs::write(
            &p,
            r#"
source = "/home/me"
target = "file:///mnt/usb"
volsize = 50
concurrency = 2
selection = ["- **/.cache", "+ /home/me/docs"]
[encryption]
passphrase_file = "/data/secret"
[retention]
keep_full = 12
"#,
        )
        .unwrap();
        let prof = Profile::load(&p).unwrap();
        assert_eq!(prof.source.as_deref(), Some(Path::new("/home/me")));
        assert_eq!(prof.volsize, Some(50));
        assert_eq!(prof.concurrency, Some(2));
        assert_eq!(prof.selection.len(), 2);
        assert_eq!(prof.retention.keep_full, Some(12));
    }

    #[test]
    fn remote_settings_become_backend_options() {
        let r: Remote = toml::from_str(
            r#"
num_retries = 2
timeout = 7
rsync_options = ["--bwlimit=100 '--rsh=ssh -p 2222'"]
tor = "socks:127.0.0.1:9150"
s3_multipart_chunk_size = 8
s3_credentials_file = "/data/cairn/secrets/s3"
max_upload_rate = "1.5M"
"#,
        )
        .unwrap();
        let o = r.backend_options(None).unwrap();
        assert_eq!(o.max_upload_rate, Some(3 << 19));
        assert_eq!(
            o.s3.credentials_file.as_deref(),
            Some(Path::new("/data/cairn/secrets/s3"))
        );
        assert_eq!(o.num_retries, 2);
        assert_eq!(o.timeout, Duration::from_secs(7));
        assert_eq!(o.rsync_options, ["--bwlimit=100", "--rsh=ssh -p 2222"]);
        assert_eq!(o.tor.mode, TorMode::Socks("127.0.0.1:9150".into()));
        assert_eq!(o.s3.multipart_chunk_size, 8 << 20);
        // The command line wins field by field; the profile fills the rest.
        let cli = Remote {
            timeout: Some(60),
            ..Remote::default()
        };
        let merged = cli.or(&r).backend_options(None).unwrap();
        assert_eq!(merged.timeout, Duration::from_secs(60));
        assert_eq!(merged.num_retries, 2);
        for bad in [
            "tor = \"onion\"",
            "num_retries = 0",
            "s3_multipart_chunk_size = 1",
            "rsync_options = [\"'unbalanced\"]",
        ] {
            let r: Remote = toml::from_str(bad).unwrap();
            assert!(r.backend_options(None).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn typos_and_contradictions_are_errors() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("p.toml");
        std::fs::write(&p, "sorce = \"/x\"\n").unwrap();
        assert!(matches!(Profile::load(&p), Err(ProfileError::Parse(..))));
        std::fs::write(&p, "[retention]\nkeep_full = 2\nolder_than = \"1Y\"\n").unwrap();
        assert!(matches!(Profile::load(&p), Err(ProfileError::Invalid(..))));
    }

    #[test]
    fn secrets_are_first_lines_and_loose_modes_warn() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s");
        std::fs::write(&p, "hunter2\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (s, note) = read_secret(&p).unwrap();
        assert_eq!(s, "hunter2");
        assert!(note.is_some());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(read_secret(&p).unwrap().1.is_none());
    }
}
