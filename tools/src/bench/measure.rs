//! From what a run recorded to the figures a reader compares: end-to-end
//! delay and engine overhead, the engine's own statistics, the FEC code
//! really used and the exact MDS bound for it, SNR.

use std::time::Duration;

use isochron_engine::arq::model::{
    self, Ask, Path, Plan, eager_share, round_share, rounds_that_fit, waited_rounds,
};
use isochron_engine::net::relay::RelayStats;
use isochron_engine::sim::bound::mds_residual;
use isochron_engine::sim::{Impairment, Loss};
use isochron_engine::stats::{FrameCounts, PacketCounts, Percentiles, ReceiverStats, SenderStats};
use serde::Serialize;

use super::cpu::Usage;
use super::run::Outcome;
use super::scenarios::{Scenario, describe_config, describe_link, loss_model};

/// A distribution in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Dist {
    pub count: u64,
    pub min: f64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Dist {
    /// Nearest-rank percentiles of `values` (any order).
    pub fn of(values: &[f64]) -> Dist {
        if values.is_empty() {
            return Dist::default();
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Dist {
            count: v.len() as u64,
            min: v[0],
            p50: at(0.5),
            p99: at(0.99),
            max: v[v.len() - 1],
            mean: v.iter().sum::<f64>() / v.len() as f64,
        }
    }

    /// The engine's microsecond percentiles, in milliseconds (no mean).
    pub fn from_engine(p: &Percentiles) -> Dist {
        let ms = |us: u64| us as f64 / 1e3;
        Dist {
            count: p.count,
            min: ms(p.min_us),
            p50: ms(p.p50_us),
            p99: ms(p.p99_us),
            max: ms(p.max_us),
            mean: f64::NAN,
        }
    }
}

/// A FEC code and the exact residual loss of an ideal (MDS) code of those
/// parameters under the scenario's loss model.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CodeBound {
    pub k: usize,
    pub m: usize,
    pub depth: usize,
    pub residual: f64,
}

/// The bound next to the measured residual loss.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Bound {
    /// `bernoulli` or `gilbert-elliott`.
    pub model: &'static str,
    pub mean_loss: f64,
    /// The code configured (16+4 by default) at the configured depth.
    pub configured: CodeBound,
    /// The code really sent, second by second (blocks close early at their
    /// time budget, adaptive FEC changes m): the expected residual of an
    /// ideal code with each second's mean k and m (interpolated between
    /// the neighbouring whole codes), weighted by its source packets.
    pub effective: EffectiveBound,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct EffectiveBound {
    pub k_mean: f64,
    pub m_mean: f64,
    pub depth: usize,
    pub residual: f64,
}

/// The code the sender really used: blocks close early at their time
/// budget (fewer sources) and adaptive FEC changes m.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CodeUsed {
    pub blocks: u64,
    pub k_eff: f64,
    pub m_eff: f64,
}

impl CodeUsed {
    pub fn of(s: &SenderStats) -> CodeUsed {
        if s.fec_blocks == 0 {
            return CodeUsed::default();
        }
        CodeUsed {
            blocks: s.fec_blocks,
            k_eff: s.source_packets as f64 / s.fec_blocks as f64,
            m_eff: s.repair_packets as f64 / s.fec_blocks as f64,
        }
    }
}

/// Residual of an ideal code with a fractional mean `k` and `m`: bilinear
/// between the whole codes around them (a mix of blocks of those codes).
fn residual_at(loss: Loss, k: f64, m: f64, depth: usize) -> f64 {
    let k = k.max(1.0);
    let m = m.max(0.0);
    let (k0, m0) = (k.floor(), m.floor());
    let (fk, fm) = (k - k0, m - m0);
    let r = |k: f64, m: f64| mds_residual(loss, k as usize, m as usize, depth);
    (1.0 - fk) * ((1.0 - fm) * r(k0, m0) + fm * r(k0, m0 + 1.0))
        + fk * ((1.0 - fm) * r(k0 + 1.0, m0) + fm * r(k0 + 1.0, m0 + 1.0))
}

