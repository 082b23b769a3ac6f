//! Settings: a plan's schedule (previewed as its next five runs in words),
//! its retention (previewed as what it would delete at the target now),
//! notifications (write-only URLs), the LED and button pins, and the
//! owner's password. A change is validated as a whole
//! configuration before it is written, atomically, with the owner's
//! comments and layout kept (toml_edit); the daemon then reloads it.

use super::auth::SessionInfo;
use super::setup::{Refused, check_owner, too_many};
use super::{App, answer, blocking, error};
use crate::appliance::config::{Config, MAIN_PLAN};
use crate::appliance::schedule::Schedule;
use axum::Json;
use axum::extract::{ConnectInfo, Extension, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Deserialize)]
pub struct PreviewQuery {
    expr: String,
}

/// A schedule in words and its next five runs, or what is wrong with it.
pub fn describe(expr: &str, now: i64) -> Result<serde_json::Value, String> {
    let s = Schedule::parse(expr.trim()).map_err(|e| e.to_string())?;
    let next: Vec<String> = s
        .next_n(now, 5)
        .into_iter()
        .map(crate::time::to_pretty)
        .collect();
    Ok(serde_json::json!({"expr": s.expr(), "describe": s.describe(), "next": next}))
}

/// `GET /api/schedule/preview?expr=`.
pub async fn preview(State(app): State<App>, Query(q): Query<PreviewQuery>) -> Response {
    answer(describe(&q.expr, app.daemon.now()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    plan: String,
    schedule: String,
}

/// `text` with `plan`'s schedule set to `expr`, comments and layout kept.
pub fn with_schedule(text: &str, plan: &str, expr: &str) -> Result<String, String> {
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| format!("{e}"))?;
    plan_table(&mut doc, plan)?.insert("schedule", toml_edit::value(expr));
    Ok(doc.to_string())
}

/// The table of `plan` in `doc`: the top level for the main plan, else its
/// `[[plan]]` entry.
pub(super) fn plan_table<'d>(
    doc: &'d mut toml_edit::DocumentMut,
    plan: &str,
) -> Result<&'d mut toml_edit::Table, String> {
    let top_plan = doc.contains_key("source") || doc.contains_key("target");
    if plan == MAIN_PLAN && top_plan {
        return Ok(doc.as_table_mut());
    }
    doc.get_mut("plan")
        .and_then(|p| p.as_array_of_tables_mut())
        .and_then(|tables| {
            tables
                .iter_mut()
                .find(|t| t.get("id").and_then(|v| v.as_str()) == Some(plan))
        })
        .ok_or_else(|| format!("no plan called `{plan}`"))
}

/// The table `key` of `t`, made if it is missing (a table written inline,
/// `key = {…}`, is one too).
pub fn table_in<'d>(
    t: &'d mut toml_edit::Table,
    key: &str,
) -> Result<&'d mut dyn toml_edit::TableLike, String> {
    t.entry(key)
        .or_insert(toml_edit::table())
        .as_table_like_mut()
        .ok_or(format!("`{key}` is not a table"))
}

/// `text` with `plan` keeping its `keep_full` newest chains (the only
/// retention rule then: the others are removed), comments kept.
pub fn with_keep_full(text: &str, plan: &str, keep_full: usize) -> Result<String, String> {
    if keep_full == 0 {
        return Err("keep at least one chain".into());
    }
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| format!("{e}"))?;
    let r = table_in(plan_table(&mut doc, plan)?, "retention")?;
    r.remove("keep_incrementals_of");
    r.remove("older_than");
    r.insert("keep_full", toml_edit::value(keep_full as i64));
    Ok(doc.to_string())
}

#[derive(Deserialize)]
pub struct RetentionQuery {
    plan: Option<String>,
    /// A rule to try instead of the plan's.
    keep_full: Option<usize>,
}

