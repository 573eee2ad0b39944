//! The control stream in simulation.
//!
//! Real control rides one QUIC stream: reliable and in order, but each
//! message is a packet on the same impaired path as the media, and a lost
//! one is only resent once the transport notices (a probe timeout when
//! nothing after it was acknowledged), holding back every message behind
//! it. [`ControlModel::Quic`] models exactly that, per direction; the
//! [`ControlModel::Ideal`] path is the reliable fixed-delay stream of an
//! ideal network.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::time::Duration;

use super::impair::{Impairer, Impairment};
use crate::time::{Time, micros};
use crate::wire::control::Control;

/// How the simulated control stream behaves.
#[derive(Debug, Clone, PartialEq)]
pub enum ControlModel {
    /// Reliable, in order, after [`SimConfig::control_delay`](super::SimConfig::control_delay);
    /// nothing is ever lost.
    Ideal,
    /// A QUIC stream over `link` (usually the media link's impairment: the
    /// `netem` relay impairs every packet both ways). Each message is one
    /// packet; the path also carries the transport's acknowledgements
    /// (receiver to sender) and the media (sender to receiver), which move
    /// the loss model's state between messages. A lost message is resent
    /// when RFC 9002 loss detection fires: 9/8 of the round trip after it
    /// was sent once a later packet is acknowledged, else the probe timeout
    /// (smoothed RTT + 4 x RTT variation + `max_ack_delay`, doubling while
    /// probes go unanswered).
    Quic {
        /// Impairment of control packets, each direction.
        link: Impairment,
        /// The peer's acknowledgement delay allowance (quinn: 25 ms).
        max_ack_delay: Duration,
    },
}

impl ControlModel {
    /// A QUIC stream over the same impairment as the media, with quinn's
    /// default acknowledgement delay.
    pub fn quic_over(link: &Impairment) -> Self {
        ControlModel::Quic {
            link: link.clone(),
            max_ack_delay: Duration::from_millis(25),
        }
    }
}

/// RFC 9002 round-trip estimator.
#[derive(Debug, Clone, Copy)]
struct Rtt {
    srtt: f64,
    rttvar: f64,
    latest: f64,
}

impl Rtt {
    fn new(first_us: f64) -> Self {
        Self {
            srtt: first_us,
            rttvar: first_us / 2.0,
            latest: first_us,
        }
    }

    fn sample(&mut self, us: f64) {
        self.latest = us;
        self.rttvar = 0.75 * self.rttvar + 0.25 * (self.srtt - us).abs();
        self.srtt = 0.875 * self.srtt + 0.125 * us;
    }

    fn pto_us(&self, max_ack_delay: Duration) -> f64 {
        self.srtt + (4.0 * self.rttvar).max(1_000.0) + micros(max_ack_delay) as f64
    }
}

struct Unacked {
    seq: u64,
    /// Packet number of the latest transmission (of a pair of probes, the
    /// second: either acknowledged will do).
    pn: u64,
    /// When the latest transmission left.
    sent: Time,
    /// Probe timeouts this message has waited through.
    probes: u32,
}

/// One direction of a simulated QUIC control stream.
pub struct QuicStream {
    imp: Impairer,
    /// Delays of acknowledgements coming back (their loss is covered by the
    /// next acknowledgement, which repeats every range).
    back: Impairer,
    max_ack_delay: Duration,
    rtt: Rtt,
    next_seq: u64,
    next_pn: u64,
    largest_acked: Option<u64>,
    unacked: VecDeque<Unacked>,
    /// Packets in flight: (arrival, packet number, seq).
    flight: BinaryHeap<Reverse<(Time, u64, u64)>>,
    /// Acknowledgements in flight: (arrival, packet number, seq, its send time).
    acks: BinaryHeap<Reverse<(Time, u64, u64, Time)>>,
    /// Sent and not yet delivered, by seq.
    messages: BTreeMap<u64, Control>,
    /// Arrived at the peer and not yet delivered in order.
    arrived: BTreeMap<u64, ()>,
    deliver_next: u64,
    ready: VecDeque<Control>,
    retransmissions: u64,
}

