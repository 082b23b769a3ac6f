//! Notifications: telling the owner when something needs a human.
//!
//! Three channels, each optional, set in the `[notify]` table:
//!
//! | channel | gets | request |
//! | --- | --- | --- |
//! | `webhook` | every notice | JSON POST: `event`, `plan`, `target`, `title`, `message`, `time` and the notice's fields |
//! | `ntfy` | failed, recovered, stale | POST to the topic URL, body = message, headers `Title`, `Priority`, `Tags` |
//! | `healthchecks` | started, succeeded, failed | POST to base`/start`, base, base`/fail`, body = message (at most 10 kB) |
//!
//! Each channel is tried on its own, with retries 1 s, 2 s, 4 s … apart; one
//! failing does not stop the others. Payloads carry no secrets: the userinfo
//! (`user:password@`) of any URL in them is removed before sending, and
//! errors never quote a channel's URL (webhook URLs often hold a token).

use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

/// Connect and whole-request timeout of one attempt.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Most retries `[notify] retries` may ask for.
const MAX_RETRIES: u32 = 10;
/// Longest wait between two attempts.
const MAX_DELAY: Duration = Duration::from_secs(60);
/// Healthchecks.io keeps this much of a ping's body (the brief's limit).
const HEALTHCHECKS_BODY_MAX: usize = 10_000;
/// ntfy turns longer messages into attachments, which a server may refuse.
const NTFY_BODY_MAX: usize = 4_000;

/// The `[notify]` table of the appliance's configuration.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// URL that gets every notice as a JSON POST.
    pub webhook: Option<String>,
    /// Full ntfy topic URL, e.g. `https://ntfy.sh/mytopic`.
    pub ntfy: Option<String>,
    /// Healthchecks ping URL, e.g. `https://hc-ping.com/UUID`; `/start` and
    /// `/fail` are appended for those events.
    pub healthchecks: Option<String>,
    /// Notify when no backup succeeded for this many days (default 3).
    pub stale_days: Option<u32>,
    /// Retries after a failed attempt, per channel (default 3).
    pub retries: Option<u32>,
}

/// Why a notification could not be configured or sent.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NotifyError {
    #[error(
        "[notify] {field}: {why}; write a full http:// or https:// URL instead, e.g. {field} = \"{example}\""
    )]
    BadUrl {
        field: &'static str,
        why: String,
        example: &'static str,
    },
    #[error("[notify] {field}: {why}")]
    BadSetting { field: &'static str, why: String },
    #[error(
        "notifications: cannot start the HTTP client: {0}; check the system's TLS certificates"
    )]
    Client(String),
    #[error(
        "notifying via {channel} failed after {attempts} attempt(s): {detail}; check `{channel}` in \
         [notify] and that the service is reachable from the appliance"
    )]
    Send {
        channel: Channel,
        attempts: u32,
        detail: String,
    },
}

/// A notification channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Webhook,
    Ntfy,
    Healthchecks,
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Channel::Webhook => "webhook",
            Channel::Ntfy => "ntfy",
            Channel::Healthchecks => "healthchecks",
        })
    }
}

impl NotifyConfig {
    /// Days without a successful backup before a [`Notice::Stale`].
    pub fn stale_days(&self) -> u32 {
        self.stale_days.unwrap_or(3)
    }

    /// Retries after a failed attempt, per channel.
    pub fn retries(&self) -> u32 {
        self.retries.unwrap_or(3)
    }

    /// Checks that each URL is http(s) and the numbers make sense.
    pub fn validate(&self) -> Result<(), NotifyError> {
        check_url("webhook", &self.webhook, "https://example.com/hook")?;
        check_url("ntfy", &self.ntfy, "https://ntfy.sh/mytopic")?;
        check_url(
            "healthchecks",
            &self.healthchecks,
            "https://hc-ping.com/UUID",
        )?;
        let bad = |field, why: &str| {
            let why = why.to_string();
            Err(NotifyError::BadSetting { field, why })
        };
        if self.stale_days == Some(0) {
            return bad(
                "stale_days",
                "0 would warn all the time; write 1 or more days",
            );
        }
        if self.retries() > MAX_RETRIES {
            return bad("retries", "too many; write a number from 0 to 10");
        }
        Ok(())
    }
}

