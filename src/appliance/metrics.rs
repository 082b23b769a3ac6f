//! Prometheus `/metrics`: the appliance's state in the text exposition
//! format 0.0.4 (serve it with [`CONTENT_TYPE`]).
//!
//! Per plan and target (labels `plan`, `target`), a sample left out when its
//! value is unknown:
//!
//! | metric | value |
//! | --- | --- |
//! | `cairn_last_success_timestamp_seconds` | when a backup last succeeded |
//! | `cairn_last_run_success` | 1 if the last run succeeded, else 0 |
//! | `cairn_last_run_timestamp_seconds` | when the last run ended |
//! | `cairn_last_run_bytes_written` | bytes the last run wrote |
//! | `cairn_last_run_duration_seconds` | how long the last run took |
//! | `cairn_last_run_volumes` | volumes the last run wrote |
//! | `cairn_verify_coverage_ratio` | share of the archive verified, 0 to 1 |
//! | `cairn_next_run_timestamp_seconds` | when the next run is due |
//!
//! and for the appliance: `cairn_jobs_running`, `cairn_jobs_queued`,
//! `cairn_config_valid` (1/0) and `cairn_build_info{version}` (always 1).

use super::notify::redact_url;
use std::fmt::Write;

/// The Content-Type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The appliance's state, as the daemon sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub targets: Vec<TargetMetrics>,
    pub jobs_running: usize,
    pub jobs_queued: usize,
    pub config_ok: bool,
}

/// One plan's target. Times are Unix seconds; `None` is unknown (no sample).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetMetrics {
    pub plan: String,
    /// A public URL (no password).
    pub target: String,
    pub last_success: Option<i64>,
    pub last_run_ok: Option<bool>,
    pub last_run_time: Option<i64>,
    pub last_bytes: Option<u64>,
    pub last_duration_seconds: Option<f64>,
    pub last_volumes: Option<u64>,
    /// 0 to 1.
    pub verify_coverage: Option<f64>,
    pub next_run: Option<i64>,
}

/// A per-target metric: name, help, and its value for a target.
type PerTarget = (
    &'static str,
    &'static str,
    fn(&TargetMetrics) -> Option<String>,
);

const PER_TARGET: &[PerTarget] = &[
    (
        "cairn_last_success_timestamp_seconds",
        "When a backup last succeeded, in Unix time.",
        |t| t.last_success.map(|v| v.to_string()),
    ),
    (
        "cairn_last_run_success",
        "Whether the last run succeeded (1) or failed (0).",
        |t| t.last_run_ok.map(|ok| u8::from(ok).to_string()),
    ),
    (
        "cairn_last_run_timestamp_seconds",
        "When the last run ended, in Unix time.",
        |t| t.last_run_time.map(|v| v.to_string()),
    ),
    (
        "cairn_last_run_bytes_written",
        "Bytes the last run wrote to the target.",
        |t| t.last_bytes.map(|v| v.to_string()),
    ),
    (
        "cairn_last_run_duration_seconds",
        "How long the last run took.",
        |t| t.last_duration_seconds.map(float),
    ),
    (
        "cairn_last_run_volumes",
        "Volumes the last run wrote.",
        |t| t.last_volumes.map(|v| v.to_string()),
    ),
    (
        "cairn_verify_coverage_ratio",
        "Share of the archive verified, from 0 to 1.",
        |t| t.verify_coverage.map(float),
    ),
    (
        "cairn_next_run_timestamp_seconds",
        "When the next run is due, in Unix time.",
        |t| t.next_run.map(|v| v.to_string()),
    ),
];

/// The metrics page for `s`.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::new();
    for (name, help, value) in PER_TARGET {
        let samples = s.targets.iter().filter_map(|t| {
            let labels = format!(
                "{{plan=\"{}\",target=\"{}\"}}",
                escape(&t.plan),
                escape(&redact_url(&t.target))
            );
            value(t).map(|v| (labels, v))
        });
        family(&mut out, name, help, samples);
    }
    let appliance = [
        (
            "cairn_jobs_running",
            "Jobs running now.",
            s.jobs_running.to_string(),
        ),
        (
            "cairn_jobs_queued",
            "Jobs waiting to run.",
            s.jobs_queued.to_string(),
        ),
        (
            "cairn_config_valid",
            "Whether the configuration is valid (1) or not (0).",
            u8::from(s.config_ok).to_string(),
        ),
    ];
    for (name, help, value) in appliance {
        family(&mut out, name, help, [(String::new(), value)]);
    }
    let version = format!("{{version=\"{}\"}}", escape(env!("CARGO_PKG_VERSION")));
    family(
        &mut out,
        "cairn_build_info",
        "The running Cairn's version.",
        [(version, "1".into())],
    );
    out
}

