//! Who may use the dashboard: the owner's password (argon2id, in a 0600
//! file beside the configuration), server-side sessions, a per-client limit
//! on wrong passwords, and the claim that proves presence on first run (a
//! press of the button, or a token the owner put on the boot partition).
//!
//! Sessions live in memory: a restart logs everyone out, and a token never
//! touches the SD card. Each is a random 256-bit token with its own CSRF
//! token, ended by logout, by 12 hours unused or by 7 days in any case.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The owner's password hash, beside the configuration.
pub const ADMIN_FILE: &str = "admin";
/// A claim token the owner put on the boot partition (`cairn-claim.txt`,
/// moved here at boot).
pub const CLAIM_TOKEN_FILE: &str = "claim-token";
/// A session unused this long ends.
pub const IDLE: Duration = Duration::from_secs(12 * 3600);
/// A session ends this long after login, used or not.
pub const ABSOLUTE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Wrong passwords (or claim tokens) a client may send before it waits.
pub const FREE_FAILURES: u32 = 5;
/// The first wait; it doubles with each further failure, up to `MAX_WAIT`.
pub const FIRST_WAIT: Duration = Duration::from_secs(30);
pub const MAX_WAIT: Duration = Duration::from_secs(15 * 60);
/// The shortest password accepted.
pub const MIN_PASSWORD: usize = 10;
/// At most this many sessions; the least recently used goes first.
const MAX_SESSIONS: usize = 64;

/// Why the owner's password could not be set.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the password is too short: use at least {MIN_PASSWORD} characters")]
    TooShort,
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error("cannot save the password in {}: {source}; check that the data partition is writable", path.display())]
    Save { path: PathBuf, source: crate::Error },
}

/// A live session, as a request sees it.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub token: String,
    pub csrf: String,
    /// The recovery kit may be shown again until then (password and button).
    pub kit_until: Option<Instant>,
}

struct Session {
    info: SessionInfo,
    created: Instant,
    seen: Instant,
}

#[derive(Default)]
struct Failures {
    count: u32,
    until: Option<Instant>,
    /// An attempt from this address is being checked now.
    in_flight: bool,
}

/// Password checks (argon2, 19 MiB each) in flight at once, all clients.
pub const MAX_CHECKS: usize = 4;

/// The one browser waiting for the button.
struct Wait {
    id: String,
    until: Instant,
}

#[derive(Default)]
struct Waiting {
    current: Option<Wait>,
    /// Button claims are off until then: two browsers asked at once.
    locked_until: Option<Instant>,
}

/// After a wait ends unanswered, only the browser that waited may wait
/// again for this long (a stranger cannot slip in while the owner walks to
/// the box).
pub const REARM_GRACE: Duration = Duration::from_secs(300);
/// Two browsers waiting at once: one is not the owner, so neither gets the
/// press, and button claims stay off this long.
pub const CONTENTION_LOCK: Duration = Duration::from_secs(600);

/// Why a browser may not wait for the button now.
#[derive(Debug, PartialEq, Eq)]
pub enum WaitRefused {
    /// Another browser was waiting: both are refused, and the button is off
    /// for [`CONTENTION_LOCK`].
    Contended,
    /// The button is off after a contention for this long.
    Locked(Duration),
    /// Another browser's wait just ended; it alone may wait again for this long.
    Busy(Duration),
}

impl std::fmt::Display for WaitRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WaitRefused::Contended => write!(
                f,
                "another browser on the network asked to wait for the button at the same time,                  so neither may: the button is off for {} minutes. Use the code from                  cairn-claim.txt on the boot partition, or try again later",
                CONTENTION_LOCK.as_secs() / 60
            ),
            WaitRefused::Locked(d) => write!(
                f,
                "the button is off for {} s after two browsers asked at once; use the code from                  cairn-claim.txt on the boot partition, or try again then",
                d.as_secs() + 1
            ),
            WaitRefused::Busy(d) => write!(
                f,
                "another browser was just waiting for the button; try again in {} s",
                d.as_secs() + 1
            ),
        }
    }
}

/// A password (or claim code) check in progress for one client: at most
/// one per address and [`MAX_CHECKS`] in all, counted before the check
/// runs, so parallel guesses are not a way around the limit.
pub struct Attempt {
    auth: std::sync::Arc<Auth>,
    ip: IpAddr,
}

