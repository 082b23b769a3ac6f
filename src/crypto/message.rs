//! Whole OpenPGP messages as duplicity stores them: session-key packets, then
//! one SEIPD v1 packet holding a compressed literal packet.
//!
//! Writing: [`MessageKeys`] derives the passphrase's key once per run and
//! gives every file a fresh random session key, wrapped in an SKESK v4 (and
//! a PKESK per recipient), so a backup of a thousand volumes costs one S2K
//! derivation, not a thousand, which matters on a Pi without SHA extensions.
//!
//! Reading: [`open`] finds the session key with sequoia, decrypts the SEIPD
//! body on its own thread with [`super::seipd`], and lets sequoia parse the
//! decrypted inner message (decompression, literal data, signatures). Any
//! message outside that shape (AEAD packets, old ciphers) goes through
//! sequoia's own decryptor unchanged.

use super::packet::{self, Body};
use super::seipd::{self, SeipdReader};
use super::{CryptoError, EncryptConfig, KEY_USE_POLICY, Keyring, encryption_keys, recipient_id};
use openpgp::crypto::{Password, S2K, SessionKey};
use openpgp::packet::skesk::SKESK4;
use openpgp::packet::{PKESK, SKESK};
use openpgp::parse::Parse;
use openpgp::serialize::Marshal;
use openpgp::types::{HashAlgorithm, SymmetricAlgorithm};
use openpgp::{Packet, policy::StandardPolicy};
use sequoia_openpgp as openpgp;
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::mpsc::{Receiver, sync_channel};

/// Per-run key material for writing encrypted files.
pub struct MessageKeys {
    cipher: SymmetricAlgorithm,
    /// The passphrase's S2K and the key it derives, for SKESK packets.
    symmetric: Option<(S2K, Vec<u8>)>,
    /// Encryption-capable public keys, for PKESK packets, and whether each
    /// one's key ID is hidden.
    recipients: Vec<(PublicKey, bool)>,
    /// The unlocked signing key, if files are signed.
    signer: Option<openpgp::crypto::KeyPair>,
}

static POLICY: StandardPolicy<'static> = StandardPolicy::new();

type PublicKey =
    openpgp::packet::Key<openpgp::packet::key::PublicParts, openpgp::packet::key::UnspecifiedRole>;

/// gpg's default S2K work factor (65,011,712 bytes hashed).
const S2K_COUNT: u32 = 65_011_712;

/// OpenPGP CFB with a zero IV and no resync, as SKESK v4 encrypts its key.
fn cfb_encrypt(algo: SymmetricAlgorithm, key: &[u8], data: &mut [u8]) -> Result<(), CryptoError> {
    use cfb_mode::cipher::{AsyncStreamCipher, KeyIvInit};
    let iv = [0u8; 16];
    let bad = || CryptoError::Encrypt(format!("unsupported cipher {algo}"));
    match algo {
        SymmetricAlgorithm::AES128 => cfb_mode::Encryptor::<aes::Aes128>::new_from_slices(key, &iv)
            .map_err(|_| bad())?
            .encrypt(data),
        SymmetricAlgorithm::AES192 => cfb_mode::Encryptor::<aes::Aes192>::new_from_slices(key, &iv)
            .map_err(|_| bad())?
            .encrypt(data),
        SymmetricAlgorithm::AES256 => cfb_mode::Encryptor::<aes::Aes256>::new_from_slices(key, &iv)
            .map_err(|_| bad())?
            .encrypt(data),
        _ => return Err(bad()),
    }
    Ok(())
}

