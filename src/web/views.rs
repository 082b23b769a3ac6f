//! The pages' templates (`web/templates/`, compiled in; minijinja escapes
//! everything in `.html` templates) and the formatting they share.

use crate::time::Seconds;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../web/templates/base.html")),
    ("login.html", include_str!("../../web/templates/login.html")),
    ("setup.html", include_str!("../../web/templates/setup.html")),
    ("kit.html", include_str!("../../web/templates/kit.html")),
    ("s3.html", include_str!("../../web/templates/s3.html")),
    (
        "overview.html",
        include_str!("../../web/templates/overview.html"),
    ),
    ("sets.html", include_str!("../../web/templates/sets.html")),
    (
        "browse.html",
        include_str!("../../web/templates/browse.html"),
    ),
    (
        "history.html",
        include_str!("../../web/templates/history.html"),
    ),
    ("jobs.html", include_str!("../../web/templates/jobs.html")),
    ("run.html", include_str!("../../web/templates/run.html")),
    (
        "settings.html",
        include_str!("../../web/templates/settings.html"),
    ),
];

pub struct Views {
    env: minijinja::Environment<'static>,
}

impl Views {
    pub fn new() -> Views {
        let mut env = minijinja::Environment::new();
        env.add_global("version", env!("CARGO_PKG_VERSION"));
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("template {name}: {e}"));
        }
        Views { env }
    }

    /// Renders a page; a template error is a 500 that names it.
    pub fn page(&self, name: &str, ctx: minijinja::Value) -> Response {
        match self.env.get_template(name).and_then(|t| t.render(ctx)) {
            Ok(html) => Html(html).into_response(),
            Err(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("page {name} could not be drawn: {e:#}\n"),
            )
                .into_response(),
        }
    }
}

/// A time for people: "Tue Dec  1 03:05:00 2026", or "never".
pub fn when(t: Option<Seconds>) -> String {
    t.map_or_else(|| "never".to_string(), crate::time::to_pretty)
}

/// How long ago (or from now) `t` is, in the largest sensible unit.
pub fn ago(t: Seconds, now: Seconds) -> String {
    let d = now - t;
    let (n, future) = if d < 0 { (-d, true) } else { (d, false) };
    let text = match n {
        0..60 => format!("{n} s"),
        60..7200 => format!("{} min", n / 60),
        7200..172_800 => format!("{} hours", n / 3600),
        _ => format!("{} days", n / 86_400),
    };
    if future {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// Bytes for people: 1.5 GB (powers of 1000, as disks are sold).
pub fn size(b: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "kB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} bytes")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The state in one sentence, as the LEDs show it.
pub fn sentence(health: &str) -> &'static str {
    match health {
        "good" => "Your data is safe: the last backup succeeded and is recent.",
        "failed" => "The last backup failed: see what to do below.",
        "stale" => "No recent backup: the last success is older than the schedule allows.",
        "problem" => "A check found a problem with the stored backups: see below.",
        "config_error" => "The configuration has an error: see below.",
        _ => "Not configured yet.",
    }
}

/// The colour of a state (CSS class): the same as the LEDs.
pub fn colour(health: &str) -> &'static str {
    match health {
        "good" => "good",
        "stale" => "warn",
        "unconfigured" => "idle",
        _ => "bad",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses_and_sizes_read_well() {
        let _ = Views::new();
        assert_eq!(size(999), "999 bytes");
        assert_eq!(size(1_500_000), "1.5 MB");
        assert_eq!(ago(100, 130), "30 s ago");
        assert_eq!(ago(100 + 3 * 86_400, 100), "in 3 days");
        assert_eq!(when(None), "never");
    }
}