/// Snapshots per bound window (the sender's counters come every 100 ms;
/// adaptive FEC changes m at most once a second).
const WINDOW: usize = 10;

/// The exact bound for a link with random loss and a FEC code; `series`:
/// the sender's counters over time, the final ones last.
pub fn bound(
    link: &Impairment,
    fec: Option<(u8, u8)>,
    depth: u8,
    series: &[SenderStats],
) -> Option<Bound> {
    let loss = loss_model(link)?;
    let (k, m) = fec?;
    let depth = depth.max(1) as usize;
    let mut prev = SenderStats::default();
    let (mut sources, mut expected_lost) = (0u64, 0.0);
    let points = series
        .iter()
        .enumerate()
        .filter(|(i, _)| (i + 1) % WINDOW == 0 || i + 1 == series.len())
        .map(|(_, s)| s);
    for s in points {
        let blocks = s.fec_blocks.saturating_sub(prev.fec_blocks);
        let src = s.source_packets.saturating_sub(prev.source_packets);
        let rep = s.repair_packets.saturating_sub(prev.repair_packets);
        if src > 0 {
            // A window without a block sent its sources unprotected
            // (hybrid leaves a clean or random-loss path to retransmission).
            let residual = if blocks > 0 {
                let (kw, mw) = (src as f64 / blocks as f64, rep as f64 / blocks as f64);
                residual_at(loss, kw, mw, depth)
            } else {
                loss.mean()
            };
            expected_lost += src as f64 * residual;
            sources += src;
            prev = s.clone();
        }
    }
    let used = series.last().map(CodeUsed::of).unwrap_or_default();
    Some(Bound {
        model: match loss {
            Loss::Bernoulli { .. } => "bernoulli",
            Loss::GilbertElliott { .. } => "gilbert-elliott",
            Loss::None => "none",
        },
        mean_loss: loss.mean(),
        configured: CodeBound {
            k: k as usize,
            m: m as usize,
            depth,
            residual: mds_residual(loss, k as usize, m as usize, depth),
        },
        effective: EffectiveBound {
            k_mean: used.k_eff,
            m_mean: used.m_eff,
            depth,
            residual: if sources == 0 {
                f64::NAN
            } else {
                expected_lost / sources as f64
            },
        },
    })
}

/// All the redundancy sent (FEC and retransmission), beside the least any
/// plan needs for the same residual with the same window and round trip,
/// computed exactly (`arq::model`: an ideal code of the window's size, the
/// retransmission rounds that fit, on the link's nominal loss model).
#[derive(Debug, Clone, Serialize)]
pub struct Redundancy {
    /// Repair plus retransmitted bytes over source bytes, as sent.
    pub sent: f64,
    /// Of that, repairs.
    pub fec: f64,
    /// Of that, retransmissions.
    pub retransmission: f64,
    /// The residual the minimum must reach: the one measured, or one packet
    /// in the run when none was lost for good.
    pub residual_target: f64,
    /// The least redundancy that reaches it; `None` without random loss on
    /// the link or when no plan reaches it.
    pub minimum: Option<f64>,
    /// That plan: `m` repairs a block of `k`, retransmission copies, what a
    /// failed block asks for.
    pub minimum_plan: Option<String>,
    /// `sent / minimum`.
    pub ratio: Option<f64>,
    /// The residual adaptive FEC was asked to stay under (`send
    /// --target-loss`); `None` without adaptive FEC.
    pub sender_target: Option<f64>,
    /// The least redundancy that reaches the sender's target: a run that
    /// loses nothing shows only that its residual is under one packet, a
    /// looser goal than the sender's when the run is short.
    pub minimum_at_target: Option<f64>,
    /// `sent / minimum_at_target`.
    pub ratio_at_target: Option<f64>,
    /// The lowest residual any plan reaches with no more redundancy than
    /// was sent: the bound the measured residual sits against.
    pub residual_bound: Option<f64>,
    /// Sources a block of the session's window holds.
    pub k: usize,
    /// Retransmission round trips that fit, and the share of losses the
    /// first reaches in time (from the link's delay and jitter).
    pub rounds: u32,
    pub reach: f64,
}

