//! Settings for what a plan backs up and where to: its source folder, its
//! selection rules and its target (with the target's password or S3 keys,
//! both write-only); a new plan; a plan removed.
//!
//! A change is checked as a whole configuration, its selection rules are
//! compiled against its source, and a new target is connected to with the
//! plan's own settings and passphrase (a target whose backups that
//! passphrase cannot open is refused) before anything is saved. Backups
//! already made are never touched: a plan moved or removed leaves them
//! where they are.

use super::settings::{edit_lock, edit_locked, plan_table, table_in};
use super::setup::{check_source, probe_target, with_password};
use super::{App, answer, blocking};
use crate::appliance::config::{Config, MAIN_PLAN};
use crate::appliance::runner::target_args;
use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A new plan, or a change to one; a field left out stays as it is.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    plan: String,
    /// Add `plan` (it must not exist yet; `source` and `target` are needed).
    #[serde(default)]
    new: bool,
    source: Option<String>,
    /// duplicity's file-list rules, first match wins: `- PATTERN`, `+ PATTERN`.
    selection: Option<Vec<String>>,
    target: Option<String>,
    target_password: Option<String>,
    /// Keys for an `s3://` target, kept in a file of their own (0600).
    s3: Option<S3Keys>,
    /// Check everything and connect, save nothing.
    #[serde(default)]
    dry_run: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Keys {
    /// e.g. `https://s3.eu-central-1.amazonaws.com` or a MinIO's address.
    endpoint: Option<String>,
    region: Option<String>,
    access_key: String,
    secret_key: String,
}

impl S3Keys {
    /// The `[remote]` settings that use these keys (kept in `file`).
    pub fn remote(&self, file: &Path) -> crate::profile::Remote {
        crate::profile::Remote {
            s3_credentials_file: Some(file.to_path_buf()),
            s3_endpoint: given(&self.endpoint),
            s3_region: given(&self.region),
            ..Default::default()
        }
    }

    /// `t`'s `[remote]` with those settings, comments kept.
    pub fn write_into(&self, t: &mut toml_edit::Table, file: &Path) -> Result<(), String> {
        let r = table_in(t, "remote")?;
        let remote = self.remote(file);
        r.insert(
            "s3_credentials_file",
            toml_edit::value(file.display().to_string()),
        );
        for (key, v) in [
            ("s3_endpoint", remote.s3_endpoint),
            ("s3_region", remote.s3_region),
        ] {
            match v {
                Some(v) => r.insert(key, toml_edit::value(v)),
                None => r.remove(key),
            };
        }
        Ok(())
    }
}

/// A field's text, unless it is empty.
fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// `POST /api/settings/plan`.
pub async fn change(State(app): State<App>, Json(req): Json<PlanRequest>) -> Response {
    answer(blocking(move || change_plan(&app, &req)).await)
}

fn change_plan(app: &App, req: &PlanRequest) -> Result<serde_json::Value, String> {
    let id = req.plan.trim();
    if req.new {
        check_id(id)?;
    }
    let source = req
        .source
        .as_deref()
        .map(|s| check_source(app, s))
        .transpose()?;
    if req.target.is_none() && req.target_password.is_some() {
        return Err("a new target password goes with its target: give the target URL too".into());
    }
    let target = req
        .target
        .as_deref()
        .map(|t| with_password(t, req.target_password.as_deref()))
        .transpose()?;
    if req.new && (source.is_none() || target.is_none()) {
        return Err("a new plan needs a source folder and a target".into());
    }
    // One edit at a time from writing the keys to sweeping the old ones.
    let _one = edit_lock();
    let keys = match &req.s3 {
        Some(k) => Some(KeysFile::write(app, id, k, target.as_deref(), req.dry_run)?),
        None => None,
    };
    let keys_path = keys.as_ref().map(|k| k.path.clone());
    let edit = Edit {
        id,
        new: req.new,
        source: source.as_deref(),
        selection: req.selection.as_deref(),
        target: target.as_deref(),
        s3: keys_path.as_deref().zip(req.s3.as_ref()),
    };
    let r = edit_locked(app, req.dry_run, |text| edit.apply(text), |c| edit.check(c));
    match (&r, keys) {
        (Ok(_), _) if !req.dry_run => sweep_keys(app),
        (_, Some(k)) => k.discard(),
        _ => {}
    }
    let (connected, sets) = r?;
    Ok(serde_json::json!({
        "plan": id, "saved": !req.dry_run, "sets": sets,
        "message": edit.message(&connected, req.dry_run),
    }))
}

