//! The receiver's NACK planner: which missing source packets to ask for
//! again, and when.
//!
//! A gap in a substream's sequence numbers is a candidate once a later
//! packet has arrived. It is *confirmed* when an original merely delayed
//! would have come by now: the later packet's send time plus the path's
//! fastest transit plus its recent spread (so reordering does not cost
//! retransmissions, and with a steady path the wait is nearly nothing).
//! With FEC on, a confirmed gap is left to FEC until its block is decided:
//! a repair sent after the gap's neighbour was sent has been seen (repairs
//! leave at group close, in order), or the group's time budget has run out,
//! again plus the spread. It is asked for sooner when waiting would leave
//! less than a round trip before its deadline (the last call).
//!
//! Confirmation may come too late for a round trip (a loaded host's stalls
//! inflate the spread, or it outgrows what the deadline leaves): a gap is
//! then due at the last instant a round trip still fits, confirmed or not.
//! Unconfirmed, it may be an original that is only late, and on a path
//! that delays without losing every such ask is a wasted retransmission
//! (`jitter-step-auto` sent 10.6 % again, none of it needed). So the
//! planner learns, per path, what the gaps still missing at that instant
//! turn out to be: *late* (the original comes directly before the
//! deadline) or *lost* (it does not: rebuilt, retransmitted with the
//! original never seen, or missed), asked for or not, gaps filled by a
//! retransmission or a rebuild watched (a few dozen) until their deadline.
//! It asks unconfirmed only while the decayed share lost is at least
//! [`UNCONFIRMED_MIN`] (a wasted retransmission against what FEC pays per
//! packet saved at the target residual); otherwise the gap is *held* and
//! asked for once confirmed, if a round trip still fits. Confirmed asks do
//! not depend on it. Counted in [`NackCounts`] (`unconfirmed`,
//! `unconfirmed_held`, `unconfirmed_late`, `unconfirmed_lost`,
//! `unconfirmed_rebuilt`).
//!
//! A NACK is only sent while the deadline minus the measured round trip
//! leaves time; it goes three times, a little apart (a NACK is a few
//! bytes, and losing it loses a round trip), and is repeated a round trip
//! later while the
//! packet is still missing. The sender answers a packet at most once a
//! round trip, so the copies cost it nothing.
//!
//! Sans-IO: the driver passes the time, the round trip ([`set_rtt`]) and the
//! playout's clock mapping ([`set_anchor`]); [`poll`] hands out NACK
//! datagrams. Memory is fixed at construction (a bounded list of gaps per
//! substream, older gaps giving way, counted; a bounded list of watched
//! gaps).
//!
//! [`set_rtt`]: NackPlanner::set_rtt
//! [`set_anchor`]: NackPlanner::set_anchor
//! [`poll`]: NackPlanner::poll

use std::collections::VecDeque;
use std::time::Duration;

use crate::ingress::Via;
use crate::playout::clock::OffsetEstimator;
use crate::stats::NackCounts;
use crate::time::{Time, micros};
use crate::wire::control::{EndOfStream, Mode, SessionDesc};
use crate::wire::nack::{NackRange, NackWriter};
use crate::wire::packet::{BlockPos, SourceMeta};

/// Gaps tracked per substream at most.
pub const MAX_GAPS: usize = 512;
/// Packets assumed lost in one silence at most (live: a burst is noticed
/// as it happens, not only when it ends).
pub const MAX_OVERDUE: u64 = 32;
/// Per-packet decay of the longest gap between packets.
const INTERVAL_DECAY: f64 = 0.995;
/// NACKs sent for one packet at most (echo copies not counted).
pub const MAX_NACKS: u8 = 6;
/// Copies of each NACK after the first.
pub const ECHOES: u8 = 2;
/// Slack added to every "should have arrived by" estimate.
const SLACK: Duration = Duration::from_micros(500);
/// How late a driver's timer may fire (tokio's have a millisecond's
/// granularity): the last instant a round trip fits is scheduled this early.
const WAKE: Duration = Duration::from_millis(2);
/// Epoch of the least round trip told (see `NackPlanner::rtt_floor`).
const RTT_EPOCH_US: u64 = 4_000_000;
/// Window of the transit minimum (clock offset) and of the spread.
const MIN_WINDOW_US: u64 = 8_000_000;
const SPREAD_WINDOW_US: u64 = 2_000_000;

#[derive(Debug, Clone, Copy)]
struct Gap {
    ext: u64,
    seq: u32,
    /// Media time the missing packet has at least: interpolated by sequence
    /// number between its neighbours', rounded down (a run of losses does
    /// not all take the time of the packet before it).
    ts: u64,
    /// Sender time of the packet after the gap: the missing one left before.
    next_sender_ts: u64,
    /// When a merely delayed original should have arrived.
    confirm_at: Time,
    /// When FEC will have decided the gap's block, at the latest.
    settled_at: Time,
    /// Its block's repairs are still to come (the neighbour was
    /// FEC-protected and no later repair has been seen).
    fec: bool,
    /// FEC blocks it may be in (those of its neighbours' groups).
    blocks: (u32, u32),
    nacks: u8,
    /// First asked for before FEC had decided its block.
    eager: bool,
    /// Echoes of the last NACK still to send.
    echo: u8,
    /// Still missing at the instant it would be asked for unconfirmed:
    /// its fate (late or lost) is learned.
    probed: bool,
    /// Not asked for then (the path's late packets outnumber its losses):
    /// asked for when confirmed, if a round trip still fits.
    held: bool,
    next_at: Time,
}

