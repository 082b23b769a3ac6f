//! The dashboard: the appliance's pages and its JSON API, on the daemon's
//! ([`crate::appliance::daemon`]) and the catalog's ([`crate::catalog`])
//! library calls. Templates and assets live in the top-level `web/` folder
//! and are compiled into the binary (no CDN; works with no internet).
//!
//! | module | what |
//! | --- | --- |
//! | [`auth`] | the owner's password, sessions, the login limit, the claim token |
//! | `gate` (here) | one table of routes, each public or behind a session; CSRF; security headers |
//! | `setup` | first run: claim (button or token), target, passphrase, schedule, the recovery kit |
//! | `pages` | overview, sets, browse, jobs, settings (HTML, readable without JavaScript) |
//! | `api` | the JSON API under `/api/`, server-sent events, `/metrics` |
//! | `browse` | the catalog's trees, search and histories; downloads as tar or zip built while restoring |
//! | `settings` | schedule, retention, notifications (and their test), pins, password |
//! | `plans` | what a plan backs up and where to (S3 keys included); plans added and removed |
//! | `views` | templates and the small formatting helpers they use |
//! | [`tls`] | optional HTTPS: the certificate made on the appliance, the TLS listener |
//! | [`server`] | connections: a cap, a header-read timeout, graceful shutdown |
//!
//! Every route is in [`routes`] with its access; the router is built from
//! that table only, so a route cannot be added without saying who may use
//! it, and the tests walk the same table.

pub mod auth;

mod api;
mod assets;
mod browse;
mod pages;
mod plans;
pub mod server;
mod settings;
mod setup;
pub mod tls;
mod views;

use crate::appliance::daemon::Daemon;
use auth::{Auth, SessionInfo};
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, State};
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, post};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

/// The session cookie's name.
pub const COOKIE: &str = "cairn_session";
/// The header that carries a session's CSRF token (scripts without an
/// `Origin` header, and the pages' own requests).
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The dashboard's shared state.
#[derive(Clone)]
pub struct App {
    pub daemon: Daemon,
    pub auth: Arc<Auth>,
    views: Arc<views::Views>,
}

impl App {
    /// The dashboard of `daemon`; its accounts live beside the configuration.
    pub fn new(daemon: Daemon) -> App {
        let dir = daemon
            .config_file()
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        let app = App {
            daemon,
            auth: Arc::new(Auth::new(&dir)),
            views: Arc::new(views::Views::new()),
        };
        setup::resume_rebuild(&app);
        // Key files a power cut left unsaved or unremoved.
        plans::sweep_keys(&app);
        plans::sweep_probe_keys(&app);
        app
    }
}

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: the login page, the claim flow, static assets, `/health`.
    Public,
    /// A logged-in owner (a session cookie or `Authorization: Bearer`).
    Session,
}

/// One route of the table.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    handler: MethodRouter<App>,
}

fn r(method: Method, path: &'static str, access: Access, handler: MethodRouter<App>) -> Route {
    Route {
        method,
        path,
        access,
        handler,
    }
}

