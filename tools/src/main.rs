//! The `isochron` command: stream WAV and sensor files between hosts over
//! QUIC with FEC, impair links, run the demo and the benchmark.

mod addr;
mod args;
mod bench;
mod demo;
mod devices;
mod exit;
mod fanout;
mod identity;
mod media_args;
mod netem;
mod output;
mod recv;
mod send;
mod stats_lines;
mod token;
mod trust;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};

/// `isochron --version`: the crate version and the commit it was built from.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("ISOCHRON_GIT_HASH"),
    ")"
);

#[derive(Parser)]
#[command(
    name = "isochron",
    version = VERSION,
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
    /// Publish files live under a stream name, to any number of listeners (fan-out)
    Publish(fanout::publish::PublishArgs),
    /// Play a published stream by name into files (fan-out)
    Subscribe(fanout::subscribe::SubscribeArgs),
    /// List the streams on air: name, publisher, listeners, catalog
    Streams(fanout::streams::StreamsArgs),
    /// Run a zenoh router with isochron's configuration (multicast scouting off)
    Router(fanout::router::RouterArgs),
    /// The scale scenario's senders (started by `bench`)
    #[command(hide = true)]
    BenchSenders(bench::SendersArgs),
    /// Print a shell completion script: isochron completions bash > /etc/bash_completion.d/isochron
    Completions {
        /// bash, zsh, fish, elvish or powershell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout, or write one page per command into --out DIR
    Man {
        /// Write isochron.1 and isochron-<command>.1 here instead
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    // SIGINT and SIGTERM set a flag every command watches (a second one
    // ends the process at once), from the very start.
    interrupted();
    tracing_subscriber::fmt()
        .with_env_filter(
            // RUST_LOG, as in every Rust tool (ISOCHRON_LOG, older, wins if set).
            tracing_subscriber::EnvFilter::try_from_env("ISOCHRON_LOG")
                .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
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
        Command::Publish(a) => fanout::publish::run(a),
        Command::Subscribe(a) => fanout::subscribe::run(a),
        Command::Streams(a) => fanout::streams::run(a),
        Command::Router(a) => fanout::router::run(a),
        Command::BenchSenders(a) => bench::run_senders(a),
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "isochron", &mut std::io::stdout());
            Ok(0)
        }
        Command::Man { out } => man(out),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", exit::describe(&e));
            ExitCode::from(exit::code_of(&e))
        }
    }
}

/// `isochron man`: the page of the whole command, or every page into a
/// directory.
fn man(out: Option<PathBuf>) -> anyhow::Result<u8> {
    use anyhow::Context;
    let cmd = Cli::command();
    match out {
        None => clap_mangen::Man::new(cmd).render(&mut std::io::stdout())?,
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(cmd, &dir)
                .with_context(|| format!("writing man pages into {}", dir.display()))?;
        }
    }
    Ok(0)
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

/// Resolve a peer's `host[:port]` (names allowed, port 4433 by default).
pub fn resolve(addr: &str) -> anyhow::Result<SocketAddr> {
    addr::peer(addr).map_err(|e| anyhow::anyhow!(e))
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
