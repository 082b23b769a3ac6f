//! The rsync delta engine, byte-compatible with librsync as duplicity calls it
//! (`rs_sig_begin(blocklen, 8, RS_MD4_SIG_MAGIC)`): MD4 signatures with the
//! classic rollsum, 8-byte strong sums, and librsync delta streams.
//!
//! Signatures and deltas are computed by `fast_rsync`; this module makes them
//! stream. `fast_rsync` wants whole slices, so signatures are built chunk by
//! chunk and deltas segment by segment, and patches are applied by our own
//! streaming interpreter of the (tiny) librsync delta format, reading the basis
//! with positioned reads. Memory stays bounded by the chunk size, never by the
//! file size, and no file is memory-mapped whole (mapped pages would count
//! against the Pi's RAM as the file is touched).

mod command;
mod diff;
mod patch;
mod signature;

pub use command::{Command, CommandReader, DeltaEncoder};
pub use diff::{DeltaStats, Differ};
pub use patch::{PatchError, apply};
pub use signature::{SignatureBuilder, SignatureError, block_size, parse_signature};

/// `RS_MD4_SIG_MAGIC`: MD4 strong sums with the rollsum weak sum.
pub const SIG_MAGIC: u32 = 0x7273_0136;
/// `RS_DELTA_MAGIC`.
pub const DELTA_MAGIC: u32 = 0x7273_0236;
/// The strong-sum length duplicity asks librsync for.
pub const STRONG_LEN: u32 = 8;
