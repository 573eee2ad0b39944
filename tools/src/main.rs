//! The `isochron` command: stream WAV and sensor files between hosts over
//! QUIC with FEC, impair links, run the demo and the benchmark.

mod args;
mod bench;
mod demo;
mod devices;
mod exit;
mod identity;
mod netem;
mod output;
mod recv;
mod send;
mod token;
mod trust;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "isochron",
    version,
    about = "Real-time media streaming over QUIC with FEC and isochronous playout",
    long_about = "Stream WAV and sensor CSV files between hosts over QUIC (TLS 1.3, pinned \
                  fingerprints), protected by Reed-Solomon FEC and interleaving, played out \
                  isochronously within a bounded latency."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Receive streams into files (prints the address and fingerprint to pin)
    Recv(recv::RecvArgs),
    /// Send one or more files as one stream (each file a substream)
    Send(send::SendArgs),
    /// A UDP relay that impairs traffic both ways (loss, delay, jitter, ...)
    Netem(netem::NetemArgs),
    /// Stream a generated song and sensor track over an impaired link, on loopback
    Demo(demo::DemoArgs),
    /// List the sound devices `send --device` and `recv --play` can use
    Devices(devices::DevicesArgs),
    /// Measure delay, jitter, loss and quality across a matrix of impaired links
    Bench(bench::BenchArgs),
    /// Admit senders to this user's receivers: trust add|remove|list sha256:...
    Trust(trust::TrustArgs),
    /// Print this user's identity fingerprint (what receivers admit and senders pin)
    #[command(alias = "identity")]
    Id(identity::IdArgs),
}

fn main() -> ExitCode {
    // SIGINT and SIGTERM set a flag every command watches (a second one
    // ends the process at once), from the very start.
    interrupted();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ISOCHRON_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Recv(a) => recv::run(a),
        Command::Send(a) => send::run(a),
        Command::Netem(a) => netem::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Devices(a) => devices::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Trust(a) => trust::run(a),
        Command::Id(a) => identity::run(a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", exit::describe(&e));
            ExitCode::from(exit::code_of(&e))
        }
    }
}

/// Write `value` as pretty JSON to `path` atomically (a reader never sees a
/// half-written file).
pub fn write_json(path: &PathBuf, value: &serde_json::Value) -> anyhow::Result<()> {
    use anyhow::Context;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(value)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Resolve `host:port` (names allowed).
pub fn resolve(addr: &str) -> anyhow::Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    addr.to_socket_addrs()
        .map_err(|e| anyhow::anyhow!("cannot resolve '{addr}': {e}"))?
        .next()
        .ok_or_else(|| anyhow::anyhow!("'{addr}' resolves to no address"))
}

/// Set by SIGINT (Ctrl-C), SIGTERM (systemd, docker stop) or SIGHUP: every
/// command then finishes cleanly (files finalised, final statistics
/// written) and exits with [`exit::INTERRUPTED`]. A second signal ends the
/// process at once.
pub fn interrupted() -> &'static std::sync::atomic::AtomicBool {
    static FLAG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            if FLAG.swap(true, std::sync::atomic::Ordering::SeqCst) {
                std::process::exit(exit::INTERRUPTED as i32);
            }
        });
    });
    &FLAG
}

/// Print a line to stdout; a reader that went away is not our problem (no
/// broken-pipe panic).
pub fn say(line: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