/// Redundancy of a run against the exact minimum for its residual.
pub fn redundancy(
    sc: &Scenario,
    o: &Outcome,
    secs: f64,
    residual: f64,
    expected: u64,
) -> Redundancy {
    let s = &o.sender;
    let secs = secs.max(1.0);
    let c = &sc.config;
    let window = Duration::from_micros(o.accept.fec_window_us as u64);
    let depth = c.interleave.max(1) as usize;
    let per_s = s.source_packets as f64 / secs;
    let k = ((per_s * window.as_secs_f64()).round() as usize).clamp(1, 255);
    let link = &sc.link;
    let rtt = link.delay * 2 + Duration::from_millis(1);
    let spread = link.jitter * 2;
    let reach = round_share(c.latency, rtt, spread);
    let rounds = rounds_that_fit(c.latency, rtt, spread).max((reach > 0.0) as u32);
    let all_per_s = (s.source_packets + s.repair_packets + s.retransmit_packets) as f64 / secs;
    let packets = |d: Duration| ((all_per_s * d.as_secs_f64()).ceil() as usize).max(1);
    let target = residual.max(1.0 / expected.max(1) as f64);
    let sender_target = super::run::fec_target(c);
    let mut r = Redundancy {
        sent: s.redundancy_ratio,
        fec: s.fec_overhead_ratio,
        retransmission: s.redundancy_ratio - s.fec_overhead_ratio,
        residual_target: target,
        minimum: None,
        minimum_plan: None,
        ratio: None,
        sender_target,
        minimum_at_target: None,
        ratio_at_target: None,
        residual_bound: None,
        k,
        rounds,
        reach,
    };
    let Some(loss) = loss_model(link) else {
        return r;
    };
    let path = Path {
        loss,
        back: loss,
        rounds,
        waited_rounds: waited_rounds(window * depth as u32, c.latency, rtt, spread),
        rtt_packets: packets(rtt + spread),
        echo_packets: 2,
        copy_gap: packets((rtt / 2).clamp(Duration::from_millis(2), Duration::from_millis(25))),
        eager: eager_share(window * depth as u32, c.latency, rtt, spread),
        reach,
    };
    if let Some((plan, out)) = model::minimum(&path, k, depth, k, target) {
        r.minimum = Some(out.redundancy());
        r.minimum_plan = Some(plan_name(&plan));
        r.ratio = (out.redundancy() > 0.0).then(|| r.sent / out.redundancy());
    }
    if let Some((_, out)) = sender_target.and_then(|t| model::minimum(&path, k, depth, k, t)) {
        r.minimum_at_target = Some(out.redundancy());
        r.ratio_at_target = (out.redundancy() > 0.0).then(|| r.sent / out.redundancy());
    }
    let mut best: Option<f64> = None;
    for m in 0..=k {
        for ask in [Ask::Missing, Ask::Deficit] {
            for copies in 1..=3u8 {
                let o = model::evaluate(
                    &path,
                    &Plan {
                        k,
                        m,
                        depth,
                        ask,
                        copies,
                    },
                );
                if o.redundancy() <= r.sent + 1e-9 {
                    best = Some(best.map_or(o.residual, |b| b.min(o.residual)));
                }
            }
        }
    }
    r.residual_bound = best;
    r
}

/// A plan as the report names it: `7+0, 2 copies`.
fn plan_name(plan: &Plan) -> String {
    format!(
        "{}+{}, {} cop{}{}",
        plan.k,
        plan.m,
        plan.copies,
        if plan.copies == 1 { "y" } else { "ies" },
        if plan.ask == Ask::Deficit {
            ", asking the deficit"
        } else {
            ""
        }
    )
}