struct Sub {
    id: u16,
    /// Highest sequence number seen, or assumed lost as overdue.
    highest: Option<u64>,
    /// Media time of `highest` (of the packet, or as assumed when overdue).
    highest_ts: u64,
    /// FEC block of the newest FEC-protected packet.
    highest_block: u32,
    gaps: VecDeque<Gap>,
    /// The newest packet that really came: (sequence, sender time, media
    /// time). `highest` runs ahead of it while packets are overdue.
    last: Option<(u64, u64, u64)>,
    /// Longest sender-time gap between consecutive packets, lately.
    interval_us: f64,
    /// Sender and media time per sequence number, on average.
    per_seq_us: f64,
    media_per_seq_us: f64,
    /// Packets assumed lost since `last` came (the silence's length).
    overdue: u64,
}

impl Sub {
    /// A packet `ext` really came: learn the substream's cadence from the
    /// newest ones (sender times, so the path's jitter does not count).
    fn follow(&mut self, ext: u64, meta: &SourceMeta) {
        let Some((seq, sent, ts)) = self.last else {
            return;
        };
        if ext <= seq {
            return;
        }
        let dt = meta.sender_ts.saturating_sub(sent) as f64;
        let steps = (ext - seq) as f64;
        if ext == seq + 1 {
            self.interval_us = dt.max(self.interval_us * INTERVAL_DECAY);
        }
        let ewma = |old: f64, new: f64| {
            if old == 0.0 {
                new
            } else {
                0.95 * old + 0.05 * new
            }
        };
        self.per_seq_us = ewma(self.per_seq_us, dt / steps);
        self.media_per_seq_us = ewma(
            self.media_per_seq_us,
            meta.media_ts.saturating_sub(ts) as f64 / steps,
        );
        self.last = Some((ext, meta.sender_ts, meta.media_ts));
        self.overdue = 0;
    }

    /// Sender time the first packet not yet seen nor assumed lost was
    /// due to leave by, once the cadence is known.
    fn next_due(&self) -> Option<u64> {
        let ((seq, sent, _), h) = (self.last?, self.highest?);
        if self.per_seq_us <= 0.0 || self.overdue >= MAX_OVERDUE {
            return None;
        }
        let later = h.saturating_sub(seq) as f64 * self.per_seq_us;
        // A sender's clock is the peer's word: saturate, never wrap.
        Some(sent.saturating_add((self.interval_us + later) as u64))
    }
}

/// Bins of the spread histogram: 0.5 ms wide to 32 ms, 2 ms to 96 ms,
/// 8 ms to 352 ms; the last takes everything beyond.
const BINS: usize = 128;
/// Share of the window's transits the spread may leave above it.
const SPREAD_OUTLIERS: f64 = 0.01;

fn bin(v: u64) -> usize {
    match v {
        0..32_000 => (v / 500) as usize,
        32_000..96_000 => 64 + ((v - 32_000) / 2_000) as usize,
        _ => (96 + ((v - 96_000) / 8_000) as usize).min(BINS - 1),
    }
}

/// The highest value bin `b` holds (the last: its lowest).
fn bin_top(b: usize) -> u64 {
    let b = b as u64;
    match b {
        0..64 => (b + 1) * 500,
        64..96 => 32_000 + (b - 63) * 2_000,
        _ => 96_000 + (b - 95) * 8_000,
    }
}

/// The spread of transit times over a sliding window (in a few buckets):
/// the 99th percentile, not the maximum. A loaded host's stalls hold up a
/// few datagrams at a time by tens of ms; a maximum over 2 s took one such
/// stall for the path's spread (22-26 ms on a 20 +- 5 ms path under load,
/// 10 ms idle), every confirmation waited that long, and gaps found that
/// late had no round trip left. Under 100 transits in the window it is the
/// maximum; it never exceeds the maximum. Fixed memory.
#[derive(Debug, Clone)]
struct SlidingSpread {
    bucket_us: u64,
    /// Per bucket: its id (time / bucket), its largest value, its counts.
    ids: [u64; 8],
    max: [u64; 8],
    counts: [[u16; BINS]; 8],
    /// The window's counts (the buckets' sum) and their number.
    total: [u32; BINS],
    n: u32,
    /// The estimate as of the latest observation.
    value: u64,
    /// Bucket id of the latest observation.
    latest: u64,
}

impl SlidingSpread {
    fn new(window_us: u64) -> Self {
        Self {
            bucket_us: (window_us / 8).max(1),
            ids: [u64::MAX; 8],
            max: [0; 8],
            counts: [[0; BINS]; 8],
            total: [0; BINS],
            n: 0,
            value: 0,
            latest: 0,
        }
    }

    fn forget(&mut self, slot: usize) {
        for (t, c) in self.total.iter_mut().zip(self.counts[slot].iter_mut()) {
            *t -= *c as u32;
            self.n -= *c as u32;
            *c = 0;
        }
        self.ids[slot] = u64::MAX;
        self.max[slot] = 0;
    }

    fn observe(&mut self, now: Time, v: u64) {
        let id = now.as_micros() / self.bucket_us;
        for slot in 0..8 {
            let b = self.ids[slot];
            if b != u64::MAX && (b + 8 <= id || (slot as u64 == id % 8 && b != id)) {
                self.forget(slot);
            }
        }
        let slot = (id % 8) as usize;
        self.ids[slot] = id;
        self.max[slot] = self.max[slot].max(v);
        let b = bin(v);
        if self.counts[slot][b] < u16::MAX {
            self.counts[slot][b] += 1;
            self.total[b] += 1;
            self.n += 1;
        }
        // From the top down until more than the outliers' share is above.
        let allowed = (self.n as f64 * SPREAD_OUTLIERS) as u32;
        let mut above = 0;
        let mut top = BINS - 1;
        for k in (0..BINS).rev() {
            above += self.total[k];
            if above > allowed {
                top = k;
                break;
            }
        }
        let max = self.max.iter().copied().max().unwrap_or(0);
        self.value = bin_top(top).min(max);
        self.latest = id;
    }

