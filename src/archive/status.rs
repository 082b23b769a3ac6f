//! `collection-status` text, laid out as duplicity 0.8 prints it, so scripts
//! that read it keep working.

use super::collection::{BackupChain, Collection, SetKind};
use crate::repo::Repo;
use crate::time;
use std::fmt::Write;

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        one.to_string()
    } else {
        many.to_string()
    }
}

/// `BackupChain.__str__`.
pub fn render_chain(c: &BackupChain) -> String {
    let mut l = vec![
        "-------------------------".to_string(),
        format!("Chain start time: {}", time::to_pretty(c.start_time())),
        format!("Chain end time: {}", time::to_pretty(c.end_time())),
        format!("Number of contained backup sets: {}", c.incs.len() + 1),
        format!("Total number of contained volumes: {}", c.volume_count()),
        format!(
            "{:>20}   {:>30}   {:>15}",
            "Type of backup set:", "Time:", "Num volumes:"
        ),
    ];
    for s in c.all_sets() {
        let kind = if s.kind == SetKind::Full {
            "Full"
        } else {
            "Incremental"
        };
        l.push(format!(
            "{:>20}   {:>30}   {:>15}",
            kind,
            time::to_pretty(s.set_time()),
            s.volumes.len()
        ));
    }
    l.push("-------------------------".to_string());
    l.join("\n")
}

/// The whole report, "Last full backup date" line included.
pub fn render(coll: &Collection, repo: &Repo) -> String {
    let mut out = String::new();
    match coll.nth_last_full_time(1) {
        Some(t) => {
            let _ = writeln!(out, "Last full backup date: {}", time::to_pretty(t));
        }
        None => {
            let _ = writeln!(out, "Last full backup date: none");
        }
    }
    out.push_str(&render_collection(coll, repo));
    out
}

/// `BackupChain.to_log_info`: one line per set, `full|inc TIME VOLUMES enc|noenc`.
fn chain_log_info(c: &BackupChain, prefix: &str) -> Vec<String> {
    c.all_sets()
        .map(|s| {
            format!(
                "{prefix}{} {} {} {}",
                if s.kind == SetKind::Full {
                    "full"
                } else {
                    "inc"
                },
                time::to_string(s.set_time()),
                s.volumes.len(),
                if s.encrypted { "enc" } else { "noenc" }
            )
        })
        .collect()
}

/// `CollectionStatus.to_log_info`: the data lines of the machine log's
/// collection-status record (Déjà Dup reads the chains from them).
pub fn log_info(coll: &Collection, repo: &Repo) -> Vec<String> {
    let mut l = vec![
        format!("backend {}", repo.describe()),
        format!(
            "archive-dir {}",
            repo.archive_dir
                .as_ref()
                .map_or("None".to_string(), |d| d.display().to_string())
        ),
    ];
    for (i, c) in coll.secondary_chains().iter().enumerate() {
        l.push(format!("chain-no-sig {i}"));
        l.extend(chain_log_info(c, " "));
    }
    if let Some(c) = coll.matched_chain() {
        l.push("chain-complete".to_string());
        l.extend(chain_log_info(c, " "));
    }
    l.push(format!("orphaned-sets-num {}", coll.orphaned_sets.len()));
    l.push(format!(
        "incomplete-sets-num {}",
        coll.incomplete_sets.len()
    ));
    l
}

/// The report without the "Last full backup date" line (`CollectionStatus.__str__`).
pub fn render_collection(coll: &Collection, repo: &Repo) -> String {
    let mut out = String::new();
    let mut l = vec![
        "Collection Status".to_string(),
        "-----------------".to_string(),
        format!("Connecting with backend: {}", repo.describe()),
        format!(
            "Archive dir: {}",
            repo.archive_dir
                .as_ref()
                .map_or("None".to_string(), |d| d.display().to_string())
        ),
    ];
    let secondary = coll.secondary_chains();
    l.push(format!(
        "\nFound {} secondary backup {}",
        secondary.len(),
        plural(secondary.len(), "chain.", "chains.")
    ));
    for (i, c) in secondary.iter().enumerate() {
        l.push(format!("Secondary chain {} of {}:", i + 1, secondary.len()));
        l.push(render_chain(c));
        l.push(String::new());
    }
    match coll.matched_chain() {
        Some(c) => {
            l.push("\nFound primary backup chain with matching signature chain:".to_string());
            l.push(render_chain(c));
        }
        None => l.push("No backup chains with active signatures found".to_string()),
    }
    let (o, i) = (coll.orphaned_sets.len(), coll.incomplete_sets.len());
    if o > 0 || i > 0 {
        l.push(format!(
            "Also found {o} backup {} not part of any chain,",
            plural(o, "set", "sets")
        ));
        l.push(format!(
            "and {i} incomplete backup {}.",
            plural(i, "set", "sets")
        ));
        l.push(
            "These may be deleted by running duplicity with the \"cleanup\" command.".to_string(),
        );
    } else {
        l.push("No orphaned or incomplete backup sets found.".to_string());
    }
    out.push_str(&l.join("\n"));
    out.push('\n');
    out
}