/// What the plan's retention (or `keep_full`) would delete at the target
/// now: the engine's own plan of the removal, nothing deleted.
fn retention_preview_of(app: &App, q: &RetentionQuery) -> Result<serde_json::Value, String> {
    use crate::maintenance::{Removal, plan_removal};
    let c = app.daemon.config().map_err(|e| e.to_string())?;
    let plan = match &q.plan {
        Some(id) => c.plan(id).ok_or(format!("no plan called `{id}`"))?,
        None => c.plans.first().ok_or("no plan is configured")?,
    };
    let now = app.daemon.now();
    let rule = match q.keep_full {
        Some(0) => return Err("keep at least one chain".into()),
        Some(n) => Removal::AllButNFull(n),
        None => plan
            .profile
            .retention
            .removal(now)
            .map_err(|e| e.to_string())?
            .ok_or("the plan has no retention rule")?,
    };
    let args = crate::appliance::runner::target_args(&c, plan);
    let repo = crate::target::open(plan.target(), &args).map_err(|e| e.to_string())?;
    let coll = repo.collection().map_err(|e| e.to_string())?;
    let p = plan_removal(&repo, &coll, rule);
    let removed: Vec<String> = p
        .chains
        .iter()
        .map(|t| crate::time::to_pretty(*t))
        .collect();
    Ok(serde_json::json!({
        "plan": plan.id,
        "rule": format!("{rule:?}"),
        "chains": coll.chains.len(),
        "removed_chains": removed,
        "incrementals_only": p.keep_full,
        "files": p.remote.len(),
    }))
}

/// `GET /api/retention/preview?plan=&keep_full=`.
pub async fn retention_preview(
    State(app): State<App>,
    Query(q): Query<RetentionQuery>,
) -> Response {
    answer(blocking(move || retention_preview_of(&app, &q)).await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRequest {
    plan: String,
    keep_full: usize,
}

/// `POST /api/settings/retention`.
pub async fn retention(State(app): State<App>, Json(req): Json<RetentionRequest>) -> Response {
    let r = blocking(move || {
        edit_config(&app, |text| with_keep_full(text, &req.plan, req.keep_full))?;
        Ok::<_, String>(serde_json::json!({"plan": req.plan, "keep_full": req.keep_full}))
    })
    .await;
    answer(r)
}

/// Changes the configuration file: the new text is validated as a whole,
/// written atomically, and the daemon reloads it.
fn edit_config(
    app: &App,
    change: impl FnOnce(&str) -> Result<String, String>,
) -> Result<(), String> {
    edit_checked(app, false, change, |_| Ok(()))
}

/// [`edit_config`] with a further `check` of the new configuration (e.g.
/// connecting to a new target) before it is written; with `dry_run`
/// nothing is written. One edit at a time: two tabs saving at once must
/// not each change the file as it was before the other.
pub(super) fn edit_checked<T>(
    app: &App,
    dry_run: bool,
    change: impl FnOnce(&str) -> Result<String, String>,
    check: impl FnOnce(&Config) -> Result<T, String>,
) -> Result<T, String> {
    let _one = edit_lock();
    edit_locked(app, dry_run, change, check)
}

/// The lock every change of the configuration file holds.
pub(super) fn edit_lock() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock().unwrap_or_else(|e| e.into_inner())
}

/// [`edit_checked`] for a caller holding [`edit_lock`].
pub(super) fn edit_locked<T>(
    app: &App,
    dry_run: bool,
    change: impl FnOnce(&str) -> Result<String, String>,
    check: impl FnOnce(&Config) -> Result<T, String>,
) -> Result<T, String> {
    let file = app.daemon.config_file().to_path_buf();
    let text = std::fs::read_to_string(&file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let new = change(&text)?;
    let config = Config::parse(&new, &file).map_err(|e| e.to_string())?;
    let out = check(&config)?;
    if !dry_run {
        crate::repo::write_atomic(&file, new.as_bytes()).map_err(|e| e.to_string())?;
        app.daemon.reload();
    }
    Ok(out)
}

/// `POST /api/settings/schedule`.
pub async fn schedule(State(app): State<App>, Json(req): Json<ScheduleRequest>) -> Response {
    let r = blocking(move || {
        let expr = Schedule::parse(req.schedule.trim())
            .map_err(|e| e.to_string())?
            .expr()
            .to_string();
        edit_config(&app, |text| with_schedule(text, &req.plan, &expr))?;
        describe(&expr, app.daemon.now())
    })
    .await;
    answer(r)
}

/// A notifications change: a URL sets a channel, `""` or `off` turns it
/// off, a channel left out stays as it is (the URLs are secrets: never shown).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyRequest {
    webhook: Option<String>,
    ntfy: Option<String>,
    healthchecks: Option<String>,
    stale_days: Option<u32>,
}

/// `text` with the `[notify]` channels of `req` set or removed, comments kept.
pub fn with_notify(text: &str, req: &NotifyRequest) -> Result<String, String> {
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| format!("{e}"))?;
    let t = table_in(doc.as_table_mut(), "notify")?;
    let channels = [
        ("webhook", &req.webhook),
        ("ntfy", &req.ntfy),
        ("healthchecks", &req.healthchecks),
    ];
    for (key, v) in channels {
        match v.as_deref().map(str::trim) {
            Some("" | "off") => {
                t.remove(key);
            }
            Some(url) => {
                t.insert(key, toml_edit::value(url));
            }
            None => {}
        }
    }
    if let Some(d) = req.stale_days {
        t.insert("stale_days", toml_edit::value(i64::from(d)));
    }
    Ok(doc.to_string())
}

