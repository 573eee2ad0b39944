//! Statistics: part of the public API, exposed as a serialisable snapshot.
//!
//! Loss accounting has one authoritative number, `unrecovered`: source
//! packets whose media was not there when it was due (never arrived, not
//! rebuilt, or too late). `lost` counts every source packet that did not
//! arrive directly in time; `recovered + unrecovered == lost` once final.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::catalog::MediaKind;
use crate::wire::control::Recovery;

/// RFC 3550 interarrival jitter estimator (section 6.4.1), in microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Jitter {
    last_transit: Option<i64>,
    j: f64,
}

impl Jitter {
    /// `transit` = arrival time - sender time (any constant offset cancels).
    pub fn update(&mut self, transit_us: i64) {
        if let Some(last) = self.last_transit {
            let d = transit_us.saturating_sub(last).unsigned_abs() as f64;
            self.j += (d - self.j) / 16.0;
        }
        self.last_transit = Some(transit_us);
    }

    /// The current estimate, in microseconds (0 before two packets).
    pub fn micros(&self) -> f64 {
        self.j
    }
}

/// Bounded-memory distribution of microsecond values (about 1 % precision,
/// up to an hour), allocated once.
#[derive(Debug, Clone)]
pub struct Distribution {
    h: Histogram<u64>,
}

impl Default for Distribution {
    fn default() -> Self {
        Self {
            h: Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("static bounds are valid"),
        }
    }
}

impl Distribution {
    /// Bytes one distribution holds (its histogram's counts).
    pub fn memory() -> u64 {
        static BYTES: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        *BYTES.get_or_init(|| {
            let d = Distribution::default();
            d.h.distinct_values() as u64 * std::mem::size_of::<u64>() as u64
        })
    }

    /// Add one value in microseconds (clamped to 1 us..1 h).
    pub fn record(&mut self, us: u64) {
        self.h.saturating_record(us.max(1));
    }

    /// Values recorded so far.
    pub fn count(&self) -> u64 {
        self.h.len()
    }

    /// Count, min, median, p99 and max; all zero when nothing was recorded.
    pub fn summary(&self) -> Percentiles {
        if self.h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: self.h.len(),
            min_us: self.h.min(),
            p50_us: self.h.value_at_quantile(0.5),
            p99_us: self.h.value_at_quantile(0.99),
            max_us: self.h.max(),
        }
    }

    /// Add every value of `other` to this distribution.
    pub fn merge(&mut self, other: &Distribution) {
        // Both share the same bounds, so adding cannot fail.
        let _ = self.h.add(&other.h);
    }
}

/// Summary of a [`Distribution`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Values summarised (0: every field is 0).
    pub count: u64,
    /// Smallest value, microseconds.
    pub min_us: u64,
    /// Median, microseconds.
    pub p50_us: u64,
    /// 99th percentile, microseconds.
    pub p99_us: u64,
    /// Largest value, microseconds.
    pub max_us: u64,
}

/// Packet accounting of one substream (or a session, summed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PacketCounts {
    /// Source packets whose fate is final (sent, as far as the receiver
    /// can tell): the denominator of residual loss.
    pub expected: u64,
    /// Unique source packets that arrived (on time or late).
    pub received: u64,
    /// Source packets that did not arrive directly in time (gaps seen).
    pub lost: u64,
    /// Of the lost, there in time after all: rebuilt by FEC or sent again.
    pub recovered: u64,
    /// Of the recovered, by a retransmission (the rest FEC rebuilt).
    pub retransmitted: u64,
    /// Of the lost, not there when due: the residual loss.
    pub unrecovered: u64,
    /// Arrived after their frame was played (a subset of unrecovered, unless
    /// FEC had rebuilt them already).
    pub late: u64,
    /// Further direct copies of a source packet already received (FEC
    /// rebuilds, and an original arriving after its rebuild, are not counted).
    pub duplicate: u64,
    /// Well-formed headers whose payload contradicts the catalog (media time
    /// off a frame boundary, layout or length wrong): dropped.
    pub invalid: u64,
    /// Retransmissions that arrived after their frame was played.
    pub retransmit_late: u64,
    /// Retransmissions not needed: FEC had rebuilt the packet, it had come
    /// already, or the original turned up in time after all.
    pub retransmit_redundant: u64,
    /// Runs of consecutive lost packets (`lost / loss_runs`: mean burst).
    pub loss_runs: u64,
    /// Of the lost, those in runs spanning more media time than the
    /// latency: outages, beyond any code or retransmission in the budget.
    pub outage_lost: u64,
    /// Of the runs, the outages.
    pub outage_runs: u64,
}

