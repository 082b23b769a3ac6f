//! The librsync delta command stream: `0x72730236`, then LITERAL and COPY
//! commands, then END. Decoded incrementally from any reader, and encoded
//! with adjacent copies merged, as librsync does.

use std::io::{self, Read, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// This many literal bytes follow in the stream.
    Literal(u64),
    /// Copy `len` bytes from `offset` in the basis.
    Copy {
        offset: u64,
        len: u64,
    },
    End,
}

/// Reads commands (and, for literals, leaves the bytes to the caller).
pub struct CommandReader<R> {
    inner: R,
    started: bool,
}

fn read_be(r: &mut impl Read, width: usize) -> io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b[8 - width..])?;
    Ok(u64::from_be_bytes(b))
}

fn width(class: u8) -> usize {
    1 << class
}

impl<R: Read> CommandReader<R> {
    pub fn new(inner: R) -> Self {
        CommandReader {
            inner,
            started: false,
        }
    }

    /// The underlying reader, positioned at the literal bytes after a
    /// `Literal` command.
    pub fn inner(&mut self) -> &mut R {
        &mut self.inner
    }

    /// The next command. The magic is checked before the first one.
    pub fn next_command(&mut self) -> io::Result<Command> {
        let bad = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
        if !self.started {
            let magic = read_be(&mut self.inner, 4)? as u32;
            if magic != super::DELTA_MAGIC {
                return Err(bad(format!(
                    "not an rsync delta (magic {magic:#010x}, expected {:#010x})",
                    super::DELTA_MAGIC
                )));
            }
            self.started = true;
        }
        let mut op = [0u8; 1];
        self.inner.read_exact(&mut op)?;
        let op = op[0];
        Ok(match op {
            0 => Command::End,
            0x01..=0x40 => Command::Literal(u64::from(op)),
            0x41..=0x44 => Command::Literal(read_be(&mut self.inner, width(op - 0x41))?),
            0x45..=0x54 => {
                let k = op - 0x45;
                let offset = read_be(&mut self.inner, width(k / 4))?;
                let len = read_be(&mut self.inner, width(k % 4))?;
                Command::Copy { offset, len }
            }
            _ => return Err(bad(format!("unknown rsync delta command {op:#04x}"))),
        })
    }
}

fn class(v: u64) -> u8 {
    match v {
        0..=0xff => 0,
        0x100..=0xffff => 1,
        0x1_0000..=0xffff_ffff => 2,
        _ => 3,
    }
}

fn write_be(out: &mut impl Write, v: u64, class: u8) -> io::Result<()> {
    let b = v.to_be_bytes();
    out.write_all(&b[8 - width(class)..])
}

/// Writes a delta stream, merging a copy that continues the previous one.
pub struct DeltaEncoder<W: Write> {
    out: W,
    queued: Option<(u64, u64)>,
    started: bool,
    /// Bytes of the new file the commands so far describe.
    pub described: u64,
}

impl<W: Write> DeltaEncoder<W> {
    pub fn new(out: W) -> Self {
        DeltaEncoder {
            out,
            queued: None,
            started: false,
            described: 0,
        }
    }

    fn start(&mut self) -> io::Result<()> {
        if !self.started {
            self.out.write_all(&super::DELTA_MAGIC.to_be_bytes())?;
            self.started = true;
        }
        Ok(())
    }

    fn flush_copy(&mut self) -> io::Result<()> {
        if let Some((offset, len)) = self.queued.take() {
            let (co, cl) = (class(offset), class(len));
            self.out.write_all(&[0x45 + co * 4 + cl])?;
            write_be(&mut self.out, offset, co)?;
            write_be(&mut self.out, len, cl)?;
        }
        Ok(())
    }

    pub fn copy(&mut self, offset: u64, len: u64) -> io::Result<()> {
        self.start()?;
        self.described += len;
        if let Some((qo, ql)) = &mut self.queued
            && *qo + *ql == offset
        {
            *ql += len;
            return Ok(());
        }
        self.flush_copy()?;
        self.queued = Some((offset, len));
        Ok(())
    }

    pub fn literal(&mut self, data: &[u8]) -> io::Result<()> {
        self.start()?;
        if data.is_empty() {
            return Ok(());
        }
        self.flush_copy()?;
        self.described += data.len() as u64;
        let len = data.len() as u64;
        if len <= 64 {
            self.out.write_all(&[len as u8])?;
        } else {
            let c = class(len);
            self.out.write_all(&[0x41 + c])?;
            write_be(&mut self.out, len, c)?;
        }
        self.out.write_all(data)
    }

    /// Writes END and returns the sink.
    pub fn finish(mut self) -> io::Result<W> {
        self.start()?;
        self.flush_copy()?;
        self.out.write_all(&[0])?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let mut enc = DeltaEncoder::new(Vec::new());
        enc.copy(0, 12).unwrap();
        enc.copy(12, 20).unwrap(); // merges
        enc.literal(&[7u8; 300]).unwrap();
        enc.copy(1 << 33, 70_000).unwrap();
        enc.literal(b"x").unwrap();
        assert_eq!(enc.described, 32 + 300 + 70_000 + 1);
        let bytes = enc.finish().unwrap();
        let mut r = CommandReader::new(&bytes[..]);
        assert_eq!(
            r.next_command().unwrap(),
            Command::Copy { offset: 0, len: 32 }
        );
        assert_eq!(r.next_command().unwrap(), Command::Literal(300));
        let mut lit = vec![0u8; 300];
        r.inner().read_exact(&mut lit).unwrap();
        assert_eq!(
            r.next_command().unwrap(),
            Command::Copy {
                offset: 1 << 33,
                len: 70_000
            }
        );
        assert_eq!(r.next_command().unwrap(), Command::Literal(1));
        r.inner().read_exact(&mut [0u8; 1]).unwrap();
        assert_eq!(r.next_command().unwrap(), Command::End);
    }

    #[test]
    fn duplicity_sample_delta_decodes() {
        // diff/a.txt from the samples: copy offset 0, length 12; END.
        let bytes = [0x72, 0x73, 0x02, 0x36, 0x45, 0x00, 0x0c, 0x00];
        let mut r = CommandReader::new(&bytes[..]);
        assert_eq!(
            r.next_command().unwrap(),
            Command::Copy { offset: 0, len: 12 }
        );
        assert_eq!(r.next_command().unwrap(), Command::End);
    }

    #[test]
    fn bad_magic_and_opcode() {
        let mut r = CommandReader::new(&[0x72, 0x73, 0x01, 0x36, 0][..]);
        assert!(r.next_command().is_err());
        let mut r = CommandReader::new(&[0x72, 0x73, 0x02, 0x36, 0x99][..]);
        assert!(r.next_command().is_err());
    }
}
