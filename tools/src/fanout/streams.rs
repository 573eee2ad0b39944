//! `isochron streams`: what is on air.

use std::time::Duration;

use anyhow::Result;
use clap::Args;
use isochron_engine::catalog::MediaKind;
use isochron_engine::net::zenoh::{StreamListing, list_streams};
use serde_json::json;

use super::{RouterArgs, exit_code};
use crate::{args, say};

#[derive(Args)]
pub struct StreamsArgs {
    /// Names to list, with zenoh wildcards: `studio/**` (any depth), `*/mix` (one part); default: all
    #[arg(value_name = "PATTERN", default_value = "**")]
    pattern: String,
    #[command(flatten)]
    router: RouterArgs,
    /// Wait this long for answers, e.g. 2s
    #[arg(long, default_value = "2s", value_parser = args::duration)]
    timeout: Duration,
    /// Print JSON (one object with a "streams" array) instead of a table
    #[arg(long)]
    json: bool,
}

fn describe(l: &StreamListing) -> String {
    let Some(c) = &l.catalog else {
        return l.problem.clone().unwrap_or_default();
    };
    let subs: Vec<String> = c
        .session
        .substreams
        .iter()
        .map(|s| {
            format!(
                "{} ({} {}ch {} Hz {})",
                s.name.escape_default(),
                match s.kind {
                    MediaKind::Audio => "audio",
                    MediaKind::Sensor => "sensor",
                },
                s.format.channels,
                s.format.rate.as_f64(),
                s.wire_encoding()
            )
        })
        .collect();
    let f = &c.session.fec;
    format!(
        "{}; FEC {}+{} window {:.1} ms, interleave {}; latency >= {:.1} ms",
        subs.join(", "),
        f.k,
        f.m,
        f.window_us as f64 / 1e3,
        f.depth,
        c.latency_floor_us as f64 / 1e3
    )
}

pub fn run(a: StreamsArgs) -> Result<u8> {
    let pattern = if a.pattern == "**" {
        ""
    } else {
        a.pattern.as_str()
    };
    let list = match list_streams(&a.router.options()?, pattern, a.timeout) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit_code(&e));
        }
    };
    if a.json {
        let streams: Vec<_> = list
            .iter()
            .map(|l| {
                json!({
                    "stream": l.stream,
                    "publisher": l.publisher.map(|p| p.to_string()),
                    "listeners": l.listeners,
                    "catalog": l.catalog.as_ref().map(|c| json!({
                        "substreams": c.session.substreams,
                        "fec": {"k": c.session.fec.k, "m": c.session.fec.m, "depth": c.session.fec.depth, "window_us": c.session.fec.window_us},
                        "latency_floor_us": c.latency_floor_us,
                        "max_datagram": c.max_datagram,
                        "passphrase": c.key.passphrase_iterations.is_some(),
                        "open": c.key.open,
                    })),
                    "problem": l.problem,
                })
            })
            .collect();
        say(serde_json::to_string_pretty(
            &json!({ "streams": streams }),
        )?);
        return Ok(0);
    }
    if list.is_empty() {
        eprintln!("no stream on air matches '{}'", a.pattern);
        return Ok(0);
    }
    say("NAME\tPUBLISHER\tLISTENERS\tCATALOG");
    for l in &list {
        say(format!(
            "{}\t{}\t{}\t{}",
            l.stream,
            l.publisher.map_or("?".into(), |p| p.to_string()),
            l.listeners,
            describe(l)
        ));
    }
    Ok(0)
}
