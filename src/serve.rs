//! The appliance's long-running service: the daemon ([`crate::appliance`])
//! and its HTTP interface.
//!
//! The routes, their access and the pages are the dashboard's
//! ([`crate::web`]). The service stops gracefully on SIGTERM (systemd) or
//! SIGINT: the running backup is stopped at its next file (resumed at the
//! next start), then the HTTP side (live event streams end with the daemon).

use crate::appliance::board::{Parts, SimBoard};
use crate::appliance::clock::Clock;
use crate::appliance::daemon::{self, Daemon};
use anyhow::Context;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// Where the appliance keeps its configuration (on the writable data partition).
pub const DEFAULT_CONFIG: &str = "/data/cairn/cairn.toml";
/// Where it listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
/// How long a stop waits for the running job (systemd's default stop
/// timeout is 90 s; the appliance promises 10).
pub const STOP_GRACE: Duration = Duration::from_secs(8);

/// Which board drives the LEDs and button.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BoardChoice {
    /// The Pi's GPIO when this is a Raspberry Pi, else simulated.
    Auto,
    Pi,
    Sim,
}

/// How `cairn serve` was started.
pub struct ServeOptions {
    pub listen: Option<String>,
    pub config: PathBuf,
    pub board: BoardChoice,
    /// Start a simulated clock at this time (tests).
    pub sim_clock: Option<i64>,
}

/// The board chosen, as parts for the daemon, the simulated board's handle
/// if it is one, and why the Pi's could not be used if it was asked for.
/// A Pi board that cannot be opened is never fatal: the daemon runs on the
/// simulated board (backups, API and dashboard all work) and says why.
fn open_board(choice: BoardChoice, config: &Path) -> (Parts, Option<SimBoard>, Option<String>) {
    let pi = match choice {
        BoardChoice::Sim => false,
        BoardChoice::Pi => true,
        BoardChoice::Auto => crate::appliance::board::pi_present(Path::new("/")),
    };
    let error = if pi {
        match open_pi(config) {
            Ok(parts) => return (parts, None, None),
            Err(e) => {
                let msg = format!("{e:#}; running with the simulated board");
                daemon::log(
                    3,
                    &format!("the Pi's LEDs and button cannot be used: {msg}"),
                );
                Some(msg)
            }
        }
    } else {
        None
    };
    let sim = SimBoard::new();
    (sim.parts(), Some(sim), error)
}

#[cfg(target_os = "linux")]
fn open_pi(config: &Path) -> anyhow::Result<Parts> {
    use crate::appliance::pi::{PiBoard, PinMap};
    let pins = crate::appliance::config::Config::load(config)
        .ok()
        .and_then(|c| c.gpio)
        .map_or_else(PinMap::default, |g| PinMap {
            green: g.green,
            red: g.red,
            button: g.button,
        });
    Ok(PiBoard::open(pins)?.parts())
}

#[cfg(not(target_os = "linux"))]
fn open_pi(_config: &Path) -> anyhow::Result<Parts> {
    anyhow::bail!("the Pi's GPIO needs Linux; use --board sim")
}

/// Runs the appliance until SIGTERM or SIGINT.
pub fn run(opts: ServeOptions) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        // Register the handlers before binding, so a signal can never be lost.
        let stop = ShutdownSignal::new()?;
        let listen = opts
            .listen
            .clone()
            .or_else(|| {
                crate::appliance::config::Config::load(&opts.config)
                    .ok()?
                    .listen
            })
            .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listener = TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        // HTTPS that cannot start stops nothing else: backups go on, and
        // the log says why the dashboard is on plain HTTP only.
        let https = https_from(&opts.config).await.unwrap_or_else(|e| {
            daemon::log(
                3,
                &format!("HTTPS is off: {e:#}; plain HTTP serves the dashboard until this is fixed and cairn restarts"),
            );
            None
        });
        let (board, sim, board_error) = open_board(opts.board, &opts.config);
        let clock = opts.sim_clock.map_or(Clock::System, Clock::simulated);
        let d = Daemon::start(daemon::Options {
            config: opts.config.clone(),
            clock,
            board,
            sim,
            board_error,
            runtime: Some(tokio::runtime::Handle::current()),
        });
        daemon::log(
            5,
            &format!(
                "listening on {} (configuration: {}, board: {})",
                listener.local_addr()?,
                opts.config.display(),
                d.board_kind()
            ),
        );
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
        tokio::spawn(watchdog(d.clone()));
        let stopping = d.clone();
        let shutdown = async move {
            stop.wait().await;
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
            let _ = tokio::task::spawn_blocking(move || stopping.stop(STOP_GRACE)).await;
        };
        serve_with(listener, https, d, shutdown).await?;
        daemon::log(5, "stopped");
        Ok(())
    })
}