/// A plan's id: a short name of lower-case letters, digits and `-`.
fn check_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 32
        && id.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{id:?} cannot name a plan: use up to 32 lower-case letters, digits and -, e.g. \"photos\""
        ))
    }
}

/// What a plan request changes in the file.
struct Edit<'a> {
    id: &'a str,
    new: bool,
    source: Option<&'a Path>,
    selection: Option<&'a [String]>,
    target: Option<&'a str>,
    s3: Option<(&'a Path, &'a S3Keys)>,
}

impl Edit<'_> {
    /// `text` with this change, comments and layout kept.
    fn apply(&self, text: &str) -> Result<String, String> {
        let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| format!("{e}"))?;
        let t = if self.new {
            new_plan(&mut doc, self.id)?
        } else {
            plan_table(&mut doc, self.id)?
        };
        if let Some(s) = self.source {
            t.insert("source", toml_edit::value(s.display().to_string()));
        }
        if let Some(t_url) = self.target {
            t.insert("target", toml_edit::value(t_url));
            let leaves_s3 = !t_url.starts_with("s3://");
            let remote = t.get_mut("remote").and_then(|r| r.as_table_like_mut());
            if let (true, Some(r)) = (leaves_s3, remote) {
                for key in ["s3_credentials_file", "s3_endpoint", "s3_region"] {
                    r.remove(key);
                }
            }
        }
        match self.selection {
            Some([]) => {
                t.remove("selection");
            }
            Some(rules) => {
                let rules: toml_edit::Array = rules.iter().map(|r| r.trim()).collect();
                t.insert("selection", toml_edit::value(rules));
            }
            None => {}
        }
        if let Some((file, keys)) = self.s3 {
            keys.write_into(t, file)?;
        }
        Ok(doc.to_string())
    }

    /// What cannot be seen in the file alone: the selection compiled
    /// against the source, and a new target reached (and its backups
    /// opened with the plan's passphrase).
    fn check(&self, c: &Config) -> Result<(Option<String>, usize), String> {
        let plan = c
            .plan(self.id)
            .ok_or(format!("no plan called `{}`", self.id))?;
        crate::target::selection(&plan.profile.selection, plan.source())
            .map_err(|e| format!("selection: {e}"))?;
        if self.s3.is_some() && !plan.target().starts_with("s3://") {
            return Err("S3 keys go with an s3://BUCKET/PATH target".into());
        }
        if self.target.is_none() && self.s3.is_none() {
            return Ok((None, 0));
        }
        let mut args = target_args(c, plan);
        args.catalog = None;
        let (message, sets) = probe_target(plan.target(), &args, None)?;
        Ok((Some(message), sets))
    }

    /// What was done and what it means for the next backup.
    fn message(&self, connected: &Option<String>, dry_run: bool) -> String {
        let mut m = String::from(match (dry_run, self.new) {
            (true, _) => "Checked; nothing saved.",
            (false, true) => "The plan is added.",
            (false, false) => "Saved.",
        });
        if let Some(c) = connected {
            m = format!("{m} {c}");
        }
        if !self.new && self.target.is_some() {
            m += " Backups at the previous target stay there, untouched; they are no longer shown here.";
        }
        if !self.new && (self.source.is_some() || self.selection.is_some()) {
            m += " The next backup records what changed as an incremental; files no longer \
                  selected stay in the earlier sets until retention removes them.";
        }
        m
    }
}

