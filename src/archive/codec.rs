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

use crate::backend::{BackendError, Upload};
use crate::crypto::EncryptConfig;
use sha1::{Digest, Sha1};
use std::io::{self, Write};
use std::sync::{Arc, Mutex};

/// What was stored: the facts a manifest records about a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// SHA1 of the bytes as stored, lowercase hex.
    pub sha1: String,
    pub size: u64,
}

/// The end of every encoder: counts and hashes what is stored, then hands
/// it to the upload.
struct Sink {
    upload: Option<Box<dyn Upload>>,
    hash: Sha1,
    written: u64,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.upload.as_mut().expect("open sink").write(buf)?;
        self.hash.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.upload.as_mut().expect("open sink").flush()
    }
}

/// A shared handle on the sink, so the OpenPGP writer stack can own one
/// while the encoder keeps reading the counters.
#[derive(Clone)]
struct SharedSink(Arc<Mutex<Sink>>);

impl Write for SharedSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).flush()
    }
}

enum Layer<'c> {
    Plain,
    Gzip(Box<flate2::write::GzEncoder<SharedSink>>),
    Gpg(sequoia_openpgp::serialize::stream::Message<'c>),
}

/// Encodes a stored file (volume, signatures, manifest) on its way to the
/// target: OpenPGP, gzip or nothing, with the SHA1 of the stored bytes.
pub struct Encoder<'c> {
    layer: Option<Layer<'c>>,
    sink: SharedSink,
    plain: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("writing {0}")]
    Io(#[from] io::Error),
}

impl<'c> Encoder<'c> {
    pub fn new(
        upload: Box<dyn Upload>,
        enc: Encoding,
        crypt: Option<&'c EncryptConfig>,
    ) -> Result<Self, EncodeError> {
        let sink = SharedSink(Arc::new(Mutex::new(Sink {
            upload: Some(upload),
            hash: Sha1::new(),
            written: 0,
        })));
        let layer = match enc {
            Encoding::Plain => Layer::Plain,
            Encoding::Gzip => Layer::Gzip(Box::new(flate2::write::GzEncoder::new(
                sink.clone(),
                flate2::Compression::new(6),
            ))),
            Encoding::Gpg => {
                let cfg = crypt.ok_or(CryptoError::NoPassphrase)?;
                Layer::Gpg(crypto::encrypt(sink.clone(), cfg)?)
            }
        };
        Ok(Encoder {
            layer: Some(layer),
            sink,
            plain: 0,
        })
    }

    /// Bytes stored so far (lagging the input by what the layers buffer).
    pub fn stored_bytes(&self) -> u64 {
        self.sink
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .written
    }

    /// Bytes fed in so far.
    pub fn plain_bytes(&self) -> u64 {
        self.plain
    }

    /// Finishes the layers and commits the upload.
    pub fn finish(mut self) -> Result<Stored, EncodeError> {
        match self.layer.take().expect("open encoder") {
            Layer::Plain => {}
            Layer::Gzip(g) => {
                g.finish()?;
            }
            Layer::Gpg(m) => m
                .finalize()
                .map_err(|e| CryptoError::Encrypt(format!("{e:#}")))?,
        }
        let mut sink = self.sink.0.lock().unwrap_or_else(|e| e.into_inner());
        let upload = sink.upload.take().expect("open sink");
        let sha1 = hex::encode(std::mem::take(&mut sink.hash).finalize());
        let size = sink.written;
        drop(sink);
        upload.commit()?;
        Ok(Stored { sha1, size })
    }
}

impl Write for Encoder<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match self.layer.as_mut().expect("open encoder") {
            Layer::Plain => self.sink.write(buf)?,
            Layer::Gzip(g) => g.write(buf)?,
            Layer::Gpg(m) => m.write(buf)?,
        };
        self.plain += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
