//! The sender core: source -> packetizer -> FEC encoder (with packet
//! interleaving) -> bounded queue, paced by the [`Pacer`].
//!
//! Sans-IO: the driver calls [`SenderCore::poll`] with the time and a
//! [`FrameSource`], sends what [`SenderCore::poll_transmit`] hands out, and
//! sleeps until [`SenderCore::next_timeout`].

use std::time::Duration;

use thiserror::Error;

use crate::arq::RetransmitStore;
use crate::arq::model::{eager_share, round_share, rounds_that_fit, waited_rounds};
use crate::catalog::{self, CatalogError, SubstreamDesc};
use crate::codec::UnitSource;
use crate::config::{Pacing, SenderConfig};
use crate::fec::adapt::{ArqPath, LossSample};
use crate::fec::{FecAdapter, FecEncoder, FecError};
use crate::pacer::Pacer;
use crate::packetizer::{PacketizeError, Packetizer};
use crate::playout::flow::rounds_in_lead;
use crate::queue::SendQueue;
use crate::stats::SenderStats;
use crate::time::Time;
use crate::wire::control::{
    Accept, CONTROL_VERSION, Control, EndOfStream, FecParams, Hello, Mode, Recovery, Report,
    SessionDesc, SubstreamTotals,
};
use crate::wire::packet::{
    self, BlockPos, HEADER_LEN, Kind, MAX_DATAGRAM, MIN_DATAGRAM, SHARD_OFFSET, SourceMeta,
};

/// What a source has for frame `n` of a substream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameRead {
    /// `out` holds this many samples; fewer than the frame's only at the end
    /// of the stream (the rest is padding).
    Ready(usize),
    /// Not yet (a live application has not pushed it); ask again later.
    NotReady,
    /// The substream has ended.
    End,
}

/// When a live source's media time zero is.
///
/// A live stream's media clock starts with its media, not with the
/// session: frame `n` is due `media_ts(n + 1)` after the first sample was
/// captured or pushed, however long the application took to start. One
/// rule for every live source: an application's pushes, a pipe, a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaStart {
    /// At the receiver's accept: the source has its media from the start
    /// (simulation, a buffer filled beforehand).
    Accept,
    /// Nothing captured or pushed yet: the clock waits.
    NotYet,
    /// At this instant: the first sample's capture or push, or when the
    /// application said.
    At(Time),
}

/// Where the sender's media comes from.
pub trait FrameSource {
    /// Fill `out` (exactly frame `frame`'s size) with substream `index`'s
    /// wire-encoded samples.
    fn read_frame(&mut self, index: usize, frame: u64, out: &mut [u8]) -> FrameRead;

    /// Live mode: when media time zero is (asked until it is known). File
    /// mode starts at accept whatever this says.
    fn media_start(&mut self) -> MediaStart {
        MediaStart::Accept
    }
}