/// The configuration as run, in plain units.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigJson {
    pub summary: String,
    pub mode: &'static str,
    /// The fixed latency; with adaptive latency, its upper bound.
    pub latency_ms: f64,
    /// Adaptive latency's `[MIN, MAX]`, or null for a fixed latency.
    pub adaptive_latency_ms: Option<[f64; 2]>,
    pub low_water_ms: f64,
    pub high_water_ms: f64,
    pub frame_ms: f64,
    /// `16+4` or `off`.
    pub fec: String,
    pub interleave: u8,
    pub adaptive_fec: bool,
    /// The FEC block window in force (the receiver's choice unless set).
    pub fec_window_ms: f64,
    pub sensor: bool,
}

/// The link as run, in plain units (the same impairment each way).
#[derive(Debug, Clone, Serialize)]
pub struct LinkJson {
    pub summary: String,
    pub each_way: bool,
    /// `none`, `bernoulli` or `gilbert-elliott`.
    pub loss_model: &'static str,
    pub loss_percent: f64,
    pub burst: f64,
    pub delay_ms: f64,
    pub jitter_ms: f64,
    pub reorder_percent: f64,
    pub reorder_by_ms: f64,
    pub duplicate_percent: f64,
    pub rate_bps: u64,
    /// `(start_s, duration_s)` from the relay's start.
    pub outages: Vec<(f64, f64)>,
    pub seed: u64,
}

fn link_json(l: &Impairment, seed: u64) -> LinkJson {
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    let (model, burst) = match l.loss {
        Loss::None => ("none", 0.0),
        Loss::Bernoulli { .. } => ("bernoulli", 1.0),
        Loss::GilbertElliott { r, .. } => ("gilbert-elliott", 1.0 / r),
    };
    LinkJson {
        summary: describe_link(l),
        each_way: true,
        loss_model: model,
        loss_percent: l.loss.mean() * 100.0,
        burst,
        delay_ms: ms(l.delay),
        jitter_ms: ms(l.jitter),
        reorder_percent: l.reorder * 100.0,
        reorder_by_ms: ms(l.reorder_by),
        duplicate_percent: l.duplicate * 100.0,
        rate_bps: l.rate_bps,
        outages: l
            .outages
            .iter()
            .map(|o| (o.start.as_secs_f64(), o.duration.as_secs_f64()))
            .collect(),
        seed,
    }
}

/// Files written for a scenario, relative to the output directory.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plots {
    pub delay: String,
    pub buffer: String,
    pub histogram: String,
}

/// Everything about one scenario: `results.json` holds one per scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub name: String,
    pub about: String,
    pub duration_s: f64,
    pub config: ConfigJson,
    pub link: LinkJson,
    /// The receiver played the stream to its end and said goodbye.
    pub completed: bool,
    pub truncated: bool,
    pub end_reason: String,
    /// Playout instant minus the instant the frame was complete at the
    /// sender (`started_at + (n + 1) x frame`), audio frames.
    pub e2e_delay_ms: Dist,
    /// End-to-end delay minus the configured latency.
    pub overhead_ms: Dist,
    /// Network one-way delay of packets (arrival minus sender timestamp).
    pub one_way_delay_ms: Dist,
    /// RFC 3550 interarrival jitter.
    pub jitter_ms: f64,
    /// Playout tick lateness (tick time minus deadline).
    pub tick_deviation_ms: Dist,
    pub packets: PacketCounts,
    /// Lost (did not arrive directly in time) over expected source packets.
    pub loss_before_fec: f64,
    /// Unrecovered over expected: the residual loss.
    pub residual_loss: f64,
    /// What the relay's random loss really dropped of the forward packets
    /// (all of them: media, repair and QUIC's own), against the nominal mean.
    pub link_loss_realised: f64,
    pub fec_code_used: CodeUsed,
    /// The exact MDS bound, for scenarios with random loss and FEC.
    pub bound: Option<Bound>,
    /// How losses were recovered (`fec`, `arq`, `hybrid`).
    pub recovery: &'static str,
    /// All the redundancy sent, beside the exact minimum for its residual.
    pub redundancy: Redundancy,
    pub frames: FrameCounts,
    /// Audio samples sent and played (equal unless something is wrong).
    pub samples_sent: u64,
    pub samples_played: u64,
    pub pauses: u64,
    pub resumes: u64,
    pub bitrate_bps: f64,
    /// Repair over source bytes received.
    pub fec_overhead: f64,
    /// Datagrams the sender dropped before the network (past deadline, full queue).
    pub sender_drops: u64,
    /// CPU of the whole process over the stream (one session: sender,
    /// relay and receiver), percent of one core, with its split by role.
    pub cpu: Usage,
    /// SNR of the played audio against what was sent; null when bit-exact.
    pub snr_db: Option<f64>,
    pub bit_exact: bool,
    /// Audio frames whose bytes differ from what was sent.
    pub frames_differing: u64,
    /// Buffer level samples after playback started (ms).
    pub buffer_ms: Dist,
    /// The receiver's target latency, sampled with the buffer level after
    /// playback started (ms): constant unless the latency is adaptive.
    pub latency_target_ms: Dist,
    pub plots: Plots,
    pub relay: RelayStats,
    pub receiver_stats: ReceiverStats,
    pub sender_stats: SenderStats,
}

