//! OpenPGP, as duplicity uses it through `gpg`: every encrypted file is one
//! OpenPGP message, symmetric (SKESK + SEIPD/MDC) or to public keys (PKESK),
//! optionally compressed and signed inside. Reading accepts whatever gpg 2.2
//! and duplicity produce; writing emits what gpg 2.2 reads (SKESK v4 and
//! SEIPD v1 with MDC, never the v6/AEAD forms).
//!
//! Built on `sequoia-openpgp` with its pure-Rust crypto backend, so the
//! appliance cross-compiles without C crypto libraries.

use openpgp::cert::prelude::*;
use openpgp::crypto::S2K;
use openpgp::crypto::{Password, SessionKey};
use openpgp::packet::{PKESK, SKESK};
use openpgp::parse::Parse;
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, MessageStructure, VerificationHelper,
};
use openpgp::policy::StandardPolicy;
use openpgp::serialize::stream::{Compressor, Encryptor, LiteralWriter, Message};
use openpgp::types::{CompressionAlgorithm, HashAlgorithm, SymmetricAlgorithm};
use openpgp::{Cert, KeyHandle};
use sequoia_openpgp as openpgp;

pub mod gnupg;
pub mod gpgopts;
pub mod message;
pub mod packet;
pub mod seipd;

pub use message::{MessageKeys, MessageWriter};
use std::io::{self, Read, Write};
use std::path::Path;

/// The policy for what others signed: archives' data signatures and
/// anything read. sequoia's standard policy, SHA-1 refused.
static POLICY: StandardPolicy<'static> = StandardPolicy::new();

/// The policy for the user's own choice of keys to encrypt to and sign
/// with: as gpg, it accepts self-signatures (key bindings) made with SHA-1,
/// which every key GnuPG made before about 2.1 carries. SHA-1 stays refused
/// where collisions matter (data signatures, third-party certifications).
static KEY_USE_POLICY: std::sync::LazyLock<StandardPolicy<'static>> =
    std::sync::LazyLock::new(|| {
        use openpgp::policy::HashAlgoSecurity;
        let mut p = StandardPolicy::new();
        p.accept_hash_property(
            HashAlgorithm::SHA1,
            HashAlgoSecurity::SecondPreImageResistance,
        );
        p
    });

/// The encryption-capable keys of `cert` under `policy`.
fn encryption_keys<'a>(
    cert: &'a Cert,
    policy: &'a StandardPolicy<'static>,
) -> Result<Vec<ValidErasedKeyAmalgamation<'a, openpgp::packet::key::PublicParts>>, CryptoError> {
    let valid = cert
        .with_policy(policy, None)
        .map_err(|e| CryptoError::Encrypt(format!("key {}: {e:#}", cert.fingerprint())))?;
    Ok(valid
        .keys()
        .supported()
        .alive()
        .revoked(false)
        .for_transport_encryption()
        .for_storage_encryption()
        .collect())
}

/// A warning for a key that is used only because its self-signatures are
/// accepted as gpg accepts them (SHA-1); `None` for a key the standard
/// policy accepts as it is.
pub fn weak_key_warning(cert: &Cert) -> Option<String> {
    let strict = encryption_keys(cert, &POLICY).map_or(0, |k| k.len());
    let lenient = encryption_keys(cert, &KEY_USE_POLICY).map_or(0, |k| k.len());
    (lenient > strict).then(|| {
        let fpr = cert.fingerprint().to_hex();
        format!(
            "key {fpr} is bound by SHA-1 self-signatures, which are no longer considered \
             secure; encrypting to it anyway, as gpg does. Renew them with \
             `gpg --quick-set-expire {fpr} 0` and `gpg --quick-set-expire {fpr} 0 '*'`"
        )
    })
}

/// How much plaintext the decryptor may hold back; small, because we check
/// each volume's SHA1 against its manifest before decrypting it.
pub(crate) const DECRYPT_BUFFER: usize = 256 * 1024;
/// Passphrase packets (SKESKs) tried per file. Each costs a full S2K
/// derivation (up to 65 MiB of hashing), so a hostile file of thousands of
/// them would otherwise keep a restore busy for hours; gpg writes one.
pub(crate) const MAX_SKESKS: usize = 8;

