//! The duplicity archive format.
pub mod codec;
pub mod collection;
mod deflate;
pub mod difftar;
pub mod index;
pub mod manifest;
pub mod meta;
pub mod names;
pub mod sigtar;
pub mod status;
pub mod tarfmt;
pub mod zipfmt;