/// `POST /api/settings/notify`.
pub async fn notify(State(app): State<App>, Json(req): Json<NotifyRequest>) -> Response {
    let r = blocking(move || {
        edit_config(&app, |text| with_notify(text, &req))?;
        let c = app.daemon.config().map_err(|e| e.to_string())?;
        Ok::<_, String>(notify_view(&c.notify))
    })
    .await;
    answer(r)
}

/// `POST /api/settings/notify/test`: a test message to every channel that
/// is on, one attempt each; 502 naming each channel that failed and why.
pub async fn notify_test(State(app): State<App>) -> Response {
    use crate::appliance::notify::{Notice, Notifier};
    let a = app.clone();
    let config = match blocking(move || a.daemon.config()).await {
        Ok(c) => c,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let mut n = config.notify.clone();
    n.retries = Some(0);
    let on: Vec<&str> = [
        ("ntfy", &n.ntfy),
        ("Healthchecks", &n.healthchecks),
        ("the webhook", &n.webhook),
    ]
    .into_iter()
    .filter_map(|(name, url)| url.as_ref().map(|_| name))
    .collect();
    if on.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "no notification channel is on; save an ntfy, Healthchecks or webhook URL first",
        );
    }
    let notifier = match Notifier::new(n) {
        Ok(n) => n,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let (plan, target) = config.plans.first().map_or_else(
        || (String::new(), String::new()),
        |p| (p.id.clone(), crate::catalog::public_url(p.target())),
    );
    let failed = notifier.send(&Notice::Test { plan, target }).await;
    if failed.is_empty() {
        let message = format!("Sent to {}; look for it there.", on.join(", "));
        return Json(serde_json::json!({ "message": message })).into_response();
    }
    let why: Vec<String> = failed.iter().map(ToString::to_string).collect();
    error(StatusCode::BAD_GATEWAY, why.join("; "))
}

/// Which channels are on, each shown by its site only (the rest of a URL
/// is its secret).
pub fn notify_view(n: &crate::appliance::notify::NotifyConfig) -> serde_json::Value {
    let site = |u: &Option<String>| -> Option<String> {
        let u = u.as_deref()?;
        let (scheme, rest) = u.split_once("://")?;
        let host = rest.split(['/', '?', '#']).next()?;
        let host = host.rsplit('@').next()?;
        Some(format!("{scheme}://{host}/…"))
    };
    serde_json::json!({
        "webhook": site(&n.webhook), "ntfy": site(&n.ntfy), "healthchecks": site(&n.healthchecks),
        "stale_days": n.stale_days(),
    })
}

