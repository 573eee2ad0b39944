//! Adaptive FEC: repair shards chosen from the measured loss, knowing what
//! retransmission will recover.
//!
//! A fixed code is either wasteful on a clean link or too weak on a bad one,
//! and a single failed block costs several packets at once. The adapter
//! estimates the loss as a Gilbert-Elliott chain from the receiver's reports
//! (the loss rate, and the mean length of runs of lost packets), leaving out
//! runs longer than the latency: an outage is not random loss, no code
//! within the budget fixes it, and counting it would keep FEC high long
//! after the path is clean. FEC alone takes a rise at once and a fall
//! slowly; with retransmission behind it the estimate is smoothed, follows
//! a jump at once and a drop within seconds.
//!
//! It then picks the `m` with the least redundancy (repairs plus the
//! retransmissions they save) whose exact residual loss, for the blocks the
//! sender really builds and the interleaving depth, meets a target
//! ([`crate::arq::model`]). With retransmission in the budget, FEC covers
//! only what the round trips cannot, down to no FEC at all; without it
//! (FEC-only sessions, or a round trip longer than the latency) the
//! configured code is the floor as a ratio: a block the time budget closes
//! at half of `k` keeps at least half of `m` (and one repair), so a short
//! latency budget does not double the overhead on a clean link. Until the
//! first measurement FEC alone protects with twice the floor; hybrid plans
//! for 5 % random loss where two round trips or more fit (no FEC, as
//! WebRTC starts with NACK alone), with the floor where one does.

use crate::arq::model::{self, Ask, Path, Plan};
use crate::sim::impair::Loss;

/// Measured loss is inflated by this much before choosing: estimates from
/// a second of packets are noisy. Burstiness is the loss chain's job, not
/// the margin's, and FEC alone's estimate already rises at once and falls
/// slowly. At 1.5 (before the chain model) FEC alone paid 78.7 % on 5 %
/// random loss for 0 lost of 240 000; at 1.25, 70.8 % for 0, and 1, 2 and
/// 10 % loss stayed at or under 1.25e-5 (`sim_recovery
/// fec_alone_against_its_target_measured`). With retransmission behind it
/// a packet FEC misses because the estimate ran low is most likely still
/// asked for again.
const SAFETY: f64 = 1.25;

/// The margin a fan-out publisher keeps: its loss is the audience's
/// quantile, reported through routers a second or more late, and no
/// listener can ask again. 1.25 there left 9 of 2 000 packets on a
/// two-router path losing 14 % (`tools/tests/fanout.rs`, CI, 1 run in 3).
pub const AUDIENCE_SAFETY: f64 = 1.5;

/// A plan in force is kept while it costs at most this much more than the
/// best: estimates from a second of reports wobble, and every change of
/// code closes a group early.
const KEEP: f64 = 1.15;

/// With retransmission, what missing the target costs beside redundancy: a
/// residual `x` times the target weighs as `x` times this much redundancy.
/// Plans that meet the target are judged by redundancy alone; the last
/// factor of residual is not bought at any price (on a bursty path a
/// target just out of retransmission's reach would otherwise call for
/// FEC several times the retransmissions it saves), nor is a path where
/// nothing meets it left to a plan hundreds of times over the target.
const MISS_COST: f64 = 0.05;

/// Beyond this many times the target, a further factor of residual weighs
/// the same whatever the residual (the miss cost grows as its logarithm).
const MISS_LINEAR: f64 = 10.0;

/// What a plan's residual `res` costs beside its redundancy against
/// `target`: nothing when met; [`MISS_COST`] times the factor missed up to
/// [`MISS_LINEAR`] times the target; beyond, the same slope in the
/// logarithm (continuous, and as steep where the two meet), so a halving
/// is worth at most 35 % redundancy. Linear all the way, a halving at
/// thirty times the target was worth 75 % of the media rate: on Gilbert-
/// Elliott 5 % with bursts of 10 and one round trip hybrid bought 28 % FEC
/// (the model said it would halve the residual) for 6 % less residual than
/// retransmission alone (3.13e-3 at 39.5 % against 3.33e-3 at 11.3 %,
/// `sim_recovery gilbert_elliott_bursts_of_10_as_far_as_the_budget_allows`).
fn miss_cost(res: f64, target: f64) -> f64 {
    if res <= target {
        return 0.0;
    }
    let x = res / target;
    MISS_COST
        * if x <= MISS_LINEAR {
            x
        } else {
            MISS_LINEAR * (1.0 + (x / MISS_LINEAR).ln())
        }
}

/// Automatic depth: another depth is taken only when its best plan costs
/// less than the depth in force's by this factor (bursts measured over a
/// second wobble, and every change closes a group early).
const KEEP_DEPTH: f64 = 1.2;
/// ... and only when that is so at this many retunes in a row.
const DEPTH_DWELL: u8 = 2;