impl QuicStream {
    /// A stream over `link` drawing from `seed`; `rtt`: the round trip the
    /// handshake measured.
    pub fn new(
        link: Impairment,
        max_ack_delay: Duration,
        seed: u64,
        origin: Time,
        rtt: Duration,
    ) -> Self {
        Self {
            imp: Impairer::new(link.clone(), seed, origin),
            back: Impairer::new(
                Impairment {
                    loss: super::Loss::None,
                    outages: Vec::new(),
                    ..link
                },
                seed ^ 0x5eed_ac55,
                origin,
            ),
            max_ack_delay,
            rtt: Rtt::new(micros(rtt).max(1) as f64),
            next_seq: 0,
            next_pn: 0,
            largest_acked: None,
            unacked: VecDeque::new(),
            flight: BinaryHeap::new(),
            acks: BinaryHeap::new(),
            messages: BTreeMap::new(),
            arrived: BTreeMap::new(),
            deliver_next: 0,
            ready: VecDeque::new(),
            retransmissions: 0,
        }
    }

    fn transmit(&mut self, now: Time, seq: u64) -> u64 {
        let pn = self.next_pn;
        self.next_pn += 1;
        let fate = self.imp.decide(now, 64);
        for at in fate.at.into_iter().flatten() {
            self.flight.push(Reverse((at, pn, seq)));
        }
        pn
    }

    /// Another packet (media, or an acknowledgement) crossed the same path
    /// at `now`, moving the loss model on.
    pub fn other_packet(&mut self, now: Time) {
        let _ = self.imp.decide(now, 1200);
    }

