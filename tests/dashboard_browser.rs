//! The dashboard through a real browser: Debian's headless Chromium, driven
//! over WebDriver (chromedriver), against a real `cairn serve` (simulated
//! board and clock) that backs up to a real rsync daemon on loopback.
//! Everything a person does is done by clicking and typing in the pages:
//! claim, set up, keep the recovery kit, back up, watch the job, browse an
//! older set, download, restore, change the schedule. The test presses only
//! the simulated button (`POST /sim/press`, as the person in the room
//! would press the real one) and moves the simulated clock (through the
//! JSON API with a second, bearer session).
//!
//! Each page is photographed at desktop (1280x900) and phone (390x844)
//! size into `target/dashboard-screenshots/`; on a phone, the overview,
//! jobs and settings pages must not scroll sideways.

// The browser runs on the x86-64 host (its WebDriver client is a host-only
// dev-dependency); the Pi's builds run the library's tests only.
#![cfg(target_arch = "x86_64")]

mod common;

use common::servers::{Proc, RSYNC_PASSWORD, Rsyncd, free_port, wait_port};
use common::*;
use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Display;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The owner's dashboard password.
const OWNER: &str = "owner password 1";
/// The simulated clock's start: Wednesday 2025-06-11 12:00 UTC. The default
/// schedule (Tuesdays 03:05) has no run in the day the test moves it on,
/// so every backup here is one the owner asked for.
const START: i64 = 1_749_643_200;
const DAY: i64 = 86_400;
const DESKTOP: (u32, u32) = (1280, 900);
const PHONE: (u32, u32) = (390, 844);

type R<T> = Result<T, String>;

/// Says what was being done when something failed.
trait Ctx<T> {
    fn ctx(self, what: &str) -> R<T>;
}