/// The loss hybrid plans for before the first report (independent losses;
/// the report a fraction of a second in replaces it).
const PRIOR_LOSS: f64 = 0.05;

/// Fewest packets a measurement must cover to count.
const MIN_SAMPLE: u64 = 50;

/// The loss pattern over one report interval (differences of the
/// receiver's cumulative counters).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LossSample {
    /// Source packets final in the interval.
    pub total: u64,
    /// Of those, lost (not there directly in time).
    pub lost: u64,
    /// Runs of consecutive lost packets.
    pub runs: u64,
    /// Lost packets in runs longer than the latency.
    pub outage_lost: u64,
    /// Runs longer than the latency.
    pub outage_runs: u64,
}

impl LossSample {
    /// The pattern between two cumulative reports. Counters are the peer's
    /// word: one that went back counts as none, sums saturate.
    pub fn between(prev: &crate::wire::control::Report, r: &crate::wire::control::Report) -> Self {
        let d = |a: u64, b: u64| a.saturating_sub(b);
        let lost = d(r.lost, prev.lost);
        Self {
            total: lost.saturating_add(d(r.received, prev.received)),
            lost,
            runs: d(r.loss_runs, prev.loss_runs),
            outage_lost: d(r.outage_lost, prev.outage_lost),
            outage_runs: d(r.outage_runs, prev.outage_runs),
        }
    }
}

/// The chain's mean burst, in packets on the wire, from the mean run of
/// lost *source* packets `run` at loss `mean`, consecutive sources being
/// `spacing` chain steps apart: a run goes on with probability `pi + (1 -
/// pi) l^spacing`, where `l = 1 - p - r` is the chain's memory; solving for
/// `l` gives `r = (1 - l)(1 - pi)`, the burst `1 / r`. Independent losses
/// give 1 whatever the spacing. (Scaling runs by the packets sent per
/// source instead would take FEC's own repairs, which go in bunches at the
/// end of a block, for longer bursts, and call for more FEC.)
fn chain_burst(mean: f64, run: f64, spacing: f64) -> f64 {
    let pi = mean.clamp(0.0, 0.99);
    let go_on = 1.0 - 1.0 / run.max(1.0);
    let memory = ((go_on - pi) / (1.0 - pi)).max(0.0);
    let l = memory.powf(1.0 / spacing.max(1.0));
    let r = ((1.0 - l) * (1.0 - pi)).max(1e-3);
    (1.0 / r).max(1.0)
}

/// What retransmission can do on the path, as the sender sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArqPath {
    /// Round trips that fit in the latency (0: none).
    pub rounds: u32,
    /// Round trips left, on average, once FEC has decided
    /// ([`waited_rounds`](crate::arq::model::waited_rounds)).
    pub waited_rounds: f64,
    /// Media packets sent in one round trip.
    pub rtt_packets: usize,
    /// Media packets sent between copies of a last-chance retransmission.
    pub copy_gap: usize,
    /// Share of losses asked for before FEC decides
    /// ([`eager_share`](crate::arq::model::eager_share)).
    pub eager: f64,
    /// Share of losses the first round reaches in time
    /// ([`round_share`](crate::arq::model::round_share)).
    pub reach: f64,
}

/// What adaptive FEC settles on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    /// Repair shards a block.
    pub m: u8,
    /// Copies of a retransmission that is the last to fit (1 to 3).
    pub copies: u8,
}

/// Picks the repair count `m` from the receiver's loss reports.
#[derive(Debug, Clone)]
pub struct FecAdapter {
    target: f64,
    k: u8,
    floor: u8,
    cap: u8,
    /// Most repair bytes per source byte spent on a block, whatever the
    /// loss reported (a receiver reporting 100 % loss must not make the
    /// sender triple its bandwidth).
    max_overhead: f64,
    loss: Option<f64>,
    /// Mean run of lost packets (1: independent losses).
    burst: f64,
    /// Retransmission is on for the session.
    retransmits: bool,
    /// The measured loss is planned for times this ([`SAFETY`] by default).
    safety: f64,
    arq: Option<ArqPath>,
    /// The plan chosen last.
    current: Option<Choice>,
    /// Automatic depth: the depth in force.
    depth: usize,
    /// Another depth that did better, and how many times in a row.
    depth_pending: Option<(usize, u8)>,
}

