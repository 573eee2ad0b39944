//! File-mode flow control: the receiver's credits, and the water marks they
//! keep, sized from what the path measures.
//!
//! The receiver tells the sender where its playout is and lets it produce
//! up to `lead` ahead ([`Credit`]). The playout runs at real time, so the
//! sender extrapolates the position from the fastest credit; it reads
//! ahead at its fill rate until it meets the limit, then follows it at real
//! time, and the buffer settles at `lead` minus the round trip. Credits go
//! out every [`CREDIT_INTERVAL`] only to correct drift and follow the marks.
//!
//! Why not PAUSE and RESUME at the marks: they ride the control stream,
//! where a lost message is resent only after loss detection and holds back
//! everything behind it. A paused sender sends nothing, so a lost RESUME's
//! probes are the only packets on a path in a loss burst, and each lost
//! probe doubles the wait; the buffer between the marks (a few tens of ms
//! once the loop delay is taken off both ends) runs dry long before.
//! Credits make a lost message cost nothing but freshness.
//!
//! The marks ([`Marks`]): the buffer must stay above a `floor` that lets
//! the slowest packet of a FEC block, and its repairs, arrive in time:
//! FEC window x interleave depth + the packetizer's hold + the measured
//! one-way delay spread + one frame + a margin, and, when the session
//! retransmits, the rounds of retransmission that follow FEC's verdict
//! ([`RETRANSMIT_ROUNDS`] of them, each a round trip and the spread both
//! ways: the NACK planner's pace), as many as the buffer limit holds. A
//! floor of one round left hybrid recovery a single chance at a lost
//! packet, and it lost more than FEC alone. Playback starts at the
//! configured low-water mark or the floor, whichever is higher; the credit
//! leads by the configured high-water mark or by what keeps the buffer
//! above the floor once the round trip and the spread are taken off,
//! whichever is higher; both are capped by the receiver's buffer limit.

use std::time::Duration;

use super::spread::DelaySpread;
use crate::config::ReceiverConfig;
use crate::stats::FlowStats;
use crate::time::{Time, micros};
use crate::wire::control::{Control, Credit, SessionDesc};

/// A playing receiver refreshes its credit this often.
pub const CREDIT_INTERVAL: Duration = Duration::from_millis(100);
/// Slack on top of everything measured.
const MARGIN_US: u64 = 5_000;
/// How far back the delay spread looks.
const SPREAD_WINDOW_US: u64 = 4_000_000;
/// Rounds of retransmission a retransmitting session's buffer leaves room
/// for (adaptive FEC plans with what is left:
/// [`rounds_in_lead`]).
pub const RETRANSMIT_ROUNDS: u32 = 3;
/// Slack of one round on top of the round trip and the spread both ways.
const ROUND_SLACK_US: u64 = 1_000;

/// One round of retransmission: the round trip, the spread both ways (the
/// planner asks again once a retransmission sent at the far end of the
/// spread would have come) and a slack; microseconds.
fn round_us(rtt_us: u64, spread_us: u64) -> u64 {
    rtt_us + 2 * spread_us + ROUND_SLACK_US
}

/// What [`FlowParams::marks`] gives the lead beyond the floor, and the
/// floor before retransmission rounds: (base floor, lead - floor).
fn base_and_above(fec_hold_us: u64, step_us: u64, rtt_us: u64, spread_us: u64) -> (u64, u64) {
    (
        fec_hold_us + spread_us + step_us + MARGIN_US,
        rtt_us + spread_us + step_us,
    )
}

/// Rounds of retransmission a credit lead of `lead` leaves after FEC's
/// span (`fec_hold`: FEC window x depth + the packetizer's hold), for a
/// round trip and a one-way delay spread: the sender's view of the marks
/// the receiver keeps ([`FlowParams::marks`] inverted), at most
/// [`RETRANSMIT_ROUNDS`].
pub fn rounds_in_lead(
    lead: Duration,
    fec_hold: Duration,
    step: Duration,
    rtt: Duration,
    spread: Duration,
) -> u32 {
    let (rtt, spread) = (micros(rtt), micros(spread));
    let (base, above) = base_and_above(micros(fec_hold), micros(step), rtt, spread);
    let left = micros(lead).saturating_sub(base + above);
    ((left / round_us(rtt, spread)) as u32).min(RETRANSMIT_ROUNDS)
}