impl<T, E: Display> Ctx<T> for Result<T, E> {
    fn ctx(self, what: &str) -> R<T> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

// ---------------------------------------------------------------- the appliance

/// `cairn serve` with its configuration directory `WORK/etc` (no
/// configuration and no owner yet: a fresh appliance), so setup puts
/// restores in `WORK/restore`.
struct Appliance {
    etc: PathBuf,
    addr: String,
    /// The API session (bearer) for the clock and for checks.
    token: String,
    _proc: Proc,
}

impl Appliance {
    fn start(work: &Path) -> Appliance {
        let etc = work.join("etc");
        fs::create_dir_all(&etc).unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let mut cmd = Command::new(cairn());
        cmd.arg("--config")
            .arg(etc.join("cairn.toml"))
            .args(["serve", "--board", "sim", "--listen", &addr])
            .args(["--sim-clock", &START.to_string()])
            .env("TMPDIR", work)
            .env_remove("FTP_PASSWORD")
            .env_remove("PASSPHRASE")
            .stdout(Stdio::null())
            .stderr(fs::File::create(work.join("daemon.log")).unwrap());
        let proc = Proc::spawn("cairn serve", cmd);
        let a = Appliance {
            etc,
            addr,
            token: String::new(),
            _proc: proc,
        };
        assert!(
            wait_port(&a.addr, Duration::from_secs(20)),
            "cairn serve did not listen on {}:\n{}",
            a.addr,
            a.log()
        );
        a
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn log(&self) -> String {
        let text =
            fs::read_to_string(self.etc.parent().unwrap().join("daemon.log")).unwrap_or_default();
        tail(&text, 60)
    }

    /// One HTTP/1.1 exchange as a script (the bearer session once there
    /// is one; no cookie, so no CSRF token is needed): (status, body).
    fn http(&self, method: &str, path: &str, body: &str) -> R<(u16, String)> {
        let mut s = TcpStream::connect(&self.addr).ctx("connect to cairn serve")?;
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let auth = if self.token.is_empty() {
            String::new()
        } else {
            format!("Authorization: Bearer {}\r\n", self.token)
        };
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n{auth}\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .ctx("send")?;
        let mut text = String::new();
        s.read_to_string(&mut text).ctx("read the answer")?;
        let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP answer")?;
        let code = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or("no status code")?;
        Ok((code, body.to_string()))
    }

    /// A second session, for scripts: `POST /login` with JSON.
    fn log_in_api(&mut self) -> R<()> {
        let (code, body) = self.http("POST", "/login", &json!({"password": OWNER}).to_string())?;
        ensure!(code == 200, "POST /login: {code} {body}");
        let v: Value = serde_json::from_str(&body).ctx("the login answer")?;
        self.token = v["token"].as_str().ok_or("no token")?.to_string();
        ensure!(v["csrf"].is_string(), "no csrf in {v}");
        Ok(())
    }

    fn status(&self) -> R<Value> {
        let (code, body) = self.http("GET", "/api/status", "")?;
        ensure!(code == 200, "GET /api/status: {code} {body}");
        serde_json::from_str(&body).ctx("the status")
    }

    /// Waits until job `id` has finished; returns how it ended.
    async fn wait_job(&self, id: u64, limit: Duration) -> R<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let s = self.status()?;
            if let Some(f) = s["finished"]
                .as_array()
                .and_then(|a| a.iter().find(|f| f["job"]["id"] == id))
            {
                return Ok(f.clone());
            }
            ensure!(
                Instant::now() < deadline,
                "job {id} did not finish in {limit:?}: {s:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let v: Vec<&str> = text.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

// ---------------------------------------------------------------- the browser

/// chromedriver and the Chromium it starts, in one process group that is
/// killed when this guard drops (also when the test panics), with a
/// profile inside the test's directory.
struct Browser {
    client: Option<Client>,
    driver: Proc,
    log: PathBuf,
}

impl Browser {
    /// Fails (never skips) when Chromium or chromedriver is missing.
    fn require() {
        for bin in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: this test drives Debian's headless Chromium through \
                 chromedriver; run scripts/setup (apt-get install chromium chromium-driver)"
            );
        }
    }

    async fn start(work: &Path) -> Browser {
        Browser::require();
        let port = free_port();
        let log = work.join("chromedriver.log");
        let mut cmd = Command::new(CHROMEDRIVER);
        cmd.arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            // Chromium's scratch directories go with the test's.
            .env("TMPDIR", work)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let driver = Proc::spawn("chromedriver", cmd);
        assert!(
            wait_port(&format!("127.0.0.1:{port}"), Duration::from_secs(20)),
            "chromedriver did not listen on port {port}"
        );
        let profile = work.join("chromium-profile");
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
                    format!("--user-data-dir={}", profile.display()),
                    "--no-first-run", "--disable-extensions", "--disable-background-networking",
                    "--disable-sync", "--disable-component-update", "--hide-scrollbars",
                    "--force-device-scale-factor=1", "--lang=en-US",
                ],
            },
        });
        let caps = match caps {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "chromedriver could not start {CHROMIUM}: {e}\n{}",
                    tail(&fs::read_to_string(&log).unwrap_or_default(), 30)
                )
            });
        client
            .update_timeouts(TimeoutConfiguration::new(
                Some(Duration::from_secs(60)),
                Some(Duration::from_secs(30)),
                Some(Duration::ZERO),
            ))
            .await
            .expect("timeouts");
        // --window-size is the window's; the pages get what is left.
        viewport(&client, DESKTOP)
            .await
            .expect("a desktop-sized viewport");
        Browser {
            client: Some(client),
            driver,
            log,
        }
    }

    fn c(&self) -> &Client {
        self.client.as_ref().expect("open")
    }

    /// Ends the session (Chromium quits), then chromedriver.
    async fn close(mut self) {
        if let Some(c) = self.client.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), c.close()).await;
        }
        self.driver.kill();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The Proc's own Drop kills chromedriver's process group (Chromium
        // with it); the client's session task dies with the runtime.
        self.client.take();
    }
}

// ---------------------------------------------------------------- page helpers

/// Whether a value from a script counts as "yes".
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