impl FecAdapter {
    /// `target`: residual loss to stay under; `floor`: the configured `m`
    /// (0: no FEC, retransmission alone); `k`: the configured `k` (bounds
    /// `m` so `k + m <= 256`, `m <= k`); `retransmits`: the session also
    /// recovers by retransmission.
    pub fn new(target: f64, k: u8, floor: u8, retransmits: bool) -> Self {
        let cap = if floor == 0 {
            0
        } else {
            crate::wire::control::FecParams {
                k,
                m: floor,
                depth: 1,
                window_us: 0,
                auto_depth: false,
            }
            .max_repair()
        };
        Self {
            target,
            k,
            floor,
            cap,
            max_overhead: 1.0,
            loss: None,
            burst: 1.0,
            retransmits,
            safety: SAFETY,
            arq: None,
            current: None,
            depth: 1,
            depth_pending: None,
        }
    }

    /// Say which plan is in force (the sender's choice from
    /// [`choose_plan`](Self::choose_plan)): it is kept while it still does.
    pub fn settle(&mut self, choice: Choice) {
        self.current = Some(choice);
    }

    /// Plan for the measured loss times `margin` (at least 1; the default
    /// is [`SAFETY`], 1.25).
    pub fn set_safety(&mut self, margin: f64) {
        self.safety = if margin.is_finite() {
            margin.max(1.0)
        } else {
            SAFETY
        };
    }

    /// Spend at most `ratio` repair shards per source shard (1.0: 100 %
    /// overhead, the default), never below the configured floor.
    pub fn with_max_overhead(mut self, ratio: f64) -> Self {
        self.max_overhead = if ratio.is_finite() {
            ratio.max(0.0)
        } else {
            1.0
        };
        self
    }

    /// The current loss estimate (outages left out), once there is one.
    pub fn loss(&self) -> Option<f64> {
        self.loss
    }

    /// The mean burst length estimate, in packets.
    pub fn burst(&self) -> f64 {
        self.burst
    }

    /// The loss model chosen from: the estimate as a Gilbert-Elliott chain
    /// (Bernoulli when bursts are single losses).
    pub fn model(&self) -> Option<Loss> {
        self.loss
            .map(|l| Loss::from_mean(l, self.effective_burst()))
    }

    /// The burst estimate, with runs barely over one taken as independent
    /// losses (a second's few runs cannot tell them apart).
    fn effective_burst(&self) -> f64 {
        if self.burst < 1.2 { 1.0 } else { self.burst }
    }

    /// What retransmission can do now (`None` or 0 rounds: nothing).
    pub fn set_arq(&mut self, arq: Option<ArqPath>) {
        self.arq = arq.filter(|a| self.retransmits && a.rounds > 0 && a.reach > 0.0);
    }

    /// What retransmission can do, as last told.
    pub fn arq_path(&self) -> Option<ArqPath> {
        self.arq
    }

    /// Retransmission recovers within the budget.
    pub fn arq_fits(&self) -> bool {
        self.arq.is_some()
    }

    /// `lost` of `total` packets were lost over a measurement window
    /// (independent losses assumed).
    pub fn observe(&mut self, lost: u64, total: u64) {
        self.observe_sample(LossSample {
            total,
            lost,
            runs: lost,
            ..LossSample::default()
        });
    }

    /// One report interval's loss pattern.
    pub fn observe_sample(&mut self, s: LossSample) {
        let total = s.total.saturating_sub(s.outage_lost);
        if total < MIN_SAMPLE {
            return;
        }
        let lost = s.lost.saturating_sub(s.outage_lost);
        let runs = s.runs.saturating_sub(s.outage_runs);
        let p = (lost as f64 / total as f64).min(1.0);
        if self.loss.is_none() {
            // The plan in force was a guess (PRIOR_LOSS): the first
            // measured one is chosen afresh, not kept for being close.
            self.current = None;
        }
        self.loss = Some(match self.loss {
            None => p,
            // FEC alone: at once up, slowly down (a low estimate costs
            // whole blocks).
            Some(e) if self.arq.is_none() => {
                if p < e {
                    0.8 * e + 0.2 * p
                } else {
                    p
                }
            }
            // With retransmission behind it, a second's wobble is smoothed
            // (retransmission covers a low estimate meanwhile): a jump is
            // followed half-way at once (a second of bursts is noisy, and
            // FEC bought for it comes too late to help it), a drop within
            // seconds.
            Some(e) if p > 2.0 * e => 0.5 * (e + p),
            Some(e) if p < e / 2.0 => 0.5 * e + 0.5 * p,
            Some(e) => 0.7 * e + 0.3 * p,
        });
        if runs > 0 {
            // Sources leave back to back within a block (repairs go at its
            // end), so consecutive sources are neighbours on the wire.
            let b = chain_burst(p, lost as f64 / runs as f64, 1.0);
            self.burst = 0.7 * self.burst + 0.3 * b;
        }
    }