/// Why the sender core cannot go on.
#[derive(Debug, Error)]
pub enum SenderError {
    /// The catalog failed validation.
    #[error("invalid catalog: {0}")]
    Catalog(#[from] CatalogError),
    /// The FEC code cannot be built (parameters, or CPU lacking AVX2).
    #[error("FEC: {0}")]
    Fec(#[from] FecError),
    /// A frame could not be cut into packets.
    #[error("packetizing: {0}")]
    Packetize(#[from] PacketizeError),
    /// The datagram size (given) is outside
    /// [`MIN_DATAGRAM`]..=[`MAX_DATAGRAM`] bytes.
    #[error("datagram size {0} is outside {MIN_DATAGRAM}..={MAX_DATAGRAM} bytes")]
    Datagram(usize),
    /// A coded substream's encoder refused (what it said).
    #[error("encoding: {0}")]
    Codec(String),
    /// The receiver granted another interleaving depth than this sender
    /// can use (deeper than asked; or, fixed, not the depth proposed).
    #[error("the receiver granted interleave depth {granted}, this sender asked for {asked}")]
    Depth {
        /// What the hello asked for (automatic: the most).
        asked: u8,
        /// What the accept granted.
        granted: u8,
    },
    /// The [`FrameSource`] claimed more samples than the frame holds.
    #[error("source gave {got} samples for a frame of {max}")]
    SourceOverrun {
        /// Samples the source claimed.
        got: usize,
        /// Samples in the frame.
        max: usize,
    },
}

/// When a datagram stops being useful: its media's capture, plus the
/// packetizer's hold, plus the receiver's latency (live); never (file).
#[derive(Debug, Clone, Copy)]
struct Deadlines {
    live: bool,
    start: Time,
    latency: Duration,
    hold_us: u64,
}

impl Deadlines {
    fn at(&self, media_ts: u64) -> Time {
        if self.live {
            self.start + self.latency + Duration::from_micros(media_ts + self.hold_us)
        } else {
            Time::MAX
        }
    }
}

struct SubSend {
    pk: Packetizer,
    frame: Vec<u8>,
    done: bool,
    samples: u64,
    /// A coded substream's encoder: its units trail the frames read.
    coder: Option<UnitSource>,
}

impl SubSend {
    /// The next frame to read from the source.
    fn next_read(&self) -> u64 {
        self.coder
            .as_ref()
            .map_or(self.pk.frames(), UnitSource::frames_in)
    }
}

/// One sending session, sans-IO: builds the hello, then produces frames as
/// the pacer allows and hands out datagrams ready to send.
pub struct SenderCore {
    session: SessionDesc,
    subs: Vec<SubSend>,
    fec: Option<FecEncoder>,
    /// FEC is on for the groups being built (adaptive FEC may set `m` to 0
    /// while retransmission covers the loss).
    fec_active: bool,
    adapter: Option<FecAdapter>,
    /// The receiver's previous report (and when it came), to measure loss
    /// between reports.
    last_report: Option<(Time, Report)>,
    /// The delay spread retransmission plans with: three times the
    /// reported jitter, smoothed over reports (one second's jitter
    /// wobbles by a third on a steady path, and each wobble past what a
    /// round trip fits changed the plan to FEC and back).
    spread_us: Option<f64>,
    /// Packets sent by the previous report, for the packet rate.
    sent_at_report: u64,
    /// Datagrams a second on the media direction, lately.
    packet_rate: f64,
    /// Source datagrams sent by the previous report, and source datagrams
    /// a second lately (automatic depth sizes blocks from it).
    sources_at_report: u64,
    source_rate: f64,
    /// The round trip the driver measured last.
    rtt: Option<Duration>,
    /// File mode: how far the receiver's credits reach ahead of its
    /// playout (the accept's high mark, then each credit's).
    lead: Duration,
    /// Source datagrams kept for retransmission (retransmitting sessions).
    store: Option<RetransmitStore>,
    /// Adaptive FEC has seen the real block size once.
    sized: bool,
    pacer: Pacer,
    queue: SendQueue,
    max_payload: usize,
    deadlines: Deadlines,
    pacing: Pacing,
    /// Media time zero (moves no more once set; arrival pacing moves
    /// `deadlines.start` with the source's clock).
    media_zero: Time,
    /// Live: when the receiver accepted (the clock may start later, with
    /// the media).
    accepted_at: Option<Time>,
    blocked: bool,
    produced_all: bool,
    stats: SenderStats,
    max_pause: Duration,
    /// The code proposed in the hello: the receiver sizes its FEC slots
    /// for it (`k`, and `m` up to [`FecParams::max_repair`]).
    proposed: crate::wire::control::FecParams,
}

impl SenderCore {
    /// Check the catalog, datagram size and FEC parameters; nothing is sent
    /// before [`on_accept`](Self::on_accept).
    pub fn new(
        name: &str,
        substreams: Vec<SubstreamDesc>,
        cfg: &SenderConfig,
    ) -> Result<Self, SenderError> {
        catalog::validate(&substreams)?;
        if !(MIN_DATAGRAM..=MAX_DATAGRAM).contains(&cfg.max_datagram) {
            return Err(SenderError::Datagram(cfg.max_datagram));
        }
        // Retransmission alone sends no FEC; hybrid without FEC is that.
        let recovery = match cfg.recovery {
            Recovery::Hybrid if !cfg.fec.enabled() => Recovery::Arq,
            r => r,
        };
        let fec_params = if recovery == Recovery::Arq {
            FecParams::OFF
        } else {
            cfg.fec
        };
        if fec_params.enabled() {
            // Fail early on bad parameters; the real encoder is built on
            // accept, when the window is known.
            crate::fec::FecEncoder::new(
                fec_params.k as usize,
                fec_params.m as usize,
                1,
                Duration::ZERO,
            )?;
        }
        let subs = substreams
            .iter()
            .map(|d| {
                Ok(SubSend {
                    pk: Packetizer::new(d),
                    frame: Vec::with_capacity(d.max_frame_bytes()),
                    done: false,
                    samples: 0,
                    coder: UnitSource::new(d).transpose().map_err(SenderError::Codec)?,
                })
            })
            .collect::<Result<_, SenderError>>()?;
        let hold_us = substreams
            .iter()
            .map(|d| d.unit_delay().as_micros() as u64)
            .max()
            .unwrap_or(0);
        let live = matches!(cfg.mode, Mode::Live);
        let stats = SenderStats {
            substreams: substreams
                .iter()
                .map(|d| crate::stats::SenderSubstreamStats {
                    id: d.id,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        Ok(Self {
            session: SessionDesc {
                name: name.to_owned(),
                mode: cfg.mode,
                speed: cfg.speed,
                fec: fec_params,
                substreams,
                recovery,
            },
            subs,
            fec: None,
            fec_active: false,
            adapter: cfg.fec_target.and_then(|t| {
                if fec_params.enabled() {
                    Some(
                        FecAdapter::new(t, fec_params.k, fec_params.m, recovery.retransmits())
                            .with_max_overhead(cfg.max_fec_overhead),
                    )
                } else {
                    // Retransmission alone still models the loss: it says
                    // when a last chance should go twice.
                    recovery
                        .retransmits()
                        .then(|| FecAdapter::new(t, 1, 0, true))
                }
            }),
            last_report: None,
            spread_us: None,
            sent_at_report: 0,
            packet_rate: 0.0,
            sources_at_report: 0,
            source_rate: 0.0,
            rtt: None,
            lead: Duration::ZERO,
            store: None,
            sized: false,
            pacer: Pacer::live(),
            queue: SendQueue::new(cfg.queue, live),
            max_payload: packet::max_payload(cfg.max_datagram),
            deadlines: Deadlines {
                live,
                start: Time::ZERO,
                latency: Duration::ZERO,
                hold_us,
            },
            pacing: cfg.pacing,
            media_zero: Time::ZERO,
            accepted_at: None,
            blocked: false,
            produced_all: false,
            stats: SenderStats {
                recovery,
                fec_depth: fec_params.depth.max(1),
                fec_depth_max: fec_params.depth.max(1),
                ..stats
            },
            max_pause: cfg.max_pause,
            proposed: cfg.fec,
        })
    }

    /// How long a receiver may hold this sender paused
    /// ([`SenderConfig::max_pause`]).
    pub fn max_pause(&self) -> Duration {
        self.max_pause
    }

    /// The session as proposed; after accept, with the FEC window and the
    /// code (`k`, `m`) in force.
    pub fn session(&self) -> &SessionDesc {
        &self.session
    }

    /// When media time zero was on this sender's clock (file mode: the
    /// accept; live: the source's [`MediaStart`]; [`Time::ZERO`] until
    /// then): frame `n` is complete at `started_at + media_ts(n + 1)` in
    /// live mode, the instant end-to-end delay is measured from.
    /// With [`Pacing::Arrival`] the source's clock may drift from ours
    /// afterwards.
    pub fn started_at(&self) -> Time {
        self.media_zero
    }

    /// The media clock is running (live: the source's media has started).
    pub fn clock_started(&self) -> bool {
        self.pacer.started()
    }

    /// Start the media clock with media time zero at `at` (live mode,
    /// before the first frame; later calls are ignored). [`poll`](Self::poll)
    /// does this itself from the source's [`FrameSource::media_start`].
    pub fn start_clock(&mut self, at: Time) {
        if !self.pacer.started() {
            self.pacer.start(at);
            self.deadlines.start = at;
            self.media_zero = at;
        }
    }

    /// The opening message.
    pub fn hello(&self, token: Option<String>) -> Control {
        Control::Hello(Hello {
            version: CONTROL_VERSION,
            token,
            session: self.session.clone(),
        })
    }

    /// The receiver accepted: build FEC with the agreed window and start.
    /// With automatic depth the encoder is built for the depth granted and
    /// starts at 1; a grant deeper than asked (or, fixed, another depth
    /// than proposed) is refused.
    pub fn on_accept(&mut self, now: Time, a: &Accept) -> Result<(), SenderError> {
        let f = self.session.fec;
        let granted_ok = if f.auto_depth {
            (1..=f.depth.max(1)).contains(&a.max_depth)
        } else {
            a.max_depth == f.depth.max(1)
        };
        if f.enabled() && !granted_ok {
            return Err(SenderError::Depth {
                asked: f.depth,
                granted: a.max_depth,
            });
        }
        if f.enabled() {
            self.session.fec.depth = a.max_depth;
            self.stats.fec_depth_max = a.max_depth;
        }
        let f = self.session.fec;
        let window = Duration::from_micros(a.fec_window_us as u64);
        self.deadlines.latency = Duration::from_micros(a.latency_us as u64);
        self.session.fec.window_us = a.fec_window_us;
        self.lead = Duration::from_micros(a.high_water_us as u64);
        self.update_arq_path();
        if f.enabled() {
            let depth = if f.auto_depth { 1 } else { f.depth as usize };
            let m = self
                .adapter
                .as_ref()
                .map_or(f.m, |a| a.choose(f.k as usize, depth));
            let mut enc =
                FecEncoder::new(f.k as usize, m.max(1) as usize, f.depth as usize, window)?;
            enc.set_depth(depth);
            self.fec = Some(enc);
            self.session.fec.m = m;
            self.fec_active = m > 0;
            self.stats.fec_depth = depth as u8;
        }
        if self.session.recovery.retransmits() {
            self.store = Some(RetransmitStore::new(&self.store_sizes(a)));
        }
        self.pacer = match self.session.mode {
            Mode::Live if self.pacing == Pacing::Arrival => Pacer::arrival(),
            Mode::Live => Pacer::live(),
            Mode::File { fill_percent } => Pacer::file(
                fill_percent as f64 / 100.0,
                a.low_water_us as u64,
                a.high_water_us as u64,
            ),
        };
        self.accepted_at = Some(now);
        if !self.deadlines.live {
            // File mode reads ahead from the accept.
            self.start_clock(now);
        }
        Ok(())
    }

    /// Change the FEC code (k source + m repair shards a block) from the next
    /// group on: the open group closes now with the old code. The receiver
    /// follows from the parameters every packet carries. A session that
    /// started without FEC cannot turn it on (the receiver sized itself at
    /// hello); one that retransmits may pause it (`m` 0: packets then carry
    /// no block) and resume it. Nor is a `k` above the proposed one or an
    /// `m` above
    /// [`FecParams::max_repair`](crate::wire::control::FecParams::max_repair)
    /// of it supported: the receiver's FEC slots hold no more.
    pub fn set_fec(&mut self, now: Time, k: u8, m: u8) -> Result<(), SenderError> {
        // The receiver holds blocks of the proposed code at most: a larger
        // one would be counted inconsistent there, so it is refused here.
        let p = self.proposed;
        let pause_ok = m > 0 || self.session.recovery.retransmits();
        if self.fec.is_none() || !pause_ok || k > p.k || m > p.max_repair() {
            return Err(SenderError::Fec(crate::fec::FecError::Params {
                k: k as usize,
                m: m as usize,
            }));
        }
        self.close_group(now);
        if m > 0 {
            self.fec
                .as_mut()
                .expect("checked")
                .set_code(k as usize, m as usize)?;
        }
        self.fec_active = m > 0;
        self.session.fec.k = k;
        self.session.fec.m = m;
        Ok(())
    }

    /// Slots of the retransmission store per substream: what is sent over
    /// the latency (or the high mark, file mode) plus half a second, at the
    /// file-mode fill rate.
    fn store_sizes(&self, a: &Accept) -> Vec<(u16, usize)> {
        let fill = match self.session.mode {
            Mode::Live => 1.0,
            Mode::File { fill_percent } => fill_percent as f64 / 100.0,
        };
        let horizon_us =
            (a.latency_us.max(a.high_water_us) as f64 + 500_000.0) * fill.clamp(1.0, 8.0);
        let payload = self.max_payload.max(1);
        self.subs
            .iter()
            .map(|s| {
                let d = s.pk.desc();
                let per_frame = d.max_frame_bytes().div_ceil(payload).max(1) as f64;
                let frames = horizon_us / d.frame_us.max(1) as f64;
                let per_unit = d.frames_per_packet.max(1) as f64;
                (d.id, (per_frame * frames / per_unit).ceil() as usize + 8)
            })
            .collect()
    }

    /// The transport's measured round trip; retransmission and adaptive
    /// FEC plan with it. (Drivers tell it at every turn; it changes only
    /// with the acknowledgements, so the same value changes nothing.)
    pub fn set_rtt(&mut self, rtt: Duration) {
        if self.rtt == Some(rtt) {
            return;
        }
        self.rtt = Some(rtt);
        self.update_arq_path();
    }

    /// Tell adaptive FEC what retransmission can do: round trips that fit
    /// in the latency (the delay spread from the receiver's jitter), and
    /// the packets sent in one.
    fn update_arq_path(&mut self) {
        let (Some(a), Some(rtt)) = (&mut self.adapter, self.rtt) else {
            return;
        };
        let per_s = self.packet_rate;
        let packets = |d: Duration| ((per_s * d.as_secs_f64()).ceil() as usize).max(1);
        let gap = (rtt / 2).clamp(Duration::from_millis(2), Duration::from_millis(25));
        let f = self.session.fec;
        let span = Duration::from_micros(f.window_us as u64) * f.depth.max(1) as u32;
        // Until a report tells the jitter, the spread is taken as half the
        // round trip (as the receiver's flow marks do): one round trip
        // sample says nothing of it, and a path taken for steady would
        // count on rounds that a jittery one does not have.
        let spread = match self.spread_us {
            Some(us) => Duration::from_micros(us as u64),
            None => rtt / 2,
        };
        if !self.deadlines.live {
            // File mode: a packet arrives about the credit's lead minus a
            // round trip ahead of its playout; FEC decides first, and the
            // rounds of retransmission are what the rest holds (the
            // receiver's floor leaves room for them when its buffer limit
            // allows; none: FEC is sized as if alone).
            let step = self
                .subs
                .iter()
                .map(|s| s.pk.desc().frame_duration())
                .max()
                .unwrap_or_default();
            let hold = Duration::from_micros(self.deadlines.hold_us);
            let rounds = rounds_in_lead(self.lead, span + hold, step, rtt, spread);
            a.set_arq(Some(ArqPath {
                rounds,
                // The lead's rounds are what is left after FEC decides.
                waited_rounds: rounds as f64,
                rtt_packets: packets(rtt),
                copy_gap: packets(gap),
                eager: 0.0,
                reach: 1.0,
            }));
            return;
        }
        // The latency retransmission can count on, when the reports tell
        // it: an adaptive one takes in one round trip when loss shows
        // (`playout::latency`), well under the most the accept allows.
        let latency = match self.last_report.map(|(_, r)| r.latency_us) {
            Some(us) if us > 0 => self.deadlines.latency.min(Duration::from_micros(us as u64)),
            _ => self.deadlines.latency,
        };
        let reach = round_share(latency, rtt, spread);
        a.set_arq(Some(ArqPath {
            // FEC is sized only for rounds that fit the whole spread: one
            // that fits some of the time is asked for when it does, but
            // counted on it missed 10x the target on 20 +- 10 ms paths
            // (the demo's link: FEC cut to 2 repairs at 8 % loss).
            rounds: rounds_that_fit(latency, rtt, spread),
            waited_rounds: waited_rounds(span, latency, rtt, spread),
            rtt_packets: packets(rtt + spread),
            copy_gap: packets(gap),
            eager: eager_share(span, latency, rtt, spread),
            reach,
        }));
    }

    /// A datagram from the receiver: a NACK is answered from the store
    /// (what is held, in time, not sent again within a round trip, within
    /// the retransmission budget); anything else is counted and dropped.
    pub fn on_feedback(&mut self, now: Time, bytes: &[u8]) {
        let Some(store) = &mut self.store else {
            self.stats.nack_invalid += 1;
            return;
        };
        let rtt = self.rtt.unwrap_or(Duration::from_millis(100));
        let (queue, stats) = (&mut self.queue, &mut self.stats);
        let r = store.on_nack(now, rtt, bytes, &mut |deadline, d| {
            queue.push_urgent(deadline, d);
            stats.retransmit_packets += 1;
            stats.retransmit_bytes += d.len() as u64;
        });
        match r {
            Ok(o) => {
                self.stats.nacks_received += 1;
                o.count_into(&mut self.stats);
            }
            Err(_) => self.stats.nack_invalid += 1,
        }
    }

    /// A loss measurement: `lost` of `total` source packets did not arrive
    /// in time. Adaptive FEC retunes from it. (The receiver's reports feed
    /// it; a transport's own loss detection does not, as it declares
    /// reordered packets lost and would overstate the loss several times.)
    pub fn observe_loss(&mut self, now: Time, lost: u64, total: u64) {
        let Some(a) = &mut self.adapter else { return };
        a.observe(lost, total);
        self.retune(now);
    }

    /// Plan FEC for the measured loss times `margin` (a fan-out publisher
    /// keeps [`AUDIENCE_SAFETY`](crate::fec::adapt::AUDIENCE_SAFETY)).
    pub fn set_fec_safety(&mut self, margin: f64) {
        if let Some(a) = &mut self.adapter {
            a.set_safety(margin);
        }
    }

    /// One report interval's loss pattern (bursts, outages): adaptive FEC
    /// retunes from it.
    pub fn observe_sample(&mut self, now: Time, sample: LossSample) {
        let Some(a) = &mut self.adapter else { return };
        a.observe_sample(sample);
        self.retune(now);
    }

    /// Pick the repair count for the blocks really being built, and the
    /// copies of a last-chance retransmission.
    fn retune(&mut self, now: Time) {
        let Some(a) = &mut self.adapter else {
            return;
        };
        let f = self.session.fec;
        let depth = self.fec.as_ref().map_or(f.depth as usize, |e| e.depth());
        let (k, m, k_eff) = match &self.fec {
            Some(fec) => {
                let (k, m) = fec.code();
                let k_eff = fec
                    .mean_sources()
                    .map_or(k, |s| s.round() as usize)
                    .clamp(1, k);
                (k, if self.fec_active { m } else { 0 }, k_eff)
            }
            None => (1, 0, 1),
        };
        let (want_depth, (want, capped)) = if f.auto_depth && self.fec.is_some() {
            // Sources a block holds at each depth: the group's (its budget
            // is the same at every depth) shared among its blocks, at most
            // k; the depth in force as measured.
            let span = Duration::from_micros(f.window_us as u64) * f.depth.max(1) as u32;
            let per_group = if k_eff + 1 < k {
                (k_eff * depth) as f64
            } else {
                (self.source_rate * span.as_secs_f64()).max((k * depth) as f64)
            };
            let ks: Vec<usize> = (1..=f.depth.max(1) as usize)
                .map(|d| {
                    if d == depth {
                        k_eff
                    } else {
                        ((per_group / d as f64).round() as usize).clamp(1, k)
                    }
                })
                .collect();
            let (d, c, capped) = a.pick_depth(&ks);
            (d, (c, capped))
        } else {
            (depth, a.choose_capped(k_eff, depth))
        };
        a.settle(want);
        if capped {
            if self.stats.fec_capped == 0 {
                tracing::warn!(
                    loss = ?a.loss(),
                    repair = want.m,
                    sources = k_eff,
                    "the receiver reports more loss than FEC within max_fec_overhead can \
                     repair: holding FEC at the cap"
                );
            }
            self.stats.fec_capped += 1;
        }
        tracing::debug!(loss = ?a.loss(), burst = a.burst(), k_eff, m, ?want, "adaptive FEC");
        if let Some(s) = &mut self.store {
            s.set_copies(want.copies);
        }
        if want_depth != depth {
            // From the next group on: the open one closes with the old
            // depth; the receiver needs no word (each repair says it).
            self.close_group(now);
            if let Some(fec) = &mut self.fec {
                fec.set_depth(want_depth);
            }
            self.stats.fec_depth = want_depth as u8;
            self.stats.fec_depth_changes += 1;
            tracing::debug!(depth = want_depth, "automatic interleave depth");
        }
        if self.fec.is_some() && want.m as usize != m {
            // Takes effect from the next group; the receiver follows.
            let _ = self.set_fec(now, k as u8, want.m);
        }
    }

    /// The interleaving depth in force (the groups being built).
    pub fn depth(&self) -> u8 {
        self.fec
            .as_ref()
            .map_or(self.session.fec.depth, |f| f.depth() as u8)
    }

    /// The loss estimate adaptive FEC works from, once there is one.
    pub fn loss_estimate(&self) -> Option<f64> {
        self.adapter.as_ref().and_then(|a| a.loss())
    }

    /// Credits, PAUSE, RESUME and reports from the receiver.
    pub fn on_control(&mut self, now: Time, msg: &Control) {
        match msg {
            Control::Report(r) => {
                let sent = self.stats.source_packets
                    + self.stats.repair_packets
                    + self.stats.retransmit_packets;
                self.spread_us = Some(smoothed_spread(self.spread_us, r.jitter_us));
                let prev = self.last_report.replace((now, *r));
                // Rates since the previous report; at the first, the rates
                // since the media clock started stand in for them.
                let (since, sent_before, sources_before, min_secs) = match prev {
                    Some((at, _)) => (Some(at), self.sent_at_report, self.sources_at_report, 0.0),
                    None => (self.pacer.started().then_some(self.media_zero), 0, 0, 0.1),
                };
                if let Some(since) = since {
                    let secs = now.saturating_since(since).as_secs_f64();
                    if secs > min_secs {
                        self.packet_rate = sent.saturating_sub(sent_before) as f64 / secs;
                        self.source_rate =
                            self.stats.source_packets.saturating_sub(sources_before) as f64 / secs;
                    }
                }
                self.update_arq_path();
                match prev {
                    Some((_, prev)) => self.observe_sample(now, LossSample::between(&prev, r)),
                    // The first report (FIRST_REPORT in) only starts the
                    // loss count: a few dozen packets are too noisy an
                    // estimate to start from, and a low one is followed
                    // down slowly. Its jitter is the path's delay spread,
                    // though: whether a round trip fits is known from now
                    // on, not a second later (hybrid paid twice the FEC
                    // floor meanwhile).
                    None => self.retune(now),
                }
                self.sent_at_report = sent;
                self.sources_at_report = self.stats.source_packets;
            }
            Control::Pause => {
                self.pacer.pause(now);
                self.stats.pauses += 1;
            }
            Control::Resume => {
                self.pacer.resume(now);
                self.stats.resumes += 1;
            }
            Control::Credit(c) => {
                self.pacer.credit(now, c);
                self.stats.credits += 1;
                let lead = Duration::from_micros(c.lead_us as u64);
                if lead != self.lead {
                    self.lead = lead;
                    self.update_arq_path();
                }
            }
            _ => {}
        }
    }

    /// The receiver has paused the sender (file mode).
    pub fn is_paused(&self) -> bool {
        self.pacer.is_paused()
    }

    /// The path's datagram size changed: plan packets for the new size. A
    /// FEC group open on a shrink is closed first, so later groups fit.
    pub fn set_max_datagram(&mut self, now: Time, size: usize) -> Result<(), SenderError> {
        let size = size.min(MAX_DATAGRAM);
        if size < MIN_DATAGRAM {
            return Err(SenderError::Datagram(size));
        }
        let payload = packet::max_payload(size);
        if payload < self.max_payload {
            self.close_group(now);
        }
        self.max_payload = payload;
        Ok(())
    }

    fn close_group(&mut self, now: Time) {
        if let Some(fec) = &mut self.fec {
            close_group(now, fec, &mut self.queue, &mut self.stats, self.deadlines);
        }
    }

    /// Produce every frame due by `now`, and close FEC groups that are full
    /// or out of time.
    pub fn poll(&mut self, now: Time, source: &mut dyn FrameSource) -> Result<(), SenderError> {
        if let Some(store) = &mut self.store {
            let (queue, stats) = (&mut self.queue, &mut self.stats);
            store.poll_copies(now, &mut |deadline, d| {
                queue.push_urgent(deadline, d);
                stats.retransmit_packets += 1;
                stats.retransmit_copies += 1;
                stats.retransmit_bytes += d.len() as u64;
            });
        }
        if let (false, Some(accepted)) = (self.pacer.started(), self.accepted_at) {
            match source.media_start() {
                MediaStart::Accept => self.start_clock(accepted),
                MediaStart::At(t) => self.start_clock(t),
                MediaStart::NotYet => {}
            }
        }
        if !self.pacer.started() || self.produced_all {
            return Ok(());
        }
        if self
            .fec
            .as_ref()
            .and_then(|f| f.deadline())
            .is_some_and(|d| now >= d)
        {
            self.close_group(now);
        }
        let allowance = self.pacer.allowance(now);
        let file = !matches!(self.session.mode, Mode::Live);
        self.blocked = false;
        loop {
            if file && self.queue.len() >= self.queue.capacity() / 2 {
                break;
            }
            let next = self
                .subs
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.done)
                .map(|(i, s)| (s.pk.desc().frame_ts(s.next_read() + 1), i))
                .filter(|&(end, _)| end <= allowance)
                .min();
            let Some((_, i)) = next else { break };
            if !self.produce(now, i, source)? {
                self.blocked = true;
                break;
            }
        }
        // Live at the clock's pace, no source joins the open group before
        // the next frame's wake-up: a group whose time budget runs out
        // before that closes now, with the sources it would have at its
        // deadline (its repairs leave earlier, and the network thread is not
        // woken a second time between two frames only to send them).
        if self.deadlines.live && self.pacing == Pacing::Clock && !self.blocked {
            let deadline = self.fec.as_ref().and_then(|f| f.deadline());
            let next_frame = self
                .subs
                .iter()
                .filter(|s| !s.done)
                .filter_map(|s| self.pacer.wake_at(s.pk.desc().frame_ts(s.next_read() + 1)))
                .min();
            if let (Some(d), Some(w)) = (deadline, next_frame)
                && w > d
            {
                self.close_group(now);
            }
        }
        if self.subs.iter().all(|s| s.done) {
            self.close_group(now);
            self.produced_all = true;
        }
        // Once the first blocks show their real size, size the start-up
        // protection to them (before any loss has been measured).
        if !self.sized
            && self
                .fec
                .as_ref()
                .is_some_and(|f| f.mean_sources().is_some())
        {
            self.sized = true;
            self.retune(now);
        }
        Ok(())
    }

    /// Read and packetize one frame of substream `i`; false if not ready.
    fn produce(
        &mut self,
        now: Time,
        i: usize,
        source: &mut dyn FrameSource,
    ) -> Result<bool, SenderError> {
        let sub = &mut self.subs[i];
        let n = sub.next_read();
        let desc = sub.pk.desc();
        let (stride, full) = (desc.format.stride(), desc.frame_samples(n));
        let (ts, ts_end) = (desc.frame_ts(n), desc.frame_ts(n + 1));
        sub.frame.resize(full * stride, 0);
        let got = match source.read_frame(i, n, &mut sub.frame) {
            FrameRead::NotReady => return Ok(false),
            FrameRead::End => None,
            FrameRead::Ready(k) if k > full => {
                return Err(SenderError::SourceOverrun { got: k, max: full });
            }
            FrameRead::Ready(k) => Some(k),
        };
        let Self {
            subs,
            fec,
            fec_active,
            queue,
            stats,
            store,
            max_payload,
            deadlines,
            pacing,
            ..
        } = self;
        let sub = &mut subs[i];
        let desc_end = sub.pk.desc().frame_ts(n + 1);
        if got.is_some() && deadlines.live && *pacing == Pacing::Arrival {
            // The source's clock is its sample count: this frame is complete
            // now, and its packets' deadlines count from here (a source a few
            // ppm slow is never expired for it).
            let complete = desc_end;
            deadlines.start = Time::from_micros(now.as_micros().saturating_sub(complete));
        }
        let deadlines = *deadlines;
        let fec = fec.as_mut().filter(|_| *fec_active);
        let mut out = Out {
            fec,
            queue,
            stats,
            store: store.as_mut(),
            deadlines,
        };
        let mut emit = |meta: &SourceMeta, payload: &[u8]| {
            enqueue_source(now, i, &mut out, meta, payload);
        };
        if let Some(coder) = &mut sub.coder {
            // Coded: the frame goes to the encoder; the units it completes
            // (trailing by the codec's delay) go to the packetizer.
            let (pk, at) = (&mut sub.pk, now.as_micros());
            let mut failed = None;
            let mut unit = |f: u64, u: &[u8]| {
                if failed.is_none() {
                    failed = pk.push(f, u, at, *max_payload, &mut emit).err();
                }
            };
            if let Some(k) = got {
                sub.frame[k * stride..].fill(0);
                sub.samples += k as u64;
                coder
                    .push(&sub.frame, &mut unit)
                    .map_err(SenderError::Codec)?;
            }
            if got.is_none_or(|k| k < full) {
                sub.done = true;
                coder.finish(&mut unit).map_err(SenderError::Codec)?;
            }
            if let Some(e) = failed {
                return Err(e.into());
            }
        } else {
            match got {
                Some(k) => {
                    sub.frame[k * stride..].fill(0);
                    sub.samples += k as u64;
                    sub.pk
                        .push(n, &sub.frame, now.as_micros(), *max_payload, &mut emit)?;
                    if k < full {
                        sub.done = true;
                        sub.pk.flush(now.as_micros(), *max_payload, &mut emit)?;
                    }
                }
                None => {
                    sub.done = true;
                    sub.pk.flush(now.as_micros(), *max_payload, &mut emit)?;
                }
            }
        }
        if let Some(k) = got {
            let counts = &mut self.stats.substreams[i];
            counts.samples += k as u64;
            counts.frames += 1;
            if self.deadlines.live {
                // Live: how far behind its media clock the source is, and
                // whether this frame can still be played in time.
                let complete = self.deadlines.start + Duration::from_micros(ts_end);
                let lag = now.saturating_since(complete).as_micros() as u64;
                self.stats.max_source_lag_us = self.stats.max_source_lag_us.max(lag);
                if now >= self.deadlines.at(ts) {
                    self.stats.late_frames += 1;
                }
            }
        }
        Ok(true)
    }

    /// Next datagram to send. The slice is valid until the next call.
    pub fn poll_transmit(&mut self) -> Option<&[u8]> {
        self.queue.pop()
    }

    /// Length of the next datagram, to check the transport has room first.
    pub fn next_len(&self) -> Option<usize> {
        self.queue.front_len()
    }

    /// Datagrams waiting.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Drop queued datagrams whose deadline has passed (counted).
    pub fn expire(&mut self, now: Time) -> usize {
        self.queue.expire(now)
    }

    /// When [`SenderCore::poll`] next has work (a frame due or a FEC group's
    /// time budget running out). `None`: nothing until a control message
    /// (paused), new media (blocked), or ever (done).
    pub fn next_timeout(&self) -> Option<Time> {
        let copy = self.store.as_ref().and_then(|s| s.next_copy());
        if self.produced_all || !self.pacer.started() {
            return copy;
        }
        let fec = self.fec.as_ref().and_then(|f| f.deadline());
        let frame = if self.blocked {
            None
        } else {
            self.subs
                .iter()
                .filter(|s| !s.done)
                .filter_map(|s| self.pacer.wake_at(s.pk.desc().frame_ts(s.next_read() + 1)))
                .min()
        };
        [fec, frame, copy].into_iter().flatten().min()
    }

    /// All media produced and every datagram handed out.
    pub fn is_finished(&self) -> bool {
        self.produced_all && self.queue.is_empty()
    }

    /// The final account for the receiver.
    pub fn end_of_stream(&self) -> EndOfStream {
        EndOfStream {
            totals: self
                .subs
                .iter()
                .map(|s| SubstreamTotals {
                    id: s.pk.desc().id,
                    packets: s.pk.packets() as u64,
                    frames: s.pk.frames(),
                    samples: s.samples,
                })
                .collect(),
            repair_packets: self.fec.as_ref().map_or(0, |f| f.repairs()),
        }
    }

    /// A snapshot of the counters (allocates; drivers publishing often use
    /// [`fill_stats`](Self::fill_stats)).
    pub fn stats(&self) -> SenderStats {
        let mut s = SenderStats::default();
        self.fill_stats(&mut s);
        s
    }

    /// Copy the counters into `s`, reusing its allocation.
    pub fn fill_stats(&self, s: &mut SenderStats) {
        s.assign(&self.stats);
        s.fec_blocks = self.fec.as_ref().map_or(0, |f| f.blocks_closed());
        s.dropped_expired = self.queue.dropped_expired;
        s.dropped_overflow = self.queue.dropped_overflow;
        (s.fec_overhead_ratio, s.redundancy_ratio) = if s.source_bytes == 0 {
            (0.0, 0.0)
        } else {
            let src = s.source_bytes as f64;
            (
                s.repair_bytes as f64 / src,
                (s.repair_bytes + s.retransmit_bytes) as f64 / src,
            )
        };
    }
}

/// Where a source packet goes: FEC (when on), the queue, the counters, the
/// retransmission store (when retransmitting).
struct Out<'a> {
    fec: Option<&'a mut FecEncoder>,
    queue: &'a mut SendQueue,
    stats: &'a mut SenderStats,
    store: Option<&'a mut RetransmitStore>,
    deadlines: Deadlines,
}

/// Queue a source packet of substream `index`, folding it into FEC; close
/// the group the moment it fills (a frame's fragments may fill it midway).
fn enqueue_source(now: Time, index: usize, out: &mut Out<'_>, meta: &SourceMeta, payload: &[u8]) {
    let len = HEADER_LEN + payload.len();
    let deadline = out.deadlines.at(meta.media_ts);
    let (fec, store) = (&mut out.fec, &mut out.store);
    out.queue.push(deadline, |buf| {
        packet::write_shard_header(&mut buf[SHARD_OFFSET..HEADER_LEN], meta, payload.len());
        buf[HEADER_LEN..len].copy_from_slice(payload);
        let pos = match fec {
            Some(f) => f.add_source(now, meta.media_ts, &buf[SHARD_OFFSET..len]),
            None => BlockPos {
                block: 0,
                index: 0,
                k: 0,
                m: 0,
            },
        };
        packet::write_block_header(&mut buf[..SHARD_OFFSET], Kind::Source, pos);
        if let Some(s) = store {
            s.put(index, meta.seq, deadline, &buf[..len]);
        }
        len
    });
    out.stats.source_packets += 1;
    out.stats.source_bytes += len as u64;
    if let Some(f) = &mut out.fec
        && f.group_full()
    {
        close_group(now, f, out.queue, out.stats, out.deadlines);
    }
}

/// Close the FEC group and queue its repairs, column by column.
fn close_group(
    now: Time,
    fec: &mut FecEncoder,
    queue: &mut SendQueue,
    stats: &mut SenderStats,
    deadlines: Deadlines,
) {
    fec.close(now, &mut |pos, meta, parity| {
        queue.push(deadlines.at(meta.media_ts), |buf| {
            packet::encode(buf, Kind::Repair, pos, meta, parity)
        });
        stats.repair_packets += 1;
        stats.repair_bytes += (HEADER_LEN + parity.len()) as u64;
    });
}

/// The delay spread retransmission plans with, in microseconds: three
/// times the reported jitter, a rise followed half-way at once, a fall
/// slowly.
fn smoothed_spread(prev: Option<f64>, jitter_us: u32) -> f64 {
    let spread = 3.0 * jitter_us as f64;
    match prev {
        None => spread,
        Some(s) if spread > s => 0.5 * (s + spread),
        Some(s) => 0.7 * s + 0.3 * spread,
    }
}

#[cfg(test)]
mod tests {
    use super::smoothed_spread;

    #[test]
    fn the_spread_follows_a_rise_half_way_and_a_fall_slowly() {
        let first = smoothed_spread(None, 3_300);
        assert_eq!(first, 9_900.0, "three times the first jitter");
        // A report's wobble on a steady path moves it a little, not to the
        // wobble's value (which switched the plan to FEC and back).
        let up = smoothed_spread(Some(first), 5_000);
        assert_eq!(up, 12_450.0);
        let down = smoothed_spread(Some(up), 2_000);
        assert!((down - 10_515.0).abs() < 1e-9, "{down}");
        // A lasting rise is followed within a few reports.
        let mut s = first;
        for _ in 0..4 {
            s = smoothed_spread(Some(s), 20_000);
        }
        assert!(s > 0.9 * 60_000.0, "{s}");
    }
}