/// A new `[[plan]]` table called `id`, encrypted as the first plan is (the
/// same passphrase, so the recovery kit covers it).
fn new_plan<'d>(
    doc: &'d mut toml_edit::DocumentMut,
    id: &str,
) -> Result<&'d mut toml_edit::Table, String> {
    let top_plan = doc.contains_key("source") || doc.contains_key("target");
    let plans = doc.get("plan").and_then(|p| p.as_array_of_tables());
    let taken = (id == MAIN_PLAN && top_plan)
        || plans.is_some_and(|a| {
            a.iter()
                .any(|t| t.get("id").and_then(|v| v.as_str()) == Some(id))
        });
    if taken {
        return Err(format!("a plan called `{id}` exists already"));
    }
    let encryption = if top_plan {
        doc.get("encryption").cloned()
    } else {
        plans
            .and_then(|a| a.iter().next())
            .and_then(|t| t.get("encryption").cloned())
    };
    let mut t = toml_edit::Table::new();
    t.insert("id", toml_edit::value(id));
    if let Some(e) = encryption.as_ref().and_then(|e| e.as_table_like()) {
        // Key by key: a copied table would keep its place in the file
        // (toml_edit prints tables by position) and land above `[[plan]]`.
        let mut copy = toml_edit::Table::new();
        for (k, v) in e.iter() {
            copy.insert(k, v.clone());
        }
        t.insert("encryption", toml_edit::Item::Table(copy));
    }
    let array = doc
        .entry("plan")
        .or_insert(toml_edit::Item::ArrayOfTables(Default::default()))
        .as_array_of_tables_mut()
        .ok_or("`plan` is not a list of [[plan]] tables")?;
    array.push(t);
    Ok(array.iter_mut().last().expect("just pushed"))
}

/// An S3 key pair in a file of its own under the appliance's secrets
/// (`s3-PLAN-STAMP`, 0600): a new file for every change, so the one the
/// saved configuration names is never overwritten.
pub struct KeysFile {
    pub path: PathBuf,
}

