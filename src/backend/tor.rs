//! Reaching targets over Tor. Transfers run in a short-lived child process,
//! `cairn tor-connect HOST PORT`, that connects and relays stdin/stdout: it
//! is rsync's `RSYNC_CONNECT_PROG` (daemon URLs), ssh's `ProxyCommand`
//! (rsync over ssh), and the stream under the SFTP client. Two ways:
//!
//! - `--socks ADDR`: the system tor's SocksPort, through Cairn's own SOCKS5
//!   client, which sends the host name unresolved (no `nc`, no DNS lookup of
//!   the onion name);
//! - otherwise the embedded arti client (cargo feature `tor`), with its state
//!   and cache in `--arti-dir`. arti may `exit(1)` when a consensus says its
//!   version is obsolete; in a child process per connection that ends one
//!   transfer (which is retried and reported), never a long-running daemon.

use super::{BackendError, BackendOptions, TorMode};
use std::path::PathBuf;
use std::time::Duration;

/// The system tor's default SocksPort.
pub const DEFAULT_SOCKS: &str = "127.0.0.1:9050";

/// `cairn tor-connect`: connect to HOST:PORT over Tor and relay stdin/stdout.
#[derive(clap::Args, Debug, Clone)]
pub struct ConnectArgs {
    /// Use the SOCKS5 port of a running tor at this address (e.g.
    /// 127.0.0.1:9050) instead of the embedded arti client.
    #[arg(long, value_name = "ADDR")]
    pub socks: Option<String>,
    /// arti's directory: its state/ and cache/ live here. Default:
    /// $XDG_STATE_HOME/cairn/arti or ~/.local/state/cairn/arti.
    #[arg(long, value_name = "DIR")]
    pub arti_dir: Option<PathBuf>,
    /// An arti TOML configuration (e.g. for a private Tor network).
    #[arg(long, value_name = "FILE")]
    pub arti_config: Option<PathBuf>,
    /// Seconds allowed for bootstrapping and connecting.
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    pub timeout: u64,
    /// The host to reach (a .onion address, or any host name).
    pub host: String,
    /// The port to reach.
    pub port: u16,
}

/// arti's default directory.
pub fn default_arti_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("cairn/arti");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".local/state/cairn/arti")
}

/// Runs `cairn tor-connect`; returns the exit code. Failures are printed as
/// one line starting `cairn tor-connect:`, which the backends look for.
pub fn connect_main(args: ConnectArgs) -> i32 {
    let dest = format!("{}:{}", args.host, args.port);
    let timeout = Duration::from_secs(args.timeout.max(1));
    let result = match &args.socks {
        Some(proxy) => super::socks::connect(proxy, &args.host, args.port, timeout)
            .map_err(|e| e.to_string())
            .and_then(|s| super::socks::relay_stdio(s).map_err(|e| format!("relay: {e}"))),
        None => arti_connect(&args, timeout),
    };
    match result {
        Ok(_) => 0,
        Err(e) => {
            let via = match &args.socks {
                Some(p) => format!("tor's SOCKS port {p}"),
                None => "embedded arti".to_string(),
            };
            eprintln!("cairn tor-connect: cannot reach {dest} through Tor ({via}): {e}");
            1
        }
    }
}

#[cfg(not(feature = "tor"))]
fn arti_connect(_args: &ConnectArgs, _timeout: Duration) -> Result<u64, String> {
    Err(
        "this Cairn was built without the embedded Tor client (cargo feature `tor`); \
         use --socks with a running tor"
            .into(),
    )
}

#[cfg(feature = "tor")]
fn arti_connect(args: &ConnectArgs, timeout: Duration) -> Result<u64, String> {
    arti::connect_relay(args, timeout)
}

