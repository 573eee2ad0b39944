//! A whole session in simulation: sender core and receiver core joined by a
//! simulated media link and a control path (ideal, or modelled on a QUIC
//! stream over the same impaired path), driven by a virtual clock that jumps
//! from event to event. A minute of media runs in a
//! fraction of a second, identically every time for the same seed.

use std::time::Duration;

use super::control::{ControlModel, ControlPath};
use super::impair::{ImpairStats, Impairment};
use super::link::SimLink;
use crate::catalog::SubstreamDesc;
use crate::config::{ReceiverConfig, SenderConfig};
use crate::handshake;
use crate::playout::PlayedFrame;
use crate::receiver::ReceiverCore;
use crate::sender::{FrameSource, SenderCore, SenderError};
use crate::stats::{ReceiverStats, SenderStats};
use crate::time::Time;
use crate::wire::control::{Accept, Control, Reject};

/// A simulated session's setup.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seed of the media link's impairment model.
    pub seed: u64,
    /// What the media path does to datagrams.
    pub link: Impairment,
    /// What the reverse path does to the receiver's datagrams (NACKs);
    /// `None`: the same as the media path (drawn from its own seed).
    pub feedback: Option<Impairment>,
    /// The round trip the drivers are told (as quinn measures it); `None`:
    /// both paths' fixed delays (the mean round trip; quinn's smoothed one
    /// leans lower still).
    pub rtt: Option<Duration>,
    /// One-way delay of the control stream ([`ControlModel::Ideal`]).
    pub control_delay: Duration,
    /// How the control stream behaves: ideal (reliable, in order, fixed
    /// delay) or like a QUIC stream over an impaired path.
    pub control: ControlModel,
    /// The receiver's settings.
    pub receiver: ReceiverConfig,
    /// The sender's settings.
    pub sender: SenderConfig,
    /// Stop after this much virtual time whatever happens.
    pub time_limit: Duration,
    /// Sample the receiver's buffer level this often (0: never).
    pub level_every: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            link: Impairment::default(),
            feedback: None,
            rtt: None,
            control_delay: Duration::from_millis(5),
            control: ControlModel::Ideal,
            receiver: ReceiverConfig::default(),
            sender: SenderConfig::default(),
            time_limit: Duration::from_secs(24 * 3600),
            level_every: Duration::ZERO,
        }
    }
}

/// A control message the receiver sent, with its buffer level then.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlEvent {
    /// When the receiver sent it (virtual time).
    pub at: Time,
    /// The message.
    pub msg: Control,
    /// The receiver's buffer level then, microseconds.
    pub level_us: u64,
}

/// What happened.
#[derive(Debug, Clone)]
pub struct SimOutcome {
    /// The receiver's answer to the hello; on a reject nothing else ran.
    pub accept: Result<Accept, Reject>,
    /// The sender's final counters.
    pub sender: SenderStats,
    /// The receiver's final statistics.
    pub receiver: ReceiverStats,
    /// What the media link did.
    pub link: ImpairStats,
    /// What the feedback link (NACKs) did.
    pub feedback: ImpairStats,
    /// Virtual time the session started (the hello left).
    pub start: Time,
    /// Virtual time the run stopped.
    pub end: Time,
    /// The receiver played its last frame (rather than the time limit).
    pub finished: bool,
    /// Buffer level samples (time, microseconds) once playback started.
    pub levels: Vec<(Time, u64)>,
    /// Target latency samples (time, microseconds), as often as `levels`.
    pub latency_targets: Vec<(Time, u64)>,
    /// What the sender had queued, as often as `levels`: (time, source
    /// bytes, redundant bytes: FEC repairs plus retransmissions), so the
    /// redundancy of any stretch of the run can be told.
    pub sent: Vec<(Time, u64, u64)>,
    /// When playback started, and the buffer level then.
    pub playback_start: Option<(Time, u64)>,
    /// Flow control (credits, PAUSE, RESUME) as the receiver sent it.
    pub flow: Vec<ControlEvent>,
    /// Control messages the transport resent (receiver to sender, sender to
    /// receiver); always 0 on the ideal path.
    pub control_retransmissions: (u64, u64),
}

