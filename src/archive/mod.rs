//! The duplicity archive format.
pub mod index;
pub mod manifest;
pub mod names;
