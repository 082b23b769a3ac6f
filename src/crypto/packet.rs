//! OpenPGP packet framing (RFC 4880 §4.2): just enough to find the
//! session-key packets and stream the body of the encrypted-data packet.
//! Packet contents are parsed by sequoia.

use std::io::{self, Read};

/// How a packet's length is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    Definite(u64),
    /// A partial chunk of this size; more chunks follow.
    Partial(u64),
    /// Old-format "until the end of the input".
    Indeterminate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub tag: u8,
    pub length: Length,
    /// The header bytes as read, for handing the packet to a full parser.
    pub raw: Vec<u8>,
}

fn byte(r: &mut impl Read, raw: &mut Vec<u8>) -> io::Result<u8> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b)?;
    raw.push(b[0]);
    Ok(b[0])
}

fn be(r: &mut impl Read, n: usize, raw: &mut Vec<u8>) -> io::Result<u64> {
    let mut v = 0u64;
    for _ in 0..n {
        v = (v << 8) | u64::from(byte(r, raw)?);
    }
    Ok(v)
}

/// A new-format length (also used for the chunks after a partial one).
fn new_length(first: u8, r: &mut impl Read, raw: &mut Vec<u8>) -> io::Result<Length> {
    Ok(match first {
        0..=191 => Length::Definite(u64::from(first)),
        192..=223 => {
            let second = byte(r, raw)?;
            Length::Definite(((u64::from(first) - 192) << 8) + u64::from(second) + 192)
        }
        224..=254 => Length::Partial(1u64 << (first & 0x1f)),
        255 => Length::Definite(be(r, 4, raw)?),
    })
}

/// Reads the next packet header; `None` at a clean end of input.
pub fn read_header(r: &mut impl Read) -> io::Result<Option<Header>> {
    let mut raw = Vec::with_capacity(6);
    let mut b = [0u8; 1];
    if r.read(&mut b)? == 0 {
        return Ok(None);
    }
    raw.push(b[0]);
    let ctb = b[0];
    if ctb & 0x80 == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not an OpenPGP packet (bad tag byte)",
        ));
    }
    let (tag, length) = if ctb & 0x40 != 0 {
        let first = byte(r, &mut raw)?;
        (ctb & 0x3f, new_length(first, r, &mut raw)?)
    } else {
        let tag = (ctb >> 2) & 0x0f;
        let length = match ctb & 3 {
            0 => Length::Definite(be(r, 1, &mut raw)?),
            1 => Length::Definite(be(r, 2, &mut raw)?),
            2 => Length::Definite(be(r, 4, &mut raw)?),
            _ => Length::Indeterminate,
        };
        (tag, length)
    };
    Ok(Some(Header { tag, length, raw }))
}

/// A packet's body, across partial-length chunks.
pub struct Body<R: Read> {
    inner: R,
    left: u64,
    more: bool,
    indeterminate: bool,
}

impl<R: Read> Body<R> {
    pub fn new(inner: R, length: Length) -> Self {
        let (left, more, indeterminate) = match length {
            Length::Definite(n) => (n, false, false),
            Length::Partial(n) => (n, true, false),
            Length::Indeterminate => (0, false, true),
        };
        Body {
            inner,
            left,
            more,
            indeterminate,
        }
    }
}

impl<R: Read> Read for Body<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.indeterminate {
            return self.inner.read(buf);
        }
        while self.left == 0 {
            if !self.more {
                return Ok(0);
            }
            let mut scratch = Vec::new();
            let first = byte(&mut self.inner, &mut scratch)?;
            match new_length(first, &mut self.inner, &mut scratch)? {
                Length::Partial(n) => self.left = n,
                Length::Definite(n) => {
                    self.left = n;
                    self.more = false;
                }
                Length::Indeterminate => unreachable!("not produced by new-format lengths"),
            }
        }
        let want = (buf.len() as u64).min(self.left) as usize;
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "OpenPGP packet is truncated",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::seipd::PartialBody;
    use std::io::Write;

    #[test]
    fn partial_bodies_round_trip() {
        for len in [0usize, 5, 191, 192, 8383, 8384, 65535, 65536, 200_000] {
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut w = PartialBody::new(Vec::new(), 8).unwrap();
            w.write_all(&data).unwrap();
            let bytes = w.finish().unwrap();
            let mut r = &bytes[..];
            let h = read_header(&mut r).unwrap().unwrap();
            assert_eq!(h.tag, 8);
            let mut body = Vec::new();
            Body::new(&mut r, h.length).read_to_end(&mut body).unwrap();
            assert_eq!(body, data, "len {len}");
            assert!(r.is_empty());
        }
    }

    #[test]
    fn old_format_headers() {
        // Old-format tag 3, one-octet length 4.
        let p = [0x8C, 4, 1, 2, 3, 4];
        let mut r = &p[..];
        let h = read_header(&mut r).unwrap().unwrap();
        assert_eq!((h.tag, h.length), (3, Length::Definite(4)));
        assert!(read_header(&mut &[0x12u8][..]).is_err());
        assert!(read_header(&mut &[][..]).unwrap().is_none());
    }
}
