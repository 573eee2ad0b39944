//! The exact residual loss and redundancy of FEC plus retransmission,
//! under a loss model: what adaptive FEC chooses from, and the minimum the
//! bench compares what was sent with.
//!
//! The model: blocks of `k` sources and `m` repairs (an ideal MDS code, the
//! packets `depth` apart on the wire) see the forward chain; a block FEC
//! cannot rebuild (more than `m` of its packets lost) asks for its missing
//! sources, in up to `rounds` round trips. When the round trip leaves no
//! time to wait for FEC's verdict, a share of the losses (`eager`) is asked
//! for at once, whatever FEC will manage: those retransmissions cost bytes
//! FEC might have saved, and in return cover what FEC misses. One round: a
//! NACK (sent three times) crosses the reverse chain; if it gets through,
//! the sender sends the
//! packets asked for back to back, `rtt_packets` packets after the loss is
//! noticed, so under bursty loss a retransmission is lost more often than
//! the mean (the chain may still be in its bad state), and the packets of
//! one batch are lost together. A loss left to FEC first is asked for a
//! block later, on a calmer chain, and with the rounds its wait for the
//! verdict leaves (`waited_rounds`). In the last round that fits, each
//! retransmission may go up to three times, `copy_gap` packets apart (the
//! chances the round trips do not leave). Every retransmission that arrives
//! counts towards the block: once at most `m` are missing, FEC rebuilds the
//! rest. The expectations are computed exactly over the block's loss
//! distribution ([`block_losses`]); only the start of each batch is
//! approximated, as the chain that many packets after a loss (averaged
//! over the block's sources when FEC decides first).

use std::time::Duration;

use crate::sim::bound::{block_losses, transition};
use crate::sim::impair::Loss;

/// The path as retransmission sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Path {
    /// Loss of the media direction, per packet.
    pub loss: Loss,
    /// Loss of the NACK direction, per packet.
    pub back: Loss,
    /// Retransmission round trips that fit in the budget (0: FEC alone).
    pub rounds: u32,
    /// Round trips left, on average, to a loss left to FEC first (its wait
    /// for the verdict spends some of the budget; see [`waited_rounds`]);
    /// at most `rounds`.
    pub waited_rounds: f64,
    /// Packets sent on the media direction between a packet and its
    /// retransmission (the round trip and the wait to notice the loss).
    pub rtt_packets: usize,
    /// Packets on the NACK direction between a NACK and its echoes.
    pub echo_packets: usize,
    /// Packets on the media direction between copies of a retransmission.
    pub copy_gap: usize,
    /// Share of the lost sources asked for before FEC has decided (0: FEC
    /// decides first, 1: no time to wait for it); see [`eager_share`].
    pub eager: f64,
    /// Share of losses the first round reaches in time at all (the delay
    /// spread makes a round trip that just fits fit only some of the time;
    /// see [`round_share`]).
    pub reach: f64,
}

/// Which missing sources a failed block asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// Every missing source (what the planner does: each retransmission
    /// that arrives is a source recovered, whatever FEC manages).
    Missing,
    /// Only as many as FEC needs to rebuild the rest (the fewest bytes).
    Deficit,
}

/// A protection plan: the FEC code and what retransmission asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Sources a block holds.
    pub k: usize,
    /// Repairs a block carries (0: retransmission only).
    pub m: usize,
    /// Packet interleaving depth.
    pub depth: usize,
    /// What a failed block asks for.
    pub ask: Ask,
    /// Copies of each retransmission in the last round (1 to 3).
    pub copies: u8,
}

/// What a plan achieves on a path.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Outcome {
    /// Sources neither received, rebuilt nor retransmitted in time, over
    /// sources sent.
    pub residual: f64,
    /// Repair packets over source packets (`m / k`).
    pub repairs: f64,
    /// Retransmitted packets over source packets.
    pub retransmissions: f64,
}

impl Outcome {
    /// All the redundancy: repairs plus retransmissions, over sources.
    pub fn redundancy(&self) -> f64 {
        self.repairs + self.retransmissions
    }
}

/// NACK copies the planner sends ([`crate::arq::planner::ECHOES`] + 1).
const NACK_COPIES: i32 = crate::arq::planner::ECHOES as i32 + 1;

