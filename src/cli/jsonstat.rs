//! duplicity 3.x's `--jsonstat`: the backup's statistics as JSON, printed
//! and stored at the target beside the set's manifest as
//! `duplicity-{full,inc}.….jsonstat` (encoded as the set's other files), as
//! `dup_main.write_json_stat` does.

use crate::archive::codec::{self, Encoder};
use crate::archive::collection::SetKind;
use crate::backup::{BackupReport, Storage};
use crate::repo::Repo;
use crate::time;
use anyhow::Context;
use serde_json::{Value, json};

/// What the statistics file describes besides the counts.
pub struct Meta<'a> {
    pub start: f64,
    pub end: f64,
    pub target: &'a str,
    pub source: &'a str,
    /// Volumes uploaded at once (`--concurrency`).
    pub concurrency: usize,
}

/// The JSON, with 3.2.1's keys; counts Cairn does not keep are null.
pub fn render(r: &BackupReport, chain_incs: usize, full_time: i64, m: &Meta<'_>) -> String {
    let full = r.kind == Some(SetKind::Full);
    let v: Value = json!({
        "Filename": Value::Null,
        "StartTime": m.start,
        "EndTime": m.end,
        "ElapsedTime": m.end - m.start,
        "Errors": r.skipped.len(),
        "TotalDestinationSizeChange": r.stored_bytes,
        "SourceFiles": r.source_files,
        "SourceFileSize": r.source_bytes,
        "NewFiles": r.new_files,
        "NewFileSize": Value::Null,
        "DeletedFiles": r.deleted_files,
        "ChangedFiles": r.changed_files,
        "ChangedFileSize": Value::Null,
        "ChangedDeltaSize": Value::Null,
        "DeltaEntries": r.delta_entries,
        "RawDeltaSize": Value::Null,
        "StartTime_str": time::to_string(m.start as i64),
        "EndTime_str": time::to_string(m.end as i64),
        "backup_meta": {
            "action": if full { "full" } else { "inc" },
            "skipped_inc": false,
            "time_full_bkp": full_time,
            "time_full_bkp_str": time::to_string(full_time),
            "no_of_inc": chain_incs,
            "concurrency": m.concurrency,
            "target": m.target,
            "source": m.source,
            "local_json_stat": ["N/A"],
        },
    });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

/// Stores `json` at the target as the set's statistics file.
pub fn store(repo: &Repo, storage: &Storage, r: &BackupReport, json: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let name = repo.naming.jsonstat(r.previous, r.time, storage.encoding());
    let keys = match storage {
        Storage::Encrypted(cfg) => Some(crate::crypto::MessageKeys::new(cfg)?),
        _ => None,
    };
    let format = codec::Format {
        encoding: storage.encoding(),
        keys: keys.as_ref(),
        level: storage.level(),
        packing: storage.packing(),
    };
    let dest = repo.create(&name)?;
    let mut enc = Encoder::new(dest, format).with_context(|| format!("storing {name}"))?;
    enc.write_all(json.as_bytes())
        .with_context(|| format!("storing {name}"))?;
    enc.finish().with_context(|| format!("storing {name}"))?;
    Ok(())
}