/// What the marks are computed from (all fixed for a session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowParams {
    /// Configured low-water mark: playback starts at this level at least.
    pub low: Duration,
    /// Configured high-water mark: the credit leads by this much at least.
    pub high: Duration,
    /// The receiver's buffer limit: no mark goes above it.
    pub max: Duration,
    /// FEC window x interleave depth + the longest packetizer hold: how
    /// long the last packet a lost one's rebuild needs may trail it.
    pub fec_hold: Duration,
    /// One frame (the level moves in frames).
    pub step: Duration,
    /// Rounds of retransmission the floor leaves room for at most (0: the
    /// session does not retransmit).
    pub rounds: u32,
}

/// The marks in force, microseconds of buffered media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marks {
    /// The buffer must stay above this for every packet to be on time.
    pub floor_us: u64,
    /// Playback starts at this level (the low-water mark in force).
    pub start_us: u64,
    /// The credit leads the playout by this much (the high-water mark in
    /// force).
    pub lead_us: u64,
    /// The lead the path needs, before the cap.
    pub need_us: u64,
    /// Rounds of retransmission the floor leaves room for.
    pub rounds: u32,
}

impl FlowParams {
    /// The parameters of a session with FEC window `fec_window` in force.
    pub fn for_session(
        cfg: &ReceiverConfig,
        session: &SessionDesc,
        fec_window: Duration,
    ) -> FlowParams {
        let subs = &session.substreams;
        let hold = subs
            .iter()
            .map(|d| d.unit_delay())
            .max()
            .unwrap_or_default();
        let step = subs
            .iter()
            .map(|d| d.frame_duration())
            .max()
            .unwrap_or_default();
        let window = if session.fec.enabled() {
            fec_window * session.fec.depth.max(1) as u32
        } else {
            Duration::ZERO
        };
        FlowParams {
            low: cfg.low_water,
            high: cfg.high_water,
            max: cfg.max_buffer,
            fec_hold: window + hold,
            step,
            rounds: if session.recovery.retransmits() {
                RETRANSMIT_ROUNDS
            } else {
                0
            },
        }
    }

    /// The marks for a round trip and a one-way delay spread. The rounds
    /// of retransmission are as many as fit under the buffer limit (a long
    /// path gets fewer, down to FEC alone, rather than a refusal); the
    /// lead the path needs (`need_us`, which the handshake checks against
    /// the limit) is that of FEC alone when none fits.
    pub fn marks(&self, rtt: Duration, spread: Duration) -> Marks {
        let (rtt, spread, step) = (micros(rtt), micros(spread), micros(self.step));
        let max = micros(self.max).max(micros(self.high));
        let (base, above) = base_and_above(micros(self.fec_hold), step, rtt, spread);
        let round = round_us(rtt, spread);
        let rounds = (0..=self.rounds)
            .rev()
            .find(|&r| base + r as u64 * round + above <= max)
            .unwrap_or(0);
        let floor = base + rounds as u64 * round;
        let need = floor + above;
        Marks {
            floor_us: floor,
            start_us: micros(self.low).max(floor).min(max),
            lead_us: micros(self.high).max(need).min(max),
            need_us: need,
            rounds,
        }
    }

    /// The marks before any media has arrived: the spread is assumed to be
    /// half the round trip until it is measured.
    pub fn initial_marks(&self, rtt: Duration) -> Marks {
        self.marks(rtt, rtt / 2)
    }
}

/// Sends credits and follows the path's round trip and delay spread.
#[derive(Debug, Clone)]
pub struct FlowControl {
    params: FlowParams,
    /// The configured minimum loop round trip.
    min_rtt: Duration,
    rtt: Duration,
    spread: DelaySpread,
    spread_now: Option<Duration>,
    marks: Marks,
    /// The marks at the accept: the sender's head start is their start
    /// level.
    accepted: Marks,
    next_credit: Option<Time>,
    last_lead: u64,
    pending: Option<Control>,
    credits: u64,
    min_slack: Option<i64>,
}

