//! The appliance's configuration, `/data/cairn/cairn.toml`: the profile the
//! native CLI reads (one plan), or several `[[plan]]` tables, plus what only
//! the appliance needs (schedule, GPIO pins, notifications, listen address,
//! where a button restore goes).
//!
//! ```toml
//! listen = "0.0.0.0:8080"
//! https_listen = "0.0.0.0:8443"    # optional: HTTPS, plain HTTP redirects
//! restore_dir = "/data/restore"
//! schedule = "5 3 * * 2"           # the top-level plan's (the default)
//! source = "/data/share"
//! target = "rsync://backup@abcdef….onion::cairn/pi"
//! [encryption]
//! passphrase_file = "/data/cairn/secrets/passphrase"
//!
//! [[plan]]                         # a further plan
//! id = "photos"
//! source = "/mnt/usb/photos"
//! target = "file:///mnt/backup/photos"
//! schedule = "0 4 * * *"
//!
//! [gpio]
//! green = 17
//! red = 27
//! button = 22
//! ```
//!
//! A plan leaves out what the seed's cron recipe does: an incremental every
//! Tuesday at 03:05, a new full chain when the last is 2 months old, the 12
//! newest chains kept (`remove-all-but-n-full 12 --force` after each
//! backup), AES-256.

use super::notify::NotifyConfig;
use super::schedule::Schedule;
use crate::profile::Profile;
use serde::Deserialize;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The seed's schedule: Tuesdays at 03:05.
pub const DEFAULT_SCHEDULE: &str = "5 3 * * 2";
/// The seed's `--full-if-older-than`.
pub const DEFAULT_FULL_IF_OLDER_THAN: &str = "2M";
/// The seed's `remove-all-but-n-full`.
pub const DEFAULT_KEEP_FULL: usize = 12;
/// The id of the plan the top level of the file describes.
pub const MAIN_PLAN: &str = "main";
/// Every volume is read back within this period by the rotating check.
pub const DEFAULT_VERIFY_WITHIN: &str = "8W";

/// Keys the appliance reads at the top level, besides the profile's.
const APPLIANCE_KEYS: [&str; 7] = [
    "listen",
    "https_listen",
    "restore_dir",
    "schedule",
    "plan",
    "gpio",
    "notify",
];

/// Top-level keys about the appliance itself, which a file may hold before
/// setup (put on the boot partition) and setup keeps.
pub const OWN_SETTINGS: [&str; 5] = ["listen", "https_listen", "restore_dir", "gpio", "notify"];

/// Whether a configuration file's text says what to back up (anything but
/// [`OWN_SETTINGS`]). One that does not parse counts: it is the owner's, to
/// be reported and fixed, never replaced by setup.
pub fn describes_backups(text: &str) -> bool {
    match text.parse::<toml::Table>() {
        Ok(t) => t.keys().any(|k| !OWN_SETTINGS.contains(&k.as_str())),
        Err(_) => true,
    }
}

/// A configuration that parsed and validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub listen: Option<String>,
    /// Serve the dashboard over HTTPS here too (`"0.0.0.0:8443"`); plain
    /// HTTP then redirects to it.
    pub https_listen: Option<String>,
    /// Where a button restore (or a restore without a destination) writes:
    /// a new directory per restore under it.
    pub restore_dir: PathBuf,
    pub plans: Vec<Plan>,
    pub gpio: Option<GpioPins>,
    pub notify: NotifyConfig,
}

/// GPIO pins (BCM numbers), checked by the Pi board.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GpioPins {
    pub green: u8,
    pub red: u8,
    pub button: u8,
}

impl Default for GpioPins {
    /// GPIO17 (header pin 11) green, GPIO27 (13) red, GPIO22 (15) the button.
    fn default() -> Self {
        GpioPins {
            green: 17,
            red: 27,
            button: 22,
        }
    }
}

