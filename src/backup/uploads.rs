//! Sending finished volumes while the next one is encoded.
//!
//! A sealed volume (encoded in full, staged by the target's upload) is
//! committed on a thread of its own, up to `limit` at once; the caller goes
//! on encoding the next volume meanwhile. When `limit` volumes are in
//! flight, [`Uploads::send`] waits for one: that is the backpressure, and it
//! bounds the staged files on disk to `limit` + the one being encoded.
//! `limit` 0 commits in `send` itself, before the next volume starts.
//!
//! Volumes are confirmed strictly in number order ([`Uploads::confirmed`]),
//! whatever order their uploads end in, so the manifest and the resume
//! records only ever list a gapless run of volumes that are stored. A failed
//! upload is reported by the next call that looks (`send`, `poll`,
//! `wait_all`), once the other uploads under way have ended; every volume
//! before it that is stored can still be confirmed, and the set is resumable
//! after the last of them.

use crate::archive::codec::{Sealed, Stored};
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

type Outcome = (
    u64,
    std::result::Result<Stored, crate::archive::codec::EncodeError>,
);

/// The most uploads at once: each stages a whole volume in `--tempdir`.
pub const MAX_CONCURRENCY: usize = 8;

/// Volumes being committed, and those committed but not yet confirmed.
pub struct Uploads<T> {
    limit: usize,
    /// Sent and not yet confirmed, by number: the volume's name and what the
    /// caller wants back with it.
    waiting: BTreeMap<u64, (String, T)>,
    /// Committed, by number.
    committed: BTreeMap<u64, Stored>,
    threads: BTreeMap<u64, JoinHandle<()>>,
    tx: Sender<Outcome>,
    rx: Receiver<Outcome>,
}

impl<T> Uploads<T> {
    /// At most `limit` uploads at once; 0 commits each volume before the
    /// next one starts.
    pub fn new(limit: usize) -> Self {
        let (tx, rx) = channel();
        Uploads {
            limit,
            waiting: BTreeMap::new(),
            committed: BTreeMap::new(),
            threads: BTreeMap::new(),
            tx,
            rx,
        }
    }

    /// Commits volume `number` (named `name`), in the background unless the
    /// limit is 0; waits first while `limit` uploads are in flight.
    pub fn send(&mut self, number: u64, name: String, sealed: Sealed, then: T) -> Result<()> {
        if self.limit == 0 {
            let outcome = sealed.commit();
            let name = &self.waiting.entry(number).or_insert((name, then)).0;
            let stored = outcome.map_err(|e| super::volumes::encode_err(name, e))?;
            self.committed.insert(number, stored);
            return Ok(());
        }
        while self.threads.len() >= self.limit {
            self.settle(true)?;
        }
        let tx = self.tx.clone();
        let thread = std::thread::Builder::new()
            .name(format!("cairn-upload-{number}"))
            .spawn(move || {
                // A panic must still answer, or `settle` would wait forever.
                let outcome =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sealed.commit()))
                        .unwrap_or_else(|_| {
                            Err(crate::archive::codec::EncodeError::Io(
                                std::io::Error::other("the upload thread panicked"),
                            ))
                        });
                let _ = tx.send((number, outcome));
            })
            .map_err(|e| Error::local("start the upload of", name.clone(), e))?;
        self.waiting.insert(number, (name, then));
        self.threads.insert(number, thread);
        Ok(())
    }

    /// Takes in the uploads that ended, without waiting; the first failure
    /// is returned.
    pub fn poll(&mut self) -> Result<()> {
        while !self.threads.is_empty() && self.settle(false)? {}
        Ok(())
    }

    /// Waits until every upload sent has ended.
    pub fn wait_all(&mut self) -> Result<()> {
        while !self.threads.is_empty() {
            self.settle(true)?;
        }
        Ok(())
    }

    /// The volumes committed with every lower-numbered one, in order, each
    /// once: what may go into the manifest now.
    pub fn confirmed(&mut self) -> Vec<(u64, T, Stored)> {
        let mut out = Vec::new();
        while let Some(entry) = self.waiting.first_entry() {
            let Some(stored) = self.committed.remove(entry.key()) else {
                break;
            };
            let (number, (_, then)) = entry.remove_entry();
            out.push((number, then, stored));
        }
        out
    }

    /// Takes in one ended upload (waiting for one if `block`); `false` if
    /// none had ended.
    fn settle(&mut self, block: bool) -> Result<bool> {
        let (number, outcome) = if block {
            self.rx.recv().expect("an upload thread is running")
        } else {
            match self.rx.try_recv() {
                Ok(o) => o,
                Err(_) => return Ok(false),
            }
        };
        if let Some(t) = self.threads.remove(&number) {
            let _ = t.join();
        }
        match outcome {
            Ok(stored) => {
                self.committed.insert(number, stored);
                Ok(true)
            }
            // The volume stays waiting, never committed: nothing after it
            // is confirmed.
            Err(e) => {
                let name = self.waiting.get(&number).map(|w| w.0.clone());
                self.drain();
                Err(super::volumes::encode_err(&name.unwrap_or_default(), e))
            }
        }
    }

    /// After a failure: lets the other uploads end, keeping those that
    /// stored their volume, so every volume before the failed one can still
    /// be confirmed.
    fn drain(&mut self) {
        while !self.threads.is_empty() {
            let (number, outcome) = self.rx.recv().expect("an upload thread is running");
            if let Some(t) = self.threads.remove(&number) {
                let _ = t.join();
            }
            if let Ok(stored) = outcome {
                self.committed.insert(number, stored);
            }
        }
    }
}