impl Attempt {
    /// The check failed: counts against the address.
    pub fn failed(self) {
        self.auth.failed(self.ip);
    }

    /// The check passed: the address starts again.
    pub fn succeeded(self) {
        self.auth.succeeded(self.ip);
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        let mut f = self.auth.failures.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(x) = f.get_mut(&self.ip) {
            x.in_flight = false;
        }
        self.auth
            .checks
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Accounts, sessions, the login limit.
pub struct Auth {
    dir: PathBuf,
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<IpAddr, Failures>>,
    /// One argon2 computation at a time (19 MiB each, on a 512 MB board).
    hashing: Mutex<()>,
    /// The browser waiting for a button press.
    waiting: Mutex<Waiting>,
    /// Password checks in flight, all clients.
    checks: std::sync::atomic::AtomicUsize,
}

/// A random token: 256 bits, hex.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b).expect("the kernel's random numbers");
    hex::encode(b)
}

/// Equal, in time that does not depend on where they differ.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Auth {
    /// The accounts kept in `dir` (the configuration's directory).
    pub fn new(dir: &Path) -> Auth {
        Auth {
            dir: dir.to_path_buf(),
            sessions: Mutex::default(),
            failures: Mutex::default(),
            hashing: Mutex::new(()),
            waiting: Mutex::default(),
            checks: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Lets one browser wait for the button for `ttl`; returns its id (the
    /// same id again when `previous` is this browser's last wait). A second
    /// browser asking while one waits means one of them is not the owner:
    /// both are refused and the button is off for a while, so a stranger on
    /// the LAN can never take the owner's press.
    pub fn start_wait(&self, ttl: Duration, previous: Option<&str>) -> Result<String, WaitRefused> {
        let mut w = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if let Some(l) = w.locked_until.filter(|l| *l > now) {
            return Err(WaitRefused::Locked(l - now));
        }
        let mine = match (&w.current, previous) {
            (Some(cur), Some(p)) => same(cur.id.as_bytes(), p.as_bytes()),
            _ => false,
        };
        if !mine && let Some(until) = w.current.as_ref().map(|c| c.until) {
            if until > now {
                w.current = None;
                w.locked_until = Some(now + CONTENTION_LOCK);
                return Err(WaitRefused::Contended);
            }
            if until + REARM_GRACE > now {
                return Err(WaitRefused::Busy(until + REARM_GRACE - now));
            }
        }
        let id = match (&w.current, mine) {
            (Some(cur), true) => cur.id.clone(),
            _ => random_token(),
        };
        w.current = Some(Wait {
            id: id.clone(),
            until: now + ttl,
        });
        Ok(id)
    }

    /// Whether `id` is the browser that waits (or waited) for the button.
    pub fn is_waiting(&self, id: &str) -> bool {
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .current
            .as_ref()
            .is_some_and(|w| same(w.id.as_bytes(), id.as_bytes()))
    }

    /// The wait is over (used, or given up).
    pub fn end_wait(&self) {
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .current = None;
    }

    /// Begins a password or claim-code check for `ip`, or says how long to
    /// wait first (a wait after failures, or another check from it or from
    /// too many clients still running).
    pub fn attempt(self: &std::sync::Arc<Self>, ip: IpAddr) -> Result<Attempt, Duration> {
        use std::sync::atomic::Ordering;
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let x = f.entry(ip).or_default();
        if let Some(left) = x
            .until
            .and_then(|u| u.checked_duration_since(Instant::now()))
        {
            return Err(left);
        }
        if x.in_flight || self.checks.load(Ordering::SeqCst) >= MAX_CHECKS {
            return Err(Duration::from_secs(1));
        }
        x.in_flight = true;
        self.checks.fetch_add(1, Ordering::SeqCst);
        Ok(Attempt {
            auth: self.clone(),
            ip,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the owner has claimed the appliance (set a password).
    pub fn claimed(&self) -> bool {
        self.dir.join(ADMIN_FILE).is_file()
    }

    /// Sets the owner's password (claim, or a change).
    pub fn set_password(&self, password: &str) -> Result<(), AuthError> {
        if password.chars().count() < MIN_PASSWORD {
            return Err(AuthError::TooShort);
        }
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        let hash = {
            let _one = self.hashing.lock().unwrap_or_else(|e| e.into_inner());
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map_err(|e| AuthError::Hash(e.to_string()))?
                .to_string()
        };
        let path = self.dir.join(ADMIN_FILE);
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| crate::Error::local("create", &self.dir, e))
            .and_then(|()| crate::repo::write_atomic(&path, format!("{hash}\n").as_bytes()))
            .map_err(|source| AuthError::Save { path, source })
    }

    /// Whether `password` is the owner's.
    pub fn check_password(&self, password: &str) -> bool {
        let Ok(text) = std::fs::read_to_string(self.dir.join(ADMIN_FILE)) else {
            return false;
        };
        let Ok(hash) = PasswordHash::new(text.trim()) else {
            return false;
        };
        let _one = self.hashing.lock().unwrap_or_else(|e| e.into_inner());
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    }

    /// Whether a claim token is on file (the owner put one on the boot
    /// partition).
    pub fn has_claim_token(&self) -> bool {
        self.claim_token().is_some()
    }

    fn claim_token(&self) -> Option<String> {
        let t = std::fs::read_to_string(self.dir.join(CLAIM_TOKEN_FILE)).ok()?;
        let t = t.trim().to_string();
        (!t.is_empty()).then_some(t)
    }

    /// Whether `token` is the claim token on file.
    pub fn claim_token_matches(&self, token: &str) -> bool {
        self.claim_token()
            .is_some_and(|t| same(t.as_bytes(), token.trim().as_bytes()))
    }

    /// The claim token is used once: removed, and the removal made durable
    /// (a power cut right after the claim must not bring it back).
    pub fn remove_claim_token(&self) {
        if std::fs::remove_file(self.dir.join(CLAIM_TOKEN_FILE)).is_ok()
            && let Ok(d) = std::fs::File::open(&self.dir)
        {
            let _ = d.sync_all();
        }
    }

    /// Starts a session.
    pub fn new_session(&self) -> SessionInfo {
        let info = SessionInfo {
            token: random_token(),
            csrf: random_token(),
            kit_until: None,
        };
        let now = Instant::now();
        let mut s = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        s.retain(|_, x| live(x, now));
        if s.len() >= MAX_SESSIONS
            && let Some(oldest) = s.iter().min_by_key(|(_, x)| x.seen).map(|(k, _)| k.clone())
        {
            s.remove(&oldest);
        }
        s.insert(
            info.token.clone(),
            Session {
                info: info.clone(),
                created: now,
                seen: now,
            },
        );
        info
    }

    /// The session of `token`, if it is live (and marks it used).
    pub fn session(&self, token: &str) -> Option<SessionInfo> {
        let now = Instant::now();
        let mut s = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let x = s.get_mut(token)?;
        if !live(x, now) {
            s.remove(token);
            return None;
        }
        x.seen = now;
        Some(x.info.clone())
    }

    /// Ends one session (logout).
    pub fn end_session(&self, token: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token);
    }

    /// Ends every session but `keep` (after a password change).
    pub fn end_other_sessions(&self, keep: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, _| k == keep);
    }

    /// Lets this session see the recovery kit for `d`.
    pub fn unlock_kit(&self, token: &str, d: Duration) {
        if let Some(x) = self
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(token)
        {
            x.info.kit_until = Some(Instant::now() + d);
        }
    }

    /// How long `ip` must wait before it may try a password again.
    #[cfg(test)]
    pub fn wait_for(&self, ip: IpAddr) -> Option<Duration> {
        let f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let until = f.get(&ip)?.until?;
        until.checked_duration_since(Instant::now())
    }

    /// A wrong password or token from `ip`.
    fn failed(&self, ip: IpAddr) {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if f.len() > 4096 {
            let now = Instant::now();
            f.retain(|_, x| x.until.is_some_and(|u| u > now));
        }
        let x = f.entry(ip).or_default();
        x.count += 1;
        if x.count >= FREE_FAILURES {
            let doublings = (x.count - FREE_FAILURES).min(10);
            let wait = (FIRST_WAIT * 2u32.pow(doublings)).min(MAX_WAIT);
            x.until = Some(Instant::now() + wait);
        }
    }

    /// A right password from `ip`: its count starts again.
    fn succeeded(&self, ip: IpAddr) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&ip);
    }
}

fn live(s: &Session, now: Instant) -> bool {
    now.duration_since(s.seen) < IDLE && now.duration_since(s.created) < ABSOLUTE
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_password_is_kept_hashed_in_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = Auth::new(dir.path());
        assert!(!a.claimed());
        assert!(matches!(a.set_password("short"), Err(AuthError::TooShort)));
        a.set_password("correct horse battery").unwrap();
        assert!(a.claimed());
        let path = dir.path().join(ADMIN_FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("$argon2id$"), "{text}");
        assert!(!text.contains("horse"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(a.check_password("correct horse battery"));
        assert!(!a.check_password("correct horse batter"));
    }

    #[test]
    fn sessions_end_on_logout_and_password_change() {
        let a = Auth::new(Path::new("/nonexistent"));
        let s1 = a.new_session();
        let s2 = a.new_session();
        assert_eq!(s1.token.len(), 64);
        assert_ne!(s1.token, s2.token);
        assert_ne!(s1.token, s1.csrf);
        assert_eq!(a.session(&s1.token).unwrap().csrf, s1.csrf);
        a.end_session(&s1.token);
        assert!(a.session(&s1.token).is_none());
        let s3 = a.new_session();
        a.end_other_sessions(&s3.token);
        assert!(a.session(&s2.token).is_none());
        assert!(a.session(&s3.token).is_some());
        assert!(a.session("").is_none());
    }

    #[test]
    fn wrong_passwords_make_a_client_wait_longer_each_time() {
        let a = Auth::new(Path::new("/nonexistent"));
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        for _ in 0..FREE_FAILURES - 1 {
            a.failed(ip);
            assert!(a.wait_for(ip).is_none());
        }
        a.failed(ip);
        let first = a.wait_for(ip).unwrap();
        assert!(first > FIRST_WAIT - Duration::from_secs(1), "{first:?}");
        a.failed(ip);
        assert!(a.wait_for(ip).unwrap() > first);
        assert!(a.wait_for(other).is_none());
        a.succeeded(ip);
        assert!(a.wait_for(ip).is_none());
    }

    #[test]
    fn parallel_guesses_wait_their_turn() {
        let a = std::sync::Arc::new(Auth::new(Path::new("/nonexistent")));
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let first = a.attempt(ip).unwrap();
        assert!(
            a.attempt(ip).is_err(),
            "a second check from the same address at once"
        );
        let others: Vec<_> = (1..MAX_CHECKS as u8)
            .map(|i| a.attempt(IpAddr::from([192, 0, 2, 100 + i])).unwrap())
            .collect();
        assert!(
            a.attempt("192.0.2.200".parse().unwrap()).is_err(),
            "too many at once"
        );
        drop(others);
        first.failed();
        for _ in 1..FREE_FAILURES {
            a.attempt(ip).unwrap().failed();
        }
        let wait = a.attempt(ip).err().expect("a wait after five failures");
        assert!(wait > Duration::from_secs(20), "{wait:?}");
    }

    #[test]
    fn a_second_browser_waiting_for_the_button_turns_it_off() {
        let a = Auth::new(Path::new("/nonexistent"));
        let ttl = Duration::from_secs(60);
        let owner = a.start_wait(ttl, None).unwrap();
        // The same browser may wait again, keeping its id.
        assert_eq!(a.start_wait(ttl, Some(&owner)).unwrap(), owner);
        assert_eq!(a.start_wait(ttl, None), Err(WaitRefused::Contended));
        assert!(!a.is_waiting(&owner), "neither keeps the wait");
        assert!(matches!(
            a.start_wait(ttl, Some(&owner)),
            Err(WaitRefused::Locked(_))
        ));
        // A wait that ran out: only its browser may wait again, for a while.
        let b = Auth::new(Path::new("/nonexistent"));
        let first = b.start_wait(Duration::ZERO, None).unwrap();
        assert!(matches!(b.start_wait(ttl, None), Err(WaitRefused::Busy(_))));
        assert_eq!(b.start_wait(ttl, Some(&first)).unwrap(), first);
    }

    #[test]
    fn the_claim_token_is_compared_whole_and_used_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = Auth::new(dir.path());
        assert!(!a.claim_token_matches(""));
        std::fs::write(dir.path().join(CLAIM_TOKEN_FILE), "abc123\n").unwrap();
        assert!(a.has_claim_token());
        assert!(a.claim_token_matches("abc123"));
        assert!(!a.claim_token_matches("abc12"));
        assert!(!a.claim_token_matches("abc1234"));
        a.remove_claim_token();
        assert!(!a.claim_token_matches("abc123"));
    }
}