impl GpioPins {
    /// The Pi board's rules: GPIO 0–27, none a bus or the firmware needs,
    /// three different pins.
    pub fn validate(&self) -> Result<(), String> {
        #[cfg(target_os = "linux")]
        {
            let map = super::pi::PinMap {
                green: self.green,
                red: self.red,
                button: self.button,
            };
            map.validate().map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// One plan: what to back up, where to, and when.
#[derive(Debug, Clone)]
pub struct Plan {
    pub id: String,
    pub profile: Profile,
    pub schedule: Schedule,
    /// The rotating check reads every volume within this many seconds.
    pub verify_within: crate::time::Seconds,
    /// Further targets: each set is copied to them after the backup
    /// (`replicas = ["file:///mnt/usb/cairn"]`), each with its own
    /// retention and status.
    pub replicas: Vec<String>,
}

impl Plan {
    pub fn source(&self) -> &Path {
        self.profile.source.as_deref().expect("validated")
    }
    pub fn target(&self) -> &str {
        self.profile.target.as_deref().expect("validated")
    }
}

/// Why a configuration is not used: where, and what to write instead.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{file}{}: {message}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

/// The top level's appliance keys, profile keys left in `rest`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Top {
    listen: Option<String>,
    https_listen: Option<String>,
    restore_dir: Option<PathBuf>,
    schedule: Option<String>,
    #[serde(default)]
    plan: Vec<toml::Table>,
    gpio: Option<GpioPins>,
    #[serde(default)]
    notify: NotifyConfig,
}

impl Config {
    /// Reads and validates `file`. Nothing here is fatal to the daemon: the
    /// error is what it shows until the file is fixed.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
            file: file.display().to_string(),
            line: None,
            message: format!("cannot read it ({e}); write the configuration there"),
        })?;
        Config::parse(&text, file)
    }

    /// Parses and validates `text`, read from `file`.
    pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
        let at = |message: String, key: Option<&str>| ConfigError {
            file: file.display().to_string(),
            line: key.and_then(|k| line_of(text, k)),
            message,
        };
        let mut table: toml::Table = toml::from_str(text).map_err(|e| ConfigError {
            file: file.display().to_string(),
            line: e.span().map(|s| text[..s.start].lines().count().max(1)),
            message: e.message().to_string(),
        })?;
        let mut appliance = toml::Table::new();
        for k in APPLIANCE_KEYS {
            if let Some(v) = table.remove(k) {
                appliance.insert(k.to_string(), v);
            }
        }
        let top: Top = appliance
            .try_into()
            .map_err(|e| at(de_message(&e), field_of(&e)))?;
        let mut plans = Vec::new();
        if table.contains_key("source") || table.contains_key("target") || top.plan.is_empty() {
            plans.push(plan(MAIN_PLAN, table, top.schedule.as_deref(), &at)?);
        }
        for (i, mut t) in top.plan.into_iter().enumerate() {
            let id = match t.remove("id") {
                Some(toml::Value::String(s)) => s,
                _ => return Err(at(format!("plan {} has no `id = \"NAME\"`", i + 1), None)),
            };
            let schedule = match t.remove("schedule") {
                Some(toml::Value::String(s)) => Some(s),
                None => None,
                Some(_) => return Err(at(format!("plan {id}: `schedule` must be a string"), None)),
            };
            plans.push(plan(&id, t, schedule.as_deref(), &at)?);
        }
        check_plans(&plans, &at)?;
        top.notify
            .validate()
            .map_err(|e| at(e.to_string(), Some("notify")))?;
        Ok(Config {
            file: file.to_path_buf(),
            listen: top.listen,
            https_listen: top.https_listen,
            restore_dir: top
                .restore_dir
                .unwrap_or_else(|| PathBuf::from("/data/restore")),
            plans,
            gpio: top.gpio,
            notify: top.notify,
        })
    }

    /// The plan called `id`.
    pub fn plan(&self, id: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.id == id)
    }
}

