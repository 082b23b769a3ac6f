//! The pages: drawn on the server from the daemon's state and the catalog,
//! readable without JavaScript (which only adds live progress and the
//! buttons that act).

use super::auth::SessionInfo;
use super::browse::{self, Where};
use super::setup::{Refused, check_owner, logged_in, too_many};
use super::views::{ago, colour, sentence, size, when};
use super::{App, blocking, error, session_cookie};
use crate::appliance::daemon::{PlanState, Status};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Extension, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::Serialize;
use std::net::SocketAddr;

pub async fn login_page(State(app): State<App>) -> Response {
    if !app.auth.claimed() {
        return Redirect::to("/setup").into_response();
    }
    app.views.page("login.html", context! { title => "Log in" })
}

/// `POST /login`: a form (the page, without JavaScript) or JSON (scripts:
/// `{"password":…}` answers `{"token":…,"csrf":…}`).
pub async fn login(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let password = if json {
        serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["password"].as_str().map(str::to_string))
    } else {
        form_urlencoded::parse(&body)
            .find(|(k, _)| k == "password")
            .map(|(_, v)| v.into_owned())
    }
    .unwrap_or_default();
    let fail = |code: StatusCode, msg: String| {
        if json {
            error(code, msg)
        } else {
            let mut r = app
                .views
                .page("login.html", context! { title => "Log in", error => msg });
            *r.status_mut() = code;
            r
        }
    };
    if !app.auth.claimed() {
        return fail(StatusCode::CONFLICT, "not claimed yet: open /setup".into());
    }
    match check_owner(&app, peer.ip(), password).await {
        Ok(()) => {}
        Err(Refused::Wait(wait)) if json => return too_many(wait),
        Err(Refused::Wait(wait)) => {
            let msg = format!("Too many attempts: wait {} s.", wait.as_secs() + 1);
            return fail(StatusCode::TOO_MANY_REQUESTS, msg);
        }
        Err(Refused::Wrong) => return fail(StatusCode::UNAUTHORIZED, "Wrong password.".into()),
    }
    let s = app.auth.new_session();
    if json {
        return logged_in(&s);
    }
    let mut r = Redirect::to("/").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&s.token, super::auth::ABSOLUTE.as_secs()),
    );
    r
}

pub async fn logout(State(app): State<App>, Extension(s): Extension<SessionInfo>) -> Response {
    app.auth.end_session(&s.token);
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, session_cookie("", 0));
    r
}

/// One plan on the overview.
#[derive(Serialize)]
struct PlanView {
    id: String,
    target: String,
    schedule: String,
    describe: String,
    last_success: String,
    last_success_ago: String,
    next_run: String,
    last_error: Option<String>,
    problem: Option<String>,
    stored: String,
    sets: usize,
    chains: usize,
    newest_full: String,
    coverage: Option<String>,
    replicas: Vec<(String, String)>,
}

fn plan_view(app: &App, p: &PlanState, now: i64) -> PlanView {
    let sets = browse::open(app, Some(&p.id))
        .and_then(|o| browse::sets_of(&o))
        .unwrap_or_default();
    let stored: u64 = sets.iter().filter_map(|s| s.stored_bytes).sum();
    let unknown = sets.iter().filter(|s| s.stored_bytes.is_none()).count();
    let mut chains: Vec<i64> = sets.iter().map(|s| s.chain).collect();
    chains.dedup();
    PlanView {
        id: p.id.clone(),
        target: p.target.clone(),
        schedule: p.schedule.clone(),
        describe: p.describe.clone(),
        last_success: when(p.last_success),
        last_success_ago: p.last_success.map(|t| ago(t, now)).unwrap_or_default(),
        next_run: when(p.next_run),
        last_error: p.last_error.clone(),
        problem: p.problem.clone(),
        stored: match unknown {
            0 => size(stored),
            n if n == sets.len() => "an unknown amount (the target did not report sizes)".into(),
            n => format!("at least {} ({n} sets of unknown size)", size(stored)),
        },
        sets: sets.len(),
        chains: chains.len(),
        newest_full: chains.last().map_or("none".into(), |t| ago(*t, now)),
        coverage: p.verify_coverage.map(|c| format!("{:.0} %", c * 100.0)),
        replicas: p
            .replicas
            .iter()
            .map(|r| {
                let state = match (r.last_ok, &r.last_error) {
                    (Some(false), Some(e)) => format!("failed: {e}"),
                    _ => format!("last copy {}", when(r.last_success)),
                };
                (r.target.clone(), state)
            })
            .collect(),
    }
}

