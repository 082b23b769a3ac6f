//! The appliance's long-running service: web interface and health endpoint.

/// Serves until the process is told to stop.
pub fn run(listen: &str) -> anyhow::Result<()> {
    anyhow::bail!("cairn serve is not implemented yet (asked to listen on {listen})")
}
