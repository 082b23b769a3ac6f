//! Optional HTTPS (`https_listen` in cairn.toml): the dashboard over TLS
//! (rustls), with a certificate the appliance makes for itself the first time
//! (rcgen: ECDSA P-256, self-signed, for its names and loopback), or the PEM
//! pair the owner put in its place. Plain HTTP then only redirects to it.
//!
//! The pair is written key first, certificate last, each through a
//! temporary file and a rename: a certificate on disk means both are
//! complete; a key without one is the remainder of a power cut and is made
//! again.

use super::server::{Client, Clients};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;

/// The certificate chain and its key, under the configuration directory.
pub const CERT_FILE: &str = "tls/cert.pem";
pub const KEY_FILE: &str = "tls/key.pem";
/// A client gets this long to finish the handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; connections beyond are dropped.
const MAX_HANDSHAKES: usize = 64;
/// TLS handshakes under way from one address (so one client cannot hold
/// every slot above).
const HANDSHAKES_PER_ADDRESS: u32 = 8;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot {op} {}: {source}; check that the data partition is writable", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error(
        "{}: {why}; put a PEM certificate chain in cert.pem and its PEM private key in key.pem, \
         or delete cert.pem to have a new self-signed pair made",
        path.display()
    )]
    Bad { path: PathBuf, why: String },
    #[error("cannot make a certificate: {0}")]
    Generate(String),
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> TlsError {
    let path = path.to_path_buf();
    move |source| TlsError::Io { op, path, source }
}

/// The names the made certificate covers: the host's name, with `.local`,
/// `cairn.local`, and loopback.
pub fn names() -> Vec<String> {
    let mut v = Vec::new();
    if let Ok(h) = nix::unistd::gethostname() {
        let h = h.to_string_lossy().into_owned();
        if !h.is_empty() && h != "localhost" {
            v.push(format!("{h}.local"));
            v.push(h);
        }
    }
    for n in ["cairn.local", "localhost", "127.0.0.1", "::1"] {
        if !v.iter().any(|x| x == n) {
            v.push(n.to_string());
        }
    }
    v
}

/// The server configuration from the pair in `dir`, made first if there is
/// no certificate yet.
pub fn load_or_create(dir: &Path, names: &[String]) -> Result<Arc<ServerConfig>, TlsError> {
    let cert = dir.join(CERT_FILE);
    let key = dir.join(KEY_FILE);
    if cert.symlink_metadata().is_err() {
        create(&cert, &key, names)?;
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| bad(&cert, e))?;
    if chain.is_empty() {
        return Err(bad(&cert, "no certificate in it"));
    }
    let private = PrivateKeyDer::from_pem_file(&key).map_err(|e| bad(&key, e))?;
    let config = ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad(&cert, e))?
    .with_no_client_auth()
    .with_single_cert(chain, private)
    .map_err(|e| bad(&key, e))?;
    Ok(Arc::new(config))
}

fn bad(path: &Path, why: impl std::fmt::Display) -> TlsError {
    TlsError::Bad {
        path: path.to_path_buf(),
        why: why.to_string(),
    }
}

/// A new self-signed pair: the key (0600), then the certificate.
fn create(cert: &Path, key: &Path, names: &[String]) -> Result<(), TlsError> {
    let made = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    let dir = cert.parent().expect("a folder");
    std::fs::create_dir_all(dir).map_err(io_err("create", dir))?;
    write_atomically(key, made.signing_key.serialize_pem().as_bytes(), 0o600)?;
    write_atomically(cert, made.cert.pem().as_bytes(), 0o644)
}

fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_err("create", &tmp))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io_err("write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err("rename", &tmp))?;
    let dir = path.parent().expect("a folder");
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync", dir))
}

/// Accepts TCP connections and hands on those whose TLS handshake finished;
/// each handshake runs on its own task, so a slow client holds up no other.
pub struct TlsListener {
    ready: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `tcp` (needs a Tokio runtime).
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = tokio::sync::mpsc::channel(16);
        let acceptor = TlsAcceptor::from(config);
        let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
        let clients = Clients::default();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = tcp.accept() => a,
                    () = tx.closed() => break, // the server stopped
                };
                let Ok((sock, peer)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                // One address may not take every handshake slot.
                let Some(client) = Client::count(&clients, peer.ip(), HANDSHAKES_PER_ADDRESS)
                else {
                    continue;
                };
                let Ok(permit) = handshakes.clone().try_acquire_owned() else {
                    continue; // too many half-open connections: this one is dropped
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    if let Ok(Ok(s)) = tokio::time::timeout(HANDSHAKE, acceptor.accept(sock)).await
                    {
                        // Held until the server takes it: connections it
                        // cannot take yet count against the cap too.
                        let _ = tx.send((s, peer)).await;
                    }
                    drop((permit, client));
                });
            }
        });
        Ok(TlsListener { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_is_made_once_and_a_key_without_its_certificate_is_made_again() {
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["localhost".to_string()];
        load_or_create(dir.path(), &names).unwrap();
        let key = dir.path().join(KEY_FILE);
        let cert = dir.path().join(CERT_FILE);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let first = std::fs::read(&cert).unwrap();
        load_or_create(dir.path(), &names).unwrap();
        assert_eq!(std::fs::read(&cert).unwrap(), first, "kept across starts");
        // A power cut between the key and the certificate.
        std::fs::remove_file(&cert).unwrap();
        load_or_create(dir.path(), &names).unwrap();
        assert_ne!(std::fs::read(&cert).unwrap(), first);
        // The owner's own pair, broken: said, with what to do.
        std::fs::write(&cert, "not a certificate").unwrap();
        let e = load_or_create(dir.path(), &names).unwrap_err().to_string();
        assert!(e.contains("cert.pem") && e.contains("delete"), "{e}");
    }

    #[tokio::test]
    async fn one_address_cannot_hold_every_handshake() {
        use tokio::io::AsyncReadExt;
        let dir = tempfile::tempdir().unwrap();
        let config = load_or_create(dir.path(), &["localhost".to_string()]).unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let _listener = TlsListener::new(tcp, config).unwrap();
        let mut silent = Vec::new();
        for _ in 0..HANDSHAKES_PER_ADDRESS {
            silent.push(TcpStream::connect(addr).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut over = TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(3), over.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0) | Err(_))),
            "one more from the same address was kept"
        );
        // Another address still gets a handshake slot (the server waits for it).
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let mut other = sock.connect(addr).await.unwrap();
        let waited = tokio::time::timeout(Duration::from_millis(500), other.read(&mut buf)).await;
        assert!(waited.is_err(), "another address was turned away");
    }
}