/// One plan from its profile keys, with the seed's defaults filled in.
fn plan(
    id: &str,
    table: toml::Table,
    schedule: Option<&str>,
    at: &dyn Fn(String, Option<&str>) -> ConfigError,
) -> Result<Plan, ConfigError> {
    let mut table = table;
    let within = match table.remove("verify_within") {
        Some(toml::Value::String(s)) => s,
        None => DEFAULT_VERIFY_WITHIN.to_string(),
        Some(_) => {
            return Err(at(
                format!("plan {id}: `verify_within` must be a string such as \"8W\""),
                Some("verify_within"),
            ));
        }
    };
    let verify_within = crate::time::interval_to_seconds(&within).map_err(|e| {
        at(
            format!("plan {id}: verify_within: {e}; write e.g. \"8W\" (eight weeks)"),
            Some("verify_within"),
        )
    })?;
    let replicas = match table.remove("replicas") {
        None => Vec::new(),
        Some(toml::Value::Array(a)) if a.iter().all(toml::Value::is_str) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(_) => {
            let msg = format!(
                "plan {id}: `replicas` must be a list of target URLs, e.g. [\"file:///mnt/usb/cairn\"]"
            );
            return Err(at(msg, Some("replicas")));
        }
    };
    let mut profile: Profile = table
        .try_into()
        .map_err(|e| at(format!("plan {id}: {}", de_message(&e)), field_of(&e)))?;
    let expr = schedule.unwrap_or(DEFAULT_SCHEDULE);
    let schedule = Schedule::parse(expr).map_err(|e| {
        at(
            format!(
                "plan {id}: {e}; write e.g. schedule = \"{DEFAULT_SCHEDULE}\" (Tuesdays at 03:05)"
            ),
            Some("schedule"),
        )
    })?;
    if profile.full_if_older_than.is_none() {
        profile.full_if_older_than = Some(DEFAULT_FULL_IF_OLDER_THAN.into());
    }
    let r = &mut profile.retention;
    if r.keep_full.is_none() && r.keep_incrementals_of.is_none() && r.older_than.is_none() {
        r.keep_full = Some(DEFAULT_KEEP_FULL);
    }
    Ok(Plan {
        id: id.to_string(),
        profile,
        schedule,
        verify_within,
        replicas,
    })
}

/// What every plan needs before it can run.
fn check_plans(
    plans: &[Plan],
    at: &dyn Fn(String, Option<&str>) -> ConfigError,
) -> Result<(), ConfigError> {
    for (i, p) in plans.iter().enumerate() {
        if plans[..i].iter().any(|q| q.id == p.id) {
            return Err(at(
                format!("two plans are called `{}`; give each its own id", p.id),
                None,
            ));
        }
        if p.profile.source.is_none() {
            let msg = format!(
                "plan {}: no source; write source = \"/data/share\" (the directory to back up)",
                p.id
            );
            return Err(at(msg, None));
        }
        if p.profile.target.is_none() {
            let msg = format!(
                "plan {}: no target; write target = \"rsync://user@host::module/path\" (or file://, sftp://, s3://)",
                p.id
            );
            return Err(at(msg, None));
        }
        if p.replicas
            .iter()
            .any(|r| Some(r) == p.profile.target.as_ref())
        {
            let msg = format!(
                "plan {}: a replica is the target itself; list only further targets",
                p.id
            );
            return Err(at(msg, Some("replicas")));
        }
        if let Some(t) = &p.profile.full_if_older_than {
            crate::time::interval_to_seconds(t).map_err(|e| {
                at(
                    format!("plan {}: full_if_older_than: {e}; write e.g. \"2M\"", p.id),
                    Some("full_if_older_than"),
                )
            })?;
        }
        p.profile
            .remote
            .check_rate_with(p.profile.concurrency.unwrap_or(1))
            .map_err(|m| at(format!("plan {}: {m}", p.id), Some("max_upload_rate")))?;
        let unlimited = |u: &&String| !u.starts_with("rsync://") && !u.starts_with("file://");
        if p.profile.remote.max_upload_rate.is_some()
            && let Some(u) = p.profile.target.iter().chain(&p.replicas).find(unlimited)
        {
            let msg = format!(
                "plan {}: max_upload_rate works with rsync:// targets only (rsync's --bwlimit), \
                 and {} is not one; remove the rate or that target",
                p.id,
                crate::backend::url::redact(u)
            );
            return Err(at(msg, Some("max_upload_rate")));
        }
        let enc = &p.profile.encryption;
        for f in [&enc.passphrase_file, &enc.sign_passphrase_file]
            .into_iter()
            .flatten()
        {
            check_secret(f)
                .map_err(|m| at(format!("plan {}: {m}", p.id), Some("passphrase_file")))?;
        }
    }
    one_plan_per_target(plans).map_err(|m| at(m, None))
}

