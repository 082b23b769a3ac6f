//! Which paths a backup includes (duplicity's `selection.py`).

use crate::archive::meta::Meta;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Include,
    Exclude,
    /// Excluded, but something below it may be included: scan it.
    ScanOnly,
}

/// The selection rules; the default includes everything.
#[derive(Debug, Default, Clone)]
pub struct Selection {}

impl Selection {
    pub fn decide(&self, _path: &Path, _meta: &Meta, _root: &Path) -> Decision {
        Decision::Include
    }
}
