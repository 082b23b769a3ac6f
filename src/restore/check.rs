//! Checking stored volumes without restoring: each one fetched, its hash
//! compared with its manifest's, decrypted (the OpenPGP integrity check)
//! and read to the end as a tar stream. What bit rot on a remote disk
//! breaks, this finds before a restore needs the volume. The appliance
//! checks a rotating slice of them after each backup.

use super::stream::VolumeJob;
use crate::archive::{codec, difftar};
use crate::error::Result;
use crate::repo::Repo;

/// Every volume of every complete set at the target.
pub fn volumes(repo: &Repo) -> Result<Vec<VolumeJob>> {
    let coll = repo.collection()?;
    let mut all = Vec::new();
    for chain in &coll.chains {
        for set in chain.all_sets().filter(|s| !s.partial) {
            all.extend(super::volume_jobs(repo, set, None)?);
        }
    }
    Ok(all)
}

/// Checks one volume; the problem found, if any.
pub fn check(repo: &Repo, job: &VolumeJob) -> Option<String> {
    let problem = |why: String| Some(format!("{}: {why}", job.name));
    if !job.present {
        return problem("missing at the target".into());
    }
    let vol = match repo.fetch_volume(&job.name, Some(&job.info)) {
        Ok(v) => v,
        Err(e) => return problem(e.to_string()),
    };
    let raw = match vol.open() {
        Ok(f) => f,
        Err(e) => return problem(e.to_string()),
    };
    let mut reader = match codec::decode(raw, job.encoding, &repo.keys) {
        Ok(r) => r,
        Err(e) => return problem(e.to_string()),
    };
    let entries = difftar::for_each_entry(&mut reader, |_, data| {
        std::io::copy(data, &mut std::io::sink()).map_err(difftar::DifftarError::Tar)?;
        Ok(())
    });
    if let Err(e) = entries {
        return problem(format!("it is damaged: {e}"));
    }
    // The rest after the tar's end, so the OpenPGP integrity check runs.
    match std::io::copy(&mut reader, &mut std::io::sink()) {
        Ok(_) => None,
        Err(e) => problem(format!("it is damaged: {e}")),
    }
}
