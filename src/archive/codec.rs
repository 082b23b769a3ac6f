//! The layer around a stored file's contents, chosen by its name's suffix as
//! duplicity chooses it (`DupPath.filtered_open`): OpenPGP (`.gpg`), gzip
//! (`.gz`), or nothing.

use super::names::Encoding;
use crate::crypto::{self, CryptoError, Keyring};
use std::io::{BufReader, Read};

/// Wraps a stored file's bytes in the decoder its encoding needs.
pub fn decode<'k, R>(
    raw: R,
    enc: Encoding,
    keys: &'k Keyring,
) -> Result<Box<dyn Read + Send + 'k>, CryptoError>
where
    R: Read + Send + Sync + 'static,
{
    Ok(match enc {
        Encoding::Plain => Box::new(raw),
        Encoding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            256 * 1024,
            raw,
        ))),
        Encoding::Gpg => Box::new(crypto::decrypt(raw, keys)?),
    })
}