impl MessageKeys {
    pub fn new(cfg: &EncryptConfig) -> Result<Self, CryptoError> {
        if !seipd::supported(cfg.cipher) {
            return Err(CryptoError::Encrypt(format!(
                "cipher {} is not supported for writing; use AES128, AES192 or AES256",
                cfg.cipher
            )));
        }
        let mut recipients = Vec::new();
        for (cert, hidden) in cfg
            .recipients
            .iter()
            .map(|c| (c, false))
            .chain(cfg.hidden_recipients.iter().map(|c| (c, true)))
        {
            for ka in encryption_keys(cert, &KEY_USE_POLICY)? {
                recipients.push((ka.key().clone().role_into_unspecified(), hidden));
            }
        }
        let public_key_mode = !cfg.recipients.is_empty() || !cfg.hidden_recipients.is_empty();
        if public_key_mode && recipients.is_empty() {
            return Err(CryptoError::Encrypt(
                "none of the given certificates has a valid encryption subkey".into(),
            ));
        }
        let symmetric = match (&cfg.passphrase, !public_key_mode) {
            (Some(p), true) => {
                let mut salt = [0u8; 8];
                openpgp::crypto::random(&mut salt)
                    .map_err(|e| CryptoError::Encrypt(e.to_string()))?;
                let s2k = S2K::Iterated {
                    hash: HashAlgorithm::SHA256,
                    salt,
                    hash_bytes: S2K_COUNT,
                };
                let kek = super::derive_s2k(
                    &s2k,
                    p,
                    cfg.cipher
                        .key_size()
                        .map_err(|e| CryptoError::Encrypt(e.to_string()))?,
                )
                .ok_or_else(|| {
                    CryptoError::Encrypt("cannot derive the key from the passphrase".into())
                })?;
                Some((s2k, kek))
            }
            (None, true) => return Err(CryptoError::NoPassphraseToEncrypt),
            (_, false) => None,
        };
        let signer = match &cfg.sign_key {
            None => None,
            Some(cert) => Some(signing_keypair(
                cert,
                cfg.sign_passphrase.as_ref().or(cfg.passphrase.as_ref()),
            )?),
        };
        Ok(MessageKeys {
            cipher: cfg.cipher,
            symmetric,
            recipients,
            signer,
        })
    }

    pub fn cipher(&self) -> SymmetricAlgorithm {
        self.cipher
    }

    /// The signing key, if files are signed.
    pub fn signer(&self) -> Option<&openpgp::crypto::KeyPair> {
        self.signer.as_ref()
    }

    /// A fresh session key and the packets that carry it to the reader.
    pub fn session(&self) -> Result<(SessionKey, Vec<u8>), CryptoError> {
        let e = |e: anyhow::Error| CryptoError::Encrypt(format!("{e:#}"));
        let size = self.cipher.key_size().map_err(e)?;
        let mut sk = vec![0u8; size];
        openpgp::crypto::random(&mut sk).map_err(e)?;
        let sk: SessionKey = sk.into();
        let mut out = Vec::new();
        for (r, hidden) in &self.recipients {
            let mut pkesk =
                openpgp::packet::pkesk::PKESK3::for_recipient(self.cipher, &sk, r).map_err(e)?;
            if *hidden {
                pkesk.set_recipient(None);
            }
            Packet::from(PKESK::from(pkesk))
                .serialize(&mut out)
                .map_err(e)?;
        }
        if let Some((s2k, kek)) = &self.symmetric {
            let mut esk = Vec::with_capacity(1 + size);
            esk.push(u8::from(self.cipher));
            esk.extend_from_slice(&sk);
            cfb_encrypt(self.cipher, kek, &mut esk)?;
            let skesk =
                SKESK4::new(self.cipher, s2k.clone(), Some(esk.into_boxed_slice())).map_err(e)?;
            Packet::from(SKESK::from(skesk))
                .serialize(&mut out)
                .map_err(e)?;
        }
        Ok((sk, out))
    }
}

/// The signing-capable secret key of `cert`, unlocked.
fn signing_keypair(
    cert: &openpgp::Cert,
    pass: Option<&Password>,
) -> Result<openpgp::crypto::KeyPair, CryptoError> {
    let bad = |m: String| CryptoError::Encrypt(format!("signing key {}: {m}", cert.fingerprint()));
    let ka = cert
        .keys()
        .secret()
        .with_policy(&*KEY_USE_POLICY, None)
        .supported()
        .alive()
        .revoked(false)
        .for_signing()
        .next()
        .ok_or_else(|| bad("no usable secret signing key".into()))?;
    let mut key = ka.key().clone();
    if key.secret().is_encrypted() {
        let p =
            pass.ok_or_else(|| bad("set SIGN_PASSPHRASE (or PASSPHRASE) to unlock it".into()))?;
        key = key
            .decrypt_secret(p)
            .map_err(|_| bad("SIGN_PASSPHRASE (or PASSPHRASE) does not unlock it".into()))?;
    }
    key.into_keypair().map_err(|e| bad(e.to_string()))
}