/// Every route, with its access.
pub fn routes() -> Vec<Route> {
    use Access::{Public, Session};
    use Method as M;
    vec![
        r(M::GET, "/health", Public, get(api::health)),
        r(M::GET, "/static/{file}", Public, get(assets::serve)),
        r(M::GET, "/login", Public, get(pages::login_page)),
        r(M::POST, "/login", Public, post(pages::login)),
        r(M::GET, "/setup", Public, get(setup::page)),
        r(M::POST, "/setup/claim", Public, post(setup::claim)),
        r(
            M::POST,
            "/setup/claim/button",
            Public,
            post(setup::claim_button),
        ),
        r(
            M::GET,
            "/setup/claim/button",
            Public,
            get(setup::claim_button_state),
        ),
        r(M::POST, "/sim/press", Public, post(api::sim_press)),
        r(M::POST, "/logout", Session, post(pages::logout)),
        r(M::GET, "/", Session, get(pages::overview)),
        r(M::GET, "/sets", Session, get(pages::sets)),
        r(M::GET, "/browse", Session, get(pages::browse)),
        r(M::GET, "/history", Session, get(pages::history)),
        r(M::GET, "/jobs", Session, get(pages::jobs)),
        r(M::GET, "/jobs/{id}", Session, get(pages::run_log)),
        r(M::GET, "/settings", Session, get(pages::settings)),
        r(M::GET, "/setup/kit", Session, get(setup::kit_page)),
        r(M::GET, "/metrics", Session, get(api::metrics)),
        r(M::GET, "/api/session", Session, get(api::session)),
        r(M::GET, "/api/status", Session, get(api::status)),
        r(M::GET, "/api/events", Session, get(api::events)),
        r(M::POST, "/api/jobs", Session, post(api::submit)),
        r(M::POST, "/api/jobs/{id}/cancel", Session, post(api::cancel)),
        r(M::POST, "/api/config/reload", Session, post(api::reload)),
        r(M::GET, "/api/board", Session, get(api::board)),
        r(M::POST, "/api/board/press", Session, post(api::press)),
        r(M::POST, "/api/clock", Session, post(api::set_clock)),
        r(M::GET, "/api/runs", Session, get(api::runs)),
        r(M::GET, "/api/runs/{id}/log", Session, get(api::run_log)),
        r(M::GET, "/api/sets", Session, get(browse::sets)),
        r(M::GET, "/api/ls", Session, get(browse::ls)),
        r(M::GET, "/api/find", Session, get(browse::find)),
        r(M::GET, "/api/history", Session, get(browse::history)),
        r(M::GET, "/api/download", Session, get(browse::download)),
        r(
            M::POST,
            "/api/setup/test",
            Session,
            post(setup::test_target),
        ),
        r(M::POST, "/api/setup", Session, post(setup::save)),
        r(M::POST, "/api/setup/confirm", Session, post(setup::confirm)),
        r(M::GET, "/api/setup/kit.txt", Session, get(setup::kit_text)),
        r(M::POST, "/api/kit/unlock", Session, post(setup::unlock_kit)),
        r(
            M::GET,
            "/api/kit/unlock",
            Session,
            get(setup::unlock_kit_state),
        ),
        r(
            M::GET,
            "/api/schedule/preview",
            Session,
            get(settings::preview),
        ),
        r(
            M::POST,
            "/api/settings/schedule",
            Session,
            post(settings::schedule),
        ),
        r(
            M::GET,
            "/api/retention/preview",
            Session,
            get(settings::retention_preview),
        ),
        r(
            M::POST,
            "/api/settings/retention",
            Session,
            post(settings::retention),
        ),
        r(M::POST, "/api/password", Session, post(settings::password)),
        r(
            M::POST,
            "/api/settings/notify",
            Session,
            post(settings::notify),
        ),
        r(M::POST, "/api/settings/pins", Session, post(settings::pins)),
        r(M::POST, "/api/settings/plan", Session, post(plans::change)),
        r(
            M::POST,
            "/api/settings/plan/remove",
            Session,
            post(plans::remove),
        ),
        r(
            M::POST,
            "/api/settings/notify/test",
            Session,
            post(settings::notify_test),
        ),
    ]
}

