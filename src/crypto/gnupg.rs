//! Keys from where duplicity users keep them: key files, or the GnuPG
//! keyring, which duplicity's `--encrypt-key KEYID` reads. The keyring is
//! read by asking `gpg` to export the key (public keys freely; secret keys
//! with the passphrase, through loopback pinentry), so nothing about GnuPG's
//! storage formats is reimplemented here.

use super::CryptoError;
use openpgp::Cert;
use openpgp::cert::CertParser;
use openpgp::parse::Parse;
use sequoia_openpgp as openpgp;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where to look for keys named by ID.
#[derive(Debug, Clone, Default)]
pub struct GnupgHome {
    /// `--homedir` from `--gpg-options`, else GNUPGHOME / ~/.gnupg.
    pub homedir: Option<PathBuf>,
}

fn parse_certs(bytes: &[u8], what: &str) -> Result<Vec<Cert>, CryptoError> {
    let mut out = Vec::new();
    for c in CertParser::from_bytes(bytes).map_err(|e| CryptoError::KeyFile {
        path: what.into(),
        reason: e.to_string(),
    })? {
        out.push(c.map_err(|e| CryptoError::KeyFile {
            path: what.into(),
            reason: e.to_string(),
        })?);
    }
    Ok(out)
}

impl GnupgHome {
    fn gpg(&self) -> Command {
        let mut c = Command::new("gpg");
        if let Some(h) = &self.homedir {
            c.arg("--homedir").arg(h);
        }
        c.args(["--batch", "--no-tty", "--quiet"]);
        c
    }

    /// Public certificates for `spec`: a key file, or a key ID or
    /// fingerprint in the GnuPG keyring.
    pub fn public(&self, spec: &str) -> Result<Vec<Cert>, CryptoError> {
        if Path::new(spec).is_file() {
            let bytes = std::fs::read(spec).map_err(|e| CryptoError::KeyFile {
                path: spec.into(),
                reason: e.to_string(),
            })?;
            return parse_certs(&bytes, spec);
        }
        let out = self
            .gpg()
            .arg("--export")
            .arg(spec)
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| CryptoError::KeyFile {
                path: spec.into(),
                reason: format!("cannot run gpg to read the keyring: {e}"),
            })?;
        let certs = parse_certs(&out.stdout, spec)?;
        if certs.is_empty() {
            return Err(CryptoError::KeyFile {
                path: spec.into(),
                reason: "no such public key in the GnuPG keyring (give a key ID, a fingerprint or a key file)".into(),
            });
        }
        Ok(certs)
    }

    /// Secret keys for `spec` (file, or key ID in the keyring, exported with
    /// `passphrase`). The keys stay protected by their passphrase; they are
    /// unlocked only when used.
    pub fn secret(&self, spec: &str, passphrase: Option<&str>) -> Result<Vec<Cert>, CryptoError> {
        if Path::new(spec).is_file() {
            let bytes = std::fs::read(spec).map_err(|e| CryptoError::KeyFile {
                path: spec.into(),
                reason: e.to_string(),
            })?;
            return Ok(parse_certs(&bytes, spec)?
                .into_iter()
                .filter(Cert::is_tsk)
                .collect());
        }
        let mut child = self
            .gpg()
            .args([
                "--pinentry-mode",
                "loopback",
                "--passphrase-fd",
                "0",
                "--export-secret-keys",
            ])
            // An empty spec exports every secret key (for hidden recipients).
            .args((!spec.is_empty()).then_some(spec))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| CryptoError::KeyFile {
                path: spec.into(),
                reason: format!("cannot run gpg to read the keyring: {e}"),
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(passphrase.unwrap_or("").as_bytes());
        }
        let out = child.wait_with_output().map_err(|e| CryptoError::KeyFile {
            path: spec.into(),
            reason: e.to_string(),
        })?;
        let certs: Vec<Cert> = parse_certs(&out.stdout, spec)?
            .into_iter()
            .filter(Cert::is_tsk)
            .collect();
        if certs.is_empty() {
            return Err(CryptoError::KeyFile {
                path: spec.into(),
                reason: format!(
                    "no such secret key in the GnuPG keyring, or the passphrase did not unlock it ({})",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        Ok(certs)
    }
}
