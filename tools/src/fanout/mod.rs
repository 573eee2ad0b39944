//! The fan-out commands: `publish`, `subscribe`, `streams`, `router`, and
//! what they share (where the routers are, the local router started on
//! demand).

pub mod publish;
pub mod router;
pub mod streams;
pub mod subscribe;

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use isochron_engine::net::zenoh::ZenohOptions;

/// Where a local router listens when no `--router` is given
/// (`$ISOCHRON_LOCAL_ROUTER` moves it, e.g. for several users on one host).
pub const LOCAL_ROUTER: &str = "127.0.0.1:7447";

fn local_router() -> String {
    std::env::var("ISOCHRON_LOCAL_ROUTER")
        .ok()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| LOCAL_ROUTER.to_owned())
}

/// How long a router started on demand outlives its last session.
const LOCAL_IDLE: &str = "10s";

/// Options shared by the commands that attach to routers.
#[derive(Args, Clone)]
pub struct RouterArgs {
    /// Zenoh router to attach to: host:port (tcp + udp links) or a zenoh
    /// endpoint such as tls/host:port; repeatable (the first that answers).
    /// Default: $ISOCHRON_ROUTER, else a router on 127.0.0.1:7447
    /// ($ISOCHRON_LOCAL_ROUTER), started here if none is running
    #[arg(long, value_name = "ENDPOINT")]
    router: Vec<String>,
    /// A zenoh configuration file (json5) to start from: TLS on router
    /// links, access control (multicast scouting stays off unless it turns
    /// it on)
    #[arg(long = "zenoh-config", value_name = "FILE")]
    zenoh_config: Option<PathBuf>,
    /// Give up reaching a router after this long
    #[arg(long = "connect-timeout", default_value = "5s", value_parser = crate::args::duration)]
    connect_timeout: Duration,
}

impl RouterArgs {
    /// The zenoh options, starting a local router first if none was named
    /// and none is running on 127.0.0.1:7447.
    pub fn options(&self) -> Result<ZenohOptions> {
        let routers = if !self.router.is_empty() {
            self.router.clone()
        } else if let Some(r) = std::env::var("ISOCHRON_ROUTER")
            .ok()
            .filter(|r| !r.is_empty())
        {
            vec![r]
        } else {
            let local = local_router();
            ensure_local_router(&local)?;
            vec![local]
        };
        Ok(ZenohOptions {
            routers,
            config_file: self.zenoh_config.clone(),
            connect_timeout_ms: self.connect_timeout.as_millis() as u64,
        })
    }
}

fn listening(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Start `isochron router` on `local` (127.0.0.1:7447) in its own process
/// group (so Ctrl-C on whoever started it leaves it serving the others)
/// unless something listens there; it exits by itself once idle. Never
/// multicast: publishers and listeners on one machine meet on loopback.
fn ensure_local_router(local: &str) -> Result<()> {
    let addr: SocketAddr = local
        .parse()
        .with_context(|| format!("the local router address '{local}' (host:port)"))?;
    if listening(addr) {
        return Ok(());
    }
    // Whoever takes the lock starts the router; the others wait for it
    // and find it listening.
    let lock_path = std::env::temp_dir().join(format!(
        "isochron-router-{}.lock",
        local.replace([':', '/', '[', ']'], "_")
    ));
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    // SAFETY: flock on a descriptor we own; released when `lock` closes.
    #[cfg(unix)]
    unsafe {
        libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX);
    }
    if listening(addr) {
        return Ok(());
    }
    let exe = std::env::current_exe().context("finding the isochron binary")?;
    let mut cmd = Command::new(exe);
    cmd.args(["router", "--listen", local, "--exit-when-idle", LOCAL_IDLE])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd.spawn().context("starting a local router")?;
    let until = Instant::now() + Duration::from_secs(5);
    while !listening(addr) {
        if Instant::now() >= until {
            bail!(
                "started a local router (pid {}) but it is not listening on {local}",
                child.id()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "started a local router on {local} (pid {}; it exits {LOCAL_IDLE} after its last session)",
        child.id()
    );
    Ok(())
}

/// The persistent identity in `dir` (default: the user's), created on first
/// use. A publisher and its listeners started together may race to create
/// it: whoever loses waits for the winner's files instead of failing.
pub fn identity(dir: Option<&PathBuf>) -> Result<isochron_engine::net::Identity> {
    let mut tries = 0;
    loop {
        match crate::identity::load(dir.map(|p| p.as_path()), None, None) {
            Ok(id) => return Ok(id),
            Err(e) if tries < 20 => {
                tries += 1;
                tracing::debug!("identity not ready yet: {e:#}");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Read a passphrase from a file (first line) or `$ISOCHRON_PASSPHRASE`.
pub fn passphrase(file: Option<&PathBuf>) -> Result<Option<String>> {
    if let Some(f) = file {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        let line = text.lines().next().unwrap_or("").trim_end().to_owned();
        if line.is_empty() {
            bail!("{} holds no passphrase", f.display());
        }
        return Ok(Some(line));
    }
    Ok(std::env::var("ISOCHRON_PASSPHRASE")
        .ok()
        .filter(|p| !p.is_empty()))
}

/// The exit code for a fan-out error.
pub fn exit_code(e: &isochron_engine::net::zenoh::FanoutError) -> u8 {
    use isochron_engine::net::zenoh::FanoutError as E;
    match e {
        E::Refused { .. } | E::Config(_) => crate::exit::REFUSED,
        E::Unreachable { .. } | E::NotFound { .. } => crate::exit::UNREACHABLE,
        E::Sink(_) => crate::exit::OUTPUT,
        E::Name(_) => crate::exit::USAGE,
        _ => crate::exit::ERROR,
    }
}