impl PacketCounts {
    /// Add `o`'s counts to these (to sum substreams).
    pub fn add(&mut self, o: &PacketCounts) {
        self.expected += o.expected;
        self.received += o.received;
        self.lost += o.lost;
        self.recovered += o.recovered;
        self.unrecovered += o.unrecovered;
        self.late += o.late;
        self.duplicate += o.duplicate;
        self.invalid += o.invalid;
        self.retransmitted += o.retransmitted;
        self.retransmit_late += o.retransmit_late;
        self.retransmit_redundant += o.retransmit_redundant;
        self.loss_runs += o.loss_runs;
        self.outage_lost += o.outage_lost;
        self.outage_runs += o.outage_runs;
    }
}

/// Playout accounting of one substream (or a session, summed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameCounts {
    /// Frames emitted at their instant, complete or concealed.
    pub played: u64,
    /// Frames with at least one sample missing (filled by concealment).
    pub concealed: u64,
    /// Samples in the played frames; equals the samples sent once a stream
    /// has played to its end.
    pub samples_played: u64,
    /// Samples that were missing from played frames (concealed).
    pub samples_concealed: u64,
    /// Times the buffer ran dry after playback had started: a frame with
    /// samples was due with no data at or after it (once per dry spell).
    pub underruns: u64,
    /// Frames dropped because they arrived beyond the buffer's horizon
    /// (counted per packet: each fragment or lane of a frame counts).
    pub overruns: u64,
}

impl FrameCounts {
    /// Add `o`'s counts to these (to sum substreams).
    pub fn add(&mut self, o: &FrameCounts) {
        self.played += o.played;
        self.concealed += o.concealed;
        self.samples_played += o.samples_played;
        self.samples_concealed += o.samples_concealed;
        self.underruns += o.underruns;
        self.overruns += o.overruns;
    }
}

/// Per-substream snapshot: the figures whose units depend on the
/// substream (frames and samples: audio samples, sensor rows) live here,
/// never summed across substreams.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SubstreamStats {
    /// Catalog id.
    pub id: u16,
    /// Catalog name (the sender's hint).
    pub name: String,
    /// Audio or sensor: what one of its samples is (an audio sample of all
    /// channels, a sensor row).
    pub kind: MediaKind,
    /// How its media travels: the samples' wire encoding (`l16`, `f32`,
    /// `mulaw`, ...) or the codec (`opus`); see
    /// [`SubstreamDesc::wire_encoding`](crate::catalog::SubstreamDesc::wire_encoding).
    pub encoding: String,
    /// This substream's packet accounting.
    pub packets: PacketCounts,
    /// This substream's playout accounting.
    pub frames: FrameCounts,
    /// RFC 3550 interarrival jitter of this substream's packets.
    pub jitter_us: u64,
    /// Network delay of this substream's packets (see
    /// [`ReceiverStats::network_delay`]).
    pub network_delay: Percentiles,
    /// Media buffered ahead of this substream's playout position (up to the
    /// newest frame holding data).
    pub buffer_us: u64,
    /// Distinct gaps concealment filled (a gap spanning frames counts once).
    /// Filled by the QUIC driver, which runs concealment; 0 from
    /// [`ReceiverCore::stats`](crate::ReceiverCore::stats).
    pub concealment_events: u64,
    /// Index of the first sample played: 0, unless the receiver joined
    /// mid-stream (fan-out), when output starts at the next whole FEC group.
    pub start_sample: u64,
    /// Media time of the first frame played, microseconds (0 unless joined
    /// mid-stream).
    pub start_media_us: u64,
    /// Joined mid-stream: source packets of frames before the start point,
    /// dropped (not counted as expected or lost).
    pub skipped_before_start: u64,
    /// Coded substreams: lost frames the codec rebuilt from the next
    /// packet's in-band FEC (Opus LBRR).
    pub codec_fec_frames: u64,
    /// Coded substreams: frames the codec's own concealment (PLC) played,
    /// lost or damaged.
    pub codec_plc_frames: u64,
}

