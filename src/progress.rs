//! What long operations report as they go. The command line shows it as a
//! progress bar with rate and ETA on a terminal, or as plain log lines; the
//! appliance's service can turn it into status. Engines call it and never
//! print.

use std::sync::Arc;

pub trait Progress: Send + Sync {
    /// Something worth telling a person now (a restart, a fallback to full).
    fn note(&self, _msg: &str) {}
    /// The bytes the operation expects to go through, once known.
    fn total(&self, _bytes: u64) {}
    /// Bytes gone through since the last call.
    fn advance(&self, _bytes: u64) {}
    /// A volume was stored.
    fn volume(&self, _number: u64, _stored: u64) {}
    /// Whether the engine should spend a metadata-only pass to learn the
    /// total (worth it only when someone watches a bar).
    fn wants_total(&self) -> bool {
        false
    }
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {}

pub fn silent() -> Arc<dyn Progress> {
    Arc::new(Silent)
}

/// Asks a running operation to stop at its next safe point (between two
/// files, or between two chunks of a large one). A backup stopped this way
/// leaves what a power cut would: a partial set the next backup resumes.
#[derive(Clone, Default, Debug)]
pub struct Cancel(Arc<std::sync::atomic::AtomicBool>);

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}