    fn get(&self, now: Time) -> u64 {
        let id = now.as_micros() / self.bucket_us;
        if self.latest + 8 > id { self.value } else { 0 }
    }
}

/// Per-observation decay of the fates of unconfirmed gaps (about the last
/// 200 count: slow to stop asking, quick to start again, one loss among
/// 200 late ones being `UNCONFIRMED_MIN`).
const FATE_DECAY: f64 = 0.995;
/// The prior, as pseudo-observations: a twentieth of one, half of it lost
/// (an even chance before anything is known; five or six late ones bring
/// it under `UNCONFIRMED_MIN`).
const FATE_PRIOR: f64 = 0.05;
const FATE_PRIOR_LOST: f64 = 0.025;
/// Ask for a gap before it is confirmed while at least this share of such
/// gaps turns out lost. A wasted retransmission costs one packet; a packet
/// lost costs what FEC would pay to save one more near the target residual
/// (1e-4): in `arq::model`, on the path (5 % random loss, one
/// round), the next plan down the residual costs 100 to 400 packets of
/// redundancy per packet it saves (blocks of 8: two copies of the last
/// retransmission to three, 1.3e-4 to 1.3e-5 for 5 points; FEC alone, 4
/// repairs to 5 on 16, 6.6e-4 to 1.3e-4 for 6.25 points). Asking is worth
/// it while `p * cost(lost) > (1 - p) * cost(wasted)`: from about 0.25 to
/// 1 %; 0.5 %, a lost packet at 200.
pub const UNCONFIRMED_MIN: f64 = 0.005;
/// Gaps whose fate is still being watched after they were filled or given
/// up on (a retransmission or a rebuild came first; the original may yet).
const WATCH: usize = 64;

/// What the gaps still missing when they would be asked for unconfirmed
/// turn out to be: late (the original comes before the deadline) or lost.
/// Decayed counts, so the estimate follows the path.
#[derive(Debug, Clone, Copy, Default)]
struct Fates {
    lost: f64,
    seen: f64,
}

impl Fates {
    fn observe(&mut self, lost: bool) {
        self.lost = self.lost * FATE_DECAY + if lost { 1.0 } else { 0.0 };
        self.seen = self.seen * FATE_DECAY + 1.0;
    }

    /// P(lost | missing when it would be asked for unconfirmed).
    fn p_lost(&self) -> f64 {
        (self.lost + FATE_PRIOR_LOST) / (self.seen + FATE_PRIOR)
    }
}

/// A probed gap filled or given up on before its deadline: lost unless its
/// original comes directly by `due`.
#[derive(Debug, Clone, Copy)]
struct Watched {
    sub: usize,
    ext: u64,
    due: Time,
    /// FEC rebuilt it.
    rebuilt: bool,
}

/// See the module documentation.
pub struct NackPlanner {
    subs: Vec<Sub>,
    live: bool,
    latency_us: i64,
    /// One FEC group's time budget (window x depth); `None`: no FEC.
    fec_span: Option<Duration>,
    /// Packet interleaving depth: blocks of a group are numbered together.
    depth: u32,
    rtt: Duration,
    /// Least round trip told per epoch (`RTT_EPOCH_US`): the previous
    /// epoch's and the current one's.
    rtt_min: [(u64, Duration); 2],
    anchor: Option<i64>,
    /// arrival - sender time: the fastest transit (clock offset included).
    transit: OffsetEstimator,
    spread: SlidingSpread,
    /// arrival - media time, for deadlines before the playout says.
    media_offset: OffsetEstimator,
    /// Sender time of the latest repair seen.
    last_repair: Option<u64>,
    writer: NackWriter,
    counts: NackCounts,
    /// The latest time the driver gave (for timeouts).
    clock: Time,
    /// Late or lost, of gaps missing when they would be asked for
    /// unconfirmed.
    fates: Fates,
    /// Probed gaps filled otherwise or given up on, until their deadline.
    watch: VecDeque<Watched>,
}

impl NackPlanner {
    /// For a session as accepted (`fec_window`: one block's time budget).
    pub fn new(session: &SessionDesc, latency: Duration, fec_window: Duration) -> Self {
        let subs = session
            .substreams
            .iter()
            .map(|d| Sub {
                id: d.id,
                highest: None,
                highest_ts: 0,
                highest_block: 0,
                gaps: VecDeque::with_capacity(MAX_GAPS),
                last: None,
                interval_us: 0.0,
                per_seq_us: 0.0,
                media_per_seq_us: 0.0,
                overdue: 0,
            })
            .collect();
        let f = session.fec;
        Self {
            subs,
            live: matches!(session.mode, Mode::Live),
            latency_us: micros(latency) as i64,
            fec_span: f.enabled().then(|| fec_window * f.depth.max(1) as u32),
            depth: f.depth.max(1) as u32,
            rtt: Duration::from_millis(100),
            rtt_min: [(u64::MAX, Duration::MAX); 2],
            anchor: None,
            transit: OffsetEstimator::new(MIN_WINDOW_US),
            spread: SlidingSpread::new(SPREAD_WINDOW_US),
            media_offset: OffsetEstimator::new(MIN_WINDOW_US),
            last_repair: None,
            writer: NackWriter::new(),
            counts: NackCounts::default(),
            clock: Time::ZERO,
            fates: Fates::default(),
            watch: VecDeque::with_capacity(WATCH),
        }
    }