/// Checks one optional URL setting. The URL itself is not quoted in the
/// error: it may hold a token.
fn check_url(
    field: &'static str,
    url: &Option<String>,
    example: &'static str,
) -> Result<(), NotifyError> {
    let Some(url) = url else { return Ok(()) };
    let why = match reqwest::Url::parse(url) {
        Err(e) => format!("not a URL ({e})"),
        Ok(u) if matches!(u.scheme(), "http" | "https") => return Ok(()),
        Ok(u) => format!("the scheme {:?} is not supported", u.scheme()),
    };
    Err(NotifyError::BadUrl {
        field,
        why,
        example,
    })
}

/// Something the owner should hear about. `target` is a public URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Started {
        plan: String,
        target: String,
    },
    Succeeded {
        plan: String,
        target: String,
        /// The backup set's time (Unix seconds).
        set_time: i64,
        bytes: u64,
    },
    Failed {
        plan: String,
        target: String,
        error: String,
    },
    /// A backup succeeded after a failure.
    Recovered {
        plan: String,
        target: String,
    },
    /// The owner asked for a test ("Send a test notification").
    Test {
        plan: String,
        target: String,
    },
    /// No backup succeeded for `days` days.
    Stale {
        plan: String,
        target: String,
        days: u32,
        last_success: Option<i64>,
    },
}

impl Notice {
    /// The event's name in webhook payloads.
    pub fn event(&self) -> &'static str {
        match self {
            Notice::Started { .. } => "started",
            Notice::Succeeded { .. } => "succeeded",
            Notice::Failed { .. } => "failed",
            Notice::Recovered { .. } => "recovered",
            Notice::Stale { .. } => "stale",
            Notice::Test { .. } => "test",
        }
    }

    /// The plan the notice is about.
    pub fn plan(&self) -> &str {
        match self {
            Notice::Started { plan, .. }
            | Notice::Succeeded { plan, .. }
            | Notice::Failed { plan, .. }
            | Notice::Recovered { plan, .. }
            | Notice::Stale { plan, .. }
            | Notice::Test { plan, .. } => plan,
        }
    }

    /// The target the notice is about.
    pub fn target(&self) -> &str {
        match self {
            Notice::Started { target, .. }
            | Notice::Succeeded { target, .. }
            | Notice::Failed { target, .. }
            | Notice::Recovered { target, .. }
            | Notice::Stale { target, .. }
            | Notice::Test { target, .. } => target,
        }
    }

    /// A one-line headline.
    pub fn title(&self) -> String {
        let plan = self.plan();
        match self {
            Notice::Started { .. } => format!("Backup of {plan} started"),
            Notice::Succeeded { .. } => format!("Backup of {plan} succeeded"),
            Notice::Failed { .. } => format!("Backup of {plan} failed"),
            Notice::Recovered { .. } => format!("Backup of {plan} works again"),
            Notice::Stale { days, .. } => format!("No backup of {plan} for {}", plural(*days)),
            Notice::Test { .. } => "Cairn test notification".to_string(),
        }
    }

    /// A sentence or two saying what happened.
    pub fn message(&self) -> String {
        let (plan, target) = (self.plan(), self.target());
        match self {
            Notice::Started { .. } => format!("Backing up plan {plan} to {target}."),
            Notice::Succeeded {
                set_time, bytes, ..
            } => format!(
                "Backed up plan {plan} to {target}: backup set of {}, {} written.",
                when(*set_time),
                size(*bytes)
            ),
            Notice::Failed { error, .. } => {
                format!("Backing up plan {plan} to {target} failed: {error}")
            }
            Notice::Recovered { .. } => {
                format!("Plan {plan} backed up to {target} again after a failure.")
            }
            Notice::Stale {
                days, last_success, ..
            } => format!(
                "No backup of plan {plan} to {target} has succeeded for {}; last success: {}.",
                plural(*days),
                last_success.map_or_else(|| "never".to_string(), when)
            ),
            Notice::Test { .. } => format!(
                "A test from Cairn: news of plan {plan} (backing up to {target}) reaches you here."
            ),
        }
    }

    /// The same notice with every URL's userinfo removed from its text.
    fn redacted(&self) -> Notice {
        let r = |s: &String| redact_url(s);
        match self {
            Notice::Started { plan, target } => Notice::Started {
                plan: r(plan),
                target: r(target),
            },
            Notice::Succeeded {
                plan,
                target,
                set_time,
                bytes,
            } => Notice::Succeeded {
                plan: r(plan),
                target: r(target),
                set_time: *set_time,
                bytes: *bytes,
            },
            Notice::Failed {
                plan,
                target,
                error,
            } => Notice::Failed {
                plan: r(plan),
                target: r(target),
                error: r(error),
            },
            Notice::Recovered { plan, target } => Notice::Recovered {
                plan: r(plan),
                target: r(target),
            },
            Notice::Test { plan, target } => Notice::Test {
                plan: r(plan),
                target: r(target),
            },
            Notice::Stale {
                plan,
                target,
                days,
                last_success,
            } => Notice::Stale {
                plan: r(plan),
                target: r(target),
                days: *days,
                last_success: *last_success,
            },
        }
    }

    /// The webhook's JSON body; `now` is Unix seconds.
    fn payload(&self, now: i64) -> serde_json::Value {
        let mut v = json!({
            "event": self.event(), "plan": self.plan(), "target": self.target(),
            "title": self.title(), "message": self.message(), "time": now,
        });
        let extra = match self {
            Notice::Succeeded {
                set_time, bytes, ..
            } => json!({ "set_time": set_time, "bytes": bytes }),
            Notice::Failed { error, .. } => json!({ "error": error }),
            Notice::Stale {
                days, last_success, ..
            } => json!({ "days": days, "last_success": last_success }),
            _ => json!({}),
        };
        if let (Some(v), serde_json::Value::Object(extra)) = (v.as_object_mut(), extra) {
            v.extend(extra);
        }
        v
    }
}