impl FlowControl {
    /// `rtt`: the round trip known at the start (at least this much is
    /// always assumed).
    pub fn new(params: FlowParams, rtt: Duration) -> Self {
        Self {
            params,
            min_rtt: rtt,
            rtt,
            spread: DelaySpread::new(SPREAD_WINDOW_US),
            spread_now: None,
            marks: params.initial_marks(rtt),
            accepted: params.initial_marks(rtt),
            next_credit: None,
            last_lead: 0,
            pending: None,
            credits: 0,
            min_slack: None,
        }
    }

    /// The transport's current round-trip estimate.
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.rtt = rtt.max(self.min_rtt);
    }

    /// A media packet's transit time (arrival minus sender timestamp).
    pub fn on_transit(&mut self, arrival: Time, transit_us: i64) {
        self.spread.observe(arrival, transit_us);
    }

    /// A packet arrived `slack_us` before its playout instant (playing,
    /// before the end of stream).
    pub fn on_slack(&mut self, slack_us: i64) {
        self.min_slack = Some(self.min_slack.map_or(slack_us, |m| m.min(slack_us)));
    }

    /// The marks in force.
    pub fn marks(&self) -> Marks {
        self.marks
    }

    /// Levels playback starts at: (without a gap, at all). The second
    /// is the lead in force, but never below the accept's: the sender
    /// sends the accept's start level at once, and a spread measured
    /// from the first few packets of that burst, far below the path's,
    /// would otherwise put the lead under it and start playback with the
    /// burst's stragglers still on the way (and no time to ask for its
    /// losses again).
    pub fn start_levels(&self) -> (u64, u64) {
        (
            self.marks.start_us,
            self.marks.lead_us.max(self.accepted.lead_us),
        )
    }

    /// Called after each playout step with the media time being played
    /// (`None` before playback, and once the sender has nothing more to
    /// send).
    pub fn update(&mut self, now: Time, position_us: Option<u64>) {
        if let Some(s) = self.spread.spread_us(now) {
            self.spread_now = Some(Duration::from_micros(s));
        }
        self.marks = match self.spread_now {
            Some(s) => self.params.marks(self.rtt, s),
            None => self.params.initial_marks(self.rtt),
        };
        let Some(pos) = position_us else {
            return;
        };
        let lead = self.marks.lead_us;
        let moved = lead.abs_diff(self.last_lead) > micros(self.params.step);
        if moved || self.next_credit.is_none_or(|t| now >= t) {
            self.pending = Some(Control::Credit(Credit {
                position_us: pos,
                lead_us: lead.min(u32::MAX as u64) as u32,
            }));
            self.credits += 1;
            self.last_lead = lead;
            self.next_credit = Some(now + CREDIT_INTERVAL);
        }
    }

    /// The message to send, once.
    pub fn poll(&mut self) -> Option<Control> {
        self.pending.take()
    }

    /// What the loop measured and kept.
    pub fn stats(&self) -> FlowStats {
        FlowStats {
            credits: self.credits,
            rtt_us: micros(self.rtt),
            delay_spread_us: self.spread_now.map_or(0, micros),
            floor_us: self.marks.floor_us,
            start_level_us: self.marks.start_us,
            lead_us: self.marks.lead_us,
            min_slack_us: self.min_slack.unwrap_or(0),
            retransmit_rounds: self.marks.rounds as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn params() -> FlowParams {
        FlowParams {
            low: ms(40),
            high: ms(160),
            max: ms(1000),
            fec_hold: ms(45), // 35 ms window x 1 + 10 ms frames
            step: ms(10),
            rounds: 0,
        }
    }

    #[test]
    fn marks_cover_fec_spread_and_round_trip() {
        let p = params();
        // A clean short path: the configured marks stand, above the floor.
        let m = p.marks(ms(1), ms(1));
        assert_eq!(m.floor_us, 45_000 + 1_000 + 10_000 + 5_000);
        assert_eq!((m.start_us, m.lead_us), (61_000, 160_000));
        // 15 +- 10 ms each way: floor 80 ms, lead 80 + 30 + 20 + 10 = 140.
        let m = p.marks(ms(30), ms(20));
        assert_eq!(
            (m.floor_us, m.start_us, m.lead_us),
            (80_000, 80_000, 160_000)
        );
        // A long path raises the lead, up to the buffer limit.
        let m = p.marks(ms(200), ms(40));
        assert_eq!(m.lead_us, 100_000 + 200_000 + 40_000 + 10_000);
        let m = p.marks(ms(900), ms(100));
        assert_eq!(m.lead_us, 1_000_000, "capped");
        assert!(m.need_us > 1_000_000);
    }

    #[test]
    fn retransmission_rounds_raise_the_floor_as_far_as_the_limit_holds() {
        let p = FlowParams {
            rounds: RETRANSMIT_ROUNDS,
            ..params()
        };
        let rounds = |m: &Marks, rtt, spread| {
            rounds_in_lead(
                Duration::from_micros(m.lead_us),
                p.fec_hold,
                p.step,
                rtt,
                spread,
            )
        };
        // 15 +- 10 ms each way: three rounds of 30 + 2 x 20 + 1 ms on top
        // of FEC's floor of 80 ms, and the sender sees the three.
        let m = p.marks(ms(30), ms(20));
        assert_eq!((m.rounds, m.floor_us), (3, 80_000 + 3 * 71_000));
        assert_eq!(m.lead_us, m.floor_us + 30_000 + 20_000 + 10_000);
        assert_eq!(m.start_us, m.floor_us);
        assert_eq!(rounds(&m, ms(30), ms(20)), 3);
        // Without retransmission, FEC's floor alone.
        assert_eq!(params().marks(ms(30), ms(20)).floor_us, 80_000);
        // A long path: the rounds the 1 s limit holds (100 + 2 x 281 +
        // 250 ms), then none, as FEC alone would, never a refusal.
        let m = p.marks(ms(200), ms(40));
        assert_eq!((m.rounds, m.lead_us), (2, 912_000));
        assert_eq!(rounds(&m, ms(200), ms(40)), 2);
        let m = p.marks(ms(600), ms(100));
        assert_eq!((m.rounds, m.floor_us), (0, 160_000));
        assert_eq!(m.need_us, 870_000, "what FEC alone needs");
        assert_eq!(rounds(&m, ms(600), ms(100)), 0);
    }

    #[test]
    fn credits_start_with_playback_and_follow_the_measured_path() {
        let mut f = FlowControl::new(params(), ms(10));
        let t = |v: u64| Time::from_micros(v * 1000);
        f.update(t(0), None);
        assert_eq!(f.poll(), None, "no credit before playback");
        assert_eq!(
            f.marks().start_us,
            65_000,
            "45 + 5 (spread: half the rtt) + 10 + 5"
        );
        for i in 0..50 {
            f.on_transit(t(i), 15_000 + (i as i64 % 5) * 5_000);
        }
        f.update(t(50), Some(0));
        assert_eq!(f.marks().floor_us, 45_000 + 20_000 + 15_000);
        assert_eq!(
            f.poll(),
            Some(Control::Credit(Credit {
                position_us: 0,
                lead_us: 160_000,
            }))
        );
        f.update(t(100), Some(50_000));
        assert_eq!(f.poll(), None, "not due yet");
        f.update(t(150), Some(100_000));
        assert!(matches!(f.poll(), Some(Control::Credit(c)) if c.position_us == 100_000));
        // A longer round trip raises the lead at once.
        f.set_rtt(ms(150));
        f.update(t(160), Some(110_000));
        let lead = 80_000 + 150_000 + 20_000 + 10_000;
        assert!(matches!(f.poll(), Some(Control::Credit(c)) if c.lead_us as u64 == lead));
        let s = f.stats();
        assert_eq!((s.credits, s.rtt_us, s.lead_us), (3, 150_000, lead));
        assert_eq!(s.delay_spread_us, 20_000);
    }
}