/// The LED and button pins (BCM numbers).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinsRequest {
    green: u8,
    red: u8,
    button: u8,
}

/// `text` with the `[gpio]` pins of `req`, comments kept.
pub fn with_pins(text: &str, req: &PinsRequest) -> Result<String, String> {
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| format!("{e}"))?;
    let t = table_in(doc.as_table_mut(), "gpio")?;
    for (key, pin) in [
        ("green", req.green),
        ("red", req.red),
        ("button", req.button),
    ] {
        t.insert(key, toml_edit::value(i64::from(pin)));
    }
    Ok(doc.to_string())
}

/// `POST /api/settings/pins`: checked by the Pi board's rules, saved now,
/// used from the next start (the board is opened once). (In the file, pins
/// the board refuses are not a configuration error: backups go on with the
/// simulated board, and the status says why.)
pub async fn pins(State(app): State<App>, Json(req): Json<PinsRequest>) -> Response {
    let pins = crate::appliance::config::GpioPins {
        green: req.green,
        red: req.red,
        button: req.button,
    };
    if let Err(e) = pins.validate() {
        return error(StatusCode::BAD_REQUEST, e);
    }
    let r = blocking(move || edit_config(&app, |text| with_pins(text, &req))).await;
    answer(r.map(|()| {
        serde_json::json!({"message": "saved; the appliance uses these pins from its next start"})
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    current: String,
    new: String,
}

/// `POST /api/password`: every other session ends.
pub async fn password(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(s): Extension<SessionInfo>,
    Json(p): Json<PasswordChange>,
) -> Response {
    match check_owner(&app, peer.ip(), p.current).await {
        Ok(()) => {}
        Err(Refused::Wait(wait)) => return too_many(wait),
        Err(Refused::Wrong) => {
            return error(StatusCode::FORBIDDEN, "the current password is wrong");
        }
    }
    let auth = app.auth.clone();
    let new = p.new;
    match blocking(move || auth.set_password(&new)).await {
        Ok(()) => {
            app.auth.end_other_sessions(&s.token);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_edit_keeps_comments_and_finds_the_plan() {
        let text = "# mine\nsource = \"/a\" # the share\ntarget = \"file:///b\"\n\n\
                    [encryption]\nenabled = false\n\n[[plan]]\nid = \"photos\"\nsource = \"/c\"\n\
                    target = \"file:///d\"\n";
        let main = with_schedule(text, "main", "0 4 * * *").unwrap();
        assert!(
            main.contains("# mine") && main.contains("# the share"),
            "{main}"
        );
        let c = Config::parse(&main, std::path::Path::new("x.toml")).unwrap();
        assert_eq!(c.plan("main").unwrap().schedule.expr(), "0 4 * * *");
        let photos = with_schedule(&main, "photos", "30 2 * * 0").unwrap();
        let c = Config::parse(&photos, std::path::Path::new("x.toml")).unwrap();
        assert_eq!(c.plan("photos").unwrap().schedule.expr(), "30 2 * * 0");
        assert_eq!(c.plan("main").unwrap().schedule.expr(), "0 4 * * *");
        assert!(with_schedule(text, "nope", "0 4 * * *").is_err());
        let kept = with_keep_full(&photos, "photos", 3).unwrap();
        let kept = with_keep_full(&kept, "main", 5).unwrap();
        assert!(kept.contains("# the share"), "{kept}");
        let c = Config::parse(&kept, std::path::Path::new("x.toml")).unwrap();
        assert_eq!(
            c.plan("photos").unwrap().profile.retention.keep_full,
            Some(3)
        );
        assert_eq!(c.plan("main").unwrap().profile.retention.keep_full, Some(5));
        assert_eq!(c.plan("main").unwrap().schedule.expr(), "0 4 * * *");
        assert!(with_keep_full(text, "main", 0).is_err());
        assert!(describe("61 * * * *", 0).is_err());
        assert_eq!(
            describe("0 4 * * *", 0).unwrap()["next"]
                .as_array()
                .unwrap()
                .len(),
            5
        );
    }
}