/// Each (method, path) and its access, for the gate.
fn access_table() -> &'static BTreeMap<(String, &'static str), Access> {
    static TABLE: OnceLock<BTreeMap<(String, &'static str), Access>> = OnceLock::new();
    TABLE.get_or_init(|| {
        routes()
            .into_iter()
            .map(|r| ((r.method.to_string(), r.path), r.access))
            .collect()
    })
}

/// The access of a matched route (HEAD as GET); a method the table does not
/// list needs a session, so nothing is public by accident.
fn access_of(method: &Method, path: &str) -> Access {
    let m = if method == Method::HEAD {
        "GET".to_string()
    } else {
        method.to_string()
    };
    access_table()
        .iter()
        .find(|((tm, tp), _)| *tm == m && *tp == path)
        .map_or(Access::Session, |(_, a)| *a)
}

/// The dashboard's router.
pub fn router(app: App) -> Router {
    let mut by_path: BTreeMap<&'static str, MethodRouter<App>> = BTreeMap::new();
    for route in routes() {
        let m = match by_path.remove(route.path) {
            Some(m) => m.merge(route.handler),
            None => route.handler,
        };
        by_path.insert(route.path, m);
    }
    let mut router = Router::new();
    for (path, m) in by_path {
        router = router.route(path, m);
    }
    router
        .route_layer(middleware::from_fn_with_state(app.clone(), gate))
        .layer(middleware::from_fn(known_host))
        .layer(middleware::from_fn(security_headers))
        .layer(DefaultBodyLimit::max(256 * 1024))
        .with_state(app)
}

/// The router for HTTPS connections: [`router`], its session cookies `Secure`.
pub fn router_tls(app: App) -> Router {
    router(app).layer(middleware::from_fn(secure_cookies))
}

/// Plain HTTP beside HTTPS on `https_port`: `/health` answers, every other
/// request is redirected to the same path over HTTPS.
pub fn redirect_to_https(app: App, https_port: u16) -> Router {
    let health = routes()
        .into_iter()
        .find(|r| r.path == "/health")
        .expect("a health route")
        .handler;
    Router::new()
        .route("/health", health)
        .fallback(move |req: Request<Body>| async move { to_https(&req, https_port) })
        .layer(middleware::from_fn(known_host))
        .layer(middleware::from_fn(security_headers))
        .with_state(app)
}

/// The same request's URL over HTTPS on `port`. Only a plain host name or
/// address is carried into the redirect (temporary, so turning HTTPS off
/// again leaves no browser stuck on it).
fn to_https(req: &Request<Body>, port: u16) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let name = match host.strip_prefix('[') {
        Some(v6) => v6
            .split_once(']')
            .filter(|(a, _)| a.parse::<std::net::Ipv6Addr>().is_ok())
            .map(|(a, _)| format!("[{a}]")),
        None => host
            .split(':')
            .next()
            .filter(|n| {
                n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            })
            .map(str::to_string),
    }
    .filter(|n| !n.is_empty());
    let Some(name) = name else {
        return (
            StatusCode::BAD_REQUEST,
            "a plain host name or address is needed\n",
        )
            .into_response();
    };
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    Redirect::temporary(&format!("https://{name}:{port}{path}")).into_response()
}

/// Marks every cookie set over HTTPS `Secure`.
async fn secure_cookies(req: Request<Body>, next: Next) -> Response {
    let mut r = next.run(req).await;
    let set: Vec<HeaderValue> = r
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| HeaderValue::from_str(&format!("{v}; Secure")).ok())
        .collect();
    if !set.is_empty() {
        r.headers_mut().remove(header::SET_COOKIE);
        for v in set {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

/// How a request presents its session.
enum Presented {
    None,
    Cookie(String),
    Bearer(String),
}

fn presented(h: &HeaderMap) -> Presented {
    if let Some(token) = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Presented::Bearer(token.trim().to_string());
    }
    match cookie(h, COOKIE) {
        Some(t) => Presented::Cookie(t),
        None => Presented::None,
    }
}

/// A cookie's value.
pub fn cookie(h: &HeaderMap, name: &str) -> Option<String> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Checks who is asking before the route runs: CSRF for every request that
/// changes something, a session where the table asks for one. The session
/// is handed to the handler as an extension.
async fn gate(State(app): State<App>, mut req: Request<Body>, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let access = access_of(req.method(), &path);
    let (session, by_cookie) = match presented(req.headers()) {
        Presented::None => (None, false),
        Presented::Cookie(t) => (app.auth.session(&t), true),
        Presented::Bearer(t) => (app.auth.session(&t), false),
    };
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if unsafe_method && let Err(why) = csrf_check(req.headers(), session.as_ref(), by_cookie) {
        return (
            StatusCode::FORBIDDEN,
            axum::Json(serde_json::json!({"error": why})),
        )
            .into_response();
    }
    match session {
        Some(s) => {
            req.extensions_mut().insert(s);
        }
        None if access == Access::Session => return unauthorized(&path, app.auth.claimed()),
        None => {}
    }
    next.run(req).await
}

/// A request that changes something must come from the dashboard's own
/// pages: an `Origin` (or `Referer`) naming this host, or, when a browser
/// sent neither, the session's CSRF token. A request without a cookie
/// carries no ambient authority (a bearer token is sent deliberately).
fn csrf_check(
    h: &HeaderMap,
    session: Option<&SessionInfo>,
    by_cookie: bool,
) -> Result<(), &'static str> {
    let host = h.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin = h
        .get(header::ORIGIN)
        .or_else(|| h.get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    if let Some(origin) = origin {
        return match host {
            Some(host) if same_origin(origin, host) => Ok(()),
            _ => Err("refused: this request came from another site (Origin does not match)"),
        };
    }
    match session {
        Some(s) if by_cookie => {
            let token = h.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            if token.is_some_and(|t| auth::same(t.as_bytes(), s.csrf.as_bytes())) {
                Ok(())
            } else {
                Err("refused: no Origin header and no X-CSRF-Token (GET /api/session gives it)")
            }
        }
        _ => Ok(()),
    }
}

/// Whether `origin` (an Origin or a Referer) is `http(s)://host`.
fn same_origin(origin: &str, host: &str) -> bool {
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    rest.is_some_and(|r| r.split('/').next().unwrap_or("").eq_ignore_ascii_case(host))
}

/// No session: 401 for the API, the login (or claim) page for pages.
fn unauthorized(path: &str, claimed: bool) -> Response {
    if path.starts_with("/api/") || path == "/metrics" {
        let error = if claimed {
            "log in first: POST /login with the owner's password"
        } else {
            "this appliance is not claimed yet: open /setup"
        };
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            axum::Json(serde_json::json!({ "error": error })),
        )
            .into_response();
    }
    Redirect::to(if claimed { "/login" } else { "/setup" }).into_response()
}