/// Evaluates `expr` in the page until it is truthy (a page that is
/// loading counts as not yet); returns its value.
async fn wait_js(c: &Client, what: &str, limit: Duration, expr: &str) -> R<Value> {
    let script = format!("try {{ return ({expr}); }} catch (e) {{ return null; }}");
    let deadline = Instant::now() + limit;
    loop {
        let last = match c.execute(&script, vec![]).await {
            Ok(v) if truthy(&v) => return Ok(v),
            Ok(v) => v,
            Err(e) => Value::String(format!("(script error: {e})")),
        };
        if Instant::now() > deadline {
            return Err(format!(
                "waited {limit:?} for {what} (`{expr}`); last value {last}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn js(c: &Client, script: &str) -> R<Value> {
    c.execute(script, vec![]).await.ctx(script)
}

async fn page_text(c: &Client) -> R<String> {
    Ok(js(c, "return document.body ? document.body.innerText : ''")
        .await?
        .as_str()
        .unwrap_or_default()
        .to_string())
}

async fn click(c: &Client, css: &str) -> R<()> {
    c.find(Locator::Css(css))
        .await
        .ctx(css)?
        .click()
        .await
        .ctx(&format!("click {css}"))
}

async fn type_into(c: &Client, css: &str, text: &str) -> R<()> {
    let e = c.find(Locator::Css(css)).await.ctx(css)?;
    e.clear().await.ctx(&format!("clear {css}"))?;
    e.send_keys(text).await.ctx(&format!("type into {css}"))
}

/// Opens a page and waits until it is loaded and `ready` holds.
async fn open(c: &Client, a: &Appliance, path: &str, ready: &str) -> R<()> {
    c.goto(&a.url(path)).await.ctx(&format!("open {path}"))?;
    wait_js(
        c,
        &format!("{path} to load"),
        Duration::from_secs(20),
        &format!("document.readyState === 'complete' && ({ready})"),
    )
    .await
    .map(drop)
}

/// Sets the window so that the page's viewport is `w`x`h` CSS pixels.
async fn viewport(c: &Client, (w, h): (u32, u32)) -> R<()> {
    c.set_window_size(w, h).await.ctx("resize the window")?;
    let got = js(c, "return [window.innerWidth, window.innerHeight]").await?;
    let (iw, ih) = (got[0].as_u64().unwrap_or(0), got[1].as_u64().unwrap_or(0));
    if (iw, ih) != (u64::from(w), u64::from(h)) {
        // The window's frame: grow the window by it.
        let (dw, dh) = (
            u64::from(w).saturating_sub(iw),
            u64::from(h).saturating_sub(ih),
        );
        c.set_window_size(w + dw as u32, h + dh as u32)
            .await
            .ctx("resize the window")?;
    }
    wait_js(
        c,
        &format!("a {w}x{h} viewport"),
        Duration::from_secs(5),
        &format!("window.innerWidth === {w}"),
    )
    .await
    .map(drop)
}

/// Photographs the page at desktop and phone size; with `no_overflow`, a
/// phone must not have to scroll it sideways. Returns the phone's
/// (scrollWidth, innerWidth).
async fn photograph(c: &Client, dir: &Path, name: &str, no_overflow: bool) -> R<(u64, u64)> {
    let png = c.screenshot().await.ctx("screenshot")?;
    fs::write(dir.join(format!("{name}-desktop.png")), png).ctx("write a screenshot")?;
    viewport(c, PHONE).await?;
    // Let the layout settle after the resize.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let w = js(
        c,
        "return [document.documentElement.scrollWidth, window.innerWidth]",
    )
    .await?;
    let (scroll, inner) = (w[0].as_u64().unwrap_or(0), w[1].as_u64().unwrap_or(0));
    let png = c.screenshot().await.ctx("screenshot")?;
    fs::write(dir.join(format!("{name}-phone.png")), png).ctx("write a screenshot")?;
    viewport(c, DESKTOP).await?;
    if no_overflow {
        ensure!(
            scroll <= inner + 1,
            "{name}: at {}x{} the page is {scroll} px wide for a {inner} px screen \
             (it scrolls sideways)",
            PHONE.0,
            PHONE.1
        );
    }
    Ok((scroll, inner))
}

/// Photographs the page (see [`photograph`]) and notes its phone width.
async fn photo(c: &Client, shots: &Path, seen: &mut Seen, name: &str, no_overflow: bool) -> R<()> {
    let (scroll, inner) = photograph(c, shots, name, no_overflow).await?;
    seen.phone_widths.push((name.to_string(), scroll, inner));
    Ok(())
}

/// Fetches `url` in the page (the browser's own session cookie) and
/// returns the status, the headers that matter and the bytes.
async fn fetch_bytes(c: &Client, url: &str) -> R<(u64, String, String, Vec<u8>)> {
    const FETCH: &str = r#"
        const [url, done] = arguments;
        fetch(url, { credentials: "same-origin" }).then(async (r) => {
          const b = new Uint8Array(await r.arrayBuffer());
          let s = "";
          for (let i = 0; i < b.length; i += 0x8000) {
            s += String.fromCharCode.apply(null, b.subarray(i, i + 0x8000));
          }
          done({ status: r.status, type: r.headers.get("content-type") || "",
                 disposition: r.headers.get("content-disposition") || "", b64: btoa(s) });
        }).catch((e) => done({ error: String(e) }));
    "#;
    let v = c
        .execute_async(FETCH, vec![json!(url)])
        .await
        .ctx(&format!("fetch {url} in the page"))?;
    ensure!(v["error"].is_null(), "fetch {url}: {}", v["error"]);
    let bytes = base64_decode(v["b64"].as_str().unwrap_or_default())?;
    Ok((
        v["status"].as_u64().unwrap_or(0),
        v["type"].as_str().unwrap_or_default().to_string(),
        v["disposition"].as_str().unwrap_or_default().to_string(),
        bytes,
    ))
}

fn base64_decode(s: &str) -> R<Vec<u8>> {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for ch in s.bytes().filter(|&b| b != b'=') {
        let v = A
            .iter()
            .position(|&x| x == ch)
            .ok_or_else(|| format!("not base64: {:?}", ch as char))?;
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}

/// Regular files by path.
type Files = BTreeMap<String, Vec<u8>>;

/// The regular files in a tar stream, by name, and every name in it.
fn untar(bytes: &[u8]) -> R<(Files, Vec<String>)> {
    let mut files = BTreeMap::new();
    let mut names = Vec::new();
    let mut ar = tar::Archive::new(bytes);
    for e in ar.entries().ctx("read the tar")? {
        let mut e = e.ctx("a tar entry")?;
        let name = e.path().ctx("a tar name")?.display().to_string();
        let name = name.trim_start_matches("./").to_string();
        names.push(name.clone());
        if e.header().entry_type().is_file() {
            let mut data = Vec::new();
            e.read_to_end(&mut data).ctx("a tar member")?;
            files.insert(name, data);
        }
    }
    Ok((files, names))
}

/// The regular files under `dir`, by path relative to `base`.
fn files_under(base: &Path, dir: &Path) -> Files {
    let mut out = BTreeMap::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(base, &p));
        } else {
            let rel = p.strip_prefix(base).unwrap().display().to_string();
            out.insert(rel, fs::read(&p).unwrap());
        }
    }
    out
}

/// The href of the `download` link in the listing's row named `name`.
async fn download_link(c: &Client, name: &str) -> R<String> {
    let script = format!(
        "for (const tr of document.querySelectorAll('table.files tbody tr')) {{
           const first = tr.querySelector('td');
           if (first && first.innerText.trim() === {n}) {{
             const a = tr.querySelector('a[data-download]');
             return a ? a.href : null;
           }}
         }}
         return null;",
        n = json!(name)
    );
    let v = js(c, &script).await?;
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("no download link for {name:?} in the listing"))
}