/// Datagrams refused before they reached a substream, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidCounts {
    /// Datagrams that failed header checks
    /// ([`PacketError`](crate::wire::packet::PacketError)), and repair
    /// packets in a session without FEC.
    pub malformed: u64,
    /// Source packets, arrived or rebuilt by FEC, of a substream id not in
    /// the catalog.
    pub unknown_substream: u64,
    /// Datagrams over [`MAX_DATAGRAM`](crate::wire::packet::MAX_DATAGRAM) bytes.
    pub oversized: u64,
    /// Sealed datagrams that failed authentication or were replayed
    /// (fan-out: end-to-end AEAD; 0 over QUIC, which authenticates itself).
    pub unauthenticated: u64,
    /// Repair packets of a group interleaved deeper than the receiver
    /// granted at accept ([`Accept::max_depth`](crate::wire::control::Accept::max_depth)).
    pub too_deep: u64,
}

impl InvalidCounts {
    /// All refusals, whatever the reason.
    pub fn total(&self) -> u64 {
        self.malformed
            + self.unknown_substream
            + self.oversized
            + self.unauthenticated
            + self.too_deep
    }
}

/// FEC decoder counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FecCounts {
    /// Valid repair packets received, needed or not.
    pub repair_received: u64,
    /// Blocks whose missing sources were rebuilt (once per block).
    pub blocks_rebuilt: u64,
    /// Source packets FEC rebuilt and handed on. More than
    /// [`PacketCounts::recovered`]: a block is rebuilt as soon as enough of
    /// it is in, so a packet that was only delayed or reordered is rebuilt
    /// too, and when its original then arrives in time it counts as
    /// received, not recovered. `recovered` counts only packets that would
    /// otherwise have been missing when due.
    pub packets_rebuilt: u64,
    /// Blocks given up (out of time or evicted) with sources still missing.
    pub blocks_failed: u64,
    /// Shards that contradict their block (code, sizes, counts) or rebuilt
    /// into garbage: counted and dropped.
    pub inconsistent: u64,
    /// Repairs that arrived for blocks already whole or given up.
    pub repair_unneeded: u64,
}

/// The receiver's requests for packets again (ARQ), network side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NackCounts {
    /// NACK datagrams sent.
    pub datagrams: u64,
    /// Missing packets asked for (first NACK).
    pub requested: u64,
    /// NACKs repeated a round trip later, the packet still missing.
    pub repeated: u64,
    /// Copies sent shortly after a NACK, against losing it.
    pub echoes: u64,
    /// Packets asked for whose retransmission arrived (in time or not).
    pub answered: u64,
    /// Packets asked for that came otherwise (FEC, or the original late).
    pub filled_otherwise: u64,
    /// Missing packets never asked for: the deadline left no round trip.
    pub no_time: u64,
    /// Gaps forgotten because more were missing than the planner tracks.
    pub dropped: u64,
    /// Packets taken for lost because they were overdue (live, before a
    /// later packet showed the gap).
    pub overdue: u64,
    /// Times a FEC block was found beyond rebuilding and its gaps were
    /// asked for without waiting for the rest of it.
    pub hopeless: u64,
    /// Packets asked for before FEC had decided their block (its repairs
    /// not yet seen, its time budget not run out, the block not found
    /// beyond rebuilding): the last call came first.
    pub eager: u64,
    /// Of those, packets FEC rebuilt anyway (the retransmission bought
    /// nothing).
    pub eager_rebuilt: u64,
    /// Packets asked for before they were confirmed (at the last instant a
    /// round trip fits; an original merely delayed could still come).
    pub unconfirmed: u64,
    /// Gaps still missing then that were not asked for (such gaps turned
    /// out mostly late on this path lately): asked for once confirmed if a
    /// round trip still fits, else counted in `no_time` too.
    pub unconfirmed_held: u64,
    /// Of the gaps missing when they would be asked for unconfirmed (asked
    /// for or held), those whose original then came before its deadline.
    pub unconfirmed_late: u64,
    /// And those whose original did not (rebuilt, retransmitted, or lost).
    pub unconfirmed_lost: u64,
    /// Of those, packets FEC rebuilt (asking may have bought nothing).
    pub unconfirmed_rebuilt: u64,
}