#[cfg(test)]
thread_local! {
    /// Passphrase packets tried on this thread, for the tests' counts.
    pub(crate) static SKESKS_TRIED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error(
        "this archive is encrypted with a passphrase and none was given: set PASSPHRASE \
         (or pass --no-encryption if the archive is not encrypted)"
    )]
    NoPassphrase,
    #[error(
        "no passphrase to encrypt the new backup with: set PASSPHRASE, give --encrypt-key \
         to encrypt to a public key, or pass --no-encryption"
    )]
    NoPassphraseToEncrypt,
    #[error("wrong passphrase: PASSPHRASE does not decrypt this archive")]
    WrongPassphrase,
    #[error(
        "no secret key for this archive: it is encrypted to {0}; import the secret key \
         (a key file given with --encrypt-secret-keyring, or the GnuPG keyring)"
    )]
    NoSecretKey(String),
    #[error("not a readable OpenPGP message: {0}")]
    Malformed(String),
    #[error("cannot read key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("OpenPGP encryption failed: {0}")]
    Encrypt(String),
}

/// What decrypting needs: the passphrase for symmetric archives and the
/// secret keys for public-key ones.
#[derive(Default, Clone)]
pub struct Keyring {
    pub passphrase: Option<Password>,
    pub secret_keys: Vec<Cert>,
    /// Where to find secret keys named only by the file's recipients (the
    /// GnuPG keyring, as duplicity's gpg finds them); `None` to not look.
    pub gnupg: Option<gnupg::GnupgHome>,
    /// Keys fetched from `gnupg` so far, and the IDs already asked for.
    fetched: std::sync::Arc<std::sync::Mutex<(Vec<Cert>, Vec<String>)>>,
}

impl Keyring {
    pub fn with_passphrase(p: impl Into<Password>) -> Self {
        Keyring {
            passphrase: Some(p.into()),
            ..Default::default()
        }
    }

    /// Every secret key known for `recipients` (key IDs in hex): the ones
    /// given, then any fetched from the GnuPG keyring.
    pub fn secret_keys_for(&self, recipients: &[String]) -> Vec<Cert> {
        let mut out = self.secret_keys.clone();
        let Some(home) = &self.gnupg else {
            return out;
        };
        let mut f = self.fetched.lock().unwrap_or_else(|e| e.into_inner());
        for id in recipients {
            if f.1.contains(id) {
                continue;
            }
            f.1.push(id.clone());
            let pass = self
                .passphrase
                .as_ref()
                .and_then(|p| p.map(|b| String::from_utf8(b.to_vec()).ok()));
            if let Ok(certs) = home.secret(id, pass.as_deref()) {
                f.0.extend(certs);
            }
        }
        out.extend(f.0.iter().cloned());
        out
    }

    /// Adds every certificate with secret key material from an OpenPGP file
    /// (armored or binary, one or many keys).
    pub fn add_key_file(&mut self, path: &Path) -> Result<(), CryptoError> {
        let err = |reason: String| CryptoError::KeyFile {
            path: path.display().to_string(),
            reason,
        };
        let parser = CertParser::from_file(path).map_err(|e| err(e.to_string()))?;
        for cert in parser {
            let cert = cert.map_err(|e| err(e.to_string()))?;
            if cert.is_tsk() {
                self.secret_keys.push(cert);
            }
        }
        Ok(())
    }
}

/// The key ID a PKESK names, or "" for a hidden (wildcard) recipient.
pub(crate) fn recipient_id(p: &PKESK) -> String {
    match p.recipient() {
        Some(KeyHandle::KeyID(id)) if id.is_wildcard() => String::new(),
        Some(h) => h.to_hex(),
        None => String::new(),
    }
}

/// Whether a key may open a PKESK: it names the key, or it hides its
/// recipient (then every key is worth a try).
pub(crate) fn may_open(p: &PKESK, key: &KeyHandle) -> bool {
    recipient_id(p).is_empty() || p.recipient().is_some_and(|r| r.aliases(key))
}

struct Helper<'k> {
    keys: &'k Keyring,
}

impl VerificationHelper for Helper<'_> {
    fn get_certs(&mut self, _ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(Vec::new())
    }

    fn check(&mut self, _structure: MessageStructure) -> openpgp::Result<()> {
        // Signatures are checked only when the user names a signing key,
        // as duplicity does; integrity comes from the MDC and the manifest.
        Ok(())
    }
}

