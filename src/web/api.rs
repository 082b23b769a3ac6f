//! The JSON API under `/api/` (every route needs a session), `/health`,
//! `/metrics`, and the simulated board's button for whoever is on the
//! machine itself.

use super::{App, blocking, error};
use crate::appliance::daemon;
use crate::appliance::jobs::{Kind, Origin, RestoreSpec};
use axum::Json;
use axum::extract::{ConnectInfo, Extension, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

pub async fn health(State(app): State<App>) -> Json<serde_json::Value> {
    let auth = app.auth.clone();
    let s = blocking(move || app.daemon.status()).await;
    Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "configured": s.configured,
        "config_ok": s.config_error.is_none(),
        "claimed": auth.claimed(),
        "board": s.board,
        "board_error": s.board_error,
    }))
}

/// The session's CSRF token, for scripts that send no `Origin`.
pub async fn session(Extension(s): Extension<super::auth::SessionInfo>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "csrf": s.csrf }))
}

pub async fn status(State(app): State<App>) -> Json<daemon::Status> {
    Json(blocking(move || app.daemon.status()).await)
}

/// The status, pushed whenever it changes (and at least every 15 s as a
/// comment, so proxies keep the stream). Ends when the daemon stops or the
/// session does (logout, a password change).
pub async fn events(
    State(app): State<App>,
    Extension(session): Extension<super::auth::SessionInfo>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let token = session.token;
    let stream = futures_util::stream::unfold((app, String::new()), move |(app, last)| {
        let token = token.clone();
        async move {
            loop {
                // Logged out (or the password changed): the stream ends.
                app.auth.session(&token)?;
                let d = app.daemon.clone();
                let (stopping, text) = blocking(move || {
                    let v = serde_json::to_value(d.status()).unwrap_or_default();
                    // The clock alone moving is no change.
                    let mut k = v.clone();
                    if let Some(o) = k.as_object_mut() {
                        o.remove("now");
                    }
                    (d.is_stopping(), (k.to_string(), v.to_string()))
                })
                .await;
                if stopping {
                    return None;
                }
                let (key, body) = text;
                if key != last {
                    let e = Event::default().event("status").data(body);
                    return Some((Ok(e), (app, key)));
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    kind: Kind,
    plan: Option<String>,
    /// A restore's time, path and destination name.
    restore: Option<RestoreSpec>,
}

pub async fn submit(State(app): State<App>, Json(req): Json<JobRequest>) -> Response {
    let r = blocking(move || {
        let d = &app.daemon;
        let plan = req
            .plan
            .or_else(|| d.first_plan())
            .ok_or_else(|| "no plan is configured".to_string())?;
        match (req.kind, req.restore) {
            (Kind::Restore, Some(spec)) => d
                .submit_restore(&plan, spec, Origin::Api)
                .map(|id| (id, false)),
            (_, Some(_)) => Err("`restore` goes only with \"kind\":\"restore\"".to_string()),
            (kind, None) => d.submit(&plan, kind, Origin::Api),
        }
    })
    .await;
    match r {
        Ok((id, merged)) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({"id": id, "merged": merged})),
        )
            .into_response(),
        Err(e) => error(StatusCode::CONFLICT, e),
    }
}

pub async fn cancel(State(app): State<App>, Path(id): Path<u64>) -> Response {
    if blocking(move || app.daemon.cancel(id)).await {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(StatusCode::NOT_FOUND, "no such job waiting or running")
    }
}

pub async fn reload(State(app): State<App>) -> Response {
    let s = blocking(move || {
        app.daemon.reload();
        app.daemon.status()
    })
    .await;
    Json(serde_json::json!({"config_error": s.config_error})).into_response()
}

/// The board's LEDs; a simulated board's also with its last changes
/// (`[ms, green, red]`, oldest first).
pub async fn board(State(app): State<App>) -> Json<serde_json::Value> {
    let d = app.daemon;
    let sim = d.sim_board().map(|b| (b.leds(), b.history()));
    let s = blocking(move || d.status()).await;
    let (green, red) = sim.as_ref().map_or((s.leds.green, s.leds.red), |x| x.0);
    let history: Vec<_> = sim.map(|x| x.1).unwrap_or_default();
    let recent = &history[history.len().saturating_sub(256)..];
    Json(serde_json::json!({"kind": s.board, "green": green, "red": red, "history": recent}))
}

#[derive(serde::Deserialize)]
pub struct Press {
    ms: u64,
}

fn press_sim(app: &App, ms: u64) -> Response {
    match app.daemon.sim_board() {
        Some(b) => {
            b.press(Duration::from_millis(ms.min(60_000)));
            StatusCode::NO_CONTENT.into_response()
        }
        None => error(
            StatusCode::CONFLICT,
            "the board is not simulated; press the real button",
        ),
    }
}

/// Presses the simulated button (a session).
pub async fn press(State(app): State<App>, Json(p): Json<Press>) -> Response {
    press_sim(&app, p.ms)
}

/// Presses the simulated button without a session, for whoever is on the
/// machine itself (the simulated board's stand-in for being in the room).
pub async fn sim_press(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(p): Json<Press>,
) -> Response {
    if !peer.ip().is_loopback() {
        return error(
            StatusCode::FORBIDDEN,
            "the simulated button is pressed only from the machine itself",
        );
    }
    press_sim(&app, p.ms)
}

#[derive(serde::Deserialize)]
pub struct SetClock {
    now: i64,
}

pub async fn set_clock(State(app): State<App>, Json(c): Json<SetClock>) -> Response {
    if blocking(move || app.daemon.set_clock(c.now)).await {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(
            StatusCode::CONFLICT,
            "the clock is the system's; start with --sim-clock to set it",
        )
    }
}

pub async fn metrics(State(app): State<App>) -> Response {
    let text = blocking(move || app.daemon.metrics()).await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

#[derive(serde::Deserialize)]
pub struct RunsQuery {
    limit: Option<usize>,
}

/// The catalog's recorded runs and events, newest first.
/// `GET /api/runs/{id}/log`: one run's log.
pub async fn run_log(State(app): State<App>, Path(id): Path<i64>) -> Response {
    match blocking(move || super::browse::run_log(&app, id)).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => error(StatusCode::NOT_FOUND, e),
    }
}

pub async fn runs(State(app): State<App>, Query(q): Query<RunsQuery>) -> Response {
    let limit = q.limit.unwrap_or(100).min(1000);
    let r = blocking(move || super::browse::history_of_runs(&app, limit)).await;
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}
