//! What is on air: publishers' liveliness tokens, their signed catalogs
//! and their listeners' tokens.

use std::time::{Duration, Instant};

use ::zenoh::Wait;

use super::config::{self, ZenohOptions};
use super::error::FanoutError;
use super::{keys, open_session};
use crate::net::tls::{Fingerprint, verify_signature};
use crate::wire::fanout::{self, Signed, StreamCatalog, context, validate_stream_name};

/// One stream on air.
#[derive(Debug, Clone)]
pub struct StreamListing {
    /// Its name.
    pub stream: String,
    /// The signed catalog, if it was fetched and its signature verifies.
    pub catalog: Option<StreamCatalog>,
    /// The fingerprint of the publisher that signed the catalog.
    pub publisher: Option<Fingerprint>,
    /// Listeners announced now.
    pub listeners: usize,
    /// Why the catalog is missing, if it is.
    pub problem: Option<String>,
}

/// Why a catalog could not be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CatalogProblem {
    /// Nobody answered the query.
    NoAnswer,
    /// An answer came but is not a valid signed catalog of this stream.
    Invalid(String),
}

/// Ask for `stream`'s catalog once; check it is well formed, for this
/// stream, and signed by the certificate it carries.
pub(crate) fn fetch_catalog(
    session: &::zenoh::Session,
    stream: &str,
    timeout: Duration,
) -> Result<(StreamCatalog, Fingerprint), CatalogProblem> {
    let replies = session
        .get(keys::catalog(stream))
        .timeout(timeout)
        .wait()
        .map_err(|e| CatalogProblem::Invalid(e.to_string()))?;
    let mut problem = CatalogProblem::NoAnswer;
    while let Ok(reply) = replies.recv() {
        let Ok(sample) = reply.result() else { continue };
        match verify_catalog(&sample.payload().to_bytes(), stream) {
            Ok(c) => return Ok(c),
            Err(e) => problem = CatalogProblem::Invalid(e),
        }
    }
    Err(problem)
}

/// Decode and verify a signed catalog for `stream`.
pub(crate) fn verify_catalog(
    bytes: &[u8],
    stream: &str,
) -> Result<(StreamCatalog, Fingerprint), String> {
    let signed: Signed = fanout::decode(bytes).map_err(|e| e.to_string())?;
    let catalog: StreamCatalog = fanout::decode(&signed.body).map_err(|e| e.to_string())?;
    if catalog.stream != stream {
        return Err(format!(
            "the catalog is for stream '{}', not '{stream}'",
            catalog.stream.escape_default()
        ));
    }
    verify_signature(
        &catalog.publisher_cert,
        context::CATALOG,
        &signed.body,
        signed.scheme,
        &signed.signature,
    )
    .map_err(|e| format!("catalog signature: {e}"))?;
    let fp = Fingerprint::of(&catalog.publisher_cert);
    Ok((catalog, fp))
}

/// Listeners announced on `stream`.
pub(crate) fn count_listeners(
    session: &::zenoh::Session,
    stream: &str,
    timeout: Duration,
) -> usize {
    let Ok(replies) = session
        .liveliness()
        .get(keys::listeners(stream))
        .timeout(timeout)
        .wait()
    else {
        return 0;
    };
    let mut n = 0;
    while let Ok(r) = replies.recv() {
        n += r.result().is_ok() as usize;
    }
    n
}

/// Streams on air whose name matches `pattern` (zenoh key expression
/// syntax: `studio/**`, `*/mix`; empty: every stream), each with its
/// catalog and listener count. `timeout` bounds each query.
pub fn list_streams(
    opts: &ZenohOptions,
    pattern: &str,
    timeout: Duration,
) -> Result<Vec<StreamListing>, FanoutError> {
    let session = open_session(config::client(opts)?, opts)?;
    let key = keys::live_pattern(pattern);
    let replies = session
        .liveliness()
        .get(&key)
        .timeout(timeout)
        .wait()
        .map_err(|e| FanoutError::Zenoh(format!("listing '{key}': {e}")))?;
    let mut names = Vec::new();
    let deadline = Instant::now() + timeout + Duration::from_millis(500);
    while let Ok(Some(r)) = replies.recv_deadline(deadline) {
        if let Ok(s) = r.result()
            && let Some(name) = keys::stream_of_live(s.key_expr().as_str())
            && validate_stream_name(name).is_ok()
            && names.len() < 10_000
        {
            names.push(name.to_owned());
        }
    }
    names.sort();
    names.dedup();
    let mut out = Vec::with_capacity(names.len());
    for stream in names {
        let (catalog, publisher, problem) = match fetch_catalog(&session, &stream, timeout) {
            Ok((c, fp)) => (Some(c), Some(fp), None),
            Err(CatalogProblem::NoAnswer) => (None, None, Some("no catalog answered".into())),
            Err(CatalogProblem::Invalid(e)) => (None, None, Some(e)),
        };
        let listeners = count_listeners(&session, &stream, timeout);
        out.push(StreamListing {
            stream,
            catalog,
            publisher,
            listeners,
            problem,
        });
    }
    let _ = session.close().wait();
    Ok(out)
}