/// Delays of a recording: `(seconds since media zero, e2e ms)` per frame.
pub fn e2e_series(o: &Outcome) -> Vec<(f64, f64)> {
    let f = o.recording.frame_us();
    o.recording
        .plays
        .iter()
        .map(|&(n, at)| {
            let complete = o.started_at + (n + 1) * f;
            (
                (at as f64 - o.started_at as f64) / 1e6,
                (at as f64 - complete as f64) / 1e3,
            )
        })
        .collect()
}

pub fn summarise(sc: &Scenario, duration_s: f64, o: &Outcome) -> ScenarioResult {
    let c = &sc.config;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    let series = e2e_series(o);
    let e2e: Vec<f64> = series.iter().map(|p| p.1).collect();
    let latency = ms(c.latency);
    let overhead: Vec<f64> = e2e.iter().map(|d| d - latency).collect();
    let s = &o.receiver;
    let used = CodeUsed::of(&o.sender);
    let expected = s.packets.expected.max(1) as f64;
    let snr = o.recording.snr_db();
    let audio = s.substreams.first();
    let started = o
        .recording
        .plays
        .first()
        .map_or(f64::MAX, |&(_, at)| (at as f64 - o.started_at as f64) / 1e6);
    let levels: Vec<f64> = o
        .levels
        .iter()
        .filter(|(t, _)| *t >= started && *t <= duration_s)
        .map(|p| p.1)
        .collect();
    let targets: Vec<f64> = o
        .targets
        .iter()
        .filter(|(t, _)| *t >= started && *t <= duration_s)
        .map(|p| p.1)
        .collect();
    ScenarioResult {
        name: sc.name.clone(),
        about: sc.about.clone(),
        duration_s,
        config: ConfigJson {
            summary: describe_config(c),
            mode: if c.file.is_some() { "file" } else { "live" },
            latency_ms: latency,
            adaptive_latency_ms: c.adaptive.map(|(lo, hi)| [ms(lo), ms(hi)]),
            low_water_ms: ms(c.low_water),
            high_water_ms: ms(c.high_water),
            frame_ms: ms(c.frame),
            fec: c.fec.map_or("off".into(), |(k, m)| format!("{k}+{m}")),
            interleave: c.interleave,
            adaptive_fec: c.adaptive_fec && c.fec.is_some(),
            fec_window_ms: o.accept.fec_window_us as f64 / 1e3,
            sensor: c.sensor,
        },
        link: link_json(&sc.link, sc.seed),
        completed: o.sender_completed && !o.truncated,
        truncated: o.truncated,
        end_reason: o.end_reason.clone(),
        e2e_delay_ms: Dist::of(&e2e),
        overhead_ms: Dist::of(&overhead),
        one_way_delay_ms: Dist::from_engine(&s.network_delay),
        jitter_ms: s.jitter_us as f64 / 1e3,
        tick_deviation_ms: Dist::from_engine(&s.tick_deviation),
        packets: s.packets,
        loss_before_fec: s.packets.lost as f64 / expected,
        residual_loss: s.packets.unrecovered as f64 / expected,
        link_loss_realised: o.relay.forward.lost as f64 / o.relay.forward.packets.max(1) as f64,
        fec_code_used: used,
        bound: bound(&sc.link, c.fec, c.interleave, &o.sender_series),
        recovery: o.sender.recovery.name(),
        redundancy: redundancy(
            sc,
            o,
            duration_s,
            s.packets.unrecovered as f64 / expected,
            s.packets.expected,
        ),
        // The audio substream: frames of different substreams are not
        // summed.
        frames: audio.map(|a| a.frames).unwrap_or_default(),
        samples_sent: o.samples_sent,
        samples_played: audio.map_or(0, |a| a.frames.samples_played),
        pauses: s.pauses,
        resumes: s.resumes,
        bitrate_bps: s.bitrate_bps as f64,
        fec_overhead: s.fec_overhead_ratio,
        sender_drops: o.sender.dropped_expired + o.sender.dropped_overflow,
        cpu: o.cpu,
        snr_db: snr.is_finite().then_some(snr),
        bit_exact: o.recording.differing == 0 && o.recording.samples == o.samples_sent,
        frames_differing: o.recording.differing,
        buffer_ms: Dist::of(&levels),
        latency_target_ms: Dist::of(&targets),
        plots: Plots::default(),
        relay: o.relay,
        receiver_stats: s.clone(),
        sender_stats: o.sender.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let d = Dist::of(&v);
        assert_eq!((d.min, d.p50, d.p99, d.max), (1.0, 50.0, 99.0, 100.0));
        assert_eq!(d.mean, 50.5);
        assert_eq!(Dist::of(&[]).count, 0);
    }

    #[test]
    fn bound_follows_the_code_really_sent() {
        let link = Impairment {
            loss: Loss::from_mean(0.05, 1.0),
            ..Default::default()
        };
        // Two seconds of 8+4, then two of 8+8: 25 blocks a second.
        let mut series = Vec::new();
        let mut s = SenderStats::default();
        for t in 0..40 {
            s.fec_blocks += 2;
            s.source_packets += 16;
            s.repair_packets += if t < 20 { 8 } else { 16 };
            series.push(s.clone());
        }
        let b = bound(&link, Some((16, 4)), 1, &series).unwrap();
        assert!((b.configured.residual - 6.6e-4).abs() < 0.2e-4, "{b:?}");
        let p = Loss::Bernoulli { p: 0.05 };
        let want = (mds_residual(p, 8, 4, 1) + mds_residual(p, 8, 8, 1)) / 2.0;
        assert!(
            (b.effective.residual - want).abs() < want * 1e-9,
            "{b:?} vs {want}"
        );
        assert_eq!((b.effective.k_mean, b.effective.m_mean), (8.0, 6.0));
        // The mean code would claim far less: the residual is convex in m.
        assert!(mds_residual(p, 8, 6, 1) < want / 2.0);
        assert!(bound(&Impairment::default(), Some((16, 4)), 1, &series).is_none());
        assert!(bound(&link, None, 1, &series).is_none());
    }

    #[test]
    fn fractional_codes_interpolate() {
        let p = Loss::Bernoulli { p: 0.05 };
        let a = residual_at(p, 8.0, 4.0, 1);
        assert_eq!(a, mds_residual(p, 8, 4, 1));
        let h = residual_at(p, 8.0, 4.5, 1);
        assert!((h - (a + mds_residual(p, 8, 5, 1)) / 2.0).abs() < 1e-15);
    }
}