#[cfg(feature = "tor")]
mod arti {
    use super::ConnectArgs;
    use arti_client::TorClient;
    use arti_client::config::{CfgPath, TorClientConfigBuilder};
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    pub fn connect_relay(args: &ConnectArgs, timeout: Duration) -> Result<u64, String> {
        // arti's rustls needs a process-wide provider: ring (no cmake, no C
        // beyond cc).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut b = match &args.arti_config {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| format!("reading {}: {e}", p.display()))?;
                toml::from_str::<TorClientConfigBuilder>(&text)
                    .map_err(|e| format!("parsing {}: {e}", p.display()))?
            }
            None => TorClientConfigBuilder::default(),
        };
        let dir = args
            .arti_dir
            .clone()
            .unwrap_or_else(super::default_arti_dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        b.storage()
            .state_dir(CfgPath::new_literal(dir.join("state")))
            .cache_dir(CfgPath::new_literal(dir.join("cache")));
        let cfg = b.build().map_err(|e| format!("arti configuration: {e}"))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let verbose = std::env::var_os("CAIRN_TOR_VERBOSE").is_some();
        let r = rt.block_on(async {
            let deadline = Instant::now() + timeout;
            let t0 = Instant::now();
            let client = tokio::time::timeout(timeout, TorClient::create_bootstrapped(cfg))
                .await
                .map_err(|_| format!("bootstrapping timed out after {} s", timeout.as_secs()))?
                .map_err(|e| format!("bootstrapping: {e}"))?;
            if verbose {
                eprintln!(
                    "cairn tor-connect: bootstrapped in {:.2} s",
                    t0.elapsed().as_secs_f64()
                );
            }
            let t1 = Instant::now();
            let left = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_secs(1));
            let stream =
                tokio::time::timeout(left, client.connect((args.host.as_str(), args.port)))
                    .await
                    .map_err(|_| format!("connecting timed out after {} s", timeout.as_secs()))?
                    .map_err(|e| format!("{e}"))?;
            if verbose {
                eprintln!(
                    "cairn tor-connect: connected in {:.2} s",
                    t1.elapsed().as_secs_f64()
                );
            }
            relay(stream).await.map_err(|e| format!("relay: {e}"))
        });
        // A blocking stdin read would keep the runtime alive: leave at once.
        rt.shutdown_timeout(Duration::from_millis(100));
        r
    }

    async fn relay(stream: arti_client::DataStream) -> std::io::Result<u64> {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let up = async move {
            let mut stdin = tokio::io::stdin();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = stdin.read(&mut buf).await?;
                if n == 0 {
                    // Tor has no half-close: stop sending, wait for the end.
                    return Ok::<(), std::io::Error>(());
                }
                wr.write_all(&buf[..n]).await?;
                // DataStream packs writes into cells; send them now.
                wr.flush().await?;
            }
        };
        let down = async move {
            let mut stdout = tokio::io::stdout();
            let mut buf = vec![0u8; 64 * 1024];
            let mut total = 0u64;
            loop {
                let n = match rd.read(&mut buf).await {
                    Ok(n) => n,
                    // The service ended the stream with a reason other than
                    // DONE (an rsync daemon resets its socket after the
                    // session): the stream is over either way, and the
                    // program on our side checks its own protocol's end.
                    Err(e) if total > 0 => {
                        if std::env::var_os("CAIRN_TOR_VERBOSE").is_some() {
                            eprintln!("cairn tor-connect: stream ended: {e}");
                        }
                        0
                    }
                    Err(e) => return Err(e),
                };
                if n == 0 {
                    return Ok::<u64, std::io::Error>(total);
                }
                total += n as u64;
                stdout.write_all(&buf[..n]).await?;
                stdout.flush().await?;
            }
        };
        tokio::pin!(up);
        tokio::pin!(down);
        let mut up_done = false;
        loop {
            tokio::select! {
                r = &mut up, if !up_done => { r?; up_done = true; }
                r = &mut down => return r,
            }
        }
    }
}

/// How a connection to a host is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A direct TCP connection (for rsync: `RSYNC_CONNECT_PROG` from the
    /// environment, if set, as duplicity leaves it).
    Direct,
    /// Through `cairn tor-connect`, with these arguments before HOST PORT.
    Helper(Vec<String>),
}