/// Finds the session key for the SEIPD among the key packets.
fn session_key(
    pkesks: &[PKESK],
    skesks: &[SKESK],
    keys: &Keyring,
) -> Result<Option<(SymmetricAlgorithm, SessionKey)>, CryptoError> {
    let ids: Vec<String> = pkesks.iter().map(recipient_id).collect();
    let known = if pkesks.is_empty() {
        Vec::new()
    } else {
        keys.secret_keys_for(&ids)
    };
    for pkesk in pkesks {
        for cert in &known {
            for ka in cert.keys().secret() {
                if !super::may_open(pkesk, &ka.key().key_handle()) {
                    continue;
                }
                let mut key = ka.key().clone();
                if key.secret().is_encrypted() {
                    let Some(p) = &keys.passphrase else { continue };
                    let Ok(k) = key.decrypt_secret(p) else {
                        continue;
                    };
                    key = k;
                }
                let Ok(mut pair) = key.into_keypair() else {
                    continue;
                };
                if let Some((Some(algo), sk)) = pkesk.decrypt(&mut pair, None) {
                    return Ok(Some((algo, sk)));
                }
            }
        }
    }
    if !skesks.is_empty() {
        let p: &Password = keys.passphrase.as_ref().ok_or(CryptoError::NoPassphrase)?;
        for skesk in skesks.iter().take(super::MAX_SKESKS) {
            if let Some(found) = super::fast_skesk_key(skesk, p) {
                return Ok(Some(found));
            }
            if let Ok((Some(algo), sk)) = skesk.decrypt(p) {
                return Ok(Some((algo, sk)));
            }
        }
        // The caller decides between "wrong passphrase" (quick check fails
        // with every candidate) and a sequoia fallback.
        return Ok(None);
    }
    Ok(None)
}

