//! `isochron router`: a zenoh router with isochron's configuration.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use isochron_engine::net::zenoh::Router;
use serde_json::json;

use crate::{args, interrupted, say, write_json};

#[derive(Args)]
pub struct RouterArgs {
    /// Where to listen: host:port (tcp and udp on it) or a zenoh endpoint
    /// (tcp/..., udp/..., tls/...); repeatable, e.g. 127.0.0.1:7447
    #[arg(long, value_name = "ENDPOINT", required = true)]
    listen: Vec<String>,
    /// Another router to connect to (host:port for tcp + udp, or
    /// endpoints); repeatable. Routers form a mesh with link-state routing
    #[arg(long, value_name = "ENDPOINT")]
    connect: Vec<String>,
    /// A zenoh configuration file (json5) to start from (TLS, access
    /// control); --listen and --connect are added to it
    #[arg(long = "zenoh-config", value_name = "FILE")]
    zenoh_config: Option<PathBuf>,
    /// Turn multicast scouting ON (off by default: routers are found only
    /// at the endpoints given)
    #[arg(long = "multicast-scouting")]
    multicast: bool,
    /// Exit once no session has been attached for this long (e.g. 10s)
    #[arg(long = "exit-when-idle", value_parser = args::duration)]
    exit_when_idle: Option<Duration>,
    /// Write {"id": ..., "locators": [...]} here once listening
    #[arg(long = "ready-file", value_name = "PATH")]
    ready_file: Option<PathBuf>,
}

pub fn run(a: RouterArgs) -> Result<u8> {
    // A panic in one of zenoh's threads leaves a router that routes
    // nothing and says nothing; exit instead, so whoever runs it sees it
    // and its sessions reconnect to a fresh one.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        eprintln!("error: the router failed (a panic in one of its threads): exiting");
        std::process::exit(crate::exit::ERROR.into());
    }));
    if !a.connect.is_empty() {
        eprintln!(
            "connecting to {} (reliable links first, waiting until they answer)",
            a.connect.join(", ")
        );
    }
    let router = Router::start(&a.listen, &a.connect, a.zenoh_config.as_ref(), a.multicast)?;
    let locators = router.locators();
    if let Some(p) = &a.ready_file {
        write_json(p, &json!({"id": router.id(), "locators": locators}))?;
    }
    say(format!(
        "router {} listening on {}",
        router.id(),
        locators.join(" ")
    ));
    if a.multicast {
        eprintln!("multicast scouting is ON");
    }
    let stop = interrupted();
    let mut idle_since = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        if stop.load(Ordering::SeqCst) {
            router.close();
            return Ok(crate::exit::INTERRUPTED);
        }
        if let Some(idle) = a.exit_when_idle {
            if router.sessions() > 0 {
                idle_since = Instant::now();
            } else if idle_since.elapsed() >= idle {
                eprintln!("no session for {idle:?}: exiting");
                router.close();
                return Ok(0);
            }
        }
    }
}