/// Chooses the route to `host` under the options (see [`TorMode`]).
/// `env_connect_prog` says whether the user set `RSYNC_CONNECT_PROG` (then
/// `Auto` leaves `.onion` hosts to it).
pub fn route(
    opts: &BackendOptions,
    target: &str,
    host: &str,
    env_connect_prog: bool,
) -> Result<Route, BackendError> {
    let onion = super::url::is_onion(host);
    let helper = || -> Result<String, BackendError> {
        let p = match &opts.tor.helper {
            Some(p) => p.clone(),
            None => std::env::current_exe().map_err(|e| BackendError::Setup {
                target: target.to_string(),
                detail: format!("cannot find Cairn's own executable for tor-connect: {e}"),
            })?,
        };
        Ok(p.to_string_lossy().into_owned())
    };
    let timeout = opts.tor.connect_timeout.as_secs().max(1).to_string();
    match &opts.tor.mode {
        TorMode::Off if onion => Err(BackendError::Setup {
            target: target.to_string(),
            detail: format!("{host} is an onion address and Tor is switched off"),
        }),
        TorMode::Off => Ok(Route::Direct),
        TorMode::Auto if !onion || env_connect_prog => Ok(Route::Direct),
        TorMode::Auto => Ok(Route::Helper(vec![
            helper()?,
            "tor-connect".into(),
            "--timeout".into(),
            timeout,
            "--socks".into(),
            DEFAULT_SOCKS.into(),
        ])),
        TorMode::Socks(addr) => Ok(Route::Helper(vec![
            helper()?,
            "tor-connect".into(),
            "--timeout".into(),
            timeout,
            "--socks".into(),
            addr.clone(),
        ])),
        TorMode::Arti { dir, config } => {
            let mut v = vec![
                helper()?,
                "tor-connect".into(),
                "--timeout".into(),
                timeout,
                "--arti-dir".into(),
                dir.to_string_lossy().into_owned(),
            ];
            if let Some(c) = config {
                v.push("--arti-config".into());
                v.push(c.to_string_lossy().into_owned());
            }
            Ok(Route::Helper(v))
        }
    }
}

/// Quotes words for `sh -c` (rsync runs `RSYNC_CONNECT_PROG` and ssh runs
/// `ProxyCommand` through the shell).
pub fn shell_join(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            shlex::try_quote(w)
                .map(|q| q.into_owned())
                .unwrap_or_else(|_| w.clone())
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Finds the line `cairn tor-connect` printed on failure, if any.
pub fn helper_failure(stderr: &str) -> Option<String> {
    stderr
        .lines()
        .find(|l| l.starts_with("cairn tor-connect:"))
        .map(|l| l.trim_start_matches("cairn tor-connect: ").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let mut o = BackendOptions::default();
        o.tor.helper = Some("/usr/bin/cairn".into());
        assert_eq!(route(&o, "t", "example.org", false).unwrap(), Route::Direct);
        let Route::Helper(v) = route(&o, "t", "abc.onion", false).unwrap() else {
            panic!("onion hosts go over Tor by default")
        };
        assert_eq!(v[0], "/usr/bin/cairn");
        assert!(v.ends_with(&["--socks".to_string(), DEFAULT_SOCKS.to_string()]));
        assert_eq!(
            route(&o, "t", "abc.onion", true).unwrap(),
            Route::Direct,
            "a user's RSYNC_CONNECT_PROG is left alone"
        );
        o.tor.mode = TorMode::Off;
        assert!(route(&o, "t", "abc.onion", false).is_err());
        o.tor.mode = TorMode::Arti {
            dir: "/var/lib/cairn/arti".into(),
            config: None,
        };
        let Route::Helper(v) = route(&o, "t", "example.org", false).unwrap() else {
            panic!("explicit Tor applies to every host")
        };
        assert!(v.contains(&"--arti-dir".to_string()));
        assert_eq!(
            shell_join(&["/a b/cairn".into(), "x".into()]),
            "'/a b/cairn' x"
        );
    }
}