/// Pings systemd's watchdog at half its interval while the daemon's state
/// can be locked (a deadlock stops the pings, and systemd restarts us).
async fn watchdog(d: Daemon) {
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_micros(usec / 2));
    loop {
        tick.tick().await;
        let probe = d.clone();
        if tokio::task::spawn_blocking(move || probe.health())
            .await
            .is_ok()
        {
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
        }
    }
}

/// Serves the appliance's routes on `listener` until `shutdown` completes, then
/// waits for the connections in flight to finish.
pub async fn serve(
    listener: TcpListener,
    daemon: Daemon,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_with(listener, None, daemon, shutdown).await
}

/// HTTPS's listener and configuration ([`crate::web::tls`]).
pub struct Https {
    pub listener: TcpListener,
    pub config: std::sync::Arc<tokio_rustls::rustls::ServerConfig>,
}

/// [`serve`], and with `https` the routes over TLS there, plain HTTP then
/// redirecting to it (except `/health`).
pub async fn serve_with(
    http: TcpListener,
    https: Option<Https>,
    daemon: Daemon,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use crate::web::server::{Limits, serve};
    use crate::web::{self, App};
    let app = App::new(daemon);
    let Some(https) = https else {
        serve(http, web::router(app), Limits::default(), shutdown).await;
        return Ok(());
    };
    let port = https.listener.local_addr()?.port();
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let tls = web::tls::TlsListener::new(https.listener, https.config)?;
    let secure = serve(
        tls,
        web::router_tls(app.clone()),
        Limits::default(),
        stopped(rx.clone()),
    );
    let plain = serve(
        http,
        web::redirect_to_https(app, port),
        Limits::default(),
        stopped(rx),
    );
    tokio::join!(secure, plain);
    Ok(())
}

/// The HTTPS side if the configuration asks for it: its listener, and the
/// certificate beside the configuration (made the first time).
/// Read from the file as it is, before setup has made it a whole
/// configuration, so an appliance not yet set up is claimed over HTTPS too.
async fn https_from(config_file: &Path) -> anyhow::Result<Option<Https>> {
    let text = std::fs::read_to_string(config_file).unwrap_or_default();
    let table = match text.parse::<toml::Table>() {
        Ok(t) => t,
        Err(e) if text.contains("https_listen") => {
            anyhow::bail!("{} does not parse: {e}", config_file.display())
        }
        Err(_) => return Ok(None),
    };
    let Some(addr) = table.get("https_listen").and_then(|v| v.as_str()) else {
        return Ok(None);
    };
    let dir = config_file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let config = tokio::task::spawn_blocking(move || {
        crate::web::tls::load_or_create(&dir, &crate::web::tls::names())
    })
    .await??;
    let listener = TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (https_listen)"))?;
    Ok(Some(Https { listener, config }))
}

/// SIGTERM and SIGINT, registered when created (not when first awaited).
pub struct ShutdownSignal {
    term: Signal,
    int: Signal,
}