// ---------------------------------------------------------------- the test

/// What the source holds: a few files in subdirectories, one large enough
/// that a backup takes a moment.
fn make_source(dir: &Path) {
    fs::create_dir_all(dir.join("docs/notes")).unwrap();
    fs::create_dir_all(dir.join("photos/2025")).unwrap();
    fs::write(dir.join("readme.txt"), "the family's files\n").unwrap();
    fs::write(
        dir.join("docs/letter.txt"),
        "Dear Ada,\nthe first version.\n",
    )
    .unwrap();
    fs::write(dir.join("docs/notes/todo.txt"), "- back up\n- restore\n").unwrap();
    fs::write(dir.join("docs/notes/scan.bin"), random_bytes(300_000, 7)).unwrap();
    fs::write(
        dir.join("photos/2025/beach.raw"),
        random_bytes(6_000_000, 11),
    )
    .unwrap();
}

/// What the test saw along the way, for the report.
#[derive(Default)]
struct Seen {
    progress_shown: bool,
    phone_widths: Vec<(String, u64, u64)>,
}

#[test]
fn the_dashboard_in_chromium_claim_setup_backup_browse_restore_settings() {
    Browser::require();
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("dashboard-screenshots");
    fs::create_dir_all(&shots).unwrap();
    let _ = fs::remove_file(shots.join("failure.png"));

    let work = tmpdir();
    let src = work.path().join("share");
    make_source(&src);
    let rsyncd = Rsyncd::start();
    let mut app = Appliance::start(work.path());
    let browser = rt.block_on(Browser::start(work.path()));
    let mut seen = Seen::default();

    let result = rt.block_on(flow(
        browser.c(),
        &mut app,
        &rsyncd,
        &src,
        work.path(),
        &shots,
        &mut seen,
    ));
    if let Err(e) = result {
        let c = browser.c();
        let (url, text) = rt.block_on(async {
            let url = c
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            if let Ok(png) = c.screenshot().await {
                let _ = fs::write(shots.join("failure.png"), png);
            }
            (url, page_text(c).await.unwrap_or_default())
        });
        let driver_log = tail(&fs::read_to_string(&browser.log).unwrap_or_default(), 20);
        panic!(
            "{e}\n\n--- the page ({url}; screenshot in {}):\n{}\n\n--- cairn serve's log:\n{}\n\n\
             --- chromedriver's log:\n{driver_log}",
            shots.join("failure.png").display(),
            tail(&text, 60),
            app.log()
        );
    }
    rt.block_on(browser.close());
    for (page, scroll, inner) in &seen.phone_widths {
        eprintln!("phone width of {page}: {scroll} px of content for {inner} px");
    }
    eprintln!(
        "progress shown on /jobs: {}; screenshots in {}; {:.1} s",
        seen.progress_shown,
        shots.display(),
        started.elapsed().as_secs_f64()
    );
}