    /// The configured ratio `m / k` applied to blocks of `k` sources.
    fn floor_for(&self, k: usize) -> u8 {
        let scaled = (self.floor as usize * k).div_ceil(self.k.max(1) as usize);
        scaled.clamp(1, self.floor as usize) as u8
    }

    /// Repair shards for blocks of `k` sources at interleaving `depth`.
    pub fn choose(&self, k: usize, depth: usize) -> u8 {
        self.choose_plan(k, depth).m
    }

    /// Repair shards for blocks of `k` sources at interleaving `depth`, and
    /// the copies of a last-chance retransmission: the plan with the least
    /// redundancy that meets the target, or with retransmission the best
    /// trade of redundancy against the target missed ([`MISS_COST`]).
    pub fn choose_plan(&self, k: usize, depth: usize) -> Choice {
        self.choose_capped(k, depth).0
    }

    /// [`choose_plan`](Self::choose_plan), and whether the overhead cap
    /// (`with_max_overhead`) held it below what the loss asked for.
    pub fn choose_capped(&self, k: usize, depth: usize) -> (Choice, bool) {
        let p = self.plan(k, depth, self.current);
        (p.choice, p.capped)
    }

    /// The depth in force, as [`pick_depth`](Self::pick_depth) last left it.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Automatic interleaving depth: the depth in `1..=ks.len()` (`ks[d -
    /// 1]`: the sources a block holds at depth `d`) whose best plan costs
    /// least, judged as plans are (redundancy among those that meet the
    /// target; FEC alone, any that meets it before any that does not, then
    /// the lower residual), and that plan. Hysteresis: another depth is
    /// taken only when it costs less than the one in force by
    /// [`KEEP_DEPTH`], at [`DEPTH_DWELL`] choices in a row; ties go to the
    /// shallower. Until the first measurement the depth stays.
    pub fn pick_depth(&mut self, ks: &[usize]) -> (usize, Choice, bool) {
        let dmax = ks.len().max(1);
        let cur = self.depth.clamp(1, dmax);
        let k_of = |d: usize| ks.get(d - 1).copied().unwrap_or(1).max(1);
        let plans: Vec<Planned> = (1..=dmax)
            .map(|d| self.plan(k_of(d), d, (d == cur).then_some(self.current).flatten()))
            .collect();
        let cost = |p: &Planned| self.depth_cost(p);
        let best = (1..=dmax)
            .min_by(|&a, &b| {
                cost(&plans[a - 1])
                    .total_cmp(&cost(&plans[b - 1]))
                    .then(a.cmp(&b))
            })
            .unwrap_or(cur);
        let better = self.loss.is_some()
            && best != cur
            && cost(&plans[best - 1]) * KEEP_DEPTH < cost(&plans[cur - 1]);
        if better {
            let n = match self.depth_pending {
                Some((d, n)) if d == best => n + 1,
                _ => 1,
            };
            self.depth_pending = Some((best, n));
            if n >= DEPTH_DWELL {
                self.depth = best;
                self.depth_pending = None;
            }
        } else {
            self.depth_pending = None;
        }
        let d = self.depth.clamp(1, dmax);
        if d != cur {
            // The plan in force was for another block size.
            let p = self.plan(k_of(d), d, None);
            return (d, p.choice, p.capped);
        }
        let p = &plans[cur - 1];
        (cur, p.choice, p.capped)
    }

    /// How a plan compares across depths (lower is better).
    fn depth_cost(&self, p: &Planned) -> f64 {
        let miss = p.residual > self.target;
        if self.arq.is_some() {
            p.redundancy + miss_cost(p.residual, self.target)
        } else if miss {
            // Meeting the target comes first, then the lower residual.
            10.0 + p.residual / self.target
        } else {
            p.redundancy
        }
    }

    /// The plan for blocks of `k` at `depth`, kept as `keep` while that
    /// still does.
    fn plan(&self, k: usize, depth: usize, keep: Option<Choice>) -> Planned {
        self.plan_with(k, depth, keep, true)
    }