/// What the owner should look at, each with what to do.
fn warnings(s: &Status) -> Vec<String> {
    let mut w = Vec::new();
    if let Some(e) = &s.config_error {
        w.push(format!(
            "The configuration is not used: {e}. Fix it in the file, then it is read again on its own."
        ));
    }
    if !s.clock_ok {
        w.push(
            "The clock is not set (no network time yet): backups wait for it. Check the network."
                .into(),
        );
    }
    for p in &s.plans {
        if let Some(e) = &p.last_error {
            w.push(format!(
                "Plan {}: the last run failed: {e}. Check that the target is reachable, then press Back up now.",
                p.id
            ));
        }
        if let Some(e) = &p.problem {
            w.push(format!(
                "Plan {}: {e}. Run a verify; a damaged volume is replaced by the next full backup.",
                p.id
            ));
        }
    }
    for p in s
        .plans
        .iter()
        .filter(|p| p.last_success.is_none() && p.last_error.is_none())
    {
        w.push(format!(
            "Plan {}: no backup yet. The first runs {}; or press Back up now.",
            p.id,
            p.next_run
                .map_or("at the next scheduled time".into(), |t| format!(
                    "on {}",
                    when(Some(t))
                ))
        ));
    }
    let never = s.plans.iter().all(|p| p.last_success.is_none());
    if s.health == "stale" && !never {
        w.push("No recent successful backup: the last success is older than the schedule allows. Press Back up now.".into());
    }
    if let Some(e) = &s.board_error {
        w.push(format!("The LEDs and button are simulated: {e}."));
    }
    w
}

/// The running job's progress for people: percent, rate, time left.
fn running_view(s: &Status) -> Option<serde_json::Value> {
    let r = s.running.as_ref()?;
    let p = &r.progress;
    let secs = (s.now - r.started).max(1) as u64;
    let rate = p.bytes_done / secs;
    let left = p.bytes_total.saturating_sub(p.bytes_done);
    Some(serde_json::json!({
        "kind": r.job.kind.name(),
        "plan": r.job.plan,
        "percent": (p.bytes_total > 0).then(|| p.bytes_done * 100 / p.bytes_total),
        "done": size(p.bytes_done),
        "total": size(p.bytes_total),
        "rate": format!("{}/s", size(rate)),
        "eta": (rate > 0 && p.bytes_total > 0).then(|| ago(s.now + (left / rate) as i64, s.now)),
        "volumes": p.volumes,
    }))
}

fn leave_if_unset(app: &App) -> Option<Response> {
    if !app.daemon.configured() {
        return Some(Redirect::to("/setup").into_response());
    }
    None
}

pub async fn overview(State(app): State<App>, Extension(s): Extension<SessionInfo>) -> Response {
    if let Some(r) = leave_if_unset(&app) {
        return r;
    }
    let a = app.clone();
    let (st, plans) = blocking(move || {
        let st = a.daemon.status();
        let plans: Vec<PlanView> = st.plans.iter().map(|p| plan_view(&a, p, st.now)).collect();
        (st, plans)
    })
    .await;
    let ctx = context! {
        title => "Overview",
        nav => "overview",
        csrf => s.csrf,
        health => st.health,
        sentence => sentence(st.health),
        colour => colour(st.health),
        leds => context! { green => st.leds.green, red => st.leds.red },
        board => st.board,
        plans => plans,
        warnings => warnings(&st),
        running => running_view(&st),
        waiting => st.waiting.len(),
    };
    app.views.page("overview.html", ctx)
}

/// The timeline of sets as an SVG bar chart: one bar per set, its height
/// the bytes it stored (log scale), fulls dark, chains separated by gaps.
fn timeline_svg(sets: &[browse::SetView]) -> String {
    let w = 720.0_f64;
    let h = 160.0_f64;
    let n = sets.len().max(1) as f64;
    let step = w / n;
    let max = sets
        .iter()
        .filter_map(|s| s.stored_bytes)
        .max()
        .unwrap_or(1)
        .max(2) as f64;
    let mut out = format!(
        "<svg class=\"timeline\" viewBox=\"0 0 {w} {}\" role=\"img\" aria-label=\"backup sets over time\">",
        h + 20.0
    );
    for (i, s) in sets.iter().enumerate() {
        let bytes = s.stored_bytes.unwrap_or(0).max(1) as f64;
        let bh = (bytes.ln() / max.ln() * h).clamp(2.0, h);
        let x = i as f64 * step;
        let class = if s.full { "full" } else { "inc" };
        out += &format!(
            "<rect class=\"{class}\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\"><title>{} {}: {} stored, {} new, {} changed, {} deleted</title></rect>",
            h - bh,
            (step * 0.8).max(1.0),
            if s.full { "full" } else { "incremental" },
            crate::time::to_pretty(s.time),
            size(s.stored_bytes.unwrap_or(0)),
            s.new,
            s.changed,
            s.deleted
        );
    }
    if let (Some(first), Some(last)) = (sets.first(), sets.last()) {
        out += &format!(
            "<text x=\"0\" y=\"{:.0}\">{}</text><text x=\"{w}\" y=\"{:.0}\" text-anchor=\"end\">{}</text>",
            h + 16.0,
            crate::time::to_pretty(first.time),
            h + 16.0,
            crate::time::to_pretty(last.time)
        );
    }
    out + "</svg>"
}

