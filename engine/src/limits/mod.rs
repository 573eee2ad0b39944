//! What a peer may make the receiver spend, in one place: connections and
//! handshakes (in total and per source address), the memory a session's
//! buffers take (per session, per source, in total), what a hello may ask
//! for (speed), how much concealment is written without real media, and
//! how wrong tokens are throttled. A hello asking for more is refused with
//! the limit named ([`RejectReason::Limit`]).
//!
//! The checks are sans-IO: [`Usage`] is plain accounting the driver
//! consults at each handshake and session; the sizes come from the same
//! code that allocates ([`session_memory`]).

mod attempts;
mod usage;

use std::time::Duration;

pub use attempts::{AttemptPolicy, Attempts};
pub use usage::{Usage, UsageError};

use crate::config::ReceiverConfig;
use crate::ingress::Ingress;
use crate::playout::Playout;
use crate::receiver::fec_blocks;
use crate::wire::control::{Reject, RejectReason, SessionDesc};
use crate::wire::packet::MAX_DATAGRAM;

/// Everything a peer may make a receiver spend.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Sessions at once; more are told "busy".
    pub max_sessions: usize,
    /// Sessions at once from one source address (IPv6: one /64).
    pub max_sessions_per_source: usize,
    /// Connections still in their handshake (TLS, control stream, hello)
    /// at once: half-open connections never count against sessions.
    pub max_handshakes: usize,
    /// Handshakes at once from one source address.
    pub max_handshakes_per_source: usize,
    /// A connection that has not sent its hello this long after it arrived
    /// is dropped.
    pub handshake_timeout: Duration,
    /// Buffers one session may take (jitter buffers, sequence windows, FEC
    /// slots, its queue), bytes.
    pub session_memory: u64,
    /// Buffers all sessions from one source address may take, bytes.
    pub source_memory: u64,
    /// Buffers all sessions together may take, bytes.
    pub total_memory: u64,
    /// Largest speed factor a sender may ask for.
    pub max_speed: f64,
    /// Longest stretch of media the playout conceals without any real
    /// sample arriving, before the session ends (a sender cannot make the
    /// receiver write silence faster or longer than this).
    pub max_concealed: Duration,
    /// Packets queued from the network side to one session's playout.
    pub playout_queue: usize,
    /// How wrong tokens are throttled, per source address.
    pub token_attempts: AttemptPolicy,
}

impl Default for Limits {
    /// 256 sessions (64 per source), 64 handshakes (16 per source) of at
    /// most 5 s, 16 MiB of buffers per session, 64 MiB per source, 512 MiB
    /// in all, speed up to 16, 10 s of media concealed without real media,
    /// 1024 queued packets per session (a second of a busy stream, for
    /// playout threads a loaded machine delays).
    fn default() -> Self {
        Self {
            max_sessions: 256,
            max_sessions_per_source: 64,
            max_handshakes: 64,
            max_handshakes_per_source: 16,
            handshake_timeout: Duration::from_secs(5),
            session_memory: 16 << 20,
            source_memory: 64 << 20,
            total_memory: 512 << 20,
            max_speed: 16.0,
            max_concealed: Duration::from_secs(10),
            playout_queue: 1024,
            token_attempts: AttemptPolicy::default(),
        }
    }
}

/// Bytes one queued packet takes at most (payload buffer and message).
const QUEUED_PACKET: u64 = MAX_DATAGRAM as u64 + 64;

/// Bytes the receiver's buffers for `session` take at most, with FEC
/// `window`: the playout's jitter buffers and sequence windows, the FEC
/// slots, the packet queue. Computed by the code that sizes them, before
/// anything is allocated.
pub fn session_memory(
    cfg: &ReceiverConfig,
    limits: &Limits,
    session: &SessionDesc,
    window: Duration,
) -> u64 {
    Playout::memory_for(cfg, session, window)
        + Ingress::memory_for(session, fec_blocks(cfg, session, window))
        + limits.playout_queue as u64 * QUEUED_PACKET
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

impl Limits {
    /// What a hello asks for that no accounting is needed to refuse: a
    /// speed factor over [`max_speed`](Self::max_speed), a session over
    /// [`session_memory`](Self::session_memory). Returns the session's
    /// buffer bytes for [`Usage::admit`].
    pub fn check_session(
        &self,
        cfg: &ReceiverConfig,
        session: &SessionDesc,
        window: Duration,
    ) -> Result<u64, Reject> {
        let limit = |message: String| Reject {
            reason: RejectReason::Limit,
            message,
        };
        if session.speed.is_nan() || session.speed > self.max_speed {
            return Err(limit(format!(
                "speed factor {} is over this receiver's limit of {} (max_speed)",
                session.speed, self.max_speed
            )));
        }
        let bytes = session_memory(cfg, self, session, window);
        if bytes > self.session_memory {
            return Err(limit(format!(
                "this session needs {} of receive buffers, over this receiver's limit of {} a \
                 session (session_memory): use fewer or smaller substreams, shorter frames, a \
                 shorter FEC window or less interleaving",
                mib(bytes),
                mib(self.session_memory)
            )));
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::tests::stereo48k;
    use crate::wire::control::{FecParams, Mode};

    fn session(frame_us: u32, subs: usize, mode: Mode, fec: FecParams) -> SessionDesc {
        SessionDesc {
            name: "t".into(),
            mode,
            speed: 1.0,
            fec,
            substreams: (0..subs).map(|i| stereo48k(i as u16, frame_us)).collect(),
            recovery: Default::default(),
        }
    }

    const FEC: FecParams = FecParams {
        k: 16,
        m: 4,
        depth: 1,
        window_us: 0,
        auto_depth: false,
    };

    #[test]
    fn an_ordinary_session_is_small_and_a_greedy_one_is_refused_by_name() {
        let cfg = ReceiverConfig::default();
        let limits = Limits::default();
        let window = Duration::from_millis(35);
        let plain = session(10_000, 1, Mode::Live, FEC);
        let bytes = limits.check_session(&cfg, &plain, window).unwrap();
        assert!(bytes < 4 << 20, "{bytes} bytes for one stereo substream");
        // 256 substreams of 250 us frames: many slots, each small, in all large.
        let wide = session(250, 256, Mode::file(2.0), FecParams { depth: 64, ..FEC });
        let r = limits
            .check_session(&cfg, &wide, Duration::from_millis(160))
            .unwrap_err();
        assert_eq!(r.reason, RejectReason::Limit);
        assert!(r.message.contains("(session_memory)"), "{}", r.message);
        let mut fast = plain.clone();
        fast.speed = 1000.0;
        let r = limits.check_session(&cfg, &fast, window).unwrap_err();
        assert!(r.message.contains("(max_speed)"), "{}", r.message);
    }
}
