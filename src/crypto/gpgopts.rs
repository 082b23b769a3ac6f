//! duplicity's `--gpg-options`: the gpg command-line options people put
//! there, read for what they mean to the archive. The ones that change what
//! is written (cipher, compression algorithm and level) are honoured; the
//! ones about gpg's own behaviour (batch mode, trust, agent) change nothing
//! here; anything else that Cairn cannot honour is an error that names it.

use sequoia_openpgp::types::{CompressionAlgorithm, SymmetricAlgorithm};
use std::path::PathBuf;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpgOptions {
    pub cipher: Option<SymmetricAlgorithm>,
    pub compression: Option<CompressionAlgorithm>,
    /// 0–9.
    pub compress_level: Option<u8>,
    /// `--homedir`: the GnuPG home for key lookups.
    pub homedir: Option<PathBuf>,
    /// `--keyring` / `--secret-keyring` files for key lookups.
    pub keyrings: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GpgOptionsError {
    #[error("--gpg-options: {0} needs a value")]
    MissingValue(String),
    #[error("--gpg-options: unsupported cipher {0:?} (Cairn writes AES128, AES192 or AES256)")]
    Cipher(String),
    #[error(
        "--gpg-options: unsupported compression algorithm {0:?} (Cairn writes zip, zlib or none)"
    )]
    Compression(String),
    #[error("--gpg-options: compression level {0:?} is not 0-9")]
    Level(String),
    #[error("--gpg-options: {0} is not supported by Cairn: {1}")]
    Unsupported(String, &'static str),
}

/// gpg options that only steer gpg itself, accepted without effect.
const NO_EFFECT: &[&str] = &[
    "--batch",
    "--no-tty",
    "--yes",
    "--quiet",
    "-q",
    "--verbose",
    "-v",
    "--no-verbose",
    "--always-trust",
    "--no-secmem-warning",
    "--no-permission-warning",
    "--no-greeting",
    "--use-agent",
    "--no-use-agent",
    "--no-armor",
    "--force-mdc",
    "--ignore-mdc-error",
    "--no-default-keyring",
    "--no-auto-key-locate",
    "--no-auto-key-retrieve",
];

/// Like `NO_EFFECT`, for options that take a value (inline or as the next word).
const NO_EFFECT_WITH_VALUE: &[&str] = &[
    "--trust-model",
    "--pinentry-mode",
    "--default-key",
    "--s2k-mode",
    "--s2k-digest-algo",
    "--s2k-cipher-algo",
    "--s2k-count",
    "--digest-algo",
    "--cert-digest-algo",
    "--personal-digest-preferences",
    "--logger-fd",
    "--status-fd",
    "--compliance",
];

fn cipher(v: &str) -> Result<SymmetricAlgorithm, GpgOptionsError> {
    match v.to_ascii_uppercase().as_str() {
        "AES" | "AES128" | "7" => Ok(SymmetricAlgorithm::AES128),
        "AES192" | "8" => Ok(SymmetricAlgorithm::AES192),
        "AES256" | "9" => Ok(SymmetricAlgorithm::AES256),
        _ => Err(GpgOptionsError::Cipher(v.into())),
    }
}

fn compression(v: &str) -> Result<CompressionAlgorithm, GpgOptionsError> {
    match v.to_ascii_lowercase().as_str() {
        "none" | "uncompressed" | "0" => Ok(CompressionAlgorithm::Uncompressed),
        "zip" | "1" => Ok(CompressionAlgorithm::Zip),
        "zlib" | "2" => Ok(CompressionAlgorithm::Zlib),
        _ => Err(GpgOptionsError::Compression(v.into())),
    }
}