/// Share of lost packets whose last call for a NACK (a round trip and the
/// spread before the deadline) comes before their FEC group is decided
/// (its span after it opened, plus the spread): a packet `x` into a group
/// of `span` waits for FEC while `x > span + 2 spread + rtt - latency`.
pub fn eager_share(span: Duration, latency: Duration, rtt: Duration, spread: Duration) -> f64 {
    if span.is_zero() {
        return 1.0;
    }
    let early = (span + spread * 2 + rtt).as_secs_f64() - latency.as_secs_f64();
    (early / span.as_secs_f64()).clamp(0.0, 1.0)
}

/// Share of losses one round of retransmission reaches in time: noticing a
/// loss waits about the delay spread, and a real round trip is the smoothed
/// one (which leans to the fast packets) plus up to twice the spread, so
/// the round always fits when the latency covers the round trip and three
/// spreads, never when it covers less than the round trip and one, and in
/// between for a share in proportion.
pub fn round_share(latency: Duration, rtt: Duration, spread: Duration) -> f64 {
    let s = spread.max(Duration::from_millis(1)).as_secs_f64();
    let room = latency.as_secs_f64() - rtt.as_secs_f64() - s;
    (room / (2.0 * s)).clamp(0.0, 1.0)
}

/// Round trips left, on average, to a loss FEC decides first: a source `x`
/// into its group of `span` waits `span - x` and the spread for the
/// verdict, and then has the rounds that fit in what is left, one at least
/// while one fits at all (the planner's last call asks before the verdict
/// rather than lose the round; those sources are mostly [`eager_share`]'s).
pub fn waited_rounds(span: Duration, latency: Duration, rtt: Duration, spread: Duration) -> f64 {
    const POINTS: u32 = 16;
    if rounds_that_fit(latency, rtt, spread) == 0 {
        return 0.0;
    }
    let sum: u32 = (0..POINTS)
        .map(|i| {
            let left = span.mul_f64((i as f64 + 0.5) / POINTS as f64) + spread;
            rounds_that_fit(latency.saturating_sub(left), rtt, spread).max(1)
        })
        .sum();
    sum as f64 / POINTS as f64
}

/// Round trips of retransmission modelled at most.
pub const MAX_ROUNDS: u32 = 8;

/// Round trips of retransmission that fit in `latency`: noticing a loss
/// costs about the path's delay spread, and each round a round trip plus
/// that spread (at most [`MAX_ROUNDS`] are modelled).
pub fn rounds_that_fit(latency: Duration, rtt: Duration, spread: Duration) -> u32 {
    let budget = latency.saturating_sub(spread);
    let round = rtt + spread + Duration::from_millis(1);
    ((budget.as_micros() / round.as_micros().max(1)) as u32).min(MAX_ROUNDS)
}

/// `p[d][j]`: probability that `j` of `d` packets sent back to back get
/// through, the chain starting in state distribution `start`.
fn batch_table(loss: Loss, start: [f64; 2], max: usize) -> Vec<Vec<f64>> {
    let step = transition(loss, 1);
    let mut table = vec![vec![1.0]];
    // dist[state][received] after d packets.
    let mut dist = [vec![start[0]], vec![start[1]]];
    for d in 1..=max {
        let mut next = [vec![0.0; d + 1], vec![0.0; d + 1]];
        for s in 0..2 {
            for (j, &pr) in dist[s].iter().enumerate() {
                if pr == 0.0 {
                    continue;
                }
                // This packet is lost iff the chain is bad; then it moves.
                let got = j + (s == 0) as usize;
                next[0][got] += pr * step[s][0];
                next[1][got] += pr * step[s][1];
            }
        }
        // The state before a packet decides it; fold back to a
        // distribution over received counts.
        table.push((0..=d).map(|j| next[0][j] + next[1][j]).collect());
        dist = next;
    }
    // `dist` is the state after the packet; the first packet must see
    // `start` itself, which the fold above does (states are moved after).
    table
}

/// Like [`batch_table`], each lost packet getting a second copy that is
/// lost too with probability `again` (the chain `copy_gap` on from bad).
fn copies_table(single: &[Vec<f64>], again: f64) -> Vec<Vec<f64>> {
    single
        .iter()
        .enumerate()
        .map(|(d, row)| {
            let mut out = vec![0.0; d + 1];
            for (got, &pr) in row.iter().enumerate() {
                let lost = d - got;
                // Of the `lost`, `l2` lose their second copy as well.
                let mut c = 1.0; // binomial coefficient
                for l2 in 0..=lost {
                    let b = c * again.powi(l2 as i32) * (1.0 - again).powi((lost - l2) as i32);
                    out[d - l2] += pr * b;
                    c = c * (lost - l2) as f64 / (l2 + 1) as f64;
                }
            }
            out
        })
        .collect()
}