    /// [`plan`](Self::plan); `prune`: with retransmission, stop at the `m`
    /// whose repairs alone (`m / k`) cost more than [`KEEP`] times the
    /// cheapest plan so far. No plan there can be chosen or kept, so the
    /// choice is the same as over every `m` (a test compares the two), at a
    /// fraction of the evaluations: each is an exact model of the block
    /// over up to eight rounds, and a retune (every report on a lossy
    /// path) evaluated every `m` to the cap three times over: 1.7-2.2 ms
    /// against 0.06-0.17 ms pruned (`cargo bench --bench adapt`).
    fn plan_with(&self, k: usize, depth: usize, keep: Option<Choice>, prune: bool) -> Planned {
        let k = k.max(1);
        let fec_floor = if self.cap == 0 { 0 } else { self.floor_for(k) };
        // The most repairs the overhead cap allows, never below the floor.
        let limit = ((k as f64 * self.max_overhead).ceil() as u64)
            .min(self.cap as u64)
            .max(fec_floor as u64) as u8;
        let one = |m: u8, residual: f64| Planned {
            choice: Choice {
                m: m.min(limit),
                copies: 1,
            },
            capped: m > limit,
            residual,
            redundancy: m.min(limit) as f64 / k as f64,
        };
        let loss = match (self.loss, self.arq) {
            (Some(l), _) => l,
            // Round trips to spare and no loss measured yet: plan for a
            // typical lossy path rather than pay the configured code's
            // ratio until the first loss sample (25 % for a second or two
            // of every session). With one round only, whether it fits
            // depends on the delay spread: planning for 5 % there cost the
            // demo's 20 +- 10 ms link 2-9 packets a run, so it takes a
            // round that fits the whole spread (the first report's jitter
            // says), else the floor.
            (None, Some(a)) if a.rounds >= 2 || a.reach >= 1.0 => PRIOR_LOSS,
            (None, Some(_)) => return one(fec_floor, 0.0),
            (None, None) => return one((fec_floor as u16 * 2).min(self.cap as u16) as u8, 0.0),
        };
        let (floor, arq) = match self.arq {
            Some(a) => (0, a),
            None => (
                fec_floor,
                ArqPath {
                    rounds: 0,
                    waited_rounds: 0.0,
                    rtt_packets: 1,
                    copy_gap: 1,
                    eager: 0.0,
                    reach: 0.0,
                },
            ),
        };
        let p = (loss * self.safety).min(0.5);
        if p == 0.0 {
            return one(floor, 0.0);
        }
        let chain = Loss::from_mean(p, self.effective_burst());
        let path = Path {
            loss: chain,
            back: chain,
            rounds: arq.rounds,
            waited_rounds: arq.waited_rounds,
            rtt_packets: arq.rtt_packets,
            echo_packets: 2,
            copy_gap: arq.copy_gap,
            eager: arq.eager,
            reach: arq.reach,
        };
        let copies: &[u8] = if arq.rounds > 0 { &[1, 2, 3] } else { &[1] };
        // Plans from the floor up, pruned as `prune` says: (choice,
        // residual, redundancy).
        let mut plans = Vec::with_capacity((limit - floor + 1) as usize * copies.len());
        let cost = |res: f64, red: f64| red + miss_cost(res, self.target);
        let mut least = f64::INFINITY;
        for m in floor..=limit {
            if prune && arq.rounds > 0 && m as f64 / k as f64 > KEEP * least {
                break;
            }
            for &c in copies {
                let plan = Plan {
                    k,
                    m: m as usize,
                    depth,
                    ask: Ask::Missing,
                    copies: c,
                };
                let o = model::evaluate(&path, &plan);
                #[cfg(test)]
                tests::EVALUATED.with(|n| n.set(n.get() + 1));
                plans.push((Choice { m, copies: c }, o.residual, o.redundancy()));
                least = least.min(cost(o.residual, o.redundancy()));
            }
            // Without retransmission more m only costs once the target is met.
            if arq.rounds == 0 && plans.last().is_some_and(|p| p.1 <= self.target) {
                break;
            }
        }
        let planned = |p: &(Choice, f64, f64), capped| Planned {
            choice: p.0,
            capped,
            residual: p.1,
            redundancy: p.2,
        };
        if arq.rounds == 0 {
            // FEC alone: the smallest code that meets the target, else the
            // strongest, as it always did.
            return match plans.iter().find(|p| p.1 <= self.target) {
                Some(p) => planned(p, false),
                None => {
                    let strongest = plans.last().expect("at least the floor");
                    Planned {
                        capped: self.cap > limit,
                        ..planned(strongest, false)
                    }
                }
            };
        }
        let best = plans
            .iter()
            .min_by(|a, b| {
                cost(a.1, a.2)
                    .total_cmp(&cost(b.1, b.2))
                    .then(a.0.m.cmp(&b.0.m))
            })
            .expect("at least the floor");
        // Held by the cap: the best plan allowed is the strongest allowed and
        // still misses the target.
        let capped = limit < self.cap && best.0.m == limit && best.1 > self.target;
        let kept = keep.and_then(|c| plans.iter().find(|p| p.0 == c));
        match kept {
            Some(k) if cost(k.1, k.2) <= cost(best.1, best.2) * KEEP => planned(k, capped),
            _ => planned(best, capped),
        }
    }
}