/// File-mode flow control (see [`playout::flow`](crate::playout::flow)):
/// the path as measured, and the water marks in force because of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowStats {
    /// Credits the receiver sent.
    pub credits: u64,
    /// Round trip the loop allows for: the transport's latest estimate, at
    /// least the configured loop delay; microseconds.
    pub rtt_us: u64,
    /// One-way delay spread over the last 4 s (highest minus lowest
    /// transit time of the packets that arrived), microseconds.
    pub delay_spread_us: u64,
    /// Level the buffer is kept above so every packet and its repairs are
    /// on time: FEC window x depth, frame hold, delay spread, one frame and
    /// 5 ms, and for each round of retransmission (`retransmit_rounds`) a
    /// round trip and twice the spread; microseconds.
    pub floor_us: u64,
    /// Level playback started at (or will start at): the low-water mark in
    /// force, at least the floor; microseconds.
    pub start_level_us: u64,
    /// How far the credits reach ahead of the playout: the high-water mark
    /// in force, at least what keeps the buffer above the floor after a
    /// round trip and the spread; microseconds.
    pub lead_us: u64,
    /// How far ahead of its playout instant the least early packet arrived,
    /// over the packets that arrived (not rebuilt) from the start of
    /// playback to the end of stream; negative: it was late. The buffer's
    /// floor leaves the FEC span of it for repairs; microseconds.
    pub min_slack_us: i64,
    /// Rounds of retransmission the floor leaves room for after FEC's
    /// span (0: the session does not retransmit, or the buffer limit
    /// holds none on this path).
    pub retransmit_rounds: u64,
}

/// The session snapshot: everything the receiver knows.
///
/// One vocabulary everywhere (this struct, `recv --stats-json`,
/// `demo`'s `stats.json`; schema: `docs/stats.schema.json`): durations are
/// integer microseconds named `*_us`, ratios are fractions 0..1 named
/// `*_ratio`, counters are plain integers, and what is counted in
/// per-substream units (frames, samples) is only per substream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReceiverStats {
    /// Datagrams received, valid or not.
    pub datagrams: u64,
    /// Bytes of all datagrams received (headers included).
    pub bytes: u64,
    /// Datagrams refused before they reached a substream, by reason.
    pub invalid: InvalidCounts,
    /// FEC decoder counters (all 0 without FEC).
    pub fec: FecCounts,
    /// Source packets, summed over substreams.
    pub packets: PacketCounts,
    /// RFC 3550 interarrival jitter over the session's source packets that
    /// arrived (not rebuilt, not duplicates).
    pub jitter_us: u64,
    /// Network delay: arrival minus sender time of source packets that
    /// arrived (not rebuilt, not duplicates), all substreams. The one-way
    /// delay where both ends share a clock (one host, or synchronised
    /// clocks); otherwise offset by the difference of the clocks.
    pub network_delay: Percentiles,
    /// End-to-end delay: each frame's playout instant minus the sender time
    /// of its media (when a live source pushed or captured it; when a file
    /// was read), frames that held media. True where both ends share a
    /// clock, like `network_delay`.
    pub end_to_end_delay: Percentiles,
    /// Playout delay above the fastest path: `end_to_end_delay` minus the
    /// smallest network delay seen. Meaningful across hosts whatever their
    /// clocks (the offset cancels): the latency, frame hold and buffering
    /// the receiver added.
    pub playout_delay: Percentiles,
    /// Playout tick lateness (actual tick time minus deadline), one value
    /// per frame played, clamped at 0.
    pub tick_deviation: Percentiles,
    /// Lowest buffer level of the substreams that carry samples every frame
    /// and still expect data (0 when none does).
    pub buffer_us: u64,
    /// The receiver's low-water mark.
    pub low_water_us: u64,
    /// The receiver's high-water mark.
    pub high_water_us: u64,
    /// PAUSE messages the receiver issued (file mode).
    pub pauses: u64,
    /// RESUME messages the receiver issued (file mode).
    pub resumes: u64,
    /// File-mode flow control: what it measured and the marks it kept
    /// (all zero in live mode).
    pub flow: FlowStats,
    /// Received bits per second: every datagram byte over the time from the
    /// first arrival to the last (receiver clock).
    pub bitrate_bps: u64,
    /// Repair bytes over source bytes received (whole datagrams).
    pub fec_overhead_ratio: f64,
    /// How losses are recovered in this session.
    pub recovery: Recovery,
    /// Retransmitted source datagrams received (valid, known substream).
    pub retransmits_received: u64,
    /// Their bytes (whole datagrams).
    pub retransmit_bytes: u64,
    /// Repair plus retransmitted bytes over source bytes received.
    pub redundancy_ratio: f64,
    /// NACKs sent and what came of them.
    pub nack: NackCounts,
    /// Residual loss: `packets.unrecovered / packets.expected`.
    pub residual_loss_ratio: f64,
    /// The stream ended without its end-of-stream message.
    pub truncated: bool,
    /// Packets dropped between the network and the playout because
    /// the playout fell behind (should stay zero).
    pub playout_queue_drops: u64,
    /// Joined mid-stream (fan-out): datagrams of FEC groups that began
    /// before this receiver did, dropped by ingress and not counted as
    /// lost (packets of frames before the start point are counted per
    /// substream).
    pub skipped_before_start: u64,
    /// Media time output starts at, microseconds: 0, unless the receiver
    /// joined mid-stream (each substream's exact start is in its entry).
    pub start_media_us: u64,
    /// Target latency above the fastest path in force, microseconds (live;
    /// with `--latency auto` it follows the measured delay).
    pub latency_target_us: u64,
    /// `--latency auto` on a retransmitting session: the target holds a
    /// round of retransmission now, as the path loses packets.
    pub latency_holds_round_trip: bool,
    /// Per substream, in catalog order.
    pub substreams: Vec<SubstreamStats>,
}