/// "1 day", "3 days".
fn plural(days: u32) -> String {
    if days == 1 {
        "1 day".to_string()
    } else {
        format!("{days} days")
    }
}

/// A Unix time as `2024-05-01 03:05 UTC`.
fn when(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0).map_or_else(
        || secs.to_string(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// A byte count in decimal units: `512 bytes`, `1.5 MB`.
fn size(bytes: u64) -> String {
    let units = ["kB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{bytes} bytes");
    }
    let mut v = bytes as f64 / 1000.0;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < units.len() {
        v /= 1000.0;
        unit += 1;
    }
    format!("{v:.1} {}", units[unit])
}

/// Removes the userinfo (`user:password@`, or a bare token `token@`) from
/// every URL in `text`, which may be one URL or a message quoting several.
/// A URL's authority ends at `/`, `?`, `#`, whitespace or a quote, so a
/// password must be percent-encoded, as URLs require.
pub fn redact_url(text: &str) -> String {
    let ends =
        |c: char| matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>' | '`') || c.is_whitespace();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let authority = &tail[..tail.find(ends).unwrap_or(tail.len())];
        rest = &tail[authority.rfind('@').map_or(0, |at| at + 1)..];
    }
    out.push_str(rest);
    out
}

/// What a run's outcome means for the owner, given the one before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The run failed: always worth a notice.
    Failed,
    /// The run succeeded after a failure.
    Recovered,
}

/// Decides whether a run's outcome needs a notice: a failure always does,
/// a success only right after a failure. `previous_ok` is `None` before
/// the first run.
pub fn transition(previous_ok: Option<bool>, now_ok: bool) -> Option<Transition> {
    match (previous_ok, now_ok) {
        (_, false) => Some(Transition::Failed),
        (Some(false), true) => Some(Transition::Recovered),
        _ => None,
    }
}

/// Sends notices to the configured channels.
#[derive(Debug, Clone)]
pub struct Notifier {
    config: NotifyConfig,
    client: reqwest::Client,
    /// Wait before the first retry; doubled for each further one.
    retry_delay: Duration,
}

impl Notifier {
    /// A notifier for `config`, which is validated first.
    pub fn new(config: NotifyConfig) -> Result<Notifier, NotifyError> {
        config.validate()?;
        // rustls needs a process-wide provider: ring (as for s3:// targets).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .connect_timeout(TIMEOUT)
            .timeout(TIMEOUT)
            .user_agent(concat!("cairn/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .build()
            .map_err(|e| NotifyError::Client(e.to_string()))?;
        Ok(Notifier {
            config,
            client,
            retry_delay: Duration::from_secs(1),
        })
    }

    /// The same notifier waiting `delay` before its first retry (1 s by default).
    pub fn with_retry_delay(mut self, delay: Duration) -> Notifier {
        self.retry_delay = delay;
        self
    }

    /// The configuration this notifier was made from.
    pub fn config(&self) -> &NotifyConfig {
        &self.config
    }

    /// Sends `notice` to every channel that takes it, all at once, each
    /// with its retries. Returns one error per channel that failed.
    pub async fn send(&self, notice: &Notice) -> Vec<NotifyError> {
        let notice = notice.redacted();
        let (a, b, c) = tokio::join!(
            self.webhook(&notice),
            self.ntfy(&notice),
            self.healthchecks(&notice)
        );
        [a, b, c].into_iter().flatten().collect()
    }

    async fn webhook(&self, n: &Notice) -> Option<NotifyError> {
        let url = self.config.webhook.as_deref()?;
        let body = n.payload(unix_now()).to_string();
        let request = || {
            self.client
                .post(url)
                .header("Content-Type", "application/json")
                .body(body.clone())
        };
        self.post(Channel::Webhook, request).await.err()
    }

    async fn ntfy(&self, n: &Notice) -> Option<NotifyError> {
        let url = self.config.ntfy.as_deref()?;
        let (priority, tags) = match n {
            Notice::Failed { .. } => ("high", "rotating_light"),
            Notice::Stale { .. } => ("high", "warning"),
            Notice::Recovered { .. } => ("default", "white_check_mark"),
            Notice::Test { .. } => ("default", "test_tube"),
            _ => return None,
        };
        let title = header_text(&n.title());
        let body = truncate(&n.message(), NTFY_BODY_MAX).to_string();
        let request = || {
            self.client
                .post(url)
                .header("Title", title.clone())
                .header("Priority", priority)
                .header("Tags", tags)
                .body(body.clone())
        };
        self.post(Channel::Ntfy, request).await.err()
    }

    async fn healthchecks(&self, n: &Notice) -> Option<NotifyError> {
        let base = self.config.healthchecks.as_deref()?.trim_end_matches('/');
        let url = match n {
            Notice::Started { .. } => format!("{base}/start"),
            Notice::Succeeded { .. } => base.to_string(),
            Notice::Failed { .. } => format!("{base}/fail"),
            // Logged with the check, its state unchanged.
            Notice::Test { .. } => format!("{base}/log"),
            _ => return None,
        };
        let body = truncate(&n.message(), HEALTHCHECKS_BODY_MAX).to_string();
        let request = || self.client.post(&url).body(body.clone());
        self.post(Channel::Healthchecks, request).await.err()
    }

    /// Sends the request `request` builds until it succeeds, fails for good
    /// (a 4xx other than 408 and 429) or the retries are used up.
    async fn post(
        &self,
        channel: Channel,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<(), NotifyError> {
        let attempts = self.config.retries().min(MAX_RETRIES) + 1;
        let mut attempt = 1;
        loop {
            let (detail, retry) = match attempt_once(request()).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if !retry || attempt == attempts {
                return Err(NotifyError::Send {
                    channel,
                    attempts: attempt,
                    detail,
                });
            }
            tokio::time::sleep(self.delay(attempt)).await;
            attempt += 1;
        }
    }

    /// The wait after failed attempt number `attempt` (from 1): 1, 2, 4 … times
    /// the retry delay, at most a minute.
    fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32 << (attempt - 1).min(16);
        self.retry_delay.saturating_mul(factor).min(MAX_DELAY)
    }
}

/// One attempt: success, or why not and whether another could succeed.
async fn attempt_once(request: reqwest::RequestBuilder) -> Result<(), (String, bool)> {
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => return Err((describe(e), true)),
    };
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let retry = status.is_server_error() || matches!(status.as_u16(), 408 | 429);
    let body = response.bytes().await.unwrap_or_default();
    let said = String::from_utf8_lossy(truncate_bytes(&body, 200));
    let said = said.split_whitespace().collect::<Vec<_>>().join(" ");
    let said = if said.is_empty() {
        String::new()
    } else {
        format!(" ({said})")
    };
    Err((format!("the server answered {status}{said}"), retry))
}

/// A transport error with its causes, without the URL (it may hold a token).
fn describe(e: reqwest::Error) -> String {
    let timed_out = e.is_timeout();
    let e = e.without_url();
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    if timed_out {
        text.push_str(" (no answer within 10 s)");
    }
    text
}

/// Unix seconds now.
fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// At most `max` bytes of `b`.
fn truncate_bytes(b: &[u8], max: usize) -> &[u8] {
    &b[..max.min(b.len())]
}

/// Free text as a header value: control characters become spaces, and text
/// beyond ASCII is RFC 2047-encoded (`=?UTF-8?B?…?=`), which ntfy decodes.
fn header_text(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.is_ascii() {
        clean
    } else {
        format!("=?UTF-8?B?{}?=", base64(clean.as_bytes()))
    }
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::{Request, State};
    use axum::http::StatusCode;
    use std::collections::{HashMap, VecDeque};
    use std::sync::{Arc, Mutex};
    use tokio::net::TcpListener;

    /// A request the test server received.
    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        path: String,
        headers: HashMap<String, String>,
        body: String,
    }

    /// A real HTTP server on 127.0.0.1 that records requests and answers
    /// with the queued statuses, then 200.
    #[derive(Clone, Default)]
    struct Server {
        seen: Arc<Mutex<Vec<Seen>>>,
        answers: Arc<Mutex<VecDeque<u16>>>,
    }

    impl Server {
        async fn start(answers: &[u16]) -> (String, Server) {
            let server = Server::default();
            server.answers.lock().unwrap().extend(answers);
            let app = axum::Router::new()
                .fallback(record)
                .with_state(server.clone());
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            (base, server)
        }

        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }

    async fn record(State(s): State<Server>, req: Request) -> StatusCode {
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        let headers = parts.headers.iter();
        let headers = headers.map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()));
        s.seen.lock().unwrap().push(Seen {
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            headers: headers.collect(),
            body: String::from_utf8(body.to_vec()).unwrap(),
        });
        let code = s.answers.lock().unwrap().pop_front().unwrap_or(200);
        StatusCode::from_u16(code).unwrap()
    }

    /// A URL nobody listens on: the port is bound (so no other test takes
    /// it) but not listening, so connecting is refused. Keep the socket.
    fn dead_url() -> (tokio::net::TcpSocket, String) {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let url = format!("http://{}", socket.local_addr().unwrap());
        (socket, url)
    }

    /// Every channel, at `base` (a test server).
    fn all_channels(base: &str) -> NotifyConfig {
        NotifyConfig {
            webhook: Some(format!("{base}/hook")),
            ntfy: Some(format!("{base}/topic")),
            healthchecks: Some(format!("{base}/uuid")),
            ..Default::default()
        }
    }

    fn notifier(config: NotifyConfig) -> Notifier {
        Notifier::new(config)
            .unwrap()
            .with_retry_delay(Duration::from_millis(1))
    }

    fn failed() -> Notice {
        Notice::Failed {
            plan: "home".into(),
            target: "rsync://user:secret@host/x".into(),
            error: "cannot reach rsync://user:secret@host/x: refused".into(),
        }
    }

    fn started() -> Notice {
        Notice::Started {
            plan: "home".into(),
            target: "s3://bucket/home".into(),
        }
    }

    fn succeeded() -> Notice {
        Notice::Succeeded {
            plan: "home".into(),
            target: "s3://bucket/home".into(),
            set_time: 1_714_532_700,
            bytes: 1_500_000,
        }
    }

    fn stale() -> Notice {
        Notice::Stale {
            plan: "home".into(),
            target: "s3://bucket/home".into(),
            days: 4,
            last_success: None,
        }
    }

    fn recovered() -> Notice {
        Notice::Recovered {
            plan: "home".into(),
            target: "s3://bucket/home".into(),
        }
    }

    #[tokio::test]
    async fn the_webhook_gets_every_notice_as_json() {
        let (base, server) = Server::start(&[]).await;
        let n = notifier(NotifyConfig {
            webhook: Some(format!("{base}/hook")),
            ..Default::default()
        });
        for notice in [started(), succeeded(), failed(), recovered(), stale()] {
            assert_eq!(n.send(&notice).await, vec![]);
        }
        let seen = server.seen();
        let events: Vec<serde_json::Value> = seen
            .iter()
            .map(|s| serde_json::from_str(&s.body).unwrap())
            .collect();
        let names: Vec<_> = events
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["started", "succeeded", "failed", "recovered", "stale"]
        );
        assert_eq!(
            (seen[1].method.as_str(), seen[1].path.as_str()),
            ("POST", "/hook")
        );
        assert_eq!(seen[1].headers["content-type"], "application/json");
        let ok = &events[1];
        assert_eq!(
            (ok["plan"].as_str(), ok["target"].as_str()),
            (Some("home"), Some("s3://bucket/home"))
        );
        assert_eq!(
            (ok["set_time"].as_i64(), ok["bytes"].as_u64()),
            (Some(1_714_532_700), Some(1_500_000))
        );
        assert!(ok["time"].as_i64().unwrap() > 1_700_000_000);
        assert_eq!(ok["message"], succeeded().message());
        assert_eq!(events[2]["error"], "cannot reach rsync://host/x: refused");
        assert_eq!(
            (
                events[4]["days"].as_u64(),
                events[4]["last_success"].is_null()
            ),
            (Some(4), true)
        );
    }

    #[tokio::test]
    async fn ntfy_gets_failures_recoveries_and_staleness() {
        let (base, server) = Server::start(&[]).await;
        let n = notifier(NotifyConfig {
            ntfy: Some(format!("{base}/mytopic")),
            ..Default::default()
        });
        for notice in [started(), succeeded(), failed(), recovered(), stale()] {
            assert_eq!(n.send(&notice).await, vec![]);
        }
        let seen = server.seen();
        let got: Vec<_> = seen
            .iter()
            .map(|s| {
                (
                    s.method.as_str(),
                    s.path.as_str(),
                    s.headers["priority"].as_str(),
                    s.headers["tags"].as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("POST", "/mytopic", "high", "rotating_light"),
                ("POST", "/mytopic", "default", "white_check_mark"),
                ("POST", "/mytopic", "high", "warning"),
            ]
        );
        assert_eq!(seen[0].headers["title"], "Backup of home failed");
        assert_eq!(
            seen[0].body,
            "Backing up plan home to rsync://host/x failed: cannot reach rsync://host/x: refused"
        );
        assert_eq!(seen[2].headers["title"], "No backup of home for 4 days");
    }

    #[tokio::test]
    async fn ntfy_titles_beyond_ascii_are_rfc2047_encoded() {
        let (base, server) = Server::start(&[]).await;
        let n = notifier(NotifyConfig {
            ntfy: Some(format!("{base}/t")),
            ..Default::default()
        });
        let notice = Notice::Failed {
            plan: "Fotos-Müller".into(),
            target: "file:///mnt".into(),
            error: "disk\nfull".into(),
        };
        assert_eq!(n.send(&notice).await, vec![]);
        let title = &server.seen()[0].headers["title"];
        assert_eq!(
            title,
            "=?UTF-8?B?QmFja3VwIG9mIEZvdG9zLU3DvGxsZXIgZmFpbGVk?="
        );
        assert_eq!(header_text("a\nb"), "a b");
    }

    #[tokio::test]
    async fn healthchecks_gets_start_success_and_fail_pings() {
        let (base, server) = Server::start(&[]).await;
        let n = notifier(NotifyConfig {
            healthchecks: Some(format!("{base}/uuid/")),
            ..Default::default()
        });
        let long = Notice::Failed {
            plan: "home".into(),
            target: "file:///mnt".into(),
            error: "é".repeat(10_000),
        };
        for notice in [started(), succeeded(), long, recovered(), stale()] {
            assert_eq!(n.send(&notice).await, vec![]);
        }
        let seen = server.seen();
        let paths: Vec<_> = seen
            .iter()
            .map(|s| (s.method.as_str(), s.path.as_str()))
            .collect();
        assert_eq!(
            paths,
            [
                ("POST", "/uuid/start"),
                ("POST", "/uuid"),
                ("POST", "/uuid/fail")
            ]
        );
        assert_eq!(seen[1].body, succeeded().message());
        assert!(seen[2].body.len() <= 10_000 && seen[2].body.len() > 9_990);
        assert!(
            seen[2]
                .body
                .starts_with("Backing up plan home to file:///mnt failed: é")
        );
    }

    #[tokio::test]
    async fn server_errors_are_retried_until_one_succeeds() {
        let (base, server) = Server::start(&[500, 500]).await;
        let n = notifier(NotifyConfig {
            webhook: Some(base),
            ..Default::default()
        });
        assert_eq!(n.send(&started()).await, vec![]);
        assert_eq!(server.seen().len(), 3);
    }

    #[tokio::test]
    async fn a_client_error_is_not_retried() {
        let (base, server) = Server::start(&[404]).await;
        let n = notifier(NotifyConfig {
            healthchecks: Some(base),
            ..Default::default()
        });
        let errors = n.send(&started()).await;
        assert_eq!(server.seen().len(), 1);
        let [
            NotifyError::Send {
                channel,
                attempts,
                detail,
            },
        ] = &errors[..]
        else {
            panic!("{errors:?}")
        };
        assert_eq!((*channel, *attempts), (Channel::Healthchecks, 1));
        assert!(detail.contains("404"), "{detail}");
    }

    #[tokio::test]
    async fn a_dead_channel_fails_after_its_retries_and_the_others_still_get_theirs() {
        let (base, server) = Server::start(&[]).await;
        let (_socket, dead) = dead_url();
        let dead = dead.replace("http://", "http://me:hooksecret@");
        let n = notifier(NotifyConfig {
            webhook: Some(format!("{dead}/token-in-path")),
            ntfy: Some(format!("{base}/topic")),
            retries: Some(2),
            ..Default::default()
        });
        let errors = n.send(&failed()).await;
        assert_eq!(server.seen().len(), 1, "ntfy still notified");
        let [
            e @ NotifyError::Send {
                channel: Channel::Webhook,
                attempts: 3,
                ..
            },
        ] = &errors[..]
        else {
            panic!("{errors:?}")
        };
        let text = e.to_string();
        assert!(
            text.starts_with("notifying via webhook failed after 3 attempt(s): "),
            "{text}"
        );
        assert!(
            !text.contains("hooksecret") && !text.contains("token-in-path"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn payloads_never_carry_a_password() {
        let (base, server) = Server::start(&[]).await;
        let n = notifier(all_channels(&base));
        assert_eq!(n.send(&failed()).await, vec![]);
        let seen = server.seen();
        assert_eq!(seen.len(), 3);
        for s in seen {
            assert!(!format!("{s:?}").contains("secret"), "{s:?}");
            assert!(s.body.contains("rsync://host/x"), "{s:?}");
        }
    }

    #[tokio::test]
    async fn a_test_notice_reaches_every_channel_and_changes_no_check() {
        let (base, server) = Server::start(&[]).await;
        let n = notifier(all_channels(&base));
        let test = Notice::Test {
            plan: "main".into(),
            target: "rsync://me:secret@host/x".into(),
        };
        assert_eq!(n.send(&test).await, vec![]);
        let mut paths: Vec<String> = server.seen().iter().map(|s| s.path.clone()).collect();
        paths.sort();
        // Healthchecks logs it (`/log`) rather than pinging success.
        assert_eq!(paths, ["/hook", "/topic", "/uuid/log"]);
        for s in server.seen() {
            assert!(!s.body.contains("secret"), "{s:?}");
            assert!(s.body.contains("rsync://host/x"), "{s:?}");
        }
    }

    #[test]
    fn urls_lose_their_userinfo() {
        assert_eq!(redact_url("rsync://user:secret@host/x"), "rsync://host/x");
        assert_eq!(
            redact_url("https://token@example.com"),
            "https://example.com"
        );
        assert_eq!(
            redact_url("sftp://me:p%40ss@[::1]:22/b?q=a@b"),
            "sftp://[::1]:22/b?q=a@b"
        );
        assert_eq!(redact_url("file:///mnt/usb"), "file:///mnt/usb");
        assert_eq!(redact_url("s3://bucket/a@b"), "s3://bucket/a@b");
        assert_eq!(
            redact_url("from 'ftp://a:b@h/x' to \"s3://k:s@h2\", mail me@home"),
            "from 'ftp://h/x' to \"s3://h2\", mail me@home"
        );
        assert_eq!(redact_url("no url: user:pw@host"), "no url: user:pw@host");
    }

    #[test]
    fn a_failure_always_notifies_and_a_success_only_after_a_failure() {
        use Transition::*;
        assert_eq!(transition(None, false), Some(Failed));
        assert_eq!(transition(Some(true), false), Some(Failed));
        assert_eq!(transition(Some(false), false), Some(Failed));
        assert_eq!(transition(Some(false), true), Some(Recovered));
        assert_eq!(transition(Some(true), true), None);
        assert_eq!(transition(None, true), None);
    }

    #[test]
    fn the_config_is_validated() {
        let parse = |s: &str| toml::from_str::<NotifyConfig>(s);
        let ok = parse("webhook = \"https://x/h\"\nntfy = \"http://n/t\"\nretries = 0").unwrap();
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!((ok.retries(), ok.stale_days()), (0, 3));
        assert_eq!(NotifyConfig::default().validate(), Ok(()));
        assert!(
            parse("webhok = \"https://x\"").is_err(),
            "unknown fields are refused"
        );
        let err = parse("ntfy = \"ntfy.sh/topic\"")
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(
            err.to_string().starts_with("[notify] ntfy: not a URL"),
            "{err}"
        );
        assert!(
            err.to_string()
                .ends_with("e.g. ntfy = \"https://ntfy.sh/mytopic\""),
            "{err}"
        );
        let err = parse("healthchecks = \"ftp://u:pw@h/x\"")
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("scheme \"ftp\""), "{err}");
        assert!(
            !err.to_string().contains("pw"),
            "the URL is not quoted: {err}"
        );
        assert!(parse("stale_days = 0").unwrap().validate().is_err());
        assert!(parse("retries = 11").unwrap().validate().is_err());
        assert!(Notifier::new(parse("webhook = \"x\"").unwrap()).is_err());
    }

    #[test]
    fn texts_say_what_happened() {
        assert_eq!(
            succeeded().message(),
            "Backed up plan home to s3://bucket/home: backup set of 2024-05-01 03:05 UTC, 1.5 MB written."
        );
        assert_eq!(
            stale().message(),
            "No backup of plan home to s3://bucket/home has succeeded for 4 days; last success: never."
        );
        assert_eq!(recovered().title(), "Backup of home works again");
        assert_eq!(
            (size(999), size(1_000), size(2_500_000_000)),
            ("999 bytes".into(), "1.0 kB".into(), "2.5 GB".into())
        );
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abcd"), "YWJjZA==");
        assert_eq!(truncate("aé", 2), "a");
    }
}