/// A plan and what it achieves in the model.
#[derive(Debug, Clone, Copy)]
struct Planned {
    choice: Choice,
    capped: bool,
    residual: f64,
    redundancy: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::bound::mds_residual;

    thread_local! {
        /// Plans evaluated by this thread's adapters (see `plan_with`).
        pub(super) static EVALUATED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// Missing the target costs in proportion up to ten times it and in
    /// the logarithm beyond, without a jump where the two meet: far from
    /// the target, halving the residual is worth the same wherever it
    /// starts.
    #[test]
    fn missing_far_off_costs_in_the_logarithm() {
        let t = 1e-4;
        assert_eq!(miss_cost(t, t), 0.0);
        assert!((miss_cost(5.0 * t, t) - 5.0 * MISS_COST).abs() < 1e-12);
        let at = miss_cost(MISS_LINEAR * t, t);
        assert!((miss_cost(MISS_LINEAR * t * (1.0 + 1e-9), t) - at).abs() < 1e-9);
        let halving = |x: f64| miss_cost(2.0 * x * t, t) - miss_cost(x * t, t);
        assert!((halving(20.0) - halving(200.0)).abs() < 1e-12);
        assert!(halving(20.0) < 0.5 * (2.0 * 20.0 - 20.0) * MISS_COST);
        let mut last = 0.0;
        for i in 1..200 {
            let c = miss_cost(t * 1.1f64.powi(i), t);
            assert!(c >= last);
            last = c;
        }
    }

    /// A fan-out publisher's wider margin buys more repairs for the same
    /// measured loss.
    #[test]
    fn a_wider_margin_plans_more_repairs() {
        let plan = |margin: Option<f64>| {
            let mut a = FecAdapter::new(1e-4, 16, 4, false);
            if let Some(m) = margin {
                a.set_safety(m);
            }
            a.observe(80, 1000);
            a.choose(16, 1)
        };
        assert!(plan(Some(AUDIENCE_SAFETY)) > plan(None));
        assert_eq!(
            plan(Some(f64::NAN)),
            plan(None),
            "nonsense keeps the default"
        );
    }

    /// Cumulative counters from a peer: huge ones saturate, ones that went
    /// back count as nothing, and neither panics nor wraps to a small loss.
    #[test]
    fn a_sample_between_hostile_reports_saturates() {
        use crate::wire::control::Report;
        let zero = Report::default();
        let huge = Report {
            received: u64::MAX,
            lost: u64::MAX,
            loss_runs: u64::MAX,
            ..Report::default()
        };
        let s = LossSample::between(&zero, &huge);
        assert_eq!((s.total, s.lost, s.runs), (u64::MAX, u64::MAX, u64::MAX));
        assert_eq!(LossSample::between(&huge, &zero), LossSample::default());
        let mut a = FecAdapter::new(1e-4, 16, 4, false);
        a.observe_sample(s);
        assert!(a.loss().is_some_and(|l| l <= 1.0));
    }

    #[test]
    fn protects_more_as_loss_rises_and_never_below_the_floor() {
        let mut a = FecAdapter::new(1e-5, 16, 4, false);
        assert_eq!(a.choose(16, 1), 8, "strong until measured");
        a.observe(0, 1000);
        assert_eq!(a.choose(16, 1), 4, "clean link: the configured floor");
        assert_eq!(a.choose(8, 1), 2, "half-filled blocks keep the ratio");
        assert_eq!(a.choose(2, 1), 1, "and at least one repair");
        a.observe(60, 1000); // 6 %
        let m6 = a.choose(9, 1);
        assert!(m6 > 4, "{m6}");
        // Sized for the measured rate with the margin on top.
        let planned = 0.06 * SAFETY;
        assert!(mds_residual(Loss::Bernoulli { p: planned }, 9, m6 as usize, 1) <= 1e-5);
        assert!(mds_residual(Loss::Bernoulli { p: planned }, 9, m6 as usize - 1, 1) > 1e-5);
        a.observe(200, 1000); // 20 %: rises at once
        assert!(a.choose(9, 1) > m6);
        a.observe(0, 1000); // falls slowly
        assert!(a.loss().unwrap() > 0.1);
        a.observe(5, 10);
        assert!(a.loss().unwrap() > 0.1, "tiny samples are ignored");
    }

    /// A receiver reporting total loss gets at most the overhead cap.
    #[test]
    fn total_loss_reported_is_capped_at_the_overhead_limit() {
        let mut a = FecAdapter::new(1e-4, 16, 4, false);
        a.observe(1000, 1000);
        // Blocks the time budget closes at ~5.5 sources: 100 % at most.
        let (c, capped) = a.choose_capped(6, 1);
        assert_eq!((c.m, capped), (6, true));
        let half = FecAdapter::new(1e-4, 16, 4, false).with_max_overhead(0.5);
        assert_eq!(
            half.choose(16, 1),
            8,
            "before any report: twice the floor, within 50 %"
        );
        let floor = FecAdapter::new(1e-4, 16, 4, false).with_max_overhead(0.0);
        assert_eq!(floor.choose(16, 1), 4, "never below the configured floor");
    }

    #[test]
    fn the_cap_bounds_m() {
        let mut a = FecAdapter::new(1e-12, 4, 2, false);
        a.observe(400, 1000);
        assert_eq!(a.choose(4, 1), 4, "m <= k");
    }

    #[test]
    fn an_outage_is_not_random_loss() {
        let mut a = FecAdapter::new(1e-4, 16, 4, false);
        a.observe(0, 1000);
        // 200 packets lost in one run longer than the latency, none else.
        a.observe_sample(LossSample {
            total: 400,
            lost: 200,
            runs: 1,
            outage_lost: 200,
            outage_runs: 1,
        });
        assert_eq!(a.loss(), Some(0.0), "the outage is left out");
        assert!(a.burst() < 1.2, "no burst either: {}", a.burst());
        assert_eq!(a.choose(8, 1), 2, "the floor: the outage left no trace");
    }

    #[test]
    fn bursts_are_measured_on_the_wire() {
        // Independent loss stays independent however many repairs ride
        // between the sources.
        assert!((chain_burst(0.05, 1.0 / 0.95, 3.0) - 1.0 / 0.95).abs() < 1e-9);
        // Runs of 10 sources with one packet each: bursts of 10.
        assert!((chain_burst(0.05, 10.0, 1.0) - 10.0).abs() < 0.5);
        // Sources two steps apart: the same runs mean longer bursts.
        assert!(chain_burst(0.05, 10.0, 2.0) > 15.0);
    }

    #[test]
    fn bursts_are_measured() {
        let mut a = FecAdapter::new(1e-4, 16, 4, false);
        for _ in 0..20 {
            a.observe_sample(LossSample {
                total: 1000,
                lost: 50,
                runs: 5,
                ..Default::default()
            });
        }
        assert!((a.burst() - 10.0).abs() < 0.05, "{}", a.burst());
        assert!(matches!(a.model(), Some(Loss::GilbertElliott { .. })));
    }

    #[test]
    fn retransmission_lets_fec_shrink() {
        let arq = ArqPath {
            rounds: 1,
            waited_rounds: 1.0,
            rtt_packets: 10,
            copy_gap: 3,
            eager: 0.0,
            reach: 1.0,
        };
        let mut fec = FecAdapter::new(1e-4, 16, 4, false);
        let mut hybrid = FecAdapter::new(1e-4, 16, 4, true);
        hybrid.set_arq(Some(arq));
        for a in [&mut fec, &mut hybrid] {
            a.observe(50, 1000);
        }
        let (f, h) = (fec.choose(8, 1), hybrid.choose(8, 1));
        assert!(h < f, "hybrid {h} vs FEC alone {f}");
        // Clean: no FEC at all with retransmission, the floor without.
        for a in [&mut fec, &mut hybrid] {
            for _ in 0..20 {
                a.observe(0, 1000);
            }
        }
        assert_eq!((fec.choose(8, 1), hybrid.choose(8, 1)), (2, 0));
        // Retransmission alone: never any FEC.
        let mut arq_only = FecAdapter::new(1e-4, 16, 0, true);
        arq_only.set_arq(Some(arq));
        arq_only.observe(50, 1000);
        let c = arq_only.choose_plan(8, 1);
        assert_eq!(c.m, 0);
        assert!(c.copies >= 2, "{c:?}");
        // A round trip that does not fit: FEC alone, as before.
        hybrid.set_arq(Some(ArqPath { rounds: 0, ..arq }));
        assert!(!hybrid.arq_fits());
        assert_eq!(hybrid.choose(8, 1), 2);
    }

    #[test]
    fn before_any_loss_one_round_that_fits_the_spread_plans_for_typical_loss() {
        let fits = ArqPath {
            rounds: 1,
            waited_rounds: 1.0,
            rtt_packets: 12,
            copy_gap: 5,
            eager: 0.5,
            reach: 1.0,
        };
        let mut a = FecAdapter::new(1e-4, 16, 4, true);
        assert_eq!(a.choose(8, 1), 4, "nothing known: twice the floor");
        a.set_arq(Some(fits));
        let c = a.choose_plan(8, 1);
        assert!(c.m < 2, "5 % random loss is left to the round trip: {c:?}");
        assert!(c.copies >= 2, "and its copies: {c:?}");
        // A round that fits only part of the spread: the floor until the
        // loss is measured.
        a.set_arq(Some(ArqPath { reach: 0.9, ..fits }));
        assert_eq!(a.choose_plan(8, 1), Choice { m: 2, copies: 1 });
        a.set_arq(Some(ArqPath {
            rounds: 2,
            waited_rounds: 2.0,
            ..fits
        }));
        assert!(a.choose(8, 1) < 2);
    }

    /// Blocks a group of 24 sources makes at each depth up to 8, at most 16.
    fn ks() -> Vec<usize> {
        (1..=8).map(|d: usize| (24 / d).clamp(1, 16)).collect()
    }

    #[test]
    fn bursts_raise_the_depth_after_a_second_look_random_loss_does_not() {
        let arq = ArqPath {
            rounds: 2,
            waited_rounds: 2.0,
            rtt_packets: 10,
            copy_gap: 3,
            eager: 0.0,
            reach: 1.0,
        };
        let bursts = LossSample {
            total: 1000,
            lost: 50,
            runs: 5,
            ..Default::default()
        };
        let mut a = FecAdapter::new(1e-4, 16, 4, false);
        assert_eq!(a.pick_depth(&ks()).0, 1, "nothing measured: stays");
        for _ in 0..10 {
            a.observe_sample(bursts);
        }
        assert_eq!(a.pick_depth(&ks()).0, 1, "one look is not enough");
        let (d, c, _) = a.pick_depth(&ks());
        assert!(d > 1, "bursts of 10, FEC alone: {d}");
        // Stable while the loss is: no flapping.
        for _ in 0..5 {
            a.settle(c);
            assert_eq!(a.pick_depth(&ks()).0, d);
        }
        // Two round trips in the budget recover the bursts for less than
        // any depth's FEC: depth 1.
        let mut h = FecAdapter::new(1e-4, 16, 4, true);
        h.set_arq(Some(arq));
        for _ in 0..10 {
            h.observe_sample(bursts);
            assert_eq!(h.pick_depth(&ks()).0, 1, "hybrid, rounds to spare");
        }
        for retransmits in [false, true] {
            let mut b = FecAdapter::new(1e-4, 16, 4, retransmits);
            b.set_arq(Some(arq));
            for _ in 0..10 {
                b.observe(50, 1000);
                assert_eq!(b.pick_depth(&ks()).0, 1, "random loss: depth 1");
            }
        }
    }

    /// Pruning the plans whose repairs alone cost too much changes no
    /// choice: over losses, bursts, round trips, block sizes, targets and
    /// plans in force, the plan is the one over every `m`, for a fraction
    /// of the evaluations.
    #[test]
    fn pruned_plans_choose_what_every_plan_does() {
        let mut checked = 0;
        let (mut pruned_n, mut every_n) = (0, 0);
        let evaluations = |f: &dyn Fn() -> Planned| {
            EVALUATED.with(|n| n.set(0));
            let p = f();
            (p, EVALUATED.with(|n| n.get()))
        };
        for target in [1e-4, 1e-3] {
            for (loss, runs) in [(10, 10), (20, 7), (50, 50), (50, 5), (100, 20), (200, 40)] {
                for rounds in [1, 2, 4, 8] {
                    for (eager, waited) in [(0.0, rounds as f64), (0.6, 1.0)] {
                        let mut a = FecAdapter::new(target, 16, 4, true);
                        a.set_arq(Some(ArqPath {
                            rounds,
                            waited_rounds: waited,
                            rtt_packets: 9,
                            copy_gap: 3,
                            eager,
                            reach: 1.0,
                        }));
                        a.observe_sample(LossSample {
                            total: 1000,
                            lost: loss,
                            runs,
                            ..Default::default()
                        });
                        for k in [4, 8, 16] {
                            let keeps = [
                                None,
                                Some(Choice { m: 0, copies: 1 }),
                                Some(Choice { m: 2, copies: 2 }),
                                Some(Choice { m: 4, copies: 1 }),
                            ];
                            for keep in keeps {
                                let (pruned, n) = evaluations(&|| a.plan_with(k, 1, keep, true));
                                let (every, all) = evaluations(&|| a.plan_with(k, 1, keep, false));
                                assert!(n <= all);
                                (pruned_n, every_n) = (pruned_n + n, every_n + all);
                                assert_eq!(
                                    (pruned.choice, pruned.capped),
                                    (every.choice, every.capped),
                                    "loss {loss} runs {runs} rounds {rounds} k {k} keep {keep:?}"
                                );
                                assert_eq!(pruned.residual.to_bits(), every.residual.to_bits());
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 2 * 6 * 4 * 2 * 3 * 4);
        assert!(
            3 * pruned_n < every_n,
            "{pruned_n} plans evaluated pruned, {every_n} over every m"
        );
    }
}