impl<T> Drop for Uploads<T> {
    /// A backup that stops (an error, a cancel) lets the uploads under way
    /// end before it returns, so nothing keeps writing to the target after
    /// the run has reported its outcome.
    fn drop(&mut self) {
        for (_, t) in std::mem::take(&mut self.threads) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::codec::{Destination, Encoder, Format, Packing};
    use crate::archive::names::Encoding;
    use std::io::{self, Write};
    use std::sync::mpsc::{SyncSender, sync_channel};
    use std::sync::{Arc, Mutex};

    /// A destination whose commit waits for a go (or a failure) from the
    /// test, and records the commit order.
    struct Gated {
        go: Receiver<bool>,
        name: u64,
        log: Arc<Mutex<Vec<u64>>>,
    }

    impl Write for Gated {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Destination for Gated {
        fn commit(self: Box<Self>) -> io::Result<()> {
            let ok = self.go.recv().unwrap_or(false);
            self.log.lock().unwrap().push(self.name);
            if ok {
                Ok(())
            } else {
                Err(io::Error::other("the link went down"))
            }
        }
    }

    fn sealed(n: u64, log: &Arc<Mutex<Vec<u64>>>) -> (Sealed, SyncSender<bool>) {
        let (tx, go) = sync_channel(1);
        let dest = Gated {
            go,
            name: n,
            log: Arc::clone(log),
        };
        let format = Format {
            encoding: Encoding::Plain,
            keys: None,
            level: 0,
            packing: Packing::None,
        };
        let mut e = Encoder::new(Box::new(dest), format).unwrap();
        e.write_all(format!("volume {n}").as_bytes()).unwrap();
        (e.seal().unwrap(), tx)
    }

    fn wait_for(log: &Arc<Mutex<Vec<u64>>>, len: usize) {
        for _ in 0..500 {
            if log.lock().unwrap().len() >= len {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("no upload ended");
    }

    #[test]
    fn send_returns_while_the_upload_runs_and_confirms_in_order() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut u = Uploads::new(2);
        let (s1, go1) = sealed(1, &log);
        let (s2, go2) = sealed(2, &log);
        // Neither commit can end yet, and both sends return.
        u.send(1, "v1".into(), s1, "one").unwrap();
        u.send(2, "v2".into(), s2, "two").unwrap();
        go2.send(true).unwrap();
        wait_for(&log, 1);
        u.poll().unwrap();
        assert!(u.confirmed().is_empty(), "volume 2 waits for volume 1");
        go1.send(true).unwrap();
        u.wait_all().unwrap();
        let got: Vec<_> = u.confirmed().into_iter().map(|c| (c.0, c.1)).collect();
        assert_eq!(got, [(1, "one"), (2, "two")]);
        assert_eq!(*log.lock().unwrap(), [2, 1]);
    }

    #[test]
    fn a_full_queue_waits_for_an_upload_to_end() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut u = Uploads::new(1);
        let (s1, go1) = sealed(1, &log);
        let (s2, go2) = sealed(2, &log);
        u.send(1, "v1".into(), s1, ()).unwrap();
        let opener = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            go1.send(true).unwrap();
        });
        // Blocks until volume 1 is stored: one upload at a time.
        u.send(2, "v2".into(), s2, ()).unwrap();
        assert_eq!(*log.lock().unwrap(), [1]);
        opener.join().unwrap();
        go2.send(true).unwrap();
        u.wait_all().unwrap();
        assert_eq!(u.confirmed().len(), 2);
    }