/// No two plans back up to the same place (as target or replica): their
/// sets would share one chain, one cache and one retention (one plan's
/// retention would delete the other's sets). A file that breaks it is
/// refused, like any other configuration error, until it is fixed.
fn one_plan_per_target(plans: &[Plan]) -> Result<(), String> {
    let mut seen: Vec<(String, &str)> = Vec::new();
    for p in plans {
        let places = p.profile.target.iter().chain(&p.replicas);
        for url in places {
            // The same bucket name at two S3 services is two places.
            let endpoint = match url.starts_with("s3://") {
                true => p.profile.remote.s3_endpoint.as_deref().unwrap_or_default(),
                false => "",
            };
            let place = crate::catalog::public_url(url)
                .trim_end_matches('/')
                .to_string();
            let endpoint = endpoint.trim_end_matches('/').to_ascii_lowercase();
            let key = format!("{endpoint} {place}");
            if let Some((_, other)) = seen.iter().find(|(k, id)| *k == key && *id != p.id) {
                return Err(format!(
                    "plans {other} and {} both back up to {place}; give each plan a target of its \
                     own (another folder there will do)",
                    p.id
                ));
            }
            seen.push((key, &p.id));
        }
    }
    Ok(())
}

/// A secrets file must exist and be readable by its owner only.
pub fn check_secret(f: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(f).map_err(|e| {
        format!(
            "secrets file {} cannot be read ({e}); create it with mode 0600",
            f.display()
        )
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "secrets file {} has mode {mode:04o}; others may read it. Run `chmod 600 {}`",
            f.display(),
            f.display()
        ));
    }
    Ok(())
}

/// A serde error's message without toml's excerpt.
fn de_message(e: &toml::de::Error) -> String {
    e.message().to_string()
}