impl DecryptionHelper for Helper<'_> {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<Cert>> {
        let ids: Vec<String> = pkesks.iter().map(recipient_id).collect();
        let known = if pkesks.is_empty() {
            Vec::new()
        } else {
            self.keys.secret_keys_for(&ids)
        };
        for pkesk in pkesks {
            for cert in &known {
                for ka in cert.keys().secret() {
                    if !may_open(pkesk, &ka.key().key_handle()) {
                        continue;
                    }
                    let mut key = ka.key().clone();
                    if key.secret().is_encrypted() {
                        let Some(p) = &self.keys.passphrase else {
                            continue;
                        };
                        let Ok(k) = key.decrypt_secret(p) else {
                            continue;
                        };
                        key = k;
                    }
                    let Ok(mut pair) = key.into_keypair() else {
                        continue;
                    };
                    if let Some((algo, sk)) = pkesk.decrypt(&mut pair, sym_algo)
                        && decrypt(algo, &sk)
                    {
                        return Ok(Some(cert.clone()));
                    }
                }
            }
        }
        if !skesks.is_empty() {
            let Some(p) = &self.keys.passphrase else {
                return Err(CryptoError::NoPassphrase.into());
            };
            for skesk in skesks.iter().take(MAX_SKESKS) {
                // sequoia's derivation only where the fast one cannot (it
                // would derive the same key again, more slowly).
                let found = match fast_skesk_key(skesk, p) {
                    Some((algo, sk)) => decrypt(Some(algo), &sk),
                    None => skesk.decrypt(p).is_ok_and(|(algo, sk)| decrypt(algo, &sk)),
                };
                if found {
                    return Ok(None);
                }
            }
            return Err(CryptoError::WrongPassphrase.into());
        }
        let recipients: Vec<String> = pkesks
            .iter()
            .map(|p| {
                p.recipient()
                    .map_or("a hidden recipient".into(), |r| r.to_hex())
            })
            .collect();
        Err(CryptoError::NoSecretKey(recipients.join(", ")).into())
    }
}

/// A hash context for an OpenPGP S2K hash algorithm, from the accelerated
/// `sha1` and `sha2` crates (SHA-NI on x86, the ARMv8 extensions on a Pi 5),
/// not sequoia's collision-detecting SHA-1, which is several times slower.
fn s2k_hasher(algo: HashAlgorithm) -> Option<Box<dyn sha2::digest::DynDigest>> {
    Some(match algo {
        HashAlgorithm::SHA1 => Box::new(sha1::Sha1::default()),
        HashAlgorithm::SHA256 => Box::new(sha2::Sha256::default()),
        HashAlgorithm::SHA512 => Box::new(sha2::Sha512::default()),
        HashAlgorithm::SHA384 => Box::new(sha2::Sha384::default()),
        HashAlgorithm::SHA224 => Box::new(sha2::Sha224::default()),
        _ => return None,
    })
}

/// Derives a key from a password as the S2K specifier says (RFC 4880 3.7.1),
/// for the iterated and salted forms gpg writes.
pub(crate) fn derive_s2k(s2k: &S2K, password: &Password, key_size: usize) -> Option<Vec<u8>> {
    #[allow(deprecated)]
    let (hash, salt, count): (HashAlgorithm, &[u8], Option<usize>) = match s2k {
        S2K::Iterated {
            hash,
            salt,
            hash_bytes,
        } => (*hash, &salt[..], Some(*hash_bytes as usize)),
        S2K::Salted { hash, salt } => (*hash, &salt[..], None),
        S2K::Simple { hash } => (*hash, &[][..], None),
        _ => return None,
    };
    password.map(|pw| {
        let mut out = Vec::with_capacity(key_size);
        let mut preload = 0;
        while out.len() < key_size {
            let mut h = s2k_hasher(hash)?;
            h.update(&vec![0u8; preload]);
            let unit: Vec<u8> = salt.iter().chain(pw.iter()).copied().collect();
            match count {
                Some(n) if n > unit.len() => {
                    // Repeat salt||password until `n` bytes were hashed, in
                    // large blocks.
                    let block: Vec<u8> = unit
                        .iter()
                        .copied()
                        .cycle()
                        .take(unit.len() * 4096)
                        .collect();
                    let mut left = n;
                    while left >= block.len() {
                        h.update(&block);
                        left -= block.len();
                    }
                    h.update(&block[..left]);
                }
                _ => h.update(&unit),
            }
            let digest = h.finalize();
            out.extend_from_slice(&digest);
            preload += 1;
        }
        out.truncate(key_size);
        Some(out)
    })
}