/// Retransmission outcomes for a batch ([`batch_table`]) and for the last
/// round's, with its copies ([`copies_table`]).
struct Tables {
    batch: Vec<Vec<f64>>,
    last: Vec<Vec<f64>>,
}

struct Solver<'a> {
    plan: Plan,
    rounds: u32,
    nack_lost: f64,
    /// The first round's batch.
    first: &'a Tables,
    /// A later round's: its chain was bad at the retransmission before.
    later: &'a Tables,
    /// The first round asks for every missing source, FEC undecided.
    eager: bool,
    memo: Vec<Option<(f64, f64)>>,
}

impl Solver<'_> {
    fn key(&self, lost: usize, src: usize, r: u32) -> usize {
        ((lost * (self.plan.k + 1)) + src) * (self.rounds as usize + 1) + r as usize
    }

    /// (expected sources left missing, expected retransmissions) for a
    /// block with `lost` packets lost, `src` of them sources, `r` rounds.
    fn solve(&mut self, lost: usize, src: usize, r: u32) -> (f64, f64) {
        let eager = self.eager && r == self.rounds;
        if src == 0 || (lost <= self.plan.m && !eager) {
            return (0.0, 0.0);
        }
        if r == 0 {
            let miss = if lost <= self.plan.m { 0.0 } else { src as f64 };
            return (miss, 0.0);
        }
        let key = self.key(lost, src, r);
        if let Some(v) = self.memo[key] {
            return v;
        }
        let ask = match self.plan.ask {
            _ if eager => src,
            Ask::Missing => src,
            Ask::Deficit => src.min(lost - self.plan.m),
        };
        let g = self.nack_lost;
        let (miss, sent) = self.solve(lost, src, r - 1);
        let t = if r == self.rounds {
            self.first
        } else {
            self.later
        };
        let (table, copies) = if r == 1 {
            (&t.last, self.plan.copies.max(1))
        } else {
            (&t.batch, 1)
        };
        let mut res = g * miss;
        let mut tx = g * sent + (1.0 - g) * (ask * copies as usize) as f64;
        for (j, &pj) in table[ask].iter().enumerate().take(ask + 1) {
            if pj == 0.0 {
                continue;
            }
            let (miss, sent) = self.solve(lost - j, src - j, r - 1);
            res += (1.0 - g) * pj * miss;
            tx += (1.0 - g) * pj * sent;
        }
        self.memo[key] = Some((res, tx));
        (res, tx)
    }
}