    #[test]
    fn a_failed_upload_surfaces_and_later_volumes_are_not_confirmed() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut u = Uploads::new(2);
        let (s1, go1) = sealed(1, &log);
        let (s2, go2) = sealed(2, &log);
        let (s3, go3) = sealed(3, &log);
        u.send(1, "v1".into(), s1, ()).unwrap();
        go1.send(true).unwrap();
        u.send(2, "duplicity-full.vol2.difftar.gpg".into(), s2, ())
            .unwrap();
        go2.send(false).unwrap();
        go3.send(true).unwrap();
        // The queue is full (2 and 3 would be two in flight after 1 ends):
        // sending 3 meets 2's failure at the latest.
        let mut failed = u.send(3, "v3".into(), s3, ()).err();
        if failed.is_none() {
            failed = u.wait_all().err();
        }
        let e = failed.expect("the failure is reported").to_string();
        assert!(
            e.contains("vol2") && e.contains("the link went down"),
            "{e}"
        );
        let confirmed: Vec<u64> = u.confirmed().into_iter().map(|c| c.0).collect();
        assert_eq!(confirmed, [1], "nothing after the failed volume");
    }

    struct Panics;

    impl Write for Panics {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Destination for Panics {
        fn commit(self: Box<Self>) -> io::Result<()> {
            panic!("a bug in a backend")
        }
    }

    /// A panicking upload is a failed one, not a backup that waits forever.
    #[test]
    fn a_panicking_upload_fails_instead_of_hanging() {
        let format = Format {
            encoding: Encoding::Plain,
            keys: None,
            level: 0,
            packing: Packing::None,
        };
        let sealed = Encoder::new(Box::new(Panics), format)
            .unwrap()
            .seal()
            .unwrap();
        let mut u = Uploads::new(1);
        u.send(1, "v1".into(), sealed, ()).unwrap();
        let e = u.wait_all().expect_err("the panic is reported").to_string();
        assert!(e.contains("panicked"), "{e}");
        assert!(u.confirmed().is_empty());
    }

    #[test]
    fn limit_zero_commits_before_send_returns() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut u = Uploads::new(0);
        let (s1, go1) = sealed(1, &log);
        go1.send(true).unwrap();
        u.send(1, "v1".into(), s1, ()).unwrap();
        assert_eq!(*log.lock().unwrap(), [1]);
        assert_eq!(u.confirmed().len(), 1);
        // A failure keeps everything after it unconfirmed.
        let (s2, go2) = sealed(2, &log);
        let (s3, go3) = sealed(3, &log);
        go2.send(false).unwrap();
        go3.send(true).unwrap();
        assert!(u.send(2, "v2".into(), s2, ()).is_err());
        u.send(3, "v3".into(), s3, ()).unwrap();
        assert!(u.confirmed().is_empty(), "volume 3 is not confirmed past 2");
    }
}
