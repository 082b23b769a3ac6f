//! The appliance's long-running service: web interface and health endpoint.
//!
//! `GET /health` answers `{"status":"ok","version":..,"configured":bool}` and
//! `GET /` says in a small HTML page whether the appliance has been configured,
//! i.e. whether its configuration file exists. The service stops gracefully on
//! SIGTERM (systemd) or SIGINT (Ctrl-C): it stops accepting, lets requests in
//! flight finish, and returns.

use anyhow::Context;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// Where the appliance keeps its configuration (on the writable data partition).
pub const DEFAULT_CONFIG: &str = "/data/cairn/cairn.toml";

/// Serves on `listen` until SIGTERM or SIGINT, reporting on the configuration
/// file at `config`.
pub fn run(listen: &str, config: &Path) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        // Register the handlers before binding, so a signal can never be lost.
        let stop = ShutdownSignal::new()?;
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        eprintln!(
            "cairn serve: listening on {} (configuration: {})",
            listener.local_addr()?,
            config.display()
        );
        serve(listener, config.to_path_buf(), stop.wait()).await?;
        eprintln!("cairn serve: stopped");
        Ok(())
    })
}

/// Serves the appliance's routes on `listener` until `shutdown` completes, then
/// waits for the connections in flight to finish.
pub async fn serve(
    listener: TcpListener,
    config: PathBuf,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(listener, router(config))
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving HTTP")
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
        eprintln!("cairn serve: {which} received, shutting down");
    }
}

#[derive(Clone)]
struct AppState {
    config: Arc<PathBuf>,
}

impl AppState {
    /// Configured means: the configuration file exists (it is read by the
    /// backup engine, not here).
    fn configured(&self) -> bool {
        self.config.is_file()
    }
}

fn router(config: PathBuf) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/health", get(health))
        .with_state(AppState {
            config: Arc::new(config),
        })
}

async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "configured": state.configured(),
    }))
}

async fn index(State(state): State<AppState>) -> Html<String> {
    let version = env!("CARGO_PKG_VERSION");
    let path = html_escape(&state.config.display().to_string());
    let body = if state.configured() {
        format!("<p><strong>Configured.</strong> Configuration: <code>{path}</code>.</p>")
    } else {
        format!(
            "<p><strong>Not configured.</strong> No configuration file at <code>{path}</code>.</p>\n\
             <p>To configure this appliance, put a <code>cairn.toml</code> (and any secret files it \
             names) onto the SD card's boot partition and restart it; they are moved to the data \
             partition on boot.</p>"
        )
    };
    Html(format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Cairn</title></head>\n\
         <body><h1>Cairn {version}</h1>\n{body}\n</body></html>\n"
    ))
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
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
        let task = tokio::spawn(serve(listener, config, async {
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

        // The answer follows the file, without a restart.
        std::fs::write(&config, "# cairn\n").unwrap();
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
    async fn index_says_whether_configured() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("a<b>.toml");
        let srv = start(config.clone()).await;

        let (status, head, body) = get(srv.addr, "/").await;
        assert_eq!(status, 200);
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/html"),
            "{head}"
        );
        assert!(body.contains("Not configured"), "{body}");
        assert!(body.contains("a&lt;b&gt;.toml"), "path not escaped: {body}");
        assert!(!body.contains("a<b>"), "{body}");

        std::fs::write(&config, "").unwrap();
        let (status, _, body) = get(srv.addr, "/").await;
        assert_eq!(status, 200);
        assert!(body.contains("Configured."), "{body}");
        assert!(!body.contains("Not configured"), "{body}");

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
        let err = run("not-an-address", Path::new(DEFAULT_CONFIG)).unwrap_err();
        assert!(
            format!("{err:#}").contains("cannot listen on not-an-address"),
            "{err:#}"
        );
    }

    #[test]
    fn escapes_html() {
        assert_eq!(
            html_escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