impl ReceiverStats {
    /// Copy `o` into `self`, reusing `self`'s allocations (the playout
    /// thread publishes without allocating once sizes are stable).
    pub fn assign(&mut self, o: &ReceiverStats) {
        let subs = std::mem::take(&mut self.substreams);
        *self = ReceiverStats {
            substreams: subs,
            ..o.scalars()
        };
        self.substreams.truncate(o.substreams.len());
        for (i, s) in o.substreams.iter().enumerate() {
            match self.substreams.get_mut(i) {
                Some(d) => {
                    let name = std::mem::take(&mut d.name);
                    let encoding = std::mem::take(&mut d.encoding);
                    *d = SubstreamStats {
                        name,
                        encoding,
                        ..s.scalars()
                    };
                    d.name.clone_from(&s.name);
                    d.encoding.clone_from(&s.encoding);
                }
                None => self.substreams.push(s.clone()),
            }
        }
    }

    fn scalars(&self) -> ReceiverStats {
        ReceiverStats {
            substreams: Vec::new(),
            ..*self
        }
    }
}

impl SubstreamStats {
    fn scalars(&self) -> SubstreamStats {
        SubstreamStats {
            name: String::new(),
            encoding: String::new(),
            ..*self
        }
    }
}

/// What the sender produced of one substream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderSubstreamStats {
    /// Catalog id.
    pub id: u16,
    /// Frames read from the source and packetized (a short last one too).
    pub frames: u64,
    /// Samples the source gave (padding of a short last frame excluded).
    pub samples: u64,
}

