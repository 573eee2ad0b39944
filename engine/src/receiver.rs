//! The receiver core: ingress (validation, FEC) feeding the playout (jitter
//! buffer, clock, concealment marks, statistics), in one struct.
//!
//! The QUIC driver splits the two across threads (ingress on the network
//! task, playout on its own thread); simulation and simple embedders use
//! this composition directly.

use std::time::Duration;

use crate::arq::NackPlanner;
use crate::config::ReceiverConfig;
use crate::ingress::Ingress;
use crate::playout::{PlayedFrame, Playout};
use crate::stats::ReceiverStats;
use crate::time::Time;
use crate::wire::control::{Accept, Control, SessionDesc};

/// Reports go to the sender this often.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// The first report comes sooner: adaptive FEC plans from a guess until
/// the second (the first starts the count), a second after it.
pub const FIRST_REPORT: Duration = Duration::from_millis(300);

/// One receiving session, sans-IO: feed it datagrams and control messages,
/// poll it for played frames and for control messages to send back.
pub struct ReceiverCore {
    ingress: Ingress,
    playout: Playout,
    next_report: Option<Time>,
}

impl ReceiverCore {
    /// A session as accepted: `accept` carries the FEC window in force and
    /// the deepest interleaving granted, which the buffers are sized for.
    pub fn new(cfg: &ReceiverConfig, session: &SessionDesc, accept: &Accept) -> Self {
        let session = &session.accepted(accept);
        let window = Duration::from_micros(accept.fec_window_us as u64);
        Self {
            ingress: new_ingress(cfg, session, window),
            playout: Playout::new(cfg, session, window),
            next_report: None,
        }
    }

    /// The transport's measured round trip: NACKs are only sent while the
    /// deadline minus it leaves time, and file-mode flow control allows for
    /// it.
    pub fn set_rtt(&mut self, rtt: Duration) {
        if let Some(p) = self.ingress.planner() {
            p.set_rtt(rtt);
        }
        self.playout.set_rtt(rtt);
    }

    /// The next NACK datagram for the sender, if one is due (call until
    /// `None`; sessions that do not retransmit never have one).
    pub fn poll_feedback(&mut self, now: Time) -> Option<&[u8]> {
        let anchor = self.playout.anchor();
        let p = self.ingress.planner()?;
        p.set_anchor(anchor);
        p.poll(now)
    }

    /// When [`poll_feedback`](Self::poll_feedback) next has something.
    pub fn next_feedback(&mut self) -> Option<Time> {
        self.ingress.planner().and_then(|p| p.next_timeout())
    }

    /// This receiver joins a stream already running: it starts at the
    /// first whole FEC group (see [`Ingress::join_mid_stream`]).
    pub fn join_mid_stream(&mut self, session: &SessionDesc) {
        self.ingress.join_mid_stream(session);
        self.playout.join_mid_stream();
    }

    /// One datagram off the network.
    pub fn on_datagram(&mut self, now: Time, bytes: &[u8]) {
        let playout = &mut self.playout;
        self.ingress
            .on_datagram(now, bytes, &mut |meta, payload, via| {
                // Unknown substreams were filtered by ingress.
                let _ = playout.on_packet(now, meta, payload, via);
            });
    }

    /// A control message from the sender.
    pub fn on_control(&mut self, msg: &Control) {
        if let Control::EndOfStream(eos) = msg {
            self.playout.on_end_of_stream(eos);
        }
    }

    /// A control message from the sender at `now`: as
    /// [`on_control`](Self::on_control), and an end of stream shows the NACK
    /// planner the packets lost at the very end.
    pub fn on_control_at(&mut self, now: Time, msg: &Control) {
        if let (Control::EndOfStream(eos), Some(p)) = (msg, self.ingress.planner()) {
            p.on_end_of_stream(now, eos);
        }
        self.on_control(msg);
    }

    /// File-mode flow control's round trip only (a simulation whose control
    /// path differs from the media path); drivers call [`set_rtt`](Self::set_rtt).
    pub fn set_flow_rtt(&mut self, rtt: Duration) {
        self.playout.set_flow_rtt(rtt);
    }