    /// Send a message at `now`.
    pub fn send(&mut self, now: Time, msg: Control) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.messages.insert(seq, msg);
        let pn = self.transmit(now, seq);
        self.unacked.push_back(Unacked {
            seq,
            pn,
            sent: now,
            probes: 0,
        });
    }

    /// When a message still unacknowledged is resent: 9/8 of the round
    /// trip after its transmission once a later packet was acknowledged,
    /// else at its (backed-off) probe timeout.
    fn resend_at(&self, u: &Unacked) -> Time {
        let backoff = f64::from(1u32 << u.probes.min(16));
        let pto = self.rtt.pto_us(self.max_ack_delay) * backoff;
        let mut t = u.sent + Duration::from_micros(pto as u64);
        if self.largest_acked.is_some_and(|l| l > u.pn) {
            let thresh = 1.125 * self.rtt.srtt.max(self.rtt.latest);
            t = t.min(u.sent + Duration::from_micros(thresh as u64));
        }
        t
    }

    /// Move everything due by `now`: arrivals, acknowledgements,
    /// retransmissions.
    fn advance(&mut self, now: Time) {
        loop {
            let mut progressed = false;
            while self.flight.peek().is_some_and(|Reverse((t, ..))| *t <= now) {
                let Reverse((at, pn, seq)) = self.flight.pop().expect("peeked");
                if seq >= self.deliver_next {
                    self.arrived.insert(seq, ());
                }
                let back = self.back.decide(at, 64).at[0].unwrap_or(at);
                let sent = self.unacked.iter().find(|u| u.pn == pn).map(|u| u.sent);
                self.acks
                    .push(Reverse((back, pn, seq, sent.unwrap_or(Time::ZERO))));
                progressed = true;
            }
            while self.arrived.remove(&self.deliver_next).is_some() {
                if let Some(m) = self.messages.remove(&self.deliver_next) {
                    self.ready.push_back(m);
                }
                self.deliver_next += 1;
            }
            while self.acks.peek().is_some_and(|Reverse((t, ..))| *t <= now) {
                let Reverse((at, pn, seq, sent)) = self.acks.pop().expect("peeked");
                self.largest_acked = Some(self.largest_acked.map_or(pn, |l| l.max(pn)));
                if let Some(i) = self.unacked.iter().position(|u| u.seq == seq) {
                    if self.unacked[i].pn == pn {
                        self.rtt
                            .sample(at.saturating_since(sent).as_micros() as f64);
                    }
                    self.unacked.remove(i);
                    for u in self.unacked.iter_mut() {
                        u.probes = 0;
                    }
                }
                progressed = true;
            }
            let due: Vec<usize> = (0..self.unacked.len())
                .filter(|&i| self.resend_at(&self.unacked[i]) <= now)
                .collect();
            for i in due {
                let u = &self.unacked[i];
                let (seq, probe) = (u.seq, self.largest_acked.is_none_or(|l| l <= u.pn));
                // A probe timeout sends two probes, each carrying the data.
                let mut pn = self.transmit(now, seq);
                if probe {
                    pn = self.transmit(now, seq);
                }
                let u = &mut self.unacked[i];
                u.pn = pn;
                u.sent = now;
                u.probes += probe as u32;
                self.retransmissions += 1;
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
    }

    /// The next message delivered in order by `now`.
    pub fn recv(&mut self, now: Time) -> Option<Control> {
        self.advance(now);
        self.ready.pop_front()
    }

    /// When something next happens on this stream.
    pub fn next_event(&self) -> Option<Time> {
        let flight = self.flight.peek().map(|Reverse((t, ..))| *t);
        let acks = self.acks.peek().map(|Reverse((t, ..))| *t);
        let resend = self.unacked.iter().map(|u| self.resend_at(u)).min();
        [flight, acks, resend].into_iter().flatten().min()
    }

    /// Smoothed round trip as the transport estimates it.
    pub fn srtt(&self) -> Duration {
        Duration::from_micros(self.rtt.srtt as u64)
    }

    /// Round-trip variation as the transport estimates it.
    pub fn rttvar(&self) -> Duration {
        Duration::from_micros(self.rtt.rttvar as u64)
    }

    /// Messages resent so far.
    pub fn retransmissions(&self) -> u64 {
        self.retransmissions
    }
}

/// One direction of the simulated control path.
pub enum ControlPath {
    /// Fixed delay, never lost.
    Ideal {
        /// One-way delay.
        delay: Duration,
        /// Messages in flight with their arrival times.
        queue: VecDeque<(Time, Control)>,
    },
    /// See [`ControlModel::Quic`].
    Quic(Box<QuicStream>),
}

impl ControlPath {
    /// The path `model` describes for one direction.
    pub fn new(
        model: &ControlModel,
        delay: Duration,
        seed: u64,
        origin: Time,
        rtt: Duration,
    ) -> Self {
        match model {
            ControlModel::Ideal => ControlPath::Ideal {
                delay,
                queue: VecDeque::new(),
            },
            ControlModel::Quic {
                link,
                max_ack_delay,
            } => ControlPath::Quic(Box::new(QuicStream::new(
                link.clone(),
                *max_ack_delay,
                seed,
                origin,
                rtt,
            ))),
        }
    }

    /// Send a message at `now`.
    pub fn send(&mut self, now: Time, msg: Control) {
        match self {
            ControlPath::Ideal { delay, queue } => queue.push_back((now + *delay, msg)),
            ControlPath::Quic(q) => q.send(now, msg),
        }
    }

    /// A message delivered by `now`, in order.
    pub fn recv(&mut self, now: Time) -> Option<Control> {
        match self {
            ControlPath::Ideal { queue, .. } => {
                if queue.front().is_some_and(|(t, _)| *t <= now) {
                    queue.pop_front().map(|(_, m)| m)
                } else {
                    None
                }
            }
            ControlPath::Quic(q) => q.recv(now),
        }
    }

    /// Another packet crossed the same path (QUIC model only).
    pub fn other_packet(&mut self, now: Time) {
        if let ControlPath::Quic(q) = self {
            q.other_packet(now);
        }
    }

    /// When something next happens.
    pub fn next_event(&self) -> Option<Time> {
        match self {
            ControlPath::Ideal { queue, .. } => queue.front().map(|(t, _)| *t),
            ControlPath::Quic(q) => q.next_event(),
        }
    }

    /// The round trip the sending side's transport estimates, and its
    /// variation (the ideal path: twice its delay, no variation).
    pub fn rtt(&self) -> (Duration, Duration) {
        match self {
            ControlPath::Ideal { delay, .. } => (*delay * 2, Duration::ZERO),
            ControlPath::Quic(q) => (q.srtt(), q.rttvar()),
        }
    }

    /// Messages resent (QUIC model).
    pub fn retransmissions(&self) -> u64 {
        match self {
            ControlPath::Ideal { .. } => 0,
            ControlPath::Quic(q) => q.retransmissions(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{Loss, Outage};

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// Deliver everything up to `until`, noting when each message came out.
    fn drain(s: &mut QuicStream, from: Time, until: Time, got: &mut Vec<(Time, Control)>) {
        let mut now = from;
        loop {
            while let Some(m) = s.recv(now) {
                got.push((now, m));
            }
            match s.next_event() {
                Some(e) if e <= until => now = e.max(now),
                _ => break,
            }
        }
    }

    /// 10 ms one way; nothing passes in the first 5 ms.
    fn dark_first_5ms() -> Impairment {
        Impairment {
            delay: ms(10),
            outages: vec![Outage {
                start: Duration::ZERO,
                duration: ms(5),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_lost_message_holds_back_the_next_until_resent() {
        // The first message leaves during an outage; the second does not.
        let origin = Time::ZERO;
        let mut s = QuicStream::new(dark_first_5ms(), ms(25), 1, origin, ms(20));
        s.send(origin + ms(1), Control::Pause);
        s.send(origin + ms(6), Control::Resume);
        let mut got = Vec::new();
        drain(&mut s, origin, origin + ms(500), &mut got);
        let order: Vec<_> = got.iter().map(|(_, m)| m.clone()).collect();
        assert_eq!(order, vec![Control::Pause, Control::Resume], "in order");
        // The second arrives at 16 ms but waits. Its acknowledgement (26 ms)
        // makes the first lost 9/8 x 20 ms = 22.5 ms after it left (23.5 ms),
        // so it is resent at 26 ms and arrives at 36 ms, both delivered then.
        assert_eq!(got[0].0, got[1].0, "held back, then delivered together");
        assert_eq!(got[0].0, origin + ms(36));
        assert_eq!(s.retransmissions(), 1);
    }

    #[test]
    fn a_lone_lost_message_waits_for_its_probe_timeout() {
        let mut s = QuicStream::new(dark_first_5ms(), ms(25), 1, Time::ZERO, ms(20));
        s.send(Time::ZERO + ms(1), Control::Resume);
        let mut got = Vec::new();
        drain(&mut s, Time::ZERO, Time::ZERO + ms(500), &mut got);
        // PTO = 20 + 4 x 10 + 25 = 85 ms after sending, then 10 ms across.
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, Time::ZERO + ms(96));
    }

    #[test]
    fn bursty_loss_resends_and_keeps_order() {
        let link = Impairment {
            loss: Loss::from_mean(0.05, 3.0),
            delay: ms(15),
            jitter: ms(10),
            ..Default::default()
        };
        let mut s = QuicStream::new(link, ms(25), 3, Time::ZERO, ms(30));
        let mut got = Vec::new();
        let n = 2000u64;
        for i in 0..n {
            let sent = Time::ZERO + ms(i * 50);
            drain(&mut s, sent.saturating_sub(ms(50)), sent, &mut got);
            for k in 0..5 {
                s.other_packet(sent + ms(k * 10));
            }
            s.send(
                sent,
                Control::Report(crate::wire::control::Report {
                    received: i,
                    ..Default::default()
                }),
            );
        }
        drain(
            &mut s,
            Time::ZERO + ms(n * 50),
            Time::ZERO + ms(n * 50 + 10_000),
            &mut got,
        );
        assert_eq!(got.len() as u64, n, "every message delivered once");
        for (i, (_, m)) in got.iter().enumerate() {
            let Control::Report(r) = m else { panic!() };
            assert_eq!(r.received, i as u64, "in order");
        }
        let lost = s.retransmissions();
        assert!((50..=200).contains(&lost), "about 5 % resent: {lost}");
        let rtt = s.srtt();
        assert!(rtt >= ms(20) && rtt <= ms(45), "{rtt:?}");
    }
}