/// Plaintext delivered by the decryption thread in 1 MiB pieces.
struct Piped {
    /// In a mutex only because sequoia wants its input `Sync`.
    rx: std::sync::Mutex<Receiver<io::Result<Vec<u8>>>>,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Read for Piped {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            if self.done {
                return Ok(0);
            }
            let next = self.rx.get_mut().unwrap_or_else(|e| e.into_inner()).recv();
            match next {
                Ok(Ok(b)) if b.is_empty() => self.done = true,
                Ok(Ok(b)) => {
                    self.buf = b;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "decryption stopped",
                    ));
                }
            }
        }
        let n = (self.buf.len() - self.pos).min(out.len());
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Decrypts a SEIPD body on a thread of its own, so decryption and the
/// decompression and parsing after it run on two cores.
fn pipe<R: Read + Send + 'static>(mut r: SeipdReader<Body<R>>) -> Piped {
    let (tx, rx) = sync_channel(4);
    std::thread::spawn(move || {
        loop {
            let mut buf = vec![0u8; 1 << 20];
            let mut filled = 0;
            let res = loop {
                if filled == buf.len() {
                    break Ok(());
                }
                match r.read(&mut buf[filled..]) {
                    Ok(0) => break Ok(()),
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            };
            buf.truncate(filled);
            let last = filled == 0;
            let send = match res {
                Ok(()) => tx.send(Ok(buf)),
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            if send.is_err() || last {
                return;
            }
        }
    });
    Piped {
        rx: std::sync::Mutex::new(rx),
        buf: Vec::new(),
        pos: 0,
        done: false,
    }
}

struct NoKeys;

impl openpgp::parse::stream::VerificationHelper for NoKeys {
    fn get_certs(&mut self, _: &[openpgp::KeyHandle]) -> openpgp::Result<Vec<openpgp::Cert>> {
        Ok(Vec::new())
    }

    fn check(&mut self, _: openpgp::parse::stream::MessageStructure) -> openpgp::Result<()> {
        Ok(())
    }
}

impl openpgp::parse::stream::DecryptionHelper for NoKeys {
    fn decrypt(
        &mut self,
        _: &[PKESK],
        _: &[SKESK],
        _: Option<SymmetricAlgorithm>,
        _: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<openpgp::Cert>> {
        Err(anyhow::anyhow!(
            "nested encryption is not part of duplicity's format"
        ))
    }
}

/// Opens an encrypted file for reading: the plaintext of its literal data.
pub fn open<'k, R>(mut raw: R, keys: &'k Keyring) -> Result<Box<dyn Read + Send + 'k>, CryptoError>
where
    R: Read + Seek + Send + Sync + 'static,
{
    let start = raw
        .stream_position()
        .map_err(|e| CryptoError::Malformed(e.to_string()))?;
    let malformed = |e: io::Error| CryptoError::Malformed(e.to_string());
    let mut pkesks = Vec::new();
    let mut skesks = Vec::new();
    loop {
        let Some(h) = packet::read_header(&mut raw).map_err(malformed)? else {
            return Err(CryptoError::Malformed(
                "no encrypted data in the file".into(),
            ));
        };
        match h.tag {
            1 | 3 => {
                let packet::Length::Definite(n) = h.length else {
                    return Err(CryptoError::Malformed(
                        "session key packet without a definite length".into(),
                    ));
                };
                let mut bytes = h.raw.clone();
                (&mut raw)
                    .take(n)
                    .read_to_end(&mut bytes)
                    .map_err(malformed)?;
                match Packet::from_bytes(&bytes) {
                    Ok(Packet::PKESK(p)) => pkesks.push(p),
                    Ok(Packet::SKESK(s)) => skesks.push(s),
                    _ => {}
                }
            }
            18 => {
                if let Some((algo, sk)) = session_key(&pkesks, &skesks, keys)?
                    && seipd::supported(algo)
                {
                    let body = Body::new(raw, h.length);
                    let reader = match SeipdReader::new(body, algo, &sk) {
                        Ok(r) => r,
                        Err(e) if e.kind() == io::ErrorKind::InvalidData && pkesks.is_empty() => {
                            return Err(CryptoError::WrongPassphrase);
                        }
                        Err(e) => return Err(malformed(e)),
                    };
                    let inner = openpgp::parse::stream::DecryptorBuilder::from_reader(pipe(reader))
                        .map_err(|e| CryptoError::Malformed(format!("{e:#}")))?
                        .buffer_size(super::DECRYPT_BUFFER)
                        .with_policy(&POLICY, None, NoKeys)
                        .map_err(|e| CryptoError::Malformed(format!("{e:#}")))?;
                    return Ok(Box::new(inner));
                }
                break;
            }
            // Marker packets and the like are skipped; anything else
            // (AEAD, legacy SED) is for sequoia's full decryptor.
            10 => {
                let packet::Length::Definite(n) = h.length else {
                    break;
                };
                io::copy(&mut (&mut raw).take(n), &mut io::sink()).map_err(malformed)?;
            }
            _ => break,
        }
    }
    raw.seek(SeekFrom::Start(start)).map_err(malformed)?;
    Ok(Box::new(super::decrypt(raw, keys)?))
}

/// Writes one encrypted file: session-key packets, then a SEIPD holding
/// either a compressed-data packet whose body the caller supplies
/// (algorithm byte included), e.g. from the parallel deflate stage, or, for
/// uncompressed messages, the literal packet itself.
pub enum MessageWriter<W: io::Write> {
    Compressed(seipd::PartialBody<seipd::SeipdWriter<W>>),
    Uncompressed(seipd::SeipdWriter<W>),
}

impl<W: io::Write> MessageWriter<W> {
    /// `compressed`: whether a compressed-data packet wraps the content.
    pub fn new(mut out: W, keys: &MessageKeys, compressed: bool) -> Result<Self, CryptoError> {
        let (sk, header) = keys.session()?;
        let io = |e: io::Error| CryptoError::Encrypt(e.to_string());
        out.write_all(&header).map_err(io)?;
        let seipd = seipd::SeipdWriter::new(out, keys.cipher, &sk).map_err(io)?;
        Ok(if compressed {
            MessageWriter::Compressed(seipd::PartialBody::new(seipd, 8).map_err(io)?)
        } else {
            MessageWriter::Uncompressed(seipd)
        })
    }

    /// Writes content: compressed-packet body bytes, or the inner packets.
    pub fn write_content(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            MessageWriter::Compressed(c) => io::Write::write_all(c, data),
            MessageWriter::Uncompressed(s) => io::Write::write_all(s, data),
        }
    }

    pub fn finish(self) -> io::Result<W> {
        match self {
            MessageWriter::Compressed(c) => c.finish()?.finish(),
            MessageWriter::Uncompressed(s) => s.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openpgp::cert::CertBuilder;

    fn message(cfg: &EncryptConfig, body: &[u8]) -> Vec<u8> {
        let keys = MessageKeys::new(cfg).unwrap();
        let mut w = MessageWriter::new(Vec::new(), &keys, false).unwrap();
        // A literal packet by hand: tag 11, binary, no name, no date.
        let mut lit = vec![0xCB, (6 + body.len()) as u8, b'b', 0, 0, 0, 0, 0];
        lit.extend_from_slice(body);
        w.write_content(&lit).unwrap();
        w.finish().unwrap()
    }

    /// Found by `cargo fuzz` (target `openpgp`): every passphrase packet
    /// (SKESK) costs a full S2K derivation, up to 65 MiB of hashing, and a
    /// file may hold any number of them; each was tried on the fast path and
    /// again by sequoia, so 10 KiB of them took minutes. At most
    /// `MAX_SKESKS` are tried now.
    #[test]
    fn many_passphrase_packets_are_not_all_tried() {
        let mut m = Vec::new();
        for i in 0..200u8 {
            // Old-format tag 3, 46 bytes: v4, AES256, iterated+salted SHA-1
            // S2K (the lowest count, so the test is quick; hostile files
            // use the highest), an encrypted session key.
            m.extend_from_slice(&[0x8c, 46, 4, 9, 3, 2]);
            m.extend_from_slice(&[i; 8]);
            m.push(0x00);
            m.extend_from_slice(&[0x5a; 33]);
        }
        m.extend_from_slice(&[0xd2, 61, 1]);
        m.extend_from_slice(&[0xa5; 60]);
        let keys = Keyring::with_passphrase("test");
        super::super::SKESKS_TRIED.with(|n| n.set(0));
        let r = open(std::io::Cursor::new(m), &keys).map(|_| ());
        assert!(r.is_err());
        // The fast path, then sequoia's decryptor: each tries at most MAX_SKESKS.
        let tried = super::super::SKESKS_TRIED.with(|n| n.get());
        assert!(
            tried <= 2 * super::super::MAX_SKESKS,
            "{tried} of 200 tried"
        );
        assert!(
            tried >= super::super::MAX_SKESKS,
            "{tried}: the packets were tried"
        );
    }

    #[test]
    fn public_key_messages_open_with_the_secret_key_even_when_hidden() {
        let (cert, _) = CertBuilder::general_purpose(Some("t@example.invalid"))
            .generate()
            .unwrap();
        for hidden in [false, true] {
            let mut cfg = EncryptConfig::symmetric("unused");
            cfg.passphrase = None;
            if hidden {
                cfg.hidden_recipients.push(cert.clone());
            } else {
                cfg.recipients.push(cert.clone());
            }
            let m = message(&cfg, b"hello");
            let keys = Keyring {
                secret_keys: vec![cert.clone()],
                ..Default::default()
            };
            let mut out = Vec::new();
            open(std::io::Cursor::new(m.clone()), &keys)
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, b"hello", "hidden={hidden}");
            let none = Keyring::default();
            assert!(matches!(
                open(std::io::Cursor::new(m), &none).err(),
                Some(CryptoError::NoSecretKey(_))
            ));
        }
    }
}