impl KeysFile {
    /// A new key file; for a connection test only (`probe`), in the
    /// appliance's scratch folder rather than with the secrets.
    pub fn write(
        app: &App,
        id: &str,
        k: &S3Keys,
        target: Option<&str>,
        probe: bool,
    ) -> Result<KeysFile, String> {
        if target.is_some_and(|t| !t.starts_with("s3://")) {
            return Err("S3 keys go with an s3://BUCKET/PATH target".into());
        }
        let bad = |s: &str| s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control());
        if bad(k.access_key.trim()) || bad(k.secret_key.trim()) {
            return Err("give the S3 access key and secret key, each without spaces".into());
        }
        let secrets = match probe {
            false => super::setup::secrets_dir(app)?,
            true => {
                let tmp = app.auth.dir().join("tmp");
                std::fs::create_dir_all(&tmp)
                    .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
                tmp
            }
        };
        let mut tag = [0u8; 4];
        getrandom::getrandom(&mut tag).map_err(|e| e.to_string())?;
        let tag: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        let path = secrets.join(format!("s3-{id}-{tag}"));
        let text = format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            k.access_key.trim(),
            k.secret_key.trim()
        );
        crate::repo::write_atomic(&path, text.as_bytes()).map_err(|e| e.to_string())?;
        Ok(KeysFile { path })
    }

    /// The change was not saved: the new file goes.
    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The S3 key files the dashboard wrote (`s3-PLAN-TAG` in the secrets
/// folder) that neither the configuration in effect nor setup's pending
/// one names any more: an old key pair, or one a power cut left before
/// it was saved. Nothing is removed while either file does not parse.
pub fn sweep_keys(app: &App) {
    let config = app.daemon.config_file().to_path_buf();
    let pending = super::setup::pending_path(app);
    // A running job may still read the keys its configuration named.
    let busy = app.daemon.status().running.is_some();
    if busy || (!config.exists() && !pending.exists()) {
        return;
    }
    let mut named = Vec::new();
    for file in [config, pending] {
        match std::fs::read_to_string(&file) {
            Ok(text) => match text.parse::<toml::Table>() {
                Ok(t) => credentials_files(&toml::Value::Table(t), &mut named),
                Err(_) => return,
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => return,
        }
    }
    let secrets = app.auth.dir().join("secrets");
    for e in std::fs::read_dir(&secrets).into_iter().flatten().flatten() {
        let ours = is_keys_file(&e.file_name().to_string_lossy());
        if ours && !named.contains(&e.path()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Key files a connection test left in the scratch folder (a power cut or
/// a stop during the test): removed at start.
pub fn sweep_probe_keys(app: &App) {
    let tmp = app.auth.dir().join("tmp");
    for e in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
        if is_keys_file(&e.file_name().to_string_lossy()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// `s3-PLAN-TAG` with an 8-hex-digit tag: a name [`KeysFile`] writes, and
/// no other (an owner's `s3-wasabi` is not the dashboard's to remove).
fn is_keys_file(name: &str) -> bool {
    let Some((plan, tag)) = name.strip_prefix("s3-").and_then(|r| r.rsplit_once('-')) else {
        return false;
    };
    !plan.is_empty() && tag.len() == 8 && tag.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Every `s3_credentials_file` in `v`, at any depth.
fn credentials_files(v: &toml::Value, out: &mut Vec<PathBuf>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                match (k.as_str(), v) {
                    ("s3_credentials_file", toml::Value::String(f)) => out.push(PathBuf::from(f)),
                    _ => credentials_files(v, out),
                }
            }
        }
        toml::Value::Array(a) => a.iter().for_each(|v| credentials_files(v, out)),
        _ => {}
    }
}

/// A plan to remove: `confirm` repeats its id.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveRequest {
    plan: String,
    confirm: String,
    #[serde(default)]
    dry_run: bool,
}

/// `POST /api/settings/plan/remove`: the plan goes from the configuration;
/// its backups stay at its target.
pub async fn remove(State(app): State<App>, Json(req): Json<RemoveRequest>) -> Response {
    answer(blocking(move || remove_plan(&app, &req)).await)
}

fn remove_plan(app: &App, req: &RemoveRequest) -> Result<serde_json::Value, String> {
    let id = req.plan.as_str();
    if req.confirm.trim() != id {
        return Err(format!("to remove plan {id}, repeat its name in `confirm`"));
    }
    let _one = edit_lock();
    let before = app.daemon.config().ok();
    let target = before
        .as_ref()
        .and_then(|c| c.plan(id))
        .map(|p| crate::catalog::public_url(p.target()));
    edit_locked(app, req.dry_run, |text| without_plan(text, id), |_| Ok(()))?;
    if !req.dry_run {
        sweep_keys(app);
    }
    let at = target.map(|t| format!(" at {t}")).unwrap_or_default();
    let done = if req.dry_run {
        "Checked; nothing saved."
    } else {
        "The plan is removed."
    };
    Ok(serde_json::json!({
        "plan": id, "saved": !req.dry_run,
        "message": format!("{done} Its backups{at} stay there, untouched."),
    }))
}

/// `text` without the `[[plan]]` called `id`. The plan at the top level of
/// the file is not removed: change what it backs up and where instead.
fn without_plan(text: &str, id: &str) -> Result<String, String> {
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| format!("{e}"))?;
    let top_plan = doc.contains_key("source") || doc.contains_key("target");
    if id == MAIN_PLAN && top_plan {
        return Err(
            "the main plan cannot be removed; change what it backs up and where instead".into(),
        );
    }
    let array = doc
        .get_mut("plan")
        .and_then(|p| p.as_array_of_tables_mut())
        .ok_or(format!("no plan called `{id}`"))?;
    let i = array
        .iter()
        .position(|t| t.get("id").and_then(|v| v.as_str()) == Some(id))
        .ok_or(format!("no plan called `{id}`"))?;
    if array.len() == 1 && !top_plan {
        return Err("the appliance needs one plan; change this one instead".into());
    }
    array.remove(i);
    if array.is_empty() {
        doc.remove("plan");
    }
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        Config::parse(text, Path::new("x.toml")).unwrap()
    }

    #[test]
    fn plans_are_added_changed_and_removed_with_comments_kept() {
        let text = "# mine\nsource = \"/a\" # the share\ntarget = \"file:///b\"\n\n\
                    [encryption]\nenabled = false\n";
        let keys = S3Keys {
            endpoint: Some("http://127.0.0.1:9000".into()),
            region: None,
            access_key: "K".into(),
            secret_key: "S".into(),
        };
        let add = Edit {
            id: "photos",
            new: true,
            source: Some(Path::new("/c")),
            selection: Some(&["- **/*.tmp".to_string()]),
            target: Some("s3://bucket/pi"),
            s3: Some((Path::new("/data/cairn/secrets/s3-photos-1"), &keys)),
        };
        let added = add.apply(text).unwrap();
        assert!(added.contains("# the share"), "{added}");
        let c = parse(&added);
        let p = c.plan("photos").unwrap();
        assert_eq!(p.source(), Path::new("/c"));
        assert_eq!(p.profile.selection, ["- **/*.tmp"]);
        assert_eq!(p.profile.encryption.enabled, Some(false), "{added}");
        assert_eq!(
            p.profile.remote.s3_endpoint.as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert!(p.profile.remote.s3_credentials_file.is_some());
        assert!(add.apply(&added).is_err(), "the id is taken");
        let change = Edit {
            id: MAIN_PLAN,
            new: false,
            source: None,
            selection: Some(&[]),
            target: Some("file:///elsewhere"),
            s3: None,
        };
        let changed = parse(&change.apply(&added).unwrap());
        assert_eq!(changed.plan("main").unwrap().target(), "file:///elsewhere");
        assert_eq!(changed.plan("photos").unwrap().target(), "s3://bucket/pi");
        assert!(without_plan(&added, MAIN_PLAN).is_err());
        let removed = without_plan(&added, "photos").unwrap();
        assert!(parse(&removed).plan("photos").is_none());
        assert!(removed.contains("# the share"), "{removed}");
        assert!(without_plan(&added, "nope").is_err());
        assert!(is_keys_file("s3-photos-0a1b2c3d"));
        assert!(
            is_keys_file("s3-Photos 2-0a1b2c3d"),
            "a hand-written plan id"
        );
        for not_ours in [
            "s3-wasabi",
            "s3-main-xyz",
            "s3-main-0a1b2c3",
            "s3--0a1b2c3d",
            "k-main-0a1b2c3d",
        ] {
            assert!(!is_keys_file(not_ours), "{not_ours}");
        }
        for bad in ["", "Photos", "a b", "../x", "-x"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
        check_id("photos-2").unwrap();
    }

    #[test]
    fn plans_added_after_other_tables_land_in_their_own_tables() {
        let mut text = "source = \"/a\"\ntarget = \"file:///b\"\n[encryption]\nenabled = false\n\
                        [retention]\nkeep_full = 3\n[gpio]\ngreen = 5\nred = 6\nbutton = 13\n"
            .to_string();
        for id in ["two", "three", "four"] {
            let target = format!("file:///{id}");
            let add = Edit {
                id,
                new: true,
                source: Some(Path::new("/c")),
                selection: None,
                target: Some(&target),
                s3: None,
            };
            text = add.apply(&text).unwrap();
            let c =
                Config::parse(&text, Path::new("x.toml")).unwrap_or_else(|e| panic!("{e}\n{text}"));
            let p = c.plan(id).unwrap();
            assert_eq!(p.profile.encryption.enabled, Some(false), "{text}");
            assert_eq!(p.target(), target);
        }
        let c = parse(&text);
        assert_eq!(c.plans.len(), 4);
        assert_eq!(c.plan("main").unwrap().profile.retention.keep_full, Some(3));
        assert_eq!(c.gpio.unwrap().green, 5);
    }

    #[test]
    fn leaving_s3_drops_its_settings() {
        let text = "source = \"/a\"\ntarget = \"s3://b/a\"\n[encryption]\nenabled = false\n\
                    [remote]\ntimeout = 5\ns3_credentials_file = \"/k\"\ns3_endpoint = \"http://x\"\n";
        let change = Edit {
            id: MAIN_PLAN,
            new: false,
            source: None,
            selection: None,
            target: Some("file:///usb"),
            s3: None,
        };
        let c = parse(&change.apply(text).unwrap());
        let r = &c.plan(MAIN_PLAN).unwrap().profile.remote;
        assert_eq!(
            (r.s3_credentials_file.as_ref(), r.s3_endpoint.as_ref()),
            (None, None)
        );
        assert_eq!(r.timeout, Some(5), "the rest of [remote] stays");
    }

    #[test]
    fn the_last_plan_is_not_removed() {
        let text = "[[plan]]\nid = \"only\"\nsource = \"/a\"\ntarget = \"file:///b\"\n\
                    [plan.encryption]\nenabled = false\n";
        parse(text);
        assert!(without_plan(text, "only").is_err());
    }
}
