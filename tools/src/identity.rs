//! `isochron id`: this user's identity, the one every command presents
//! (receivers as server certificate, senders as client certificate).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use isochron_engine::net::Identity;

use crate::say;

#[derive(Args)]
pub struct IdArgs {
    /// Directory of the identity (default: ~/.config/isochron/identity, or under $XDG_CONFIG_HOME)
    #[arg(long, value_name = "DIR")]
    identity: Option<PathBuf>,
}

/// The identity a command presents: `--cert`/`--key` if given, else the
/// persistent one in `dir` (default [`Identity::default_dir`]), created on
/// first use.
pub fn load(dir: Option<&Path>, cert: Option<&Path>, key: Option<&Path>) -> Result<Identity> {
    match (cert, key) {
        (Some(c), Some(k)) => Identity::from_pem_files(c, k).context("loading --cert/--key"),
        _ => {
            let dir = dir.map_or_else(Identity::default_dir, Path::to_path_buf);
            Identity::load_or_create(&dir).with_context(|| format!("identity in {}", dir.display()))
        }
    }
}

pub fn run(a: IdArgs) -> Result<u8> {
    let identity = load(a.identity.as_deref(), None, None)?;
    say(identity.fingerprint());
    Ok(0)
}