/// The session key of a gpg-style SKESK (v4, no encrypted session key),
/// derived with the fast hashes; `None` when another path must do it.
pub(crate) fn fast_skesk_key(
    skesk: &SKESK,
    password: &Password,
) -> Option<(SymmetricAlgorithm, SessionKey)> {
    #[cfg(test)]
    SKESKS_TRIED.with(|n| n.set(n.get() + 1));
    let SKESK::V4(s4) = skesk else { return None };
    if s4.esk().ok()?.is_some() {
        return None;
    }
    let algo = s4.symmetric_algo();
    let key = derive_s2k(s4.s2k(), password, algo.key_size().ok()?)?;
    Some((algo, key.into()))
}

fn classify(e: anyhow::Error) -> CryptoError {
    match e.downcast::<CryptoError>() {
        Ok(c) => c,
        Err(e) => CryptoError::Malformed(format!("{e:#}")),
    }
}

/// A plaintext reader over an OpenPGP message. Read errors in the middle of
/// the stream (a failed integrity check, truncation) surface as `io::Error`.
pub struct Decrypting<'k> {
    inner: openpgp::parse::stream::Decryptor<'static, Helper<'k>>,
}

impl Read for Decrypting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

/// Opens an OpenPGP message for reading with the given keys.
pub fn decrypt<'k, R>(reader: R, keys: &'k Keyring) -> Result<Decrypting<'k>, CryptoError>
where
    R: Read + Send + Sync + 'static,
{
    let builder = DecryptorBuilder::from_reader(reader).map_err(classify)?;
    let inner = builder
        .buffer_size(DECRYPT_BUFFER)
        .with_policy(&POLICY, None, Helper { keys })
        .map_err(classify)?;
    Ok(Decrypting { inner })
}

/// Decrypts a whole small message (manifests) into memory.
pub fn decrypt_bytes(data: Vec<u8>, keys: &Keyring) -> Result<Vec<u8>, CryptoError> {
    let mut d = decrypt(io::Cursor::new(data), keys)?;
    let mut out = Vec::new();
    d.read_to_end(&mut out)
        .map_err(|e| CryptoError::Malformed(e.to_string()))?;
    Ok(out)
}

/// How files are encrypted.
#[derive(Clone)]
pub struct EncryptConfig {
    pub passphrase: Option<Password>,
    /// Public keys to encrypt to; when non-empty the passphrase is not used
    /// for encryption (it may unlock a signing key).
    pub recipients: Vec<Cert>,
    /// Recipients whose key IDs are not written (`--hidden-encrypt-key`).
    pub hidden_recipients: Vec<Cert>,
    /// A secret key to sign every file with (`--sign-key`), and the
    /// passphrase that unlocks it (`SIGN_PASSPHRASE`, else `PASSPHRASE`).
    pub sign_key: Option<Cert>,
    pub sign_passphrase: Option<Password>,
    pub cipher: SymmetricAlgorithm,
    pub compression: CompressionAlgorithm,
    /// 0–9, as gpg's `--compress-level`; `None` means the library default.
    pub compress_level: Option<u8>,
}

impl EncryptConfig {
    pub fn symmetric(p: impl Into<Password>) -> Self {
        EncryptConfig {
            passphrase: Some(p.into()),
            recipients: Vec::new(),
            hidden_recipients: Vec::new(),
            sign_key: None,
            sign_passphrase: None,
            cipher: SymmetricAlgorithm::AES256,
            compression: CompressionAlgorithm::Zip,
            compress_level: None,
        }
    }
}