/// The field a serde message names (`unknown field `x``, `missing field`,
/// `invalid type … for key `x``).
fn field_of(e: &toml::de::Error) -> Option<&str> {
    let m = e.message();
    let start = m.find('`')? + 1;
    let len = m[start..].find('`')?;
    let name = &m[start..start + len];
    Some(name).filter(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

/// The first line that sets `key` (1-based).
fn line_of(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.strip_prefix(key)
                .is_some_and(|r| r.trim_start().starts_with('=') || r.starts_with(']'))
                || l.strip_prefix('[')
                    .is_some_and(|r| r.trim_start().starts_with(key))
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_appliances_own_settings_are_not_a_configuration_yet() {
        assert!(!describes_backups(""));
        assert!(!describes_backups(
            "https_listen = \"0.0.0.0:8443\"\n[gpio]\ngreen = 17\n"
        ));
        assert!(describes_backups(
            "https_listen = \"0.0.0.0:8443\"\ntarget = \"file:///b\"\n"
        ));
        assert!(describes_backups("[[plan]]\nid = \"x\"\n"));
        assert!(describes_backups("this is not = = toml"));
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("cairn.toml"))
    }

    #[test]
    fn two_plans_never_share_a_target() {
        let two = |a: &str, b: &str| {
            format!(
                "source = \"/a\"\ntarget = \"{a}\"\n[encryption]\nenabled = false\n\
                 [[plan]]\nid = \"b\"\nsource = \"/b\"\ntarget = \"{b}\"\n\
                 [plan.encryption]\nenabled = false\n"
            )
        };
        let check = |text: &str| parse(text).map(drop).map_err(|e| e.message);
        check(&two("rsync://u@h::m/pi", "rsync://u@h::m/pi-b")).unwrap();
        for (a, b) in [
            ("rsync://u@h::m/pi", "rsync://u:pw@h::m/pi/"),
            ("file:///mnt/usb/cairn", "file:///mnt/usb/cairn"),
            ("s3://b/pi", "s3://b/pi"),
        ] {
            let e = check(&two(a, b)).unwrap_err();
            assert!(e.contains("both back up to"), "{e}");
        }
        let replica = two("file:///x", "file:///y").replace(
            "target = \"file:///y\"",
            "target = \"file:///y\"\nreplicas = [\"file:///x/\"]",
        );
        assert!(
            check(&replica).is_err(),
            "a replica on another plan's target"
        );
        // The same bucket at two S3 services is two places.
        let services = two("s3://b/pi", "s3://b/pi").replace(
            "[plan.encryption]",
            "[plan.remote]\ns3_endpoint = \"http://minio:9000\"\n[plan.encryption]",
        );
        check(&services).unwrap();
    }

    /// An upload limit only rsync carries is refused at load for a plan
    /// with an SFTP or S3 place, as is a limit with several uploads at once
    /// and more uploads than the cap.
    #[test]
    fn upload_limits_are_checked_at_load() {
        let plan = |replica: &str, remote: &str| {
            format!(
                "source = \"/a\"\ntarget = \"file:///a\"\n[encryption]\nenabled = false\n\
                 [[plan]]\nid = \"b\"\nsource = \"/b\"\ntarget = \"rsync://u@h::m/b\"\n\
                 replicas = [\"{replica}\"]\n{remote}\n\
                 [plan.remote]\nmax_upload_rate = \"1M\"\n[plan.encryption]\nenabled = false\n"
            )
        };
        let check = |text: &str| parse(text).map(drop).map_err(|e| e.message);
        check(&plan("file:///usb/b", "")).unwrap();
        let e = check(&plan("sftp://u@h/b", "")).unwrap_err();
        assert!(
            e.contains("max_upload_rate") && e.contains("sftp://"),
            "{e}"
        );
        let e = check(&plan("file:///usb/b", "concurrency = 2")).unwrap_err();
        assert!(e.contains("concurrency 2"), "{e}");
        let many = plan("file:///usb/b", "concurrency = 9").replace("max_upload_rate", "timeout");
        let e = check(&many.replace("\"1M\"", "30")).unwrap_err();
        assert!(e.contains("at most 8"), "{e}");
    }

    #[test]
    fn a_cli_profile_is_one_plan_with_the_seed_policy() {
        let c = parse("source = \"/data/share\"\ntarget = \"file:///b\"\n").unwrap();
        assert_eq!(c.plans.len(), 1);
        let p = &c.plans[0];
        assert_eq!(p.id, MAIN_PLAN);
        assert_eq!(p.schedule.expr(), DEFAULT_SCHEDULE);
        assert_eq!(p.profile.full_if_older_than.as_deref(), Some("2M"));
        assert_eq!(p.profile.retention.keep_full, Some(12));
        assert_eq!(c.restore_dir, PathBuf::from("/data/restore"));
        assert_eq!(p.verify_within, 8 * 7 * 86400);
    }

    #[test]
    fn schedule_and_further_plans() {
        let c = parse(
            "schedule = \"0 4 * * *\"\nsource = \"/a\"\ntarget = \"file:///b\"\n\
             [retention]\nolder_than = \"1Y\"\n\
             [[plan]]\nid = \"photos\"\nsource = \"/p\"\ntarget = \"file:///q\"\nschedule = \"@daily\"\n\
             [gpio]\ngreen = 5\nred = 6\nbutton = 13\n",
        )
        .unwrap();
        assert_eq!(c.plans[0].schedule.expr(), "0 4 * * *");
        assert_eq!(c.plans[0].profile.retention.keep_full, None);
        assert_eq!(c.plan("photos").unwrap().target(), "file:///q");
        assert_eq!(c.gpio.unwrap().button, 13);
    }

    #[test]
    fn errors_say_where_and_what_to_write() {
        let e = parse("source = \"/a\"\ntarget = \"file:///b\"\nschedul = \"x\"\n").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.message.contains("schedul"), "{e}");
        let e = parse("source = \"/a\"\ntarget = \"file:///b\"\nschedule = \"61 * * * *\"\n")
            .unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.message.contains("write e.g."), "{e}");
        let e = parse("source = \"/a\"\n").unwrap_err();
        assert!(e.message.contains("no target"), "{e}");
        let e = parse("source = [\n").unwrap_err();
        assert!(e.line.is_some(), "{e}");
        let e = parse("[[plan]]\nsource = \"/a\"\n").unwrap_err();
        assert!(e.message.contains("id"), "{e}");
    }

    #[test]
    fn secrets_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pass");
        std::fs::write(&f, "the-secret-itself").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let text = format!(
            "source = \"/a\"\ntarget = \"file:///b\"\n[encryption]\npassphrase_file = \"{}\"\n",
            f.display()
        );
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains("chmod 600"), "{e}");
        assert!(!e.message.contains("the-secret-itself"), "{e}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        parse(&text).unwrap();
    }
}
