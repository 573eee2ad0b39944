//! The receiver's answer to a hello: accept with the session's parameters,
//! or reject with a reason the sender can print.

use crate::config::ReceiverConfig;
use crate::playout::flow::FlowParams;
use crate::time::micros;
use crate::wire::control::{Accept, CONTROL_VERSION, Hello, Mode, Reject, RejectReason};

/// Compare secrets in constant time: both are hashed first, so neither the
/// position of the first difference nor the length of the right token shows
/// in the time taken; the digests are compared without an early exit.
fn same_secret(a: &str, b: &str) -> bool {
    use sha2::{Digest, Sha256};
    let (da, db) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    da.iter()
        .zip(db.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Decide on a hello.
pub fn answer(cfg: &ReceiverConfig, hello: &Hello, session_id: u64) -> Result<Accept, Reject> {
    let reject = |reason, message: String| Reject { reason, message };
    if hello.version != CONTROL_VERSION {
        return Err(reject(
            RejectReason::Version,
            format!(
                "protocol version {} is not supported (this receiver speaks {CONTROL_VERSION})",
                hello.version
            ),
        ));
    }
    if let Some(want) = &cfg.token {
        let ok = hello.token.as_deref().is_some_and(|t| same_secret(t, want));
        if !ok {
            let what = if hello.token.is_some() {
                "wrong"
            } else {
                "missing"
            };
            return Err(reject(
                RejectReason::Token,
                format!("token rejected ({what}): the receiver requires its --token"),
            ));
        }
    }
    if let Err(e) = crate::catalog::validate(&hello.session.substreams) {
        return Err(reject(RejectReason::Catalog, e.to_string()));
    }
    let (window, max_depth) = cfg
        .grant(&hello.session)
        .map_err(|e| reject(RejectReason::Latency, e.to_string()))?;
    let us = |d| micros(d).min(u32::MAX as u64) as u32;
    // File mode: the marks in force, sized for the round trip measured
    // and the deepest group granted.
    let mut session = hello.session.clone();
    session.fec.depth = max_depth;
    let (low, high) = match hello.session.mode {
        Mode::File { .. } => {
            let m = FlowParams::for_session(cfg, &session, window).initial_marks(cfg.loop_delay);
            let d = std::time::Duration::from_micros;
            (d(m.start_us), d(m.lead_us))
        }
        Mode::Live => (cfg.low_water, cfg.high_water),
    };
    Ok(Accept {
        session_id,
        latency_us: us(cfg.latency),
        low_water_us: us(low),
        high_water_us: us(high),
        fec_window_us: us(window),
        max_depth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(!same_secret("", "a"));
        assert!(same_secret("", ""));
    }
}