async fn flow(
    c: &Client,
    app: &mut Appliance,
    rsyncd: &Rsyncd,
    src: &Path,
    work: &Path,
    shots: &Path,
    seen: &mut Seen,
) -> R<()> {
    let long = Duration::from_secs(60);
    let short = Duration::from_secs(10);

    // ---- Claim: wait for the button, which the person in the room presses.
    open(c, app, "/", "document.querySelector('form[data-claim]')").await?;
    let path = js(c, "return location.pathname").await?;
    ensure!(
        path == "/setup",
        "an unclaimed appliance should send / to /setup, not {path}"
    );
    photo(c, shots, seen, "1-claim", false).await?;
    click(c, "button[data-press]").await?;
    wait_js(
        c,
        "the page to ask for the button",
        short,
        "document.querySelector('.press-state').innerText.includes('press the appliance')",
    )
    .await?;
    let (code, body) = app.http("POST", "/sim/press", r#"{"ms":200}"#)?;
    ensure!(code == 204, "POST /sim/press: {code} {body}");
    wait_js(
        c,
        "the page to see the press",
        short,
        "document.querySelector('.press-state').innerText.includes('Button pressed') \
         && document.querySelector('input[name=claim]').value",
    )
    .await?;
    type_into(c, "input[name=password]", OWNER).await?;
    type_into(c, "input[name=password2]", OWNER).await?;
    click(c, "form[data-claim] button[type=submit]").await?;

    // ---- The wizard: what, where to, test the connection, save.
    wait_js(
        c,
        "the wizard",
        short,
        "location.pathname === '/setup' && document.querySelector('form#wizard')",
    )
    .await?;
    ensure!(
        fs::metadata(app.etc.join("admin")).is_ok(),
        "claimed, but no owner file in {}",
        app.etc.display()
    );
    app.log_in_api()?;
    type_into(c, "input[name=source]", src.to_str().unwrap()).await?;
    type_into(c, "input[name=target]", &rsyncd.url("cairn")).await?;
    type_into(c, "input[name=target_password]", RSYNC_PASSWORD).await?;
    click(c, "button[data-test]").await?;
    let said = wait_js(
        c,
        "the connection test's answer",
        long,
        "(t => t && t !== 'Connecting…' && t)(document.querySelector('#wizard .result').innerText)",
    )
    .await?;
    let said = said.as_str().unwrap_or_default();
    ensure!(
        said.contains("Connected"),
        "the connection test said: {said}"
    );
    photo(c, shots, seen, "2-wizard", false).await?;
    click(c, "form#wizard button[type=submit]").await?;

    // ---- The recovery kit: keep it, type back the end of the passphrase.
    wait_js(
        c,
        "the recovery kit",
        long,
        "location.pathname === '/setup/kit' && document.querySelector('code.passphrase')",
    )
    .await?;
    let passphrase = js(
        c,
        "return document.querySelector('code.passphrase').innerText",
    )
    .await?
    .as_str()
    .unwrap_or_default()
    .trim()
    .to_string();
    let groups: Vec<&str> = passphrase.split('-').collect();
    ensure!(
        groups.len() == 6 && groups.iter().all(|g| g.len() == 5),
        "a generated passphrase is six groups of five: {passphrase:?}"
    );
    let qr = js(
        c,
        "const s = document.querySelector('.qr svg'); \
         return s ? [s.getBoundingClientRect().width, s.getBoundingClientRect().height] : null",
    )
    .await?;
    ensure!(
        qr[0].as_f64().unwrap_or(0.0) >= 100.0 && qr[1].as_f64().unwrap_or(0.0) >= 100.0,
        "the kit should show the passphrase as a QR code (an svg): {qr}"
    );
    let kit = page_text(c).await?;
    ensure!(
        kit.contains("duplicity restore") && kit.contains(RSYNC_PASSWORD),
        "the kit should give the restore command and the target's password:\n{kit}"
    );
    ensure!(
        fs::metadata(app.etc.join("cairn.toml")).is_err(),
        "the configuration must not take effect before the kit is confirmed"
    );
    photo(c, shots, seen, "3-kit", false).await?;
    type_into(c, "input[name=last]", groups[5]).await?;
    click(c, "form[data-api='/api/setup/confirm'] button[type=submit]").await?;

    // ---- The overview; back up now.
    wait_js(
        c,
        "the overview",
        long,
        "location.pathname === '/' && document.querySelector('#state')",
    )
    .await?;
    let config = fs::read_to_string(app.etc.join("cairn.toml")).ctx("the configuration")?;
    ensure!(
        config.contains(&format!("source = \"{}\"", src.display())),
        "the configuration:\n{config}"
    );
    photo(c, shots, seen, "4-overview-new", true).await?;
    click(c, "button[data-post='/api/jobs']").await?;
    let queued = wait_js(
        c,
        "the button to say the job was queued",
        short,
        "(t => t.includes('Queued as job') && t)(document.querySelector('.result').innerText)",
    )
    .await?;
    ensure!(
        queued.as_str().unwrap_or_default().contains("job 1"),
        "the first job: {queued}"
    );
    watch_job(c, app, seen, 1, "backup", 1).await?;
    photo(c, shots, seen, "5-jobs", true).await?;

    // What the first set holds, kept for the comparisons below.
    let old_docs_tree = capture(&src.join("docs"));
    let old_docs = files_under(&src.join("docs"), &src.join("docs"));

    // ---- A day later, a changed file: the second backup.
    let (code, body) = app.http(
        "POST",
        "/api/clock",
        &json!({"now": START + DAY}).to_string(),
    )?;
    ensure!(code == 204, "POST /api/clock: {code} {body}");
    fs::write(
        src.join("docs/letter.txt"),
        "Dear Ada,\nthe second, longer version of the letter.\n",
    )
    .unwrap();
    open(c, app, "/", "document.querySelector('#state')").await?;
    click(c, "button[data-post='/api/jobs']").await?;
    wait_js(
        c,
        "the second job to be queued",
        short,
        "document.querySelector('.result').innerText.includes('Queued as job 2')",
    )
    .await?;
    watch_job(c, app, seen, 2, "backup", 2).await?;
    let status = app.status()?;
    ensure!(
        status["finished"][0]["outcome"] == "ok" && status["health"] == "good",
        "after two backups: {status:#}"
    );
    open(c, app, "/", "document.querySelector('#state')").await?;
    let overview = page_text(c).await?;
    ensure!(
        overview.contains("2 sets"),
        "the overview should count 2 sets:\n{overview}"
    );
    photo(c, shots, seen, "6-overview", true).await?;

    // ---- Sets: two, a day apart.
    open(c, app, "/sets", "document.querySelector('figure svg')").await?;
    let rows = js(
        c,
        "return document.querySelectorAll('main table tbody tr').length",
    )
    .await?;
    ensure!(rows == 2, "the sets page should list 2 sets, not {rows}");
    photo(c, shots, seen, "7-sets", false).await?;

    // ---- Browse yesterday's set: choose it, then click into docs/.
    c.find(Locator::LinkText("Browse"))
        .await
        .ctx("the Browse link")?
        .click()
        .await
        .ctx("click Browse")?;
    wait_js(
        c,
        "the browse page",
        short,
        "location.pathname === '/browse' && document.querySelector('select[name=t]')",
    )
    .await?;
    let times = js(
        c,
        "return Array.from(document.querySelectorAll('select[name=t] option')).map(o => Number(o.value))",
    )
    .await?;
    let times: Vec<i64> = times
        .as_array()
        .ok_or("no set selector")?
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    ensure!(
        times.len() == 2,
        "the set selector should offer 2 sets: {times:?}"
    );
    let (older, newer) = (times[1], times[0]);
    ensure!(
        newer - older >= DAY - 3600,
        "the two sets should be a day apart (the simulated clock): {times:?}"
    );
    c.find(Locator::Css("select[name=t]"))
        .await
        .ctx("the set selector")?
        .select_by_value(&older.to_string())
        .await
        .ctx("choose yesterday's set")?;
    click(c, "main form[action='/browse'] button[type=submit]").await?;
    wait_js(
        c,
        "yesterday's set",
        short,
        &format!(
            "location.search.includes('t={older}') && document.querySelector('select[name=t]').value === '{older}'"
        ),
    )
    .await?;
    c.find(Locator::LinkText("docs/"))
        .await
        .ctx("the docs/ link")?
        .click()
        .await
        .ctx("click docs/")?;
    wait_js(
        c,
        "the docs directory of yesterday's set",
        short,
        &format!(
            "location.search.includes('path=docs') && location.search.includes('t={older}') \
             && document.querySelector('table.files')"
        ),
    )
    .await?;
    let listing = page_text(c).await?;
    ensure!(
        listing.contains("letter.txt") && listing.contains("notes/"),
        "docs/ should list letter.txt and notes/:\n{listing}"
    );
    photo(c, shots, seen, "8-browse", false).await?;

    // Downloads, in the page with its session: one file, one directory.
    let href = download_link(c, "letter.txt").await?;
    let (code, ctype, disposition, bytes) = fetch_bytes(c, &href).await?;
    ensure!(
        code == 200,
        "{href}: {code} {}",
        String::from_utf8_lossy(&bytes)
    );
    let (files, names) = untar(&bytes).ctx("the file's download")?;
    ensure!(
        files.len() == 1 && files.get("letter.txt") == old_docs.get("letter.txt"),
        "the download of letter.txt from yesterday's set should hold yesterday's letter; \
         got {names:?} ({ctype}; {disposition}): {:?}",
        files
            .values()
            .map(|v| String::from_utf8_lossy(v))
            .collect::<Vec<_>>()
    );
    let href = download_link(c, "notes/").await?;
    let (code, _, _, bytes) = fetch_bytes(c, &href).await?;
    ensure!(
        code == 200,
        "{href}: {code} {}",
        String::from_utf8_lossy(&bytes)
    );
    let (files, names) = untar(&bytes).ctx("the directory's download")?;
    let want: Files = old_docs
        .iter()
        .filter(|(k, _)| k.starts_with("notes/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    ensure!(
        want.len() == 2 && files == want,
        "the download of notes/ should hold its 2 files byte for byte; got {names:?}"
    );

    // The history of the changed file: two versions.
    c.find(Locator::XPath(
        "//table[@class='files']//tr[td[1][normalize-space()='letter.txt']]//a[text()='history']",
    ))
    .await
    .ctx("letter.txt's history link")?
    .click()
    .await
    .ctx("click history")?;
    wait_js(
        c,
        "the history page",
        short,
        "location.pathname === '/history' && document.querySelector('main table')",
    )
    .await?;
    let versions = js(
        c,
        "return Array.from(document.querySelectorAll('main table tbody tr')).filter(tr => tr.querySelector('a[data-download]')).length",
    )
    .await?;
    ensure!(
        versions == 2,
        "letter.txt has two versions: {}",
        page_text(c).await?
    );
    photo(c, shots, seen, "9-history", false).await?;

    // ---- Restore yesterday's docs/ onto the appliance, with the form.
    c.back().await.ctx("back to the listing")?;
    wait_js(
        c,
        "the listing again",
        short,
        "location.pathname === '/browse' && document.querySelector('input[name=\"restore.into\"]')",
    )
    .await?;
    type_into(c, "input[name='restore.into']", "restored-docs").await?;
    click(c, "form[data-api='/api/jobs'] button[type=submit]").await?;
    watch_job(c, app, seen, 3, "restore", 1).await?;
    let restored = work.join("restore/restored-docs");
    ensure!(
        restored.is_dir(),
        "the restore should have made {}",
        restored.display()
    );
    let d = diff_trees(&old_docs_tree, &capture(&restored));
    ensure!(
        d.is_empty(),
        "the restored docs/ differs from yesterday's:\n{}",
        d.join("\n")
    );

    // ---- Settings: a new schedule, previewed, saved to the file.
    open(
        c,
        app,
        "/settings",
        "document.querySelector('input[name=schedule]')",
    )
    .await?;
    photo(c, shots, seen, "10-settings", true).await?;
    let before = js(c, "return document.getElementById('preview-1').innerText").await?;
    type_into(c, "input[name=schedule]", "0 4 * * *").await?;
    let preview = wait_js(
        c,
        "the schedule's preview",
        short,
        &format!(
            "(t => t !== {before} && t.includes('Next:') && t)(document.getElementById('preview-1').innerText)"
        ),
    )
    .await?;
    let preview = preview.as_str().unwrap_or_default().to_string();
    let runs = preview.split("Next:").nth(1).unwrap_or_default();
    ensure!(
        runs.split(';').filter(|r| !r.trim().is_empty()).count() == 5
            && runs.contains("04:00:00")
            && !preview.contains("error")
            && !preview.contains(".."),
        "the preview should show the next 5 runs at 04:00: {preview}"
    );
    click(
        c,
        "form[data-api='/api/settings/schedule'] button[type=submit]",
    )
    .await?;
    let config_file = app.etc.join("cairn.toml");
    let deadline = Instant::now() + short;
    loop {
        let text = fs::read_to_string(&config_file).ctx("the configuration")?;
        if text.contains("schedule = \"0 4 * * *\"") {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "the new schedule is not in {}:\n{text}",
            config_file.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_js(
        c,
        "the settings page with the new schedule",
        short,
        "document.readyState === 'complete' && document.querySelector('input[name=schedule]').value === '0 4 * * *'",
    )
    .await?;
    let status = app.status()?;
    ensure!(
        status["plans"][0]["schedule"] == "0 4 * * *",
        "the daemon should use the new schedule: {:#}",
        status["plans"][0]
    );
    photo(c, shots, seen, "11-settings-saved", true).await?;

    // ---- Settings: a second plan, checked first (nothing saved), then added.
    let work = app.etc.join("..");
    let photos = work.join("photos");
    fs::create_dir_all(photos.join("raw")).ctx("photos/")?;
    fs::write(photos.join("raw/a.txt"), b"a photo\n").ctx("photos/raw/a.txt")?;
    let usb = format!("file://{}", work.join("usb").display());
    type_into(c, "#add-plan input[name=plan]", "photos").await?;
    type_into(
        c,
        "#add-plan input[name=source]",
        &photos.display().to_string(),
    )
    .await?;
    type_into(
        c,
        "#add-plan textarea[name=selection]",
        "- **/*.tmp\n- **/cache",
    )
    .await?;
    type_into(c, "#add-plan input[name=target]", &usb).await?;
    click(c, "#add-plan button[data-dry-run]").await?;
    wait_js(
        c,
        "the plan's check",
        short,
        "(t => t.includes('Checked; nothing saved') && t.includes('Connected') && t)(document.querySelector('#add-plan .result').innerText)",
    )
    .await?;
    let text = fs::read_to_string(&config_file).ctx("the configuration")?;
    ensure!(!text.contains("photos"), "a check saved the plan:\n{text}");
    click(c, "#add-plan button[type=submit]").await?;
    let deadline = Instant::now() + short;
    loop {
        let text = fs::read_to_string(&config_file).ctx("the configuration")?;
        if text.contains("id = \"photos\"")
            && text.contains(r#"selection = ["- **/*.tmp", "- **/cache"]"#)
        {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "the new plan and its rules are not in {}:\n{text}",
            config_file.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_js(
        c,
        "the settings page with the new plan",
        short,
        "document.readyState === 'complete' && document.body.innerText.includes('Plan photos')",
    )
    .await?;
    let status = app.status()?;
    ensure!(
        status["plans"].as_array().map(Vec::len) == Some(2),
        "the daemon should have two plans: {:#}",
        status["plans"]
    );
    photo(c, shots, seen, "12-settings-plan-added", true).await?;
    Ok(())
}

/// Opens the jobs page (the restore form goes there by itself) and
/// watches job `id` finish there, live, without reloading by hand: the
/// page shows its progress while it runs, then the finished job (the
/// `nth` of its kind to end well).
async fn watch_job(
    c: &Client,
    app: &Appliance,
    seen: &mut Seen,
    id: u64,
    kind: &str,
    nth: usize,
) -> R<()> {
    let path = js(c, "return location.pathname").await?;
    if path != "/jobs" {
        // The restore form sends the browser to /jobs itself.
        if kind == "restore" {
            wait_js(
                c,
                "the jobs page",
                Duration::from_secs(10),
                "location.pathname === '/jobs'",
            )
            .await?;
        } else {
            c.find(Locator::LinkText("Jobs"))
                .await
                .ctx("the Jobs link")?
                .click()
                .await
                .ctx("click Jobs")?;
        }
    }
    let want = format!("{kind} of main: ok");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let text = js(
            c,
            "return document.readyState === 'complete' && document.body ? document.body.innerText : ''",
        )
        .await
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
        if text.contains("Running: ") {
            seen.progress_shown = true;
        }
        if text.matches(&want).count() >= nth {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "the jobs page never showed job {id} ({kind}) finished; it shows:\n{}",
            tail(&text, 40)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let job = app.wait_job(id, Duration::from_secs(30)).await?;
    ensure!(
        job["outcome"] == "ok" && job["job"]["kind"] == kind,
        "job {id}: {job:#}"
    );
    Ok(())
}