/// Writes one gauge family: its HELP and TYPE, then `(labels, value)` samples.
fn family(
    out: &mut String,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (String, String)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

/// A label value escaped: backslash, double quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A float as Prometheus writes it (`NaN`, `+Inf`, `-Inf`).
fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot {
            targets: vec![
                TargetMetrics {
                    plan: "home".into(),
                    target: "s3://bucket/home".into(),
                    last_success: Some(1_714_532_700),
                    last_run_ok: Some(true),
                    last_run_time: Some(1_714_532_760),
                    last_bytes: Some(1_500_000),
                    last_duration_seconds: Some(60.5),
                    last_volumes: Some(2),
                    verify_coverage: Some(0.25),
                    next_run: Some(1_714_619_100),
                },
                TargetMetrics {
                    plan: "photos".into(),
                    target: "file:///mnt/usb".into(),
                    last_run_ok: Some(false),
                    ..Default::default()
                },
            ],
            jobs_running: 1,
            jobs_queued: 0,
            config_ok: true,
        }
    }

    #[test]
    fn a_small_snapshot_renders_exactly() {
        let home = "{plan=\"home\",target=\"s3://bucket/home\"}";
        let photos = "{plan=\"photos\",target=\"file:///mnt/usb\"}";
        let expected = format!(
            "# HELP cairn_last_success_timestamp_seconds When a backup last succeeded, in Unix time.
# TYPE cairn_last_success_timestamp_seconds gauge
cairn_last_success_timestamp_seconds{home} 1714532700
# HELP cairn_last_run_success Whether the last run succeeded (1) or failed (0).
# TYPE cairn_last_run_success gauge
cairn_last_run_success{home} 1
cairn_last_run_success{photos} 0
# HELP cairn_last_run_timestamp_seconds When the last run ended, in Unix time.
# TYPE cairn_last_run_timestamp_seconds gauge
cairn_last_run_timestamp_seconds{home} 1714532760
# HELP cairn_last_run_bytes_written Bytes the last run wrote to the target.
# TYPE cairn_last_run_bytes_written gauge
cairn_last_run_bytes_written{home} 1500000
# HELP cairn_last_run_duration_seconds How long the last run took.
# TYPE cairn_last_run_duration_seconds gauge
cairn_last_run_duration_seconds{home} 60.5
# HELP cairn_last_run_volumes Volumes the last run wrote.
# TYPE cairn_last_run_volumes gauge
cairn_last_run_volumes{home} 2
# HELP cairn_verify_coverage_ratio Share of the archive verified, from 0 to 1.
# TYPE cairn_verify_coverage_ratio gauge
cairn_verify_coverage_ratio{home} 0.25
# HELP cairn_next_run_timestamp_seconds When the next run is due, in Unix time.
# TYPE cairn_next_run_timestamp_seconds gauge
cairn_next_run_timestamp_seconds{home} 1714619100
# HELP cairn_jobs_running Jobs running now.
# TYPE cairn_jobs_running gauge
cairn_jobs_running 1
# HELP cairn_jobs_queued Jobs waiting to run.
# TYPE cairn_jobs_queued gauge
cairn_jobs_queued 0
# HELP cairn_config_valid Whether the configuration is valid (1) or not (0).
# TYPE cairn_config_valid gauge
cairn_config_valid 1
# HELP cairn_build_info The running Cairn's version.
# TYPE cairn_build_info gauge
cairn_build_info{{version=\"{}\"}} 1
",
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(render(&snapshot()), expected);
    }

    #[test]
    fn label_values_are_escaped_and_passwords_removed() {
        let s = Snapshot {
            targets: vec![TargetMetrics {
                plan: "a\\b\"c\nd".into(),
                target: "sftp://me:secret@host/x".into(),
                last_run_ok: Some(true),
                ..Default::default()
            }],
            ..Default::default()
        };
        let out = render(&s);
        let line = "cairn_last_run_success{plan=\"a\\\\b\\\"c\\nd\",target=\"sftp://host/x\"} 1\n";
        assert!(out.contains(line), "{out}");
        assert!(!out.contains("secret"));
        assert_eq!(float(f64::NAN), "NaN");
        assert_eq!(
            (float(f64::INFINITY), float(-f64::INFINITY)),
            ("+Inf".into(), "-Inf".into())
        );
    }

    #[test]
    fn every_line_is_valid_exposition_format() {
        let name = r"[a-zA-Z_:][a-zA-Z0-9_:]*";
        let label = r#"[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*""#;
        let value = r"(?:NaN|[+-]Inf|[+-]?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)";
        let sample = format!(r"^({name})(?:\{{{label}(?:,{label})*\}})? {value}$");
        let sample = regex::Regex::new(&sample).unwrap();
        let comment = regex::Regex::new(&format!(r"^# (HELP|TYPE) ({name}) \S.*$")).unwrap();
        let mut s = snapshot();
        s.targets[1].plan = "we\"ird\\\nname".into();
        s.targets[1].verify_coverage = Some(f64::NAN);
        let out = render(&s);
        let (mut declared, mut current) = (Vec::new(), String::new());
        for line in out.lines() {
            if let Some(c) = comment.captures(line) {
                if &c[1] == "TYPE" {
                    assert!(!declared.contains(&c[2].to_string()), "TYPE twice: {line}");
                    declared.push(c[2].to_string());
                }
                current = c[2].to_string();
                continue;
            }
            let c = sample
                .captures(line)
                .unwrap_or_else(|| panic!("bad line: {line:?}"));
            assert_eq!(&c[1], current, "a sample outside its family: {line}");
        }
        assert_eq!(declared.len(), PER_TARGET.len() + 4);
    }
}