pub async fn sets(State(app): State<App>, Query(w): Query<Where>) -> Response {
    if let Some(r) = leave_if_unset(&app) {
        return r;
    }
    let a = app.clone();
    let r = blocking(move || {
        let o = browse::open(&a, w.plan.as_deref())?;
        let sets = browse::sets_of(&o)?;
        let plans: Vec<String> = o.config.plans.iter().map(|p| p.id.clone()).collect();
        Ok::<_, String>((o.plan.id.clone(), plans, sets))
    })
    .await;
    let (plan, plans, sets) = match r {
        Ok(x) => x,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e),
    };
    let svg = minijinja::Value::from_safe_string(timeline_svg(&sets));
    let rows: Vec<serde_json::Value> = sets
        .iter()
        .rev()
        .map(|s| {
            serde_json::json!({
                "time": s.time, "when": crate::time::to_pretty(s.time), "full": s.full,
                "stored": s.stored_bytes.map_or("unknown".into(), size), "source": size(s.source_bytes),
                "files": s.files, "new": s.new, "changed": s.changed, "deleted": s.deleted,
                "volumes": s.volumes,
            })
        })
        .collect();
    app.views.page(
        "sets.html",
        context! { title => "Sets", nav => "sets", plan => plan, plans => plans, svg => svg, sets => rows },
    )
}

pub async fn browse(State(app): State<App>, Query(w): Query<Where>) -> Response {
    if let Some(r) = leave_if_unset(&app) {
        return r;
    }
    let a = app.clone();
    let r = blocking(move || {
        let o = browse::open(&a, w.plan.as_deref())?;
        let sets = browse::sets_of(&o)?;
        let dir = browse::parse_path(w.path.as_deref())?;
        let q = w.q.clone().filter(|q| !q.trim().is_empty());
        let (t, entries) = match &q {
            Some(q) => (w.t.unwrap_or(0), browse::search(&o, q.trim())?),
            None => browse::list(&o, w.t, &dir)?,
        };
        let original = (!dir.is_root()).then(|| dir.to_path(o.plan.source()).display().to_string());
        Ok::<_, String>(((o.plan.id.clone(), original), sets, dir, q, t, entries))
    })
    .await;
    let ((plan, original), sets, dir, q, t, entries) = match r {
        Ok(x) => x,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let mut crumbs = Vec::new();
    let mut acc = String::new();
    for c in dir.components() {
        let c = String::from_utf8_lossy(c);
        if !acc.is_empty() {
            acc.push('/');
        }
        acc += &c;
        crumbs.push((c.into_owned(), acc.clone()));
    }
    let times: Vec<(i64, String)> = sets
        .iter()
        .rev()
        .map(|s| {
            (
                s.time,
                format!(
                    "{}{}",
                    crate::time::to_pretty(s.time),
                    if s.full { " (full)" } else { "" }
                ),
            )
        })
        .collect();
    let rows: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| {
            serde_json::json!({
                "name": if q.is_some() { e.path.clone() } else { e.name.clone() },
                "path": e.path, "dir": e.kind.as_deref() == Some("dir"), "kind": e.kind,
                "size": size(e.size), "mtime": crate::time::to_pretty(e.mtime), "change": e.change,
            })
        })
        .collect();
    let ctx = context! {
        title => "Browse", nav => "browse", plan => plan, t => t, when => crate::time::to_pretty(t),
        // The top is "" in links and forms (the Index prints it as ".",
        // which parse_path refuses).
        times => times, path => if dir.is_root() { String::new() } else { dir.to_string() },
        root => dir.is_root(), crumbs => crumbs, original => original,
        q => q, entries => rows,
    };
    app.views.page("browse.html", ctx)
}