/// What `plan` achieves on `path`, exactly within the model (the eager
/// share mixes the outcomes of asking at once and of waiting for FEC).
pub fn evaluate(path: &Path, plan: &Plan) -> Outcome {
    let (k, m) = (plan.k.max(1), plan.m);
    let plan = Plan { k, ..*plan };
    let d = block_losses(path.loss, k, m, plan.depth);
    // A retransmission batch leaves `rtt_packets` after its loss was
    // noticed, the chain bad at the loss. Asked for at once, the loss is
    // noticed once the next packet's slot has passed; left to FEC first, it
    // waits for its block to close and a repair to come, `(k - i) depth + 1`
    // packets for source `i` of the block (averaged over the sources), so
    // the chain has had that much longer to recover.
    let after = |wait: usize| transition(path.loss, path.rtt_packets.max(1) + wait)[1];
    let at_once = after(1);
    let after_fec = if m == 0 {
        at_once
    } else {
        let depth = plan.depth.max(1);
        let mut start = [0.0; 2];
        for i in 0..k {
            let s = after((k - i) * depth + 1);
            start = [start[0] + s[0] / k as f64, start[1] + s[1] / k as f64];
        }
        start
    };
    let again = transition(path.loss, path.copy_gap.max(1))[1][1];
    let tables = |start: [f64; 2]| {
        let batch = batch_table(path.loss, start, k);
        let last = if plan.copies > 1 {
            copies_table(&batch, again.powi(plan.copies as i32 - 1))
        } else {
            batch.clone()
        };
        Tables { batch, last }
    };
    let (after_fec, at_once) = (tables(after_fec), tables(at_once));
    // Every copy of the NACK lost.
    let back = transition(path.back, path.echo_packets.max(1))[1][1];
    let nack_lost = path.back.mean() * back.powi(NACK_COPIES - 1);
    let eager = if m == 0 {
        0.0
    } else {
        path.eager.clamp(0.0, 1.0)
    };
    // A loss the spread delays too much is not reached in time.
    let too_late = 1.0 - path.reach.clamp(0.0, 1.0);
    let mut out = Outcome {
        repairs: m as f64 / k as f64,
        ..Outcome::default()
    };
    // The waited rounds, between two whole numbers of them (without FEC
    // nothing waits).
    let waited = if m == 0 {
        path.rounds as f64
    } else {
        path.waited_rounds.clamp(0.0, path.rounds as f64)
    };
    let (fewer, more) = (waited.floor() as u32, waited.ceil() as u32);
    let to_more = waited - fewer as f64;
    let reached = 1.0 - too_late;
    let cases = [
        (reached * (1.0 - eager) * (1.0 - to_more), false, fewer),
        (reached * (1.0 - eager) * to_more, false, more),
        (reached * eager, true, path.rounds),
        (too_late, false, 0),
    ];
    for (share, is_eager, rounds) in cases {
        if share == 0.0 {
            continue;
        }
        let mut s = Solver {
            plan,
            rounds,
            nack_lost,
            first: if is_eager { &at_once } else { &after_fec },
            later: &at_once,
            eager: is_eager,
            memo: vec![None; (k + m + 1) * (k + 1) * (rounds as usize + 1)],
        };
        let first = if is_eager { 1 } else { m + 1 };
        let (mut residual, mut retx) = (0.0, 0.0);
        for lost in first..=k + m {
            for src in 1..=lost.min(k) {
                let pr = d[lost * (k + 1) + src];
                if pr < 1e-18 {
                    continue;
                }
                let (miss, sent) = s.solve(lost, src, rounds);
                residual += pr * miss;
                retx += pr * sent;
            }
        }
        out.residual += share * residual / k as f64;
        out.retransmissions += share * retx / k as f64;
    }
    out
}

