//! Connections: a router served on a listener (plain TCP or TLS) with the
//! limits a small board needs against a slow or greedy client on the LAN:
//! at most [`Limits::connections`] at once (the rest wait in the kernel's
//! backlog) and [`Limits::per_client`] from one address (more are closed at
//! once, so one client cannot take every slot), each given
//! [`Limits::header_read`] to send a request's head (hyper's header-read
//! timeout, which `axum::serve` leaves off), and a graceful shutdown that
//! stops listening and lets the requests in flight finish.

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// How much one client may take.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once.
    pub connections: u32,
    /// Connections served at once from one address.
    pub per_client: u32,
    /// Time to send a request's head (each request of a kept-alive
    /// connection too).
    pub header_read: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connections: 128,
            per_client: 32,
            header_read: Duration::from_secs(30),
        }
    }
}

/// Serves `router` on `listener` until `stop` completes, then waits for
/// the connections in flight to finish their requests.
pub async fn serve<L>(
    mut listener: L,
    router: Router,
    limits: Limits,
    stop: impl Future<Output = ()> + Send,
) where
    L: Listener<Addr = SocketAddr>,
{
    let slots = Arc::new(Semaphore::new(limits.connections as usize));
    let clients = Clients::default();
    let (closing, closed) = watch::channel(false);
    tokio::pin!(stop);
    loop {
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => s.expect("never closed"),
            () = &mut stop => break,
        };
        let (io, peer) = tokio::select! {
            c = listener.accept() => c,
            () = &mut stop => break,
        };
        let Some(client) = Client::count(&clients, peer.ip(), limits.per_client) else {
            continue; // closed at once; the slot is free again
        };
        let (router, mut closed) = (router.clone(), closed.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                router.clone().oneshot(req.map(Body::new))
            });
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(limits.header_read);
            let conn = http.serve_connection(TokioIo::new(io), service);
            let mut conn = std::pin::pin!(conn.with_upgrades());
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = async { closed.wait_for(|c| *c).await.is_ok() } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop((slot, client));
        });
    }
    drop(listener);
    let _ = closing.send(true);
    // Every slot back: every connection has ended.
    let _ = slots.acquire_many(limits.connections).await;
}

/// Connections counted per address.
pub(super) type Clients = Arc<std::sync::Mutex<std::collections::HashMap<IpAddr, u32>>>;

/// One client's connection, counted while it lasts.
pub(super) struct Client {
    clients: Clients,
    ip: IpAddr,
}

impl Client {
    /// Counts a connection from `ip`, unless it has `cap` already.
    pub(super) fn count(clients: &Clients, ip: IpAddr, cap: u32) -> Option<Client> {
        let mut c = clients.lock().unwrap_or_else(|e| e.into_inner());
        let n = c.entry(ip).or_insert(0);
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(Client {
            clients: clients.clone(),
            ip,
        })
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let mut c = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = c.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    async fn start(limits: Limits) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new().route(
            "/",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(listener, router, limits, async {
            let _ = rx.await;
        }));
        (addr, tx)
    }

    /// Sends a request and reads the answer (to the end: `Connection: close`).
    async fn get_root(addr: SocketAddr) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn a_client_that_never_finishes_its_request_is_cut_off() {
        let limits = Limits {
            connections: 8,
            per_client: 8,
            header_read: Duration::from_millis(300),
        };
        let (addr, _stop) = start(limits).await;
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\nHo").await.unwrap();
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "the half-sent request was not cut off");
        let answer = get_root(addr).await;
        assert!(answer.ends_with("127.0.0.1"), "{answer}");
    }

    #[tokio::test]
    async fn connections_over_the_cap_wait_for_a_free_one() {
        let limits = Limits {
            connections: 2,
            per_client: 8,
            header_read: Duration::from_secs(30),
        };
        let (addr, stop) = start(limits).await;
        let idle1 = TcpStream::connect(addr).await.unwrap();
        let _idle2 = TcpStream::connect(addr).await.unwrap();
        let third = tokio::spawn(get_root(addr));
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!third.is_finished(), "a third connection was served");
        drop(idle1);
        let answer = tokio::time::timeout(Duration::from_secs(5), third)
            .await
            .expect("served once a connection closed")
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        stop.send(()).unwrap();
    }

    #[tokio::test]
    async fn one_client_cannot_take_every_connection() {
        let limits = Limits {
            connections: 8,
            per_client: 2,
            header_read: Duration::from_secs(30),
        };
        let (addr, _stop) = start(limits).await;
        let _a = TcpStream::connect(addr).await.unwrap();
        let _b = TcpStream::connect(addr).await.unwrap();
        let mut third = TcpStream::connect(addr).await.unwrap();
        let mut buf = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(5), third.read_to_end(&mut buf)).await;
        assert!(
            closed.is_ok(),
            "a third connection from one address was kept"
        );
        // Another address is served.
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let mut other = sock.connect(addr).await.unwrap();
        other
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        other.read_to_string(&mut out).await.unwrap();
        assert!(out.ends_with("127.0.0.2"), "{out}");
    }
}