/// Whether a `Host` header names this appliance the way a LAN reaches it:
/// an address, a name without dots (`cairn`), or a name under a suffix no
/// one can register in public DNS (`cairn.local`, `.lan`, `.home.arpa`, …).
/// A page from another site that rebinds its own DNS name to the
/// appliance's address (DNS rebinding) is thereby refused.
pub fn known_host_name(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => {
            return v6
                .split(']')
                .next()
                .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok());
        }
        None => host.rsplit_once(':').map_or(host, |(n, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                n
            } else {
                host
            }
        }),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    const LOCAL: [&str; 6] = [
        ".local",
        ".lan",
        ".home",
        ".internal",
        ".home.arpa",
        ".localhost",
    ];
    name.parse::<std::net::IpAddr>().is_ok()
        || !name.contains('.')
        || LOCAL.iter().any(|s| name.ends_with(s))
}

/// Refuses requests for a host name that is not this appliance's (see
/// [`known_host_name`]).
async fn known_host(req: Request<Body>, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok());
    match host {
        Some(h) if !known_host_name(h) => (
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "this appliance answers to its address, its name (cairn.local) or localhost, not to {h:?}\n"
            ),
        )
            .into_response(),
        _ => next.run(req).await,
    }
}

/// The session cookie for `token` (`Max-Age` 0 clears it).
pub fn session_cookie(token: &str, max_age: u64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}"
    ))
    .expect("ASCII")
}

/// Headers every answer carries: a CSP without inline scripts, no framing,
/// no sniffing; pages and API answers are never cached.
async fn security_headers(req: Request<Body>, next: Next) -> Response {
    let asset = req.uri().path().starts_with("/static/");
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !asset && !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

/// Runs a blocking call (the daemon's lock, the catalog, the engine) off
/// the async workers.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("a dashboard call panicked")
}

/// A result as JSON, or its error as a 400 naming what is wrong.
pub(crate) fn answer<T: serde::Serialize>(r: Result<T, String>) -> Response {
    match r {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}

/// A JSON error with a status.
pub(crate) fn error(code: StatusCode, msg: impl std::fmt::Display) -> Response {
    (
        code,
        axum::Json(serde_json::json!({"error": msg.to_string()})),
    )
        .into_response()
}

#[cfg(test)]
mod tests;