/// Run a session until the receiver has played its last frame, nothing more
/// can happen, or `time_limit` passes; `sink` sees every played frame
/// (unconcealed: missing samples are zero and marked in the mask).
pub fn run(
    cfg: &SimConfig,
    substreams: Vec<SubstreamDesc>,
    source: &mut dyn FrameSource,
    sink: &mut dyn FnMut(PlayedFrame<'_>),
) -> Result<SimOutcome, SenderError> {
    let start = Time::from_micros(1_000_000);
    let cd = cfg.control_delay;
    let mut sender = SenderCore::new("sim", substreams, &cfg.sender)?;
    let Control::Hello(hello) = sender.hello(cfg.receiver.token.clone()) else {
        unreachable!("hello() builds a hello")
    };
    // Hello crosses, the answer crosses back. The receiver allows at least
    // the round trip the handshake measured, as the QUIC driver does.
    let rtt = handshake_rtt(cfg);
    let mut rcfg = cfg.receiver.clone();
    rcfg.loop_delay = rcfg.loop_delay.max(rtt);
    let mut now = start + cd;
    let answer = handshake::answer(&rcfg, &hello, 1);
    let mut out = SimOutcome {
        accept: answer.clone(),
        sender: SenderStats::default(),
        receiver: ReceiverStats::default(),
        link: ImpairStats::default(),
        feedback: ImpairStats::default(),
        start,
        end: now,
        finished: false,
        levels: Vec::new(),
        latency_targets: Vec::new(),
        sent: Vec::new(),
        playback_start: None,
        flow: Vec::new(),
        control_retransmissions: (0, 0),
    };
    let Ok(accept) = answer else {
        return Ok(out);
    };
    let mut receiver = ReceiverCore::new(&rcfg, &hello.session, &accept);
    now += cd;
    sender.on_accept(now, &accept)?;
    let mut link = SimLink::new(cfg.link.clone(), cfg.seed, now);
    let back = cfg.feedback.clone().unwrap_or_else(|| cfg.link.clone());
    let media_rtt = cfg.rtt.unwrap_or(cfg.link.delay + back.delay);
    let mut feedback = SimLink::new(back, cfg.seed ^ 0x5eed_f00d, now);
    sender.set_rtt(media_rtt);
    receiver.set_rtt(media_rtt);
    let mut to_rx = ControlPath::new(&cfg.control, cd, cfg.seed ^ 0xc0_1f_0a, now, rtt);
    let mut to_tx = ControlPath::new(&cfg.control, cd, cfg.seed ^ 0xc0_1b_ac, now, rtt);
    // The transport acknowledges about every second datagram.
    let mut acks_due = 0u32;
    let mut eos_sent = false;
    let mut next_level = now;
    let limit = now + cfg.time_limit;
    let live = matches!(hello.session.mode, crate::wire::control::Mode::Live);
    loop {
        sender.poll(now, source)?;
        if live {
            sender.expire(now);
        }
        while let Some(d) = sender.poll_transmit() {
            link.send(now, d);
            to_rx.other_packet(now);
        }
        if !eos_sent && sender.is_finished() {
            to_rx.send(now, Control::EndOfStream(sender.end_of_stream()));
            eos_sent = true;
        }
        while let Some(p) = link.recv(now) {
            receiver.on_datagram(now, &p);
            link.recycle(p);
            acks_due += 1;
            if acks_due == 2 {
                acks_due = 0;
                to_tx.other_packet(now);
            }
        }
        while let Some(m) = to_rx.recv(now) {
            receiver.on_control_at(now, &m);
        }
        // The receiver's transport estimates the round trip from its own
        // messages' acknowledgements.
        receiver.set_flow_rtt(to_tx.rtt().0);
        receiver.poll(now, sink);
        while let Some(d) = receiver.poll_feedback(now) {
            feedback.send(now, d);
        }
        while let Some(p) = feedback.recv(now) {
            sender.on_feedback(now, &p);
            feedback.recycle(p);
            // Retransmissions leave at once.
            while let Some(d) = sender.poll_transmit() {
                link.send(now, d);
            }
        }
        let level = receiver.playout().level_us();
        while let Some(m) = receiver.poll_control(now) {
            if matches!(m, Control::Pause | Control::Resume | Control::Credit(_)) {
                out.flow.push(ControlEvent {
                    at: now,
                    msg: m.clone(),
                    level_us: level,
                });
            }
            to_tx.send(now, m);
        }
        while let Some(m) = to_tx.recv(now) {
            sender.on_control(now, &m);
        }
        if !cfg.level_every.is_zero() && now >= next_level {
            if receiver.playout().started() && level != u64::MAX {
                out.levels.push((now, level));
            }
            out.latency_targets
                .push((now, receiver.playout().latency_target_us()));
            let st = sender.stats();
            out.sent
                .push((now, st.source_bytes, st.repair_bytes + st.retransmit_bytes));
            next_level = now + cfg.level_every;
        }
        if receiver.is_finished() {
            out.finished = true;
            break;
        }
        let candidates = [
            sender.next_timeout(),
            link.next_delivery(),
            receiver.next_timeout(),
            receiver.next_feedback(),
            feedback.next_delivery(),
            to_rx.next_event(),
            to_tx.next_event(),
            (!cfg.level_every.is_zero()).then_some(next_level),
        ];
        let Some(next) = candidates.into_iter().flatten().min() else {
            break;
        };
        if next > limit {
            break;
        }
        now = next.max(now + Duration::from_micros(1));
    }
    out.end = now;
    out.playback_start = receiver.playout().start_info();
    out.sender = sender.stats();
    out.receiver = receiver.stats();
    out.link = link.stats();
    out.feedback = feedback.stats();
    out.control_retransmissions = (to_tx.retransmissions(), to_rx.retransmissions());
    Ok(out)
}

/// The round trip a handshake over the control path measures: twice the
/// one-way delay (ideal path), or twice the impaired link's fixed delay.
fn handshake_rtt(cfg: &SimConfig) -> Duration {
    match &cfg.control {
        ControlModel::Ideal => cfg.control_delay * 2,
        ControlModel::Quic { link, .. } => link.delay * 2,
    }
}
