//! `turnpike stun stun:HOST[:PORT]`: one Binding transaction, printed. (Being written.)

/// Arguments of `turnpike stun`.
#[derive(Debug, clap::Args)]
pub struct StunArgs {
    /// RFC 7064 URI of the server: `stun:HOST[:PORT]`.
    pub uri: String,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 5.0)]
    pub timeout: f64,
}

/// Runs one Binding transaction and prints the result.
pub async fn run(args: StunArgs) -> anyhow::Result<()> {
    let _ = args;
    anyhow::bail!("stun: not wired yet")
}
