//! A backup profile: one TOML file naming what to back up, where to, what to
//! leave out, how to encrypt, which secrets files to read, and how many old
//! backups to keep. The native command line reads it with `--config`; the
//! appliance keeps one on its data partition.
//!
//! ```toml
//! source = "/home/me"
//! target = "rsync://me@backup.example::backups/laptop"
//! volsize = 200                    # MiB
//! full_if_older_than = "1M"        # a new full chain every month
//! selection = ["- **/.cache", "+ /home/me/docs", "- /home/me/tmp"]
//!
//! [encryption]
//! passphrase_file = "/data/cairn/secrets/passphrase"
//!
//! [retention]
//! keep_full = 12                   # remove-all-but-n-full 12
//! ```

use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The directory to back up.
    pub source: Option<PathBuf>,
    /// The target URL.
    pub target: Option<String>,
    pub archive_dir: Option<PathBuf>,
    /// The backup's name in the archive directory.
    pub name: Option<String>,
    pub tempdir: Option<PathBuf>,
    /// Volume size in MiB.
    pub volsize: Option<u64>,
    pub full_if_older_than: Option<String>,
    /// Selection rules in duplicity's file-list form, first match wins:
    /// `- PATTERN` excludes, `+ PATTERN` includes.
    #[serde(default)]
    pub selection: Vec<String>,
    #[serde(default)]
    pub encryption: Encryption,
    #[serde(default)]
    pub retention: Retention,
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
        let p: Profile =
            toml::from_str(&text).map_err(|e| ProfileError::Parse(shown.clone(), e.to_string()))?;
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
        assert_eq!(prof.selection.len(), 2);
        assert_eq!(prof.retention.keep_full, Some(12));
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