/// Parses the space-joined `--gpg-options` values.
pub fn parse(text: &str) -> Result<GpgOptions, GpgOptionsError> {
    let tokens: Vec<String> = shell_words(text);
    let mut o = GpgOptions::default();
    let mut i = 0;
    while i < tokens.len() {
        let tok = &tokens[i];
        let (name, inline) = match tok.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (tok.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, GpgOptionsError> {
            if let Some(v) = &inline {
                return Ok(v.clone());
            }
            i += 1;
            tokens
                .get(i)
                .cloned()
                .ok_or_else(|| GpgOptionsError::MissingValue(name.into()))
        };
        match name.as_str() {
            "--cipher-algo" | "--personal-cipher-preferences" => {
                let v = value(&name)?;
                o.cipher = Some(cipher(v.split_whitespace().next().unwrap_or(""))?);
            }
            "--compress-algo" | "--compression-algo" | "--personal-compress-preferences" => {
                let v = value(&name)?;
                o.compression = Some(compression(v.split_whitespace().next().unwrap_or(""))?);
            }
            "--compress-level" | "-z" | "--bzip2-compress-level" => {
                if name == "--bzip2-compress-level" {
                    return Err(GpgOptionsError::Unsupported(
                        name,
                        "Cairn does not write bzip2",
                    ));
                }
                let v = value(&name)?;
                let l: u8 = v
                    .parse()
                    .ok()
                    .filter(|l| *l <= 9)
                    .ok_or(GpgOptionsError::Level(v))?;
                o.compress_level = Some(l);
            }
            "--homedir" => o.homedir = Some(PathBuf::from(value(&name)?)),
            "--keyring" | "--secret-keyring" | "--primary-keyring" => {
                o.keyrings.push(PathBuf::from(value(&name)?))
            }
            "--armor" | "-a" => {
                return Err(GpgOptionsError::Unsupported(
                    name,
                    "duplicity archives are binary OpenPGP",
                ));
            }
            "--rfc2440" | "--rfc4880" | "--openpgp" | "--pgp6" | "--pgp7" | "--pgp8"
            | "--gnupg" => {}
            "--throw-keyids" | "--throw-keyid" => {
                return Err(GpgOptionsError::Unsupported(
                    name,
                    "use --hidden-encrypt-key for hidden recipients",
                ));
            }
            n if NO_EFFECT.contains(&n) => {}
            n if NO_EFFECT_WITH_VALUE.contains(&n) => {
                if inline.is_none() {
                    i += 1;
                }
            }
            n if n.starts_with("-z") && n.len() == 3 => {
                let v = &n[2..];
                let l: u8 = v
                    .parse()
                    .ok()
                    .filter(|l| *l <= 9)
                    .ok_or(GpgOptionsError::Level(v.into()))?;
                o.compress_level = Some(l);
            }
            _ => {
                return Err(GpgOptionsError::Unsupported(
                    name,
                    "Cairn does OpenPGP itself and cannot honour this gpg option",
                ));
            }
        }
        i += 1;
    }
    Ok(o)
}

/// Splits like a shell (quotes and backslashes), as duplicity's gpg call
/// ends up seeing the option string.
fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut any = false;
    let mut chars = s.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    any = true;
                }
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_options() {
        let o = parse("--cipher-algo=AES256 --compress-algo zlib --compress-level=9 --batch --trust-model always").unwrap();
        assert_eq!(o.cipher, Some(SymmetricAlgorithm::AES256));
        assert_eq!(o.compression, Some(CompressionAlgorithm::Zlib));
        assert_eq!(o.compress_level, Some(9));
        assert_eq!(parse("-z 0").unwrap().compress_level, Some(0));
        assert_eq!(parse("-z3").unwrap().compress_level, Some(3));
        assert_eq!(
            parse("--cipher-algo aes128").unwrap().cipher,
            Some(SymmetricAlgorithm::AES128)
        );
        assert_eq!(parse("").unwrap(), GpgOptions::default());
        assert_eq!(
            parse("--homedir '/a b/c'").unwrap().homedir,
            Some(PathBuf::from("/a b/c"))
        );
    }

    #[test]
    fn unsupported_ones_are_named() {
        assert_eq!(
            parse("--cipher-algo=CAST5"),
            Err(GpgOptionsError::Cipher("CAST5".into()))
        );
        assert_eq!(
            parse("--compress-algo=bzip2"),
            Err(GpgOptionsError::Compression("bzip2".into()))
        );
        assert!(matches!(
            parse("--armor"),
            Err(GpgOptionsError::Unsupported(..))
        ));
        assert!(
            matches!(parse("--frobnicate"), Err(GpgOptionsError::Unsupported(n, _)) if n == "--frobnicate")
        );
        assert!(matches!(
            parse("--compress-level"),
            Err(GpgOptionsError::MissingValue(_))
        ));
        assert!(matches!(
            parse("--compress-level 12"),
            Err(GpgOptionsError::Level(_))
        ));
    }
}
