//! The duplicity archive format.
pub mod index;
pub mod manifest;
pub mod names;
pub mod difftar;
pub mod meta;
pub mod collection;
pub mod codec;
pub mod status;