    /// The measured round trip (the transport's smoothed estimate).
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.rtt = rtt;
        let epoch = self.clock.as_micros() / RTT_EPOCH_US;
        let m = &mut self.rtt_min;
        if m[1].0 != epoch {
            m[0] = if m[1].0.wrapping_add(1) == epoch {
                m[1]
            } else {
                (0, rtt)
            };
            m[1] = (epoch, rtt);
        }
        m[1].1 = m[1].1.min(rtt);
    }

    /// The shortest round trip told over the last epoch or two, at most
    /// the current one.
    fn rtt_floor(&self) -> Duration {
        let [a, b] = self.rtt_min;
        let old = if a.0.wrapping_add(1) == b.0 { a.1 } else { b.1 };
        self.rtt.min(old).min(b.1)
    }

    /// The playout's mapping: frame media time `ts` is due at local `ts +
    /// anchor` (microseconds); `None` before playback starts.
    pub fn set_anchor(&mut self, anchor: Option<i64>) {
        self.anchor = anchor;
    }

    /// Counters so far.
    pub fn counts(&self) -> NackCounts {
        self.counts
    }

    /// When the frame at media time `ts` is due, as well as the receiver
    /// can tell now; `Time::MAX`: not before the playout starts (file mode).
    fn deadline(&self, now: Time, ts: u64) -> Time {
        let anchor = self.anchor.or_else(|| {
            self.live
                .then(|| self.media_offset.estimate(now))
                .flatten()
                .map(|o| o + self.latency_us)
        });
        match anchor {
            Some(a) => Time::from_micros((ts as i64).saturating_add(a).max(0) as u64),
            None => Time::MAX,
        }
    }

    /// Local instant a packet sent at sender time `sender_ts` arrives by,
    /// unless lost.
    fn arrives_by(&self, now: Time, sender_ts: u64) -> Time {
        let min = self.transit.estimate(now).unwrap_or(0);
        let t = (sender_ts as i64).saturating_add(min).max(0) as u64;
        Time::from_micros(t + self.spread.get(now)) + SLACK
    }

    /// The fate of a probed gap is known: lost (`rebuilt`: by FEC) or late.
    fn learn(&mut self, lost: bool, rebuilt: bool) {
        self.fates.observe(lost);
        if lost {
            self.counts.unconfirmed_lost += 1;
            if rebuilt {
                self.counts.unconfirmed_rebuilt += 1;
            }
        } else {
            self.counts.unconfirmed_late += 1;
        }
    }

    /// A probed gap leaves the list before its deadline (filled by `via`,
    /// or given up on): its original may still come directly.
    fn watch(&mut self, now: Time, sub: usize, g: &Gap, via: Option<Via>) {
        let rebuilt = via == Some(Via::Rebuilt);
        let due = self.deadline(now, g.ts);
        if now >= due {
            self.learn(true, rebuilt);
            return;
        }
        if self.watch.len() == WATCH
            && let Some(w) = self.watch.pop_front()
        {
            // Not come so far: taken for lost.
            self.learn(true, w.rebuilt);
        }
        self.watch.push_back(Watched {
            sub,
            ext: g.ext,
            due,
            rebuilt,
        });
    }

    /// Watched gaps whose deadline passed without their original: lost.
    fn expire_watch(&mut self, now: Time) {
        let mut k = 0;
        while k < self.watch.len() {
            if self.watch[k].due <= now {
                let w = self.watch.remove(k).expect("in range");
                self.learn(true, w.rebuilt);
            } else {
                k += 1;
            }
        }
    }

    /// Share of the gaps missing when they would be asked for unconfirmed
    /// that turn out lost, as estimated now.
    pub fn unconfirmed_lost_share(&self) -> f64 {
        self.fates.p_lost()
    }

    /// A repair packet arrived (sent at the close of its group).
    pub fn on_repair(&mut self, now: Time, sender_ts: u64) {
        if self.last_repair.is_some_and(|r| r >= sender_ts) {
            return;
        }
        self.last_repair = Some(sender_ts);
        let at = self.arrives_by(now, sender_ts);
        for i in 0..self.subs.len() {
            let mut changed = false;
            for g in self.subs[i].gaps.iter_mut() {
                // A group closed after this gap's neighbour left: the gap's
                // own group closed no later (groups close in order), so its
                // repairs are out.
                if g.fec && g.nacks == 0 && g.next_sender_ts <= sender_ts {
                    g.fec = false;
                    g.settled_at = g.settled_at.min(at.max(g.confirm_at));
                    changed = true;
                }
            }
            if changed {
                self.reschedule(now, i);
            }
        }
    }

    /// FEC found `block` beyond rebuilding: gaps that may be in it are
    /// asked for now rather than when FEC gives up.
    pub fn on_hopeless(&mut self, now: Time, block: u32) {
        for i in 0..self.subs.len() {
            let mut changed = false;
            for g in self.subs[i].gaps.iter_mut() {
                if g.fec && g.nacks == 0 && (g.blocks.0..=g.blocks.1).contains(&block) {
                    g.fec = false;
                    g.settled_at = g.confirm_at;
                    changed = true;
                }
            }
            if changed {
                self.counts.hopeless += 1;
                self.reschedule(now, i);
            }
        }
    }

    /// A source packet of substream `id` reached ingress `via` some path,
    /// at FEC position `pos` (`m` 0: not FEC-protected).
    pub fn on_source(&mut self, now: Time, meta: &SourceMeta, pos: BlockPos, via: Via) {
        let fec = pos.m > 0;
        self.clock = self.clock.max(now);
        if via == Via::Direct {
            // The sender's timestamp is any 64-bit value a peer chose.
            let transit = (now.as_micros() as i128 - meta.sender_ts as i128)
                .clamp(-(1i128 << 62), 1i128 << 62) as i64;
            self.transit
                .observe(Time::from_micros(now.as_micros()), meta.sender_ts);
            if let Some(min) = self.transit.estimate(now) {
                self.spread
                    .observe(now, transit.saturating_sub(min).max(0) as u64);
            }
            self.media_offset.observe(now, meta.media_ts);
        }
        let Some(i) = self.subs.iter().position(|s| s.id == meta.substream) else {
            return;
        };
        let highest = self.subs[i].highest;
        let Some(h) = highest else {
            let s = &mut self.subs[i];
            s.highest = Some(meta.seq as u64);
            s.highest_ts = meta.media_ts;
            s.last = Some((meta.seq as u64, meta.sender_ts, meta.media_ts));
            return;
        };
        let delta = meta.seq.wrapping_sub(h as u32) as i32 as i64;
        let Ok(ext) = u64::try_from(h as i64 + delta) else {
            return;
        };
        self.subs[i].follow(ext, meta);
        if ext <= h {
            let sub = &mut self.subs[i];
            match sub.gaps.binary_search_by_key(&ext, |g| g.ext) {
                Ok(k) => {
                    let g = sub.gaps.remove(k).expect("found");
                    if g.nacks > 0 {
                        match via {
                            Via::Retransmitted => self.counts.answered += 1,
                            _ => self.counts.filled_otherwise += 1,
                        }
                        if g.eager && via == Via::Rebuilt {
                            self.counts.eager_rebuilt += 1;
                        }
                    }
                    if g.probed {
                        if via == Via::Direct {
                            let due = self.deadline(now, g.ts);
                            self.learn(now >= due, false);
                        } else {
                            self.watch(now, i, &g, Some(via));
                        }
                    }
                }
                Err(_) if via == Via::Direct => {
                    if let Some(k) = self.watch.iter().position(|w| w.sub == i && w.ext == ext) {
                        let w = self.watch.remove(k).expect("found");
                        self.learn(now >= w.due, w.rebuilt);
                    }
                }
                Err(_) => {}
            }
            return;
        }
        // New gaps h+1 .. ext, the newest MAX_GAPS of them.
        let confirm_at = self.arrives_by(now, meta.sender_ts);
        let settled = self.last_repair.is_some_and(|r| r >= meta.sender_ts);
        let fallback = self
            .fec_span
            .map(|span| self.arrives_by(now, meta.sender_ts.saturating_add(micros(span))));
        let from = (h + 1).max(ext.saturating_sub(MAX_GAPS as u64));
        let group = |b: u32| b - b % self.depth;
        let sub = &mut self.subs[i];
        let blocks = (
            group(sub.highest_block),
            group(pos.block).saturating_add(self.depth - 1),
        );
        self.counts.dropped += from - (h + 1);
        let (ts0, span) = (sub.highest_ts, meta.media_ts.saturating_sub(sub.highest_ts));
        for e in from..ext {
            let ts = ts0 + (span as u128 * (e - h - 1) as u128 / (ext - h) as u128) as u64;
            if sub.gaps.len() == MAX_GAPS {
                sub.gaps.pop_front();
                self.counts.dropped += 1;
            }
            let settled_at = match fallback {
                Some(f) if fec && !settled => f,
                _ => confirm_at,
            };
            sub.gaps.push_back(Gap {
                ext: e,
                seq: e as u32,
                ts,
                next_sender_ts: meta.sender_ts,
                confirm_at,
                settled_at,
                fec: fec && !settled,
                blocks,
                nacks: 0,
                eager: false,
                echo: 0,
                probed: false,
                held: false,
                next_at: confirm_at,
            });
        }
        sub.highest = Some(ext);
        sub.highest_ts = meta.media_ts;
        if fec {
            sub.highest_block = pos.block;
        }
        self.reschedule(now, i);
    }

    /// The sender's final account: packets after the last one that arrived
    /// were lost too (no later packet will show the gap).
    pub fn on_end_of_stream(&mut self, now: Time, eos: &EndOfStream) {
        for t in &eos.totals {
            let Some(i) = self.subs.iter().position(|s| s.id == t.id) else {
                continue;
            };
            let sub = &mut self.subs[i];
            // Packets assumed overdue past the end never existed.
            sub.gaps.retain(|g| g.ext < t.packets);
            sub.highest = sub.highest.map(|h| h.min(t.packets.saturating_sub(1)));
            sub.overdue = MAX_OVERDUE;
            let from = sub.highest.map_or(0, |h| h + 1);
            let to = t.packets.min(from + MAX_GAPS as u64);
            for e in from..to {
                if sub.gaps.len() == MAX_GAPS {
                    sub.gaps.pop_front();
                    self.counts.dropped += 1;
                }
                sub.gaps.push_back(Gap {
                    ext: e,
                    seq: e as u32,
                    ts: sub.highest_ts,
                    next_sender_ts: 0,
                    confirm_at: now,
                    settled_at: now,
                    fec: false,
                    blocks: (0, 0),
                    nacks: 0,
                    eager: false,
                    echo: 0,
                    probed: false,
                    held: false,
                    next_at: now,
                });
            }
            if to > from {
                sub.highest = Some(to - 1);
            }
        }
    }

    /// Recompute when each new gap of substream `i` is first asked for.
    fn reschedule(&mut self, now: Time, i: usize) {
        let n = self.subs[i].gaps.len();
        for k in 0..n {
            let g = self.subs[i].gaps[k];
            if g.nacks > 0 {
                continue;
            }
            self.subs[i].gaps[k].next_at = self.first_ask(now, &g);
        }
    }

    /// When gap `g` is first asked for: once confirmed and FEC has decided
    /// (or at the last call), and before it is confirmed at the last
    /// instant a round trip still fits (unless it was held then).
    fn first_ask(&self, now: Time, g: &Gap) -> Time {
        let rtt = self.rtt;
        let spread = Duration::from_micros(self.spread.get(now));
        // The last call leaves a round trip, the spread both ways, and
        // half a round trip more for the sender to space copies of a
        // last-chance retransmission (a burst would take copies sent
        // back to back together).
        let due = self.deadline(now, g.ts);
        let last_call = due.saturating_sub(rtt * 3 / 2 + spread * 2 + SLACK);
        let confirmed = g.confirm_at.max(g.settled_at.min(last_call));
        if g.held {
            return confirmed;
        }
        // Never later than a round trip still fits, confirmed or not:
        // a loaded host's stalls inflate the spread past what the
        // deadline leaves (over QUIC, gaps confirmed 36 ms after the
        // path's fastest, 31 ms before the deadline, with a 44 ms
        // round trip: all lost for want of time). Before it is confirmed
        // the gap may be an original that is only late: `poll` asks then
        // only while enough such gaps turn out lost (`UNCONFIRMED_MIN`).
        // `WAKE` early: the driver's timer fires up to a millisecond or
        // two late.
        let in_time = due.saturating_sub(rtt + SLACK + WAKE);
        confirmed.min(in_time.max(now))
    }

    /// Live: packets that should have come by now (the substream's cadence
    /// says so, with the path's spread to spare) are taken for lost at once,
    /// not when a later packet shows the gap: during a burst no later packet
    /// comes, and the round trip would start only after it.
    fn overdue(&mut self, now: Time) {
        if !self.live {
            return; // file mode pauses; deadlines are far anyway
        }
        for i in 0..self.subs.len() {
            let sub = &self.subs[i];
            let (Some(due), Some((seq, sent, ts)), Some(h)) =
                (sub.next_due(), sub.last, sub.highest)
            else {
                continue;
            };
            let first = self.arrives_by(now, due);
            if now < first {
                continue;
            }
            let per = sub.per_seq_us.max(1.0);
            let more = 1 + (now.diff_micros(first).max(0) as f64 / per) as u64;
            let to = h.saturating_add(more).min(seq.saturating_add(MAX_OVERDUE));
            let fallback = self
                .fec_span
                .map(|span| self.arrives_by(now, due.saturating_add(micros(span))));
            let depth = self.depth;
            let sub = &mut self.subs[i];
            for e in h + 1..=to {
                if sub.gaps.len() == MAX_GAPS {
                    sub.gaps.pop_front();
                    self.counts.dropped += 1;
                }
                let k = (e - seq) as f64;
                let gap_ts = ts + ((k - 1.0) * sub.media_per_seq_us) as u64;
                // Gaps a later packet shows are placed in media time from
                // here, not from the last packet that came: from that one
                // a run after a silence would all take deadlines up to the
                // silence's length too early (and be found with no round
                // trip left, never asked for).
                sub.highest_ts = sub.highest_ts.max(gap_ts);
                sub.gaps.push_back(Gap {
                    ext: e,
                    seq: e as u32,
                    ts: gap_ts,
                    next_sender_ts: sent.saturating_add((sub.interval_us + (k - 1.0) * per) as u64),
                    confirm_at: now,
                    settled_at: fallback.unwrap_or(now),
                    fec: fallback.is_some(),
                    blocks: (sub.highest_block - sub.highest_block % depth, u32::MAX),
                    nacks: 0,
                    eager: false,
                    echo: 0,
                    probed: false,
                    held: false,
                    next_at: now,
                });
                self.counts.overdue += 1;
            }
            sub.overdue = to - seq;
            sub.highest = Some(to);
            self.reschedule(now, i);
        }
    }

    /// When [`poll`](Self::poll) next has something to send.
    pub fn next_timeout(&self) -> Option<Time> {
        let now = self.clock;
        let overdue = self.live.then(|| {
            self.subs
                .iter()
                .filter_map(|s| s.next_due())
                .map(|due| self.arrives_by(now, due))
                .min()
        });
        self.subs
            .iter()
            .flat_map(|s| s.gaps.iter())
            .map(|g| g.next_at)
            .chain(overdue.flatten())
            .min()
    }

    /// The next NACK datagram due at `now`, if any (call until `None`).
    pub fn poll(&mut self, now: Time) -> Option<&[u8]> {
        self.clock = self.clock.max(now);
        self.overdue(now);
        self.expire_watch(now);
        self.writer.clear();
        let rtt = self.rtt;
        let floor = self.rtt_floor();
        let spread = Duration::from_micros(self.spread.get(now));
        let echo_gap = (rtt / 16).clamp(Duration::from_millis(1), Duration::from_millis(5));
        for i in 0..self.subs.len() {
            let mut k = 0;
            while k < self.subs[i].gaps.len() {
                let g = self.subs[i].gaps[k];
                if g.next_at > now {
                    k += 1;
                    continue;
                }
                let due = self.deadline(now, g.ts);
                // Past hope: the deadline leaves not even the shortest
                // round trip told lately (the smoothed one is the path's
                // mean: a retransmission asked for with less than it left
                // still comes in time when the round trip is quick). A
                // packet asked for is kept until its deadline (its
                // retransmission may be on the way) and counted when it
                // comes.
                if now + floor > due || (g.echo == 0 && g.nacks >= MAX_NACKS) {
                    if g.nacks == 0 {
                        self.counts.no_time += 1;
                        self.subs[i].gaps.remove(k);
                        if g.probed {
                            self.watch(now, i, &g, None);
                        }
                    } else if now >= due || due == Time::MAX {
                        self.subs[i].gaps.remove(k);
                        if g.probed {
                            self.learn(true, false);
                        }
                    } else {
                        self.subs[i].gaps[k].next_at = due;
                        k += 1;
                    }
                    continue;
                }
                // Not confirmed yet, at the last instant a round trip fits:
                // asked for only while enough such gaps turn out lost; its
                // fate is learned either way.
                if g.nacks == 0 && !g.probed && now < g.confirm_at {
                    self.subs[i].gaps[k].probed = true;
                    if self.fates.p_lost() < UNCONFIRMED_MIN {
                        self.counts.unconfirmed_held += 1;
                        let gm = &mut self.subs[i].gaps[k];
                        gm.held = true;
                        let g = *gm;
                        self.subs[i].gaps[k].next_at = self.first_ask(now, &g);
                        k += 1;
                        continue;
                    }
                    self.counts.unconfirmed += 1;
                }
                let range = NackRange {
                    substream: self.subs[i].id,
                    first: g.seq,
                    count: 1,
                };
                if !self.writer.push(range) {
                    // Full: the rest goes in the next datagram.
                    return self.finish();
                }
                let g = &mut self.subs[i].gaps[k];
                if g.echo > 0 {
                    g.echo -= 1;
                    g.next_at = if g.echo > 0 {
                        now + echo_gap
                    } else {
                        // Ask again once the sender, which answers a packet
                        // once a round trip, will answer again whichever
                        // copy it answered, and the spread has passed both
                        // ways.
                        now + rtt + spread * 2 + SLACK
                    };
                    self.counts.echoes += 1;
                } else {
                    if g.nacks == 0 {
                        self.counts.requested += 1;
                        // FEC has not decided: no repair seen since, the
                        // group's budget not run out, not beyond rebuilding.
                        if g.fec && now < g.settled_at {
                            g.eager = true;
                            self.counts.eager += 1;
                        }
                    } else {
                        self.counts.repeated += 1;
                    }
                    g.nacks += 1;
                    g.echo = ECHOES;
                    g.next_at = now + echo_gap;
                }
                k += 1;
            }
        }
        self.finish()
    }

    fn finish(&mut self) -> Option<&[u8]> {
        if self.writer.is_empty() {
            return None;
        }
        self.counts.datagrams += 1;
        Some(self.writer.bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: u64 = SPREAD_WINDOW_US;
    /// One bucket of the window (values are forgotten a bucket at a time).
    const BUCKET: u64 = W / 8;

    fn at(us: u64) -> Time {
        Time::from_micros(us)
    }

    /// `n` observations of `v`, one every `step` µs from `t`; the time after.
    fn feed(s: &mut SlidingSpread, t: u64, step: u64, n: u64, v: u64) -> u64 {
        for k in 0..n {
            s.observe(at(t + k * step), v);
        }
        t + n * step
    }

    #[test]
    fn fates_start_even_learn_late_quickly_and_a_loss_asks_again() {
        let mut f = Fates::default();
        assert_eq!(f.p_lost(), 0.5, "nothing known: an even chance");
        // Four late ones: still asked for; six: under the threshold (five
        // bring it to the threshold itself, 0.025 / 5.0).
        for _ in 0..4 {
            f.observe(false);
        }
        assert!(f.p_lost() >= UNCONFIRMED_MIN, "{}", f.p_lost());
        f.observe(false);
        f.observe(false);
        assert!(f.p_lost() < UNCONFIRMED_MIN, "{}", f.p_lost());
        // A long run of late ones: the estimate stays bounded (decayed
        // counts), near zero.
        for _ in 0..10_000 {
            f.observe(false);
        }
        assert!(f.seen < 201.0 && f.p_lost() < 1e-3, "{f:?}");
        // One lost among them is enough to ask again.
        f.observe(true);
        assert!(f.p_lost() >= UNCONFIRMED_MIN, "{}", f.p_lost());
        // A lossy path: mostly lost, asked for.
        let mut f = Fates::default();
        for k in 0..1_000 {
            f.observe(k % 4 != 0);
        }
        assert!((f.p_lost() - 0.75).abs() < 0.05, "{}", f.p_lost());
    }

    #[test]
    fn under_100_samples_it_is_the_maximum() {
        let mut s = SlidingSpread::new(W);
        assert_eq!(s.get(at(0)), 0, "nothing seen: no spread");
        s.observe(at(1_000), 3_000);
        assert_eq!(s.get(at(1_000)), 3_000);
        // 98 small values and one large: the large one is the spread,
        // exactly (not its bin's top).
        let t = feed(&mut s, 2_000, 5_000, 97, 1_200);
        s.observe(at(t), 17_345);
        assert_eq!(s.n, 99);
        assert_eq!(s.get(at(t)), 17_345);
    }

    #[test]
    fn one_outlier_in_many_does_not_move_it_a_run_does() {
        let mut s = SlidingSpread::new(W);
        // 300 values of 4 ms over 1.5 s (a packet every 5 ms).
        let t = feed(&mut s, 0, 5_000, 300, 4_000);
        assert_eq!(s.get(at(t)), 4_000);
        // A loaded host's stall: one datagram 40 ms late. The estimate is
        // the top of the 4 ms bin now (no longer clamped to 4 ms).
        s.observe(at(t), 40_000);
        let small = bin_top(bin(4_000));
        assert_eq!(s.get(at(t)), small, "one outlier in 301");
        // Two more make 3 of 303: not over 1 %.
        let t = feed(&mut s, t + 5_000, 5_000, 2, 40_000);
        assert_eq!(s.get(at(t - 5_000)), small, "3 of 303");
        // A run of them (over 1 % of the window) is the path's spread now.
        let t = feed(&mut s, t, 5_000, 4, 40_000);
        let v = s.get(at(t - 5_000));
        assert!(v >= 40_000 && v <= bin_top(bin(40_000)), "{v}");
    }

    #[test]
    fn values_older_than_the_window_are_forgotten() {
        let mut s = SlidingSpread::new(W);
        let t = feed(&mut s, 0, 5_000, 200, 30_000);
        assert_eq!(s.get(at(t)), 30_000);
        // Small values from now on: within the window the large ones still
        // count (they are the majority, then over 1 %).
        let t1 = feed(&mut s, t, 5_000, 200, 2_000);
        assert_eq!(s.get(at(t1 - 5_000)), 30_000, "still within 2 s");
        // After 2 s of small values the window holds nothing else.
        let t2 = feed(&mut s, t1, 5_000, 250, 2_000);
        assert!(t2 - t >= W + BUCKET);
        assert_eq!(s.get(at(t2 - 5_000)), 2_000);
        // The counts are the window's only: 8 buckets of 50 values at most.
        assert!(s.n <= 400, "{}", s.n);
    }

    #[test]
    fn silence_longer_than_the_window_leaves_no_spread() {
        let mut s = SlidingSpread::new(W);
        let t = feed(&mut s, 0, 5_000, 100, 9_000);
        assert_eq!(s.get(at(t)), 9_000);
        assert_eq!(s.get(at(t + W + BUCKET)), 0);
        // The next observation starts afresh: the old values are gone.
        s.observe(at(t + W + BUCKET), 1_000);
        assert_eq!((s.get(at(t + W + BUCKET)), s.n), (1_000, 1));
    }

    #[test]
    fn never_above_the_maximum_in_the_window() {
        let mut s = SlidingSpread::new(W);
        // Values in the middle of wide bins: the bin's top is above them.
        for (k, v) in [(0u64, 33_001u64), (1, 100_000), (2, 250)] {
            let t = feed(&mut s, k * 3 * W, 5_000, 150, v);
            let got = s.get(at(t - 5_000));
            assert_eq!(got, v, "all values {v}: the bin's top is clamped");
        }
    }

    #[test]
    fn extreme_values_and_times_do_not_panic() {
        let mut s = SlidingSpread::new(W);
        s.observe(at(0), 0);
        assert_eq!(s.get(at(0)), 0);
        // The last bin takes everything beyond: the estimate stops at its
        // top (352 ms), under 100 samples too.
        s.observe(at(10), u64::MAX);
        assert_eq!(s.get(at(10)), bin_top(BINS - 1));
        assert_eq!(bin_top(BINS - 1), 352_000);
        assert_eq!(bin(u64::MAX), BINS - 1);
        // Many huge values: the last bin's estimate, not an overflow.
        let t = feed(&mut s, 20, 1_000, 200, u64::MAX);
        assert_eq!(s.get(at(t)), bin_top(BINS - 1));
        // Time going backwards, far forwards, back again, to the end.
        for now in [5, 0, u64::MAX / 2, 7, u64::MAX - 1, u64::MAX, 3] {
            s.observe(at(now), 1_000);
            let _ = s.get(at(now));
            let _ = s.get(Time::MAX);
            let _ = s.get(Time::ZERO);
            let sum: u32 = s.total.iter().sum();
            assert_eq!(sum, s.n, "the counts stay consistent at {now}");
        }
        // Far more than a bin's counter holds, in one bucket.
        let mut s = SlidingSpread::new(W);
        for _ in 0..70_000 {
            s.observe(at(1), 500);
        }
        s.observe(at(1), 200_000);
        assert_eq!((s.n, s.get(at(1))), (65_536, bin_top(bin(500))));
    }

    /// The 99th percentile of `window`'s values as the histogram sees it:
    /// the value with `1 %` of the others above it.
    fn reference(window: &[u64]) -> u64 {
        let mut v = window.to_vec();
        v.sort_unstable_by(|a, b| b.cmp(a));
        let allowed = (v.len() as f64 * SPREAD_OUTLIERS) as usize;
        if v.len() < 100 { v[0] } else { v[allowed] }
    }

    proptest::proptest! {
        /// Against sorting the window's values: at or above the 99th
        /// percentile, within its bin, never above the window's maximum.
        /// The window is whole buckets (values leave a bucket at a time).
        #[test]
        fn within_one_bin_of_the_sorted_window(
            steps in proptest::collection::vec(
                (0u64..40_000, proptest::prop_oneof![
                    8 => 0u64..20_000,
                    1 => 0u64..340_000,
                ]),
                1..1_500,
            )
        ) {
            let mut s = SlidingSpread::new(W);
            let mut seen: Vec<(u64, u64)> = Vec::new();
            let mut t = 1_000_000;
            for (dt, v) in steps {
                t += dt;
                s.observe(at(t), v);
                seen.push((t, v));
                let id = t / BUCKET;
                seen.retain(|(u, _)| u / BUCKET + 8 > id);
                let window: Vec<u64> = seen.iter().map(|p| p.1).collect();
                let (r, max) = (reference(&window), *window.iter().max().unwrap());
                let got = s.get(at(t));
                proptest::prop_assert!(got <= max, "{} above the maximum {}", got, max);
                proptest::prop_assert!(got >= r, "{} under the percentile {}", got, r);
                proptest::prop_assert!(
                    got <= bin_top(bin(r)),
                    "{} beyond the bin of {}", got, r
                );
            }
        }
    }
}
