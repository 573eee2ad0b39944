//! A zenoh router with our configuration, in this process: what
//! `isochron router` runs. A stock `zenohd` with the configuration file the
//! README documents does the same job.

use std::path::PathBuf;

use ::zenoh::Wait;

use super::config;
use super::error::FanoutError;

/// A running router; dropping it closes it.
pub struct Router {
    session: Option<::zenoh::Session>,
}

impl Router {
    /// Listen on `listen`, connect to `connect` (addresses mean tcp + udp,
    /// see [`config::expand`]); `file` is a zenoh configuration to start
    /// from; multicast scouting stays off unless `multicast`.
    pub fn start(
        listen: &[String],
        connect: &[String],
        file: Option<&PathBuf>,
        multicast: bool,
    ) -> Result<Router, FanoutError> {
        let cfg = config::router(listen, connect, file, multicast)?;
        let session = super::open_raised(cfg)
            .map_err(|e| FanoutError::Zenoh(format!("cannot start the router: {e}")))?;
        Ok(Router {
            session: Some(session),
        })
    }

    /// The router's zenoh id.
    pub fn id(&self) -> String {
        self.session
            .as_ref()
            .map(|s| s.zid().to_string())
            .unwrap_or_default()
    }

    /// Where it listens (resolved locators).
    pub fn locators(&self) -> Vec<String> {
        self.session
            .as_ref()
            .map(|s| {
                s.info()
                    .locators()
                    .wait()
                    .iter()
                    .map(|l| l.to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sessions (clients and routers) attached now.
    pub fn sessions(&self) -> usize {
        self.session
            .as_ref()
            .map(|s| s.info().transports().wait().count())
            .unwrap_or(0)
    }

    /// Close it.
    pub fn close(mut self) {
        if let Some(s) = self.session.take() {
            let _ = s.close().wait();
        }
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            let _ = s.close().wait();
        }
    }
}
