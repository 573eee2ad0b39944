//! `isochron trust add|remove|list`: the senders this user's receivers
//! admit (the authorized-senders file, like ssh's `authorized_keys`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use isochron_engine::net::Fingerprint;
use isochron_engine::net::tls::AuthorizedSenders;

use crate::say;

#[derive(Args)]
pub struct TrustArgs {
    #[command(subcommand)]
    command: TrustCommand,
    /// The authorized-senders file (default: ~/.config/isochron/authorized_senders, or under
    /// $XDG_CONFIG_HOME)
    #[arg(long, global = true, value_name = "FILE")]
    file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum TrustCommand {
    /// Admit a sender: its fingerprint (`isochron id` on the sending host prints it), and a note
    Add {
        /// The sender's fingerprint, sha256:HEX
        #[arg(value_name = "sha256:HEX")]
        fingerprint: Fingerprint,
        /// Who this is (free text, kept after the fingerprint)
        #[arg(value_name = "COMMENT", trailing_var_arg = true)]
        comment: Vec<String>,
    },
    /// Stop admitting a sender (takes effect for its next connection)
    Remove {
        /// The sender's fingerprint, sha256:HEX
        #[arg(value_name = "sha256:HEX")]
        fingerprint: Fingerprint,
    },
    /// List the admitted senders: one `sha256:HEX comment` a line, on stdout
    List,
}

pub fn run(a: TrustArgs) -> Result<u8> {
    let file = a.file.unwrap_or_else(AuthorizedSenders::default_path);
    let shown = file.display();
    match a.command {
        TrustCommand::Add {
            fingerprint,
            comment,
        } => {
            let added = AuthorizedSenders::add(&file, fingerprint, &comment.join(" "))
                .with_context(|| format!("adding to {shown}"))?;
            if added {
                eprintln!("{fingerprint} is now admitted ({shown})");
            } else {
                eprintln!("{fingerprint} was already admitted ({shown})");
            }
        }
        TrustCommand::Remove { fingerprint } => {
            if !AuthorizedSenders::remove(&file, &fingerprint)
                .with_context(|| format!("removing from {shown}"))?
            {
                eprintln!("{fingerprint} is not in {shown}");
                return Ok(crate::exit::ERROR);
            }
            eprintln!("{fingerprint} is no longer admitted ({shown})");
        }
        TrustCommand::List => {
            let list = AuthorizedSenders::load(&file)?;
            for e in list.entries() {
                match e.comment.as_str() {
                    "" => say(e.fingerprint),
                    c => say(format!("{} {c}", e.fingerprint)),
                }
            }
            if list.entries().is_empty() {
                eprintln!("no sender is admitted ({shown} lists none)");
            }
        }
    }
    Ok(0)
}
