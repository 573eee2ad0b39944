//! `--stats-every`: the statistics of every running session, appended as
//! JSON lines (one object a line, schema `docs/stats.schema.json`,
//! `$defs/recv_stats_line`) so a dashboard can follow a live session.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use isochron_engine::net::SessionInfo;
use isochron_engine::stats::ReceiverStats;
use serde_json::json;

/// Appends a line per session every `every`.
pub struct StatsLines {
    every: Duration,
    started: Instant,
    next: Instant,
    out: BufWriter<File>,
}

impl StatsLines {
    /// Open `path` for appending (created if missing).
    pub fn open(every: Duration, path: &Path) -> Result<Self> {
        let file = File::options()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        let now = Instant::now();
        Ok(Self {
            every,
            started: now,
            next: now + every,
            out: BufWriter::new(file),
        })
    }

    /// Whether a line is due now.
    pub fn due(&self) -> bool {
        Instant::now() >= self.next
    }

    /// Time left until the next line is due.
    pub fn until_due(&self) -> Duration {
        self.next.saturating_duration_since(Instant::now())
    }

    /// Write one line per session and schedule the next round (on the
    /// interval's grid: a slow round does not shift the ones after it).
    pub fn write(&mut self, sessions: &[(SessionInfo, ReceiverStats)]) -> Result<()> {
        let now = Instant::now();
        let t_us = now.duration_since(self.started).as_micros() as u64;
        for (info, stats) in sessions {
            let line = json!({
                "t_us": t_us,
                "session": info.id,
                "peer": info.peer.to_string(),
                "name": info.session.name,
                "stats": stats,
            });
            serde_json::to_writer(&mut self.out, &line)?;
            self.out.write_all(b"\n")?;
        }
        self.out.flush().context("writing --stats-lines")?;
        while self.next <= now {
            self.next += self.every;
        }
        Ok(())
    }
}