    /// Play every frame due by `now`.
    pub fn poll(&mut self, now: Time, sink: &mut dyn FnMut(PlayedFrame<'_>)) {
        self.ingress.poll(now);
        self.playout.poll(now, sink);
    }

    /// A control message for the sender: a credit (file mode) at once, a
    /// report every [`REPORT_INTERVAL`].
    pub fn poll_control(&mut self, now: Time) -> Option<Control> {
        if let Some(m) = self.playout.poll_flow() {
            return Some(m);
        }
        let due = self.next_report.get_or_insert(now + FIRST_REPORT);
        if now >= *due {
            *due = now + REPORT_INTERVAL;
            return Some(Control::Report(self.playout.report()));
        }
        None
    }

    /// When the next frame or report is due (for [`poll`](Self::poll) and
    /// [`poll_control`](Self::poll_control)); `None` until playback starts
    /// and a first report is scheduled. Poll after each datagram as well.
    pub fn next_timeout(&self) -> Option<Time> {
        match (self.playout.next_deadline(), self.next_report) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Every substream has played its last frame (the end is known from the
    /// catalog's lengths or the end-of-stream message).
    pub fn is_finished(&self) -> bool {
        self.playout.is_finished()
    }

    /// The playout, for buffer levels and start information.
    pub fn playout(&self) -> &Playout {
        &self.playout
    }

    /// A snapshot of the session's statistics (allocates).
    pub fn stats(&self) -> ReceiverStats {
        let mut s = ReceiverStats::default();
        fill_ingress_stats(&self.ingress, &mut s);
        self.playout.fill_stats(&mut s);
        s
    }
}

/// The network side of a session: FEC as the session says, and a NACK
/// planner when its recovery retransmits.
pub fn new_ingress(cfg: &ReceiverConfig, session: &SessionDesc, window: Duration) -> Ingress {
    let mut ingress = Ingress::new(
        session,
        fec_blocks(cfg, session, window),
        fec_wait(cfg, session, window),
    );
    if session.recovery.retransmits() {
        ingress.set_planner(NackPlanner::new(session, cfg.latency, window));
    }
    ingress
}

/// How long a FEC block may wait for its shards: beyond the latency plus its
/// group's span nothing it could rebuild is still due.
pub fn fec_wait(cfg: &ReceiverConfig, session: &SessionDesc, window: Duration) -> Duration {
    cfg.latency.max(cfg.high_water) + window * session.fec.depth.max(1) as u32
}

/// Open FEC blocks a session always may keep (margin for a receiver a
/// loaded machine delays).
const MIN_FEC_BLOCKS: usize = 32;

/// FEC blocks a session keeps open at once: those a block's wait can span
/// (a block closes every window, or sooner once it holds `k` packets: at
/// the smallest payloads the catalog's frames can take), the groups in
/// progress, and as much again for reordering; at most the configured
/// `max_fec_blocks`.
pub fn fec_blocks(cfg: &ReceiverConfig, session: &SessionDesc, window: Duration) -> usize {
    let wait = fec_wait(cfg, session, window).as_micros();
    let by_time = wait / window.as_micros().max(1) + 1;
    let packets_per_s: u128 = session
        .substreams
        .iter()
        .map(|d| {
            (1_000_000 / d.frame_us.max(1) as u128 + 1) * (d.max_frame_bytes() as u128 / 512 + 2)
        })
        .sum();
    // File mode reads ahead at its fill rate, and the speed factor scales
    // every rate: packets arrive that much faster.
    let fill = match session.mode {
        crate::wire::control::Mode::File { fill_percent } => fill_percent.max(100) as u128,
        crate::wire::control::Mode::Live => 100,
    };
    let speed = if session.speed.is_finite() {
        session.speed.clamp(1.0, 1e3).ceil() as u128
    } else {
        1
    };
    let packets_per_s = packets_per_s * fill * speed / 100;
    let by_count = (packets_per_s * wait / 1_000_000).div_ceil(session.fec.k.max(1) as u128) + 1;
    let open = usize::try_from(by_time.max(by_count)).unwrap_or(usize::MAX);
    open.saturating_add(session.fec.depth as usize)
        .saturating_mul(2)
        .saturating_add(4)
        .max(MIN_FEC_BLOCKS)
        .min(cfg.max_fec_blocks)
}

/// Fill the ingress part of the statistics.
pub fn fill_ingress_stats(ingress: &Ingress, s: &mut ReceiverStats) {
    let st = ingress.stats();
    s.datagrams = st.datagrams;
    s.bytes = st.bytes;
    s.invalid = st.invalid;
    s.skipped_before_start = st.before_start;
    s.fec = ingress.fec_counts();
    s.nack = ingress.nack_counts();
    s.retransmits_received = st.retransmits;
    s.retransmit_bytes = st.retransmit_bytes;
    if st.source_bytes > 0 {
        s.redundancy_ratio =
            (st.repair_bytes + st.retransmit_bytes) as f64 / st.source_bytes as f64;
    }
    if let (Some(a), Some(b)) = (st.first, st.last) {
        let secs = (b - a).as_secs_f64();
        if secs > 0.0 {
            s.bitrate_bps = (st.bytes as f64 * 8.0 / secs).round() as u64;
        }
    }
    if st.source_bytes > 0 {
        s.fec_overhead_ratio = st.repair_bytes as f64 / st.source_bytes as f64;
    }
}
