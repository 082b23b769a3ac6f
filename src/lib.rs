//! Cairn: a backup appliance whose archives are duplicity's, byte for byte.
pub mod archive;
pub mod crypto;
pub mod delta;
pub mod time;
pub mod cli;
pub mod serve;
pub mod backend;
pub mod error;
pub mod repo;
pub mod restore;

pub use error::{Error, Result};
