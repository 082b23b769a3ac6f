//! The gate, over real HTTP on loopback: every route of the table without a
//! session, CSRF, the login limit, claim by token, headers, secrets.

use super::*;
use crate::appliance::board::SimBoard;
use crate::appliance::clock::Clock;
use crate::appliance::daemon::{self, Daemon};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PASSWORD: &str = "a long enough password";

struct Srv {
    addr: SocketAddr,
    daemon: Daemon,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

async fn start(dir: &Path) -> Srv {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sim = SimBoard::new();
    let d = Daemon::start(daemon::Options {
        config: dir.join("cairn.toml"),
        clock: Clock::System,
        board: sim.parts(),
        sim: Some(sim),
        board_error: None,
        runtime: None,
    });
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(crate::serve::serve(listener, d.clone(), async {
        let _ = rx.await;
    }));
    Srv {
        addr,
        daemon: d,
        stop: Some(tx),
    }
}

impl Drop for Srv {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.daemon.stop(Duration::from_secs(5));
    }
}

struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// One HTTP/1.1 exchange.
async fn req(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let exchange = async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut text = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            text += &format!("Host: {addr}\r\n");
        }
        for (k, v) in headers {
            text += &format!("{k}: {v}\r\n");
        }
        if !body.is_empty() {
            text += &format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            );
        }
        text += "\r\n";
        text += body;
        s.write_all(text.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        String::from_utf8_lossy(&raw).into_owned()
    };
    let text = tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .expect("no answer");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Answer {
        status: head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// A concrete path for a route (`{id}` → 1, `{file}` → app.js).
fn concrete(path: &str) -> String {
    path.replace("{id}", "1").replace("{file}", "app.js")
}

/// Claims the appliance by token; returns the session token.
async fn claim(srv: &Srv, dir: &Path) -> String {
    std::fs::write(dir.join(auth::CLAIM_TOKEN_FILE), "tok-123\n").unwrap();
    let body = format!(r#"{{"password":"{PASSWORD}","token":"tok-123"}}"#);
    let a = req(srv.addr, "POST", "/setup/claim", &[], &body).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    v["token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn every_session_route_refuses_without_a_session() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let table = routes();
    assert!(table.iter().any(|r| r.access == Access::Session));
    for claimed in [false, true] {
        if claimed {
            claim(&srv, dir.path()).await;
        }
        for r in table.iter().filter(|r| r.access == Access::Session) {
            let path = concrete(r.path);
            for creds in [
                vec![],
                vec![("Cookie", "cairn_session=00ff")],
                vec![("Authorization", "Bearer 00ff")],
            ] {
                let a = req(srv.addr, r.method.as_str(), &path, &creds, "").await;
                if path.starts_with("/api/") || path == "/metrics" {
                    assert_eq!(a.status, 401, "{} {path} {creds:?}: {}", r.method, a.body);
                } else {
                    assert_eq!(a.status, 303, "{} {path} {creds:?}: {}", r.method, a.body);
                    let to = if claimed { "/login" } else { "/setup" };
                    assert_eq!(a.header("location").as_deref(), Some(to), "{path}");
                }
            }
        }
    }
    // What is public answers without one.
    assert_eq!(req(srv.addr, "GET", "/health", &[], "").await.status, 200);
    assert_eq!(
        req(srv.addr, "GET", "/static/app.js", &[], "").await.status,
        200
    );
    assert_eq!(req(srv.addr, "GET", "/login", &[], "").await.status, 200);
}

#[tokio::test]
async fn claiming_by_token_then_sessions_end_on_logout() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let a = req(srv.addr, "GET", "/setup", &[], "").await;
    assert_eq!(a.status, 200);
    assert!(a.body.contains("Claim this appliance"), "{}", a.body);
    std::fs::write(dir.path().join(auth::CLAIM_TOKEN_FILE), "tok-123\n").unwrap();
    let wrong = req(
        srv.addr,
        "POST",
        "/setup/claim",
        &[],
        r#"{"password":"a long enough password","token":"tok-124"}"#,
    )
    .await;
    assert_eq!(wrong.status, 403, "{}", wrong.body);
    let short = req(
        srv.addr,
        "POST",
        "/setup/claim",
        &[],
        r#"{"password":"short","token":"tok-123"}"#,
    )
    .await;
    assert_eq!(short.status, 400, "{}", short.body);
    let body = format!(r#"{{"password":"{PASSWORD}","token":"tok-123"}}"#);
    let ok = req(srv.addr, "POST", "/setup/claim", &[], &body).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let cookie = ok.header("set-cookie").unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(
        !dir.path().join(auth::CLAIM_TOKEN_FILE).exists(),
        "the token is used once"
    );
    let again = req(srv.addr, "POST", "/setup/claim", &[], &body).await;
    assert_eq!(again.status, 409);

    let pair = cookie.split(';').next().unwrap().to_string();
    let token = pair.split_once('=').unwrap().1.to_string();
    let bearer = format!("Bearer {token}");
    assert_eq!(
        req(srv.addr, "GET", "/api/status", &[("Cookie", &pair)], "")
            .await
            .status,
        200
    );
    assert_eq!(
        req(
            srv.addr,
            "GET",
            "/api/status",
            &[("Authorization", &bearer)],
            ""
        )
        .await
        .status,
        200
    );
    // Logged in and unconfigured: the overview leads to the wizard.
    let o = req(srv.addr, "GET", "/", &[("Cookie", &pair)], "").await;
    assert_eq!(o.header("location").as_deref(), Some("/setup"));
    let w = req(srv.addr, "GET", "/setup", &[("Cookie", &pair)], "").await;
    assert!(w.body.contains("Set up backups"), "{}", w.body);

    let origin = format!("http://{}", srv.addr);
    let out = req(
        srv.addr,
        "POST",
        "/logout",
        &[("Cookie", &pair), ("Origin", &origin)],
        "",
    )
    .await;
    assert_eq!(out.status, 303);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(
        req(srv.addr, "GET", "/api/status", &[("Cookie", &pair)], "")
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn state_changes_from_another_origin_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let token = claim(&srv, dir.path()).await;
    let cookie = format!("cairn_session={token}");
    let csrf = {
        let a = req(srv.addr, "GET", "/api/session", &[("Cookie", &cookie)], "").await;
        serde_json::from_str::<serde_json::Value>(&a.body).unwrap()["csrf"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let own = format!("http://{}", srv.addr);
    let referer = format!("http://{}/settings", srv.addr);
    let cases: [(Vec<(&str, &str)>, u16); 7] = [
        (
            vec![("Cookie", &cookie), ("Origin", "http://evil.example")],
            403,
        ),
        (vec![("Cookie", &cookie), ("Origin", "null")], 403),
        (
            vec![("Cookie", &cookie), ("Referer", "http://evil.example/x")],
            403,
        ),
        (vec![("Cookie", &cookie)], 403),
        (vec![("Cookie", &cookie), ("X-CSRF-Token", &csrf)], 200),
        (vec![("Cookie", &cookie), ("Origin", &own)], 200),
        (vec![("Cookie", &cookie), ("Referer", &referer)], 200),
    ];
    for (headers, want) in cases {
        let a = req(srv.addr, "POST", "/api/config/reload", &headers, "").await;
        assert_eq!(a.status, want, "{headers:?}: {}", a.body);
    }
    // A wrong CSRF token is refused too; a bearer token needs none, but a
    // foreign Origin is refused whatever the credentials.
    let a = req(
        srv.addr,
        "POST",
        "/api/config/reload",
        &[("Cookie", &cookie), ("X-CSRF-Token", "00")],
        "",
    )
    .await;
    assert_eq!(a.status, 403);
    let bearer = format!("Bearer {token}");
    let a = req(
        srv.addr,
        "POST",
        "/api/config/reload",
        &[("Authorization", &bearer)],
        "",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = req(
        srv.addr,
        "POST",
        "/api/config/reload",
        &[
            ("Authorization", &bearer),
            ("Origin", "http://evil.example"),
        ],
        "",
    )
    .await;
    assert_eq!(a.status, 403);
    // The login form from another site, too.
    let a = req(
        srv.addr,
        "POST",
        "/login",
        &[("Origin", "http://evil.example")],
        "",
    )
    .await;
    assert_eq!(a.status, 403);
}

#[test]
fn only_the_appliances_own_names_are_answered() {
    for ok in [
        "127.0.0.1:8080",
        "[::1]:8080",
        "192.168.1.20",
        "cairn",
        "cairn:8080",
        "cairn.local:8080",
        "CAIRN.LOCAL",
        "cairn.home.arpa",
        "cairn.lan",
        "localhost:8080",
    ] {
        assert!(known_host_name(ok), "{ok}");
    }
    for bad in [
        "evil.example",
        "evil.example:8080",
        "cairn.evil.com",
        "192.168.1.20.nip.io",
        "[nonsense]",
    ] {
        assert!(!known_host_name(bad), "{bad}");
    }
}

#[tokio::test]
async fn a_rebound_host_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let a = req(
        srv.addr,
        "GET",
        "/health",
        &[("Host", "evil.example:8080")],
        "",
    )
    .await;
    assert_eq!(a.status, 421, "{}", a.head);
    let a = req(
        srv.addr,
        "POST",
        "/setup/claim/button",
        &[
            ("Host", "evil.example:8080"),
            ("Origin", "http://evil.example:8080"),
        ],
        "",
    )
    .await;
    assert_eq!(a.status, 421, "{}", a.head);
    let a = req(
        srv.addr,
        "GET",
        "/health",
        &[("Host", "cairn.local:8080")],
        "",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.head);
}

#[tokio::test]
async fn wrong_passwords_make_the_client_wait() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    claim(&srv, dir.path()).await;
    for _ in 0..auth::FREE_FAILURES {
        let a = req(
            srv.addr,
            "POST",
            "/login",
            &[],
            r#"{"password":"guess guess guess"}"#,
        )
        .await;
        assert_eq!(a.status, 401, "{}", a.body);
    }
    let body = format!(r#"{{"password":"{PASSWORD}"}}"#);
    let a = req(srv.addr, "POST", "/login", &[], &body).await;
    assert_eq!(a.status, 429, "even the right password waits: {}", a.body);
    let after: u64 = a.header("retry-after").unwrap().parse().unwrap();
    assert!(after >= 25, "{after}");
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    for path in [
        "/health",
        "/login",
        "/setup",
        "/static/style.css",
        "/api/status",
        "/nope",
    ] {
        let a = req(srv.addr, "GET", path, &[], "").await;
        let csp = a.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}");
        assert_eq!(
            a.header("x-frame-options").as_deref(),
            Some("DENY"),
            "{path}"
        );
        assert_eq!(
            a.header("x-content-type-options").as_deref(),
            Some("nosniff"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_first_page_load_weighs_under_250_kb() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let page = req(srv.addr, "GET", "/setup", &[], "").await;
    let assets: usize = assets::sizes().iter().map(|(_, n)| n).sum();
    let total = page.body.len() + assets;
    assert!(total < 250_000, "{total} bytes");
    for (name, _) in assets::sizes() {
        assert!(
            page.body.contains(&format!("/static/{name}")),
            "{name} is not linked"
        );
    }
}

#[tokio::test]
async fn the_simulated_button_answers_only_on_the_machine_and_a_claim_takes_the_press() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let start = req(srv.addr, "POST", "/setup/claim/button", &[], "").await;
    assert_eq!(start.status, 200, "{}", start.body);
    let id = serde_json::from_str::<serde_json::Value>(&start.body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let body = format!(r#"{{"password":"{PASSWORD}","claim":"{id}"}}"#);
    assert_eq!(
        req(srv.addr, "POST", "/setup/claim", &[], &body)
            .await
            .status,
        403,
        "no press yet"
    );
    assert_eq!(
        req(srv.addr, "POST", "/sim/press", &[], r#"{"ms":200}"#)
            .await
            .status,
        204
    );
    let mut pressed = false;
    for _ in 0..50 {
        let s = req(
            srv.addr,
            "GET",
            &format!("/setup/claim/button?id={id}"),
            &[],
            "",
        )
        .await;
        if s.body.contains("\"pressed\":true") {
            pressed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(pressed);
    assert_eq!(
        req(srv.addr, "POST", "/setup/claim", &[], &body)
            .await
            .status,
        200
    );
    // That press was the claim's, not a backup.
    assert!(srv.daemon.status().waiting.is_empty());
}

#[tokio::test]
async fn two_browsers_waiting_for_the_button_turn_it_off() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let first = req(srv.addr, "POST", "/setup/claim/button", &[], "").await;
    let id = serde_json::from_str::<serde_json::Value>(&first.body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The same browser may wait again.
    let body = format!(r#"{{"previous":"{id}"}}"#);
    let again = req(srv.addr, "POST", "/setup/claim/button", &[], &body).await;
    assert_eq!(again.status, 200, "{}", again.body);
    // A second browser: neither may wait, and the LEDs stop asking.
    let other = req(srv.addr, "POST", "/setup/claim/button", &[], "").await;
    assert_eq!(other.status, 409);
    assert!(other.body.contains("another browser"), "{}", other.body);
    assert_eq!(srv.daemon.claim_pressed(), None);
    let poll = req(
        srv.addr,
        "GET",
        &format!("/setup/claim/button?id={id}"),
        &[],
        "",
    )
    .await;
    assert_eq!(poll.status, 404);
    let locked = req(srv.addr, "POST", "/setup/claim/button", &[], &body).await;
    assert_eq!(locked.status, 409);
    assert!(locked.body.contains("off for"), "{}", locked.body);
    // A press now backs up nothing and claims nothing; the code still claims.
    assert_eq!(
        req(srv.addr, "POST", "/sim/press", &[], r#"{"ms":200}"#)
            .await
            .status,
        204
    );
    let body = format!(r#"{{"password":"{PASSWORD}","claim":"{id}"}}"#);
    assert_eq!(
        req(srv.addr, "POST", "/setup/claim", &[], &body)
            .await
            .status,
        403
    );
    claim(&srv, dir.path()).await;
}

#[tokio::test]
async fn a_password_change_needs_the_current_one_and_ends_other_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let mine = format!("Bearer {}", claim(&srv, dir.path()).await);
    let login = |password: &str| {
        let body = format!(r#"{{"password":"{password}"}}"#);
        async move { req(srv.addr, "POST", "/login", &[], &body).await }
    };
    let other = login(PASSWORD).await;
    assert_eq!(other.status, 200, "{}", other.body);
    let v: serde_json::Value = serde_json::from_str(&other.body).unwrap();
    let other = format!("Bearer {}", v["token"].as_str().unwrap());
    let change = |current: &str, new: &str| {
        let body = format!(r#"{{"current":"{current}","new":"{new}"}}"#);
        let mine = mine.clone();
        async move {
            req(
                srv.addr,
                "POST",
                "/api/password",
                &[("Authorization", &mine)],
                &body,
            )
            .await
        }
    };
    let wrong = change("not the password", "a new long password").await;
    assert_eq!(wrong.status, 403, "{}", wrong.body);
    let short = change(PASSWORD, "short").await;
    assert_eq!(short.status, 400, "{}", short.body);
    let status = |token: String| async move {
        req(
            srv.addr,
            "GET",
            "/api/status",
            &[("Authorization", &token)],
            "",
        )
        .await
        .status
    };
    assert_eq!(status(other.clone()).await, 200, "refusals change nothing");
    let ok = change(PASSWORD, "a new long password").await;
    assert_eq!(ok.status, 204, "{}", ok.body);
    assert_eq!(status(other).await, 401, "the other session ended");
    assert_eq!(status(mine.clone()).await, 200, "this one goes on");
    assert_eq!(login(PASSWORD).await.status, 401);
    assert_eq!(login("a new long password").await.status, 200);
}