/// The plan with the least redundancy whose residual is at most `target`,
/// over every `m` up to `max_m`, both ways of asking and one or two copies,
/// for blocks of `k` sources at `depth`; `None` if no plan reaches it.
pub fn minimum(
    path: &Path,
    k: usize,
    depth: usize,
    max_m: usize,
    target: f64,
) -> Option<(Plan, Outcome)> {
    let mut best: Option<(Plan, Outcome)> = None;
    for m in 0..=max_m {
        for (ask, copies) in [Ask::Missing, Ask::Deficit]
            .into_iter()
            .flat_map(|a| (1..=3u8).map(move |c| (a, c)))
        {
            if copies > 1 && path.rounds == 0 {
                continue;
            }
            let plan = Plan {
                k,
                m,
                depth,
                ask,
                copies,
            };
            let o = evaluate(path, &plan);
            if o.residual <= target && best.is_none_or(|(_, b)| o.redundancy() < b.redundancy()) {
                best = Some((plan, o));
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::bound::mds_residual;

    fn path(loss: Loss, rounds: u32) -> Path {
        Path {
            loss,
            back: loss,
            rounds,
            waited_rounds: rounds as f64,
            rtt_packets: 10,
            echo_packets: 2,
            copy_gap: 3,
            eager: 0.0,
            reach: 1.0,
        }
    }

    fn plan(k: usize, m: usize, ask: Ask, copies: u8) -> Plan {
        Plan {
            k,
            m,
            depth: 1,
            ask,
            copies,
        }
    }

    #[test]
    fn without_retransmission_it_is_the_mds_bound() {
        for loss in [Loss::from_mean(0.05, 1.0), Loss::from_mean(0.05, 3.0)] {
            let o = evaluate(&path(loss, 0), &plan(16, 4, Ask::Missing, 1));
            let b = mds_residual(loss, 16, 4, 1);
            assert!((o.residual / b - 1.0).abs() < 1e-9, "{o:?} vs {b}");
            assert_eq!((o.repairs, o.retransmissions), (0.25, 0.0));
        }
    }

    #[test]
    fn retransmission_alone_on_random_loss() {
        // Each lost packet is asked for once; the NACK (with its echo) and
        // the retransmission each cross a 5 % link.
        let p = 0.05;
        let bern = Loss::Bernoulli { p };
        let o = evaluate(&path(bern, 1), &plan(8, 0, Ask::Missing, 1));
        let nack = p * p * p;
        let fail = nack + (1.0 - nack) * p;
        assert!((o.residual - p * fail).abs() < 1e-12, "{o:?}");
        assert!(
            (o.retransmissions - p * (1.0 - nack)).abs() < 1e-12,
            "{o:?}"
        );
        let two = evaluate(&path(bern, 2), &plan(8, 0, Ask::Missing, 1));
        assert!((two.residual - p * fail * fail).abs() < 1e-12, "{two:?}");
        // Two copies in the last round: both must be lost.
        let twice = evaluate(&path(bern, 1), &plan(8, 0, Ask::Missing, 2));
        let fail2 = nack + (1.0 - nack) * p * p;
        assert!((twice.residual - p * fail2).abs() < 1e-12, "{twice:?}");
        assert!((twice.retransmissions - 2.0 * p * (1.0 - nack)).abs() < 1e-12);
        let thrice = evaluate(&path(bern, 1), &plan(8, 0, Ask::Missing, 3));
        assert!((thrice.residual - p * (nack + (1.0 - nack) * p.powi(3))).abs() < 1e-12);
    }

    #[test]
    fn asking_before_fec_decides_costs_bytes() {
        let bern = Loss::Bernoulli { p: 0.05 };
        let pl = plan(8, 1, Ask::Missing, 1);
        let wait = evaluate(&path(bern, 1), &pl);
        let eager = evaluate(
            &Path {
                eager: 1.0,
                ..path(bern, 1)
            },
            &pl,
        );
        assert!(
            eager.retransmissions > 0.04,
            "every loss asked for: {eager:?}"
        );
        assert!(wait.retransmissions < 0.03, "{wait:?}");
        // The same single round, only sooner: the same residual.
        assert!((eager.residual - wait.residual).abs() < 1e-15);
        let half = evaluate(
            &Path {
                eager: 0.5,
                ..path(bern, 1)
            },
            &pl,
        );
        let mid = (wait.retransmissions + eager.retransmissions) / 2.0;
        assert!((half.retransmissions - mid).abs() < 1e-15);
        let ms = Duration::from_millis;
        assert_eq!(eager_share(ms(35), ms(80), ms(40), ms(0)), 0.0);
        assert!((eager_share(ms(35), ms(80), ms(45), ms(10)) - 20.0 / 35.0).abs() < 1e-9);
        assert_eq!(eager_share(ms(35), ms(80), ms(100), ms(0)), 1.0);
    }

    #[test]
    fn bursts_make_retransmissions_fail_more() {
        let loss = Loss::from_mean(0.05, 10.0);
        let pl = plan(8, 0, Ask::Missing, 1);
        let near = evaluate(
            &Path {
                rtt_packets: 2,
                ..path(loss, 1)
            },
            &pl,
        );
        let far = evaluate(
            &Path {
                rtt_packets: 40,
                ..path(loss, 1)
            },
            &pl,
        );
        assert!(near.residual > 5.0 * far.residual, "{near:?} {far:?}");
        assert!(
            far.residual > 0.05 * 0.05,
            "still above random loss: {far:?}"
        );
    }

    #[test]
    fn the_minimum_mixes_fec_and_retransmission() {
        // Bernoulli 5 %, one round: retransmission alone cannot reach 1e-4
        // and FEC alone costs far more.
        let bern = Loss::Bernoulli { p: 0.05 };
        let p = path(bern, 1);
        let (best, o) = minimum(&p, 8, 1, 8, 1e-4).unwrap();
        assert!(best.m >= 1, "{best:?}");
        assert!(o.residual <= 1e-4);
        let fec_only = minimum(&path(bern, 0), 8, 1, 8, 1e-4).unwrap();
        assert!(
            o.redundancy() < fec_only.1.redundancy() / 2.0,
            "{o:?} vs {fec_only:?}"
        );
        // Asking only for the deficit never costs more than asking for all.
        for m in 0..4 {
            let all = evaluate(&p, &plan(8, m, Ask::Missing, 1));
            let few = evaluate(&p, &plan(8, m, Ask::Deficit, 1));
            assert!(few.retransmissions <= all.retransmissions + 1e-15);
            assert!(few.residual >= all.residual - 1e-15);
        }
    }

    #[test]
    fn losses_the_round_does_not_reach_stay_lost() {
        let ge = Loss::from_mean(0.05, 10.0);
        let pl = plan(8, 0, Ask::Missing, 1);
        let all = evaluate(&path(ge, 1), &pl);
        let half = evaluate(
            &Path {
                reach: 0.5,
                ..path(ge, 1)
            },
            &pl,
        );
        let none = evaluate(&path(ge, 0), &pl);
        let want = 0.5 * none.residual + 0.5 * all.residual;
        assert!((half.residual - want).abs() < 1e-12, "{half:?}");
    }

    #[test]
    fn rounds_from_the_budget() {
        let ms = Duration::from_millis;
        assert_eq!(round_share(ms(80), ms(50), ms(5)), 1.0);
        assert!((round_share(ms(80), ms(40), ms(20)) - 0.5).abs() < 1e-12);
        assert_eq!(round_share(ms(80), ms(120), ms(5)), 0.0);
        assert_eq!(rounds_that_fit(ms(80), ms(40), ms(10)), 1);
        assert_eq!(rounds_that_fit(ms(80), ms(100), ms(0)), 0);
        assert_eq!(rounds_that_fit(ms(80), ms(20), ms(1)), 3);
        assert_eq!(rounds_that_fit(ms(80), ms(1), ms(1)), MAX_ROUNDS);
    }

    #[test]
    fn waiting_for_fec_spends_rounds_of_the_budget() {
        let ms = Duration::from_millis;
        // A group of 120 ms in 250: the first sources wait 120 ms for the
        // verdict and keep 2 of the 5 rounds, the last keep all 5.
        let w = waited_rounds(ms(120), ms(250), ms(40), ms(5));
        assert_eq!(rounds_that_fit(ms(250), ms(40), ms(5)), 5);
        assert!(w > 3.0 && w < 4.5, "{w}");
        assert_eq!(waited_rounds(ms(1), ms(250), ms(40), ms(5)), 5.0);
        assert_eq!(waited_rounds(ms(35), ms(80), ms(100), ms(5)), 0.0);
        // One round in 80 ms that no wait leaves room for: the last call
        // still asks in time.
        assert_eq!(rounds_that_fit(ms(80), ms(40), ms(15)), 1);
        assert_eq!(waited_rounds(ms(35), ms(80), ms(40), ms(15)), 1.0);
        // Fewer rounds after the wait lose more; without FEC nothing waits.
        let ge = Loss::from_mean(0.05, 10.0);
        let all = path(ge, 5);
        let fewer = Path {
            waited_rounds: 2.5,
            ..all
        };
        let fec = plan(8, 2, Ask::Missing, 1);
        let (a, f) = (evaluate(&all, &fec), evaluate(&fewer, &fec));
        assert!(f.residual > 2.0 * a.residual, "{a:?} {f:?}");
        let two = evaluate(&Path { rounds: 2, ..all }, &fec);
        let three = evaluate(&Path { rounds: 3, ..all }, &fec);
        let mid = (two.residual + three.residual) / 2.0;
        assert!((f.residual - mid).abs() < 1e-12 * mid.max(1e-12) + 1e-15);
        let arq = plan(8, 0, Ask::Missing, 1);
        assert_eq!(evaluate(&all, &arq), evaluate(&fewer, &arq));
    }

    #[test]
    fn a_loss_left_to_fec_is_asked_for_on_a_calmer_chain() {
        // Bursts of 3 on a short path (the retransmission a packet after
        // the loss): asked at once it meets the burst still going; left to
        // FEC it goes a block later. Random loss has no memory: the same.
        let short = |loss, eager| Path {
            rtt_packets: 1,
            eager,
            ..path(loss, 1)
        };
        let pl = plan(8, 1, Ask::Missing, 1);
        let ge = Loss::from_mean(0.05, 3.0);
        let (now, later) = (
            evaluate(&short(ge, 1.0), &pl),
            evaluate(&short(ge, 0.0), &pl),
        );
        assert!(now.residual > 2.0 * later.residual, "{now:?} {later:?}");
        let bern = Loss::Bernoulli { p: 0.05 };
        let (now, later) = (
            evaluate(&short(bern, 1.0), &pl),
            evaluate(&short(bern, 0.0), &pl),
        );
        assert!((now.residual - later.residual).abs() < 1e-15);
    }
}