/// Wraps `sink` in an OpenPGP message: encryption, optional compression and
/// a binary literal packet. Write the plaintext, then call `finalize`.
pub fn encrypt<'a, W>(sink: W, cfg: &'a EncryptConfig) -> Result<Message<'a>, CryptoError>
where
    W: Write + Send + Sync + 'a,
{
    let e = |e: anyhow::Error| CryptoError::Encrypt(format!("{e:#}"));
    let message = Message::new(sink);
    let encryptor = if cfg.recipients.is_empty() {
        let p = cfg
            .passphrase
            .clone()
            .ok_or(CryptoError::NoPassphraseToEncrypt)?;
        Encryptor::with_passwords(message, Some(p))
    } else {
        let mut keys = Vec::new();
        for cert in &cfg.recipients {
            keys.extend(encryption_keys(cert, &KEY_USE_POLICY)?);
        }
        if keys.is_empty() {
            return Err(CryptoError::Encrypt(
                "none of the given certificates has a valid encryption subkey".into(),
            ));
        }
        Encryptor::for_recipients(message, keys)
    };
    let mut message = encryptor.symmetric_algo(cfg.cipher).build().map_err(e)?;
    if cfg.compression != CompressionAlgorithm::Uncompressed {
        let mut c = Compressor::new(message).algo(cfg.compression);
        if let Some(l) = cfg.compress_level {
            c = c.level(
                openpgp::types::CompressionLevel::new(l)
                    .map_err(|x| CryptoError::Encrypt(x.to_string()))?,
            );
        }
        message = c.build().map_err(e)?;
    }
    LiteralWriter::new(message).build().map_err(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SHA-1 is accepted for self-signatures of keys the user chose to
    /// encrypt to or sign with, and nowhere else.
    #[test]
    fn sha1_is_accepted_only_for_key_bindings() {
        use openpgp::policy::HashAlgoSecurity::{CollisionResistance, SecondPreImageResistance};
        let sha1 = HashAlgorithm::SHA1;
        assert!(POLICY.hash_cutoff(sha1, SecondPreImageResistance).is_some());
        assert!(POLICY.hash_cutoff(sha1, CollisionResistance).is_some());
        assert!(
            KEY_USE_POLICY
                .hash_cutoff(sha1, SecondPreImageResistance)
                .is_none()
        );
        assert!(
            KEY_USE_POLICY
                .hash_cutoff(sha1, CollisionResistance)
                .is_some()
        );
    }

    #[test]
    fn symmetric_round_trip_and_wrong_passphrase() {
        let mut out = Vec::new();
        let cfg = EncryptConfig::symmetric("hunter2");
        let mut w = encrypt(&mut out, &cfg).unwrap();
        w.write_all(b"hello duplicity").unwrap();
        w.finalize().unwrap();

        let plain = decrypt_bytes(out.clone(), &Keyring::with_passphrase("hunter2")).unwrap();
        assert_eq!(plain, b"hello duplicity");

        let wrong = decrypt_bytes(out.clone(), &Keyring::with_passphrase("nope"));
        assert!(
            matches!(wrong, Err(CryptoError::WrongPassphrase)),
            "{wrong:?}"
        );
        let none = decrypt_bytes(out, &Keyring::default());
        assert!(matches!(none, Err(CryptoError::NoPassphrase)), "{none:?}");
    }

    #[test]
    fn fast_s2k_matches_sequoia() {
        let pw: Password = "correct horse".into();
        #[allow(deprecated)]
        for s2k in [
            S2K::Iterated {
                hash: HashAlgorithm::SHA1,
                salt: *b"saltsalt",
                hash_bytes: 65_011_712,
            },
            S2K::Iterated {
                hash: HashAlgorithm::SHA256,
                salt: *b"12345678",
                hash_bytes: 1024,
            },
            S2K::Iterated {
                hash: HashAlgorithm::SHA1,
                salt: *b"abcdefgh",
                hash_bytes: 3,
            },
            S2K::Salted {
                hash: HashAlgorithm::SHA512,
                salt: *b"87654321",
            },
            S2K::Simple {
                hash: HashAlgorithm::SHA1,
            },
        ] {
            for size in [16usize, 32, 40] {
                let theirs = s2k.derive_key(&pw, size).unwrap();
                let ours = derive_s2k(&s2k, &pw, size).unwrap();
                assert_eq!(&theirs[..], &ours[..], "{s2k:?} size {size}");
            }
        }
    }

    #[test]
    fn garbage_is_malformed() {
        let r = decrypt_bytes(
            b"this is not openpgp".to_vec(),
            &Keyring::with_passphrase("x"),
        );
        assert!(matches!(r, Err(CryptoError::Malformed(_))), "{r:?}");
    }
}