impl ShutdownSignal {
    /// Installs the handlers; needs a running Tokio runtime.
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }

    /// Completes when either signal arrives.
    pub async fn wait(mut self) {
        let which = tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        };
        daemon::log(5, &format!("{which} received, shutting down"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::sync::oneshot;
    use tokio::task::JoinHandle;

    const LIMIT: Duration = Duration::from_secs(20);

    struct Server {
        addr: SocketAddr,
        stop: Option<oneshot::Sender<()>>,
        task: JoinHandle<anyhow::Result<()>>,
    }

    async fn start(config: PathBuf) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let sim = SimBoard::new();
        let d = Daemon::start(daemon::Options {
            config,
            clock: Clock::System,
            board: sim.parts(),
            sim: Some(sim),
            board_error: None,
            runtime: None,
        });
        let task = tokio::spawn(serve(listener, d, async {
            let _ = rx.await;
        }));
        Server {
            addr,
            stop: Some(tx),
            task,
        }
    }

    impl Server {
        async fn stop(mut self) {
            self.stop.take().unwrap().send(()).unwrap();
            tokio::time::timeout(LIMIT, self.task)
                .await
                .expect("server did not stop")
                .unwrap()
                .unwrap();
        }
    }

    /// A real HTTP/1.1 request over TCP; returns (status, headers, body).
    async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
        let exchange = async {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
            s.write_all(req.as_bytes()).await.unwrap();
            let mut raw = Vec::new();
            s.read_to_end(&mut raw).await.unwrap();
            String::from_utf8(raw).unwrap()
        };
        let text = tokio::time::timeout(LIMIT, exchange)
            .await
            .expect("no answer");
        let (head, body) = text.split_once("\r\n\r\n").expect("no header end");
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("no status");
        (status, head.to_string(), body.to_string())
    }

    #[tokio::test]
    async fn health_reports_version_and_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("cairn.toml");
        let srv = start(config.clone()).await;

        let (status, head, body) = get(srv.addr, "/health").await;
        assert_eq!(status, 200);
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{head}"
        );
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "ok");
        assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(v["configured"], false);

        // The answer follows the file, without a restart; the appliance's
        // own settings alone are not a configuration yet.
        std::fs::write(&config, "# cairn\nhttps_listen = \"127.0.0.1:1\"\n").unwrap();
        let (_, _, body) = get(srv.addr, "/health").await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["configured"], false);
        std::fs::write(&config, "# cairn\ntarget = \"file:///b\"\n").unwrap();
        let (_, _, body) = get(srv.addr, "/health").await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["configured"], true);

        // A directory is not a configuration file.
        std::fs::remove_file(&config).unwrap();
        std::fs::create_dir(&config).unwrap();
        let (_, _, body) = get(srv.addr, "/health").await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["configured"], false);

        srv.stop().await;
    }

    #[tokio::test]
    async fn unknown_paths_are_404() {
        let dir = tempfile::tempdir().unwrap();
        let srv = start(dir.path().join("cairn.toml")).await;
        let (status, _, _) = get(srv.addr, "/nope").await;
        assert_eq!(status, 404);
        srv.stop().await;
    }

    #[tokio::test]
    async fn stops_listening_after_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let srv = start(dir.path().join("cairn.toml")).await;
        let addr = srv.addr;
        assert_eq!(get(addr, "/health").await.0, 200);
        srv.stop().await;
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "still accepting connections after shutdown"
        );
    }

    #[tokio::test]
    async fn sigterm_completes_the_shutdown_signal() {
        let stop = ShutdownSignal::new().unwrap();
        nix::sys::signal::raise(nix::sys::signal::Signal::SIGTERM).unwrap();
        tokio::time::timeout(LIMIT, stop.wait())
            .await
            .expect("SIGTERM was not seen");
    }

    #[test]
    fn run_reports_a_bad_listen_address() {
        let err = run(ServeOptions {
            listen: Some("not-an-address".into()),
            config: PathBuf::from(DEFAULT_CONFIG),
            board: BoardChoice::Sim,
            sim_clock: None,
        })
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("cannot listen on not-an-address"),
            "{err:#}"
        );
    }
}