/// What the sender did (same vocabulary as [`ReceiverStats`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SenderStats {
    /// Source datagrams queued (some may be dropped before sending).
    pub source_packets: u64,
    /// Repair datagrams queued.
    pub repair_packets: u64,
    /// Bytes of the source datagrams queued, headers included.
    pub source_bytes: u64,
    /// Bytes of the repair datagrams queued, headers included.
    pub repair_bytes: u64,
    /// FEC blocks closed: sources / blocks and repairs / blocks give the
    /// code really used (blocks close early at their time budget, and
    /// adaptive FEC changes m).
    pub fec_blocks: u64,
    /// Datagrams dropped before the network because their deadline passed
    /// (live mode).
    pub dropped_expired: u64,
    /// Datagrams dropped because the send queue was full (live mode drops
    /// the oldest), or because they were planned larger than the path
    /// turned out to carry.
    pub dropped_overflow: u64,
    /// PAUSE messages received from the receiver.
    pub pauses: u64,
    /// RESUME messages received from the receiver.
    pub resumes: u64,
    /// File-mode credits received from the receiver.
    pub credits: u64,
    /// Repair bytes over source bytes queued.
    pub fec_overhead_ratio: f64,
    /// How losses are recovered in this session.
    pub recovery: Recovery,
    /// Source datagrams sent again on a NACK (queued).
    pub retransmit_packets: u64,
    /// Their bytes, headers included.
    pub retransmit_bytes: u64,
    /// Of the retransmitted packets, the further copies of a last-chance
    /// retransmission (adaptive FEC's `copies`: no round trip is left to
    /// ask again), not answers to a NACK.
    pub retransmit_copies: u64,
    /// Repair plus retransmitted bytes over source bytes queued: all the
    /// redundancy sent.
    pub redundancy_ratio: f64,
    /// Valid NACK datagrams received.
    pub nacks_received: u64,
    /// Datagrams from the receiver that are no valid NACK (dropped).
    pub nack_invalid: u64,
    /// Packets asked for but sent again less than a round trip ago.
    pub nack_suppressed: u64,
    /// Packets asked for past their deadline (not sent).
    pub nack_expired: u64,
    /// Packets asked for that the store does not hold (never sent, out of
    /// range, overwritten, or beyond what one NACK may cost).
    pub nack_unknown: u64,
    /// Packets asked for beyond the retransmission budget (at most one per
    /// source packet sent).
    pub nack_throttled: u64,
    /// Live: frames the source delivered after their deadline (media time
    /// plus the receiver's latency): too late to be played, dropped before
    /// the network.
    pub late_frames: u64,
    /// Live: the most a frame was complete after its media time (how far
    /// the source fell behind its own clock).
    pub max_source_lag_us: u64,
    /// Times adaptive FEC wanted more repair than
    /// [`SenderConfig::max_fec_overhead`](crate::SenderConfig::max_fec_overhead)
    /// allows and was held at that cap (the receiver reported more loss
    /// than the cap can repair).
    pub fec_capped: u64,
    /// Packet interleaving depth in force (the groups being built): the
    /// session's, or with automatic depth adaptive FEC's choice.
    pub fec_depth: u8,
    /// Deepest interleaving the receiver granted (the session's depth when
    /// fixed).
    pub fec_depth_max: u8,
    /// Times automatic depth changed the depth in force.
    pub fec_depth_changes: u64,
    /// Per substream, in catalog order.
    pub substreams: Vec<SenderSubstreamStats>,
}

impl SenderStats {
    /// Copy `o` into `self`, reusing `self`'s allocation (the network thread
    /// publishes without allocating).
    pub fn assign(&mut self, o: &SenderStats) {
        let mut subs = std::mem::take(&mut self.substreams);
        subs.clone_from(&o.substreams);
        *self = SenderStats {
            substreams: subs,
            ..o.scalars()
        };
    }

    fn scalars(&self) -> SenderStats {
        SenderStats {
            substreams: Vec::new(),
            ..*self
        }
    }

    /// Frames of substream `index`, 0 if there is none.
    pub fn frames(&self, index: usize) -> u64 {
        self.substreams.get(index).map_or(0, |s| s.frames)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_converges_to_mean_deviation() {
        let mut j = Jitter::default();
        // Transit alternating 0 / 1000 us: |D| = 1000 every packet.
        for i in 0..1000 {
            j.update(if i % 2 == 0 { 0 } else { 1000 });
        }
        assert!((j.micros() - 1000.0).abs() < 1.0, "{}", j.micros());
    }

    #[test]
    fn distribution_percentiles() {
        let mut d = Distribution::default();
        for v in 1..=1000 {
            d.record(v);
        }
        let s = d.summary();
        assert_eq!((s.count, s.min_us), (1000, 1));
        assert!(
            (1000..=1010).contains(&s.max_us),
            "2 significant digits: {s:?}"
        );
        assert!((495..=505).contains(&s.p50_us), "{s:?}");
        assert!((985..=995).contains(&s.p99_us), "{s:?}");
    }
}