pub async fn history(State(app): State<App>, Query(w): Query<Where>) -> Response {
    let a = app.clone();
    let r = blocking(move || {
        let o = browse::open(&a, w.plan.as_deref())?;
        let path = browse::parse_path(w.path.as_deref())?;
        Ok::<_, String>((
            o.plan.id.clone(),
            path.to_string(),
            browse::versions(&o, &path)?,
        ))
    })
    .await;
    let (plan, path, versions) = match r {
        Ok(x) => x,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let rows: Vec<serde_json::Value> = versions
        .iter()
        .rev()
        .map(|v| {
            let t = v.set_time.unwrap_or(0);
            serde_json::json!({
                "t": t, "when": crate::time::to_pretty(t), "change": v.change, "kind": v.kind,
                "size": size(v.size), "mtime": crate::time::to_pretty(v.mtime),
            })
        })
        .collect();
    app.views.page(
        "history.html",
        context! { title => "History", nav => "browse", plan => plan, path => path, versions => rows },
    )
}

pub async fn jobs(State(app): State<App>, Extension(s): Extension<SessionInfo>) -> Response {
    let a = app.clone();
    let (st, runs) = blocking(move || {
        let st = a.daemon.status();
        let runs = browse::history_of_runs(&a, 50).unwrap_or_default();
        (st, runs)
    })
    .await;
    let finished: Vec<serde_json::Value> = st
        .finished
        .iter()
        .map(|f| {
            serde_json::json!({
                "id": f.job.id, "kind": f.job.kind.name(), "plan": f.job.plan,
                "started": crate::time::to_pretty(f.started), "outcome": f.outcome, "message": f.message,
            })
        })
        .collect();
    let fmt = |v: &serde_json::Value| v.as_i64().map(crate::time::to_pretty).unwrap_or_default();
    let runs_rows: Vec<serde_json::Value> = runs["runs"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    serde_json::json!({
                        "id": r["id"], "ended": r["ended"], "kind": r["kind"], "started": fmt(&r["started"]), "outcome": r["outcome"],
                        "bytes": r["bytes"].as_u64().map(size), "error": r["error"],
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let events: Vec<serde_json::Value> = runs["events"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| serde_json::json!({"when": fmt(&e["time"]), "level": e["level"], "kind": e["kind"], "message": e["message"]}))
                .collect()
        })
        .unwrap_or_default();
    let ctx = context! {
        title => "Jobs", nav => "jobs", csrf => s.csrf,
        running => running_view(&st),
        running_id => st.running.as_ref().map(|r| r.job.id),
        waiting => st.waiting.iter().map(|j| format!("{} of plan {} (#{})", j.kind.name(), j.plan, j.id)).collect::<Vec<_>>(),
        finished => finished, runs => runs_rows, events => events,
    };
    app.views.page("jobs.html", ctx)
}

/// `GET /jobs/{id}`: one recorded run's log.
pub async fn run_log(State(app): State<App>, Path(id): Path<i64>) -> Response {
    let a = app.clone();
    let log = match blocking(move || browse::run_log(&a, id)).await {
        Ok(v) => v,
        Err(e) => return error(StatusCode::NOT_FOUND, e),
    };
    let lines: Vec<serde_json::Value> = log["lines"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    let when = e["time"].as_i64().map(crate::time::to_pretty).unwrap_or_default();
                    serde_json::json!({"when": when, "level": e["level"], "kind": e["kind"], "message": e["message"]})
                })
                .collect()
        })
        .unwrap_or_default();
    let ctx = context! { title => "Run log", nav => "jobs", id => id, lines => lines };
    app.views.page("run.html", ctx)
}

pub async fn settings(State(app): State<App>, Extension(s): Extension<SessionInfo>) -> Response {
    let a = app.clone();
    let (st, config) = blocking(move || (a.daemon.status(), a.daemon.config().ok())).await;
    let plan = |id: &str| config.as_ref().and_then(|c| c.plan(id));
    let keep = |id: &str| plan(id).and_then(|p| p.profile.retention.keep_full);
    let source = |id: &str| plan(id).map(|p| p.source().display().to_string());
    let selection = |id: &str| plan(id).map(|p| p.profile.selection.join("\n"));
    let plans: Vec<serde_json::Value> = st
        .plans
        .iter()
        .map(|p| {
            let next = super::settings::describe(&p.schedule, st.now)
                .map(|v| v["next"].clone())
                .unwrap_or_default();
            serde_json::json!({"id": p.id, "target": p.target, "schedule": p.schedule, "describe": p.describe, "next": next, "keep_full": keep(&p.id), "source": source(&p.id), "selection": selection(&p.id)})
        })
        .collect();
    let notify = config
        .as_ref()
        .map(|c| super::settings::notify_view(&c.notify));
    let g = config.as_ref().and_then(|c| c.gpio).unwrap_or_default();
    let pins = (g.green, g.red, g.button);
    let ctx = context! {
        title => "Settings", nav => "settings", csrf => s.csrf, plans => plans,
        config_file => st.config_file, board => st.board,
        min_password => super::auth::MIN_PASSWORD, notify => notify, pins => pins,
    };
    app.views.page("settings.html", ctx)
}
