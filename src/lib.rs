//! Cairn: a backup appliance whose archives are duplicity's, byte for byte.
pub mod archive;
pub mod backend;
pub mod cli;
pub mod crypto;
pub mod delta;
pub mod error;
pub mod repo;
pub mod restore;
pub mod serve;
pub mod time;

pub use error::{Error, Result};
pub mod backup;
pub mod maintenance;
pub mod profile;
pub mod progress;
pub mod source;
