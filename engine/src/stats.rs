//! Statistics: part of the public API, exposed as a serialisable snapshot.
//!
//! Loss accounting has one authoritative number, `unrecovered`: source
//! packets whose media was not there when it was due (never arrived, not
//! rebuilt, or too late). `lost` counts every source packet that did not
//! arrive directly in time; `recovered + unrecovered == lost` once final.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

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
            let d = (transit_us - last).unsigned_abs() as f64;
            self.j += (d - self.j) / 16.0;
        }
        self.last_transit = Some(transit_us);
    }

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
    pub fn record(&mut self, us: u64) {
        self.h.saturating_record(us.max(1));
    }

    pub fn count(&self) -> u64 {
        self.h.len()
    }

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

    pub fn merge(&mut self, other: &Distribution) {
        // Both share the same bounds, so adding cannot fail.
        let _ = self.h.add(&other.h);
    }
}

/// Summary of a [`Distribution`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub min_us: u64,
    pub p50_us: u64,
    pub p99_us: u64,
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
    /// Of the lost, rebuilt by FEC in time.
    pub recovered: u64,
    /// Of the lost, not there when due: the residual loss.
    pub unrecovered: u64,
    /// Arrived after their frame was played (a subset of unrecovered, unless
    /// FEC had rebuilt them already).
    pub late: u64,
    pub duplicate: u64,
    /// Well-formed headers whose payload contradicts the catalog.
    pub invalid: u64,
}

impl PacketCounts {
    pub fn add(&mut self, o: &PacketCounts) {
        self.expected += o.expected;
        self.received += o.received;
        self.lost += o.lost;
        self.recovered += o.recovered;
        self.unrecovered += o.unrecovered;
        self.late += o.late;
        self.duplicate += o.duplicate;
        self.invalid += o.invalid;
    }
}

/// Playout accounting of one substream (or a session, summed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameCounts {
    pub played: u64,
    /// Frames with at least one sample missing (filled by concealment).
    pub concealed: u64,
    pub samples_played: u64,
    pub samples_concealed: u64,
    /// Times the buffer ran dry after playback had started.
    pub underruns: u64,
    /// Frames dropped because they arrived beyond the buffer's horizon.
    pub overruns: u64,
}

impl FrameCounts {
    pub fn add(&mut self, o: &FrameCounts) {
        self.played += o.played;
        self.concealed += o.concealed;
        self.samples_played += o.samples_played;
        self.samples_concealed += o.samples_concealed;
        self.underruns += o.underruns;
        self.overruns += o.overruns;
    }
}

/// Per-substream snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SubstreamStats {
    pub id: u16,
    pub name: String,
    pub packets: PacketCounts,
    pub frames: FrameCounts,
    /// RFC 3550 interarrival jitter.
    pub jitter_us: f64,
    /// Arrival minus sender time: one-way delay when both ends share a
    /// clock, relative delay (plus an unknown constant) otherwise.
    pub delay: Percentiles,
    pub buffer_ms: f64,
    /// Distinct gaps concealment filled (a gap spanning frames counts once).
    pub concealment_events: u64,
}

/// Datagrams refused before they reached a substream, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidCounts {
    pub malformed: u64,
    pub unknown_substream: u64,
    pub oversized: u64,
}

impl InvalidCounts {
    pub fn total(&self) -> u64 {
        self.malformed + self.unknown_substream + self.oversized
    }
}

/// FEC decoder counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FecCounts {
    pub repair_received: u64,
    pub blocks_rebuilt: u64,
    pub packets_rebuilt: u64,
    pub blocks_failed: u64,
    pub inconsistent: u64,
}

/// The session snapshot: everything the receiver knows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReceiverStats {
    pub datagrams: u64,
    pub bytes: u64,
    pub invalid: InvalidCounts,
    pub fec: FecCounts,
    /// Summed over substreams.
    pub packets: PacketCounts,
    pub frames: FrameCounts,
    pub jitter_us: f64,
    pub delay: Percentiles,
    /// Playout tick lateness (actual tick time minus deadline).
    pub tick_deviation: Percentiles,
    /// Lowest buffer level of the substreams that carry samples every frame.
    pub buffer_ms: f64,
    pub low_water_ms: f64,
    pub high_water_ms: f64,
    pub pauses: u64,
    pub resumes: u64,
    /// Received bits per second of media time played so far.
    pub bitrate_bps: f64,
    /// Repair bytes over source bytes received.
    pub fec_overhead: f64,
    /// Residual loss: unrecovered / expected.
    pub residual_loss: f64,
    /// The stream ended without its end-of-stream message.
    pub truncated: bool,
    /// Packets dropped between the network and the playout thread because
    /// the playout fell behind (should stay zero).
    pub playout_queue_drops: u64,
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
                    *d = SubstreamStats {
                        name,
                        ..s.scalars()
                    };
                    d.name.clone_from(&s.name);
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
            ..*self
        }
    }
}

/// What the sender did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SenderStats {
    pub frames: u64,
    pub samples: u64,
    pub source_packets: u64,
    pub repair_packets: u64,
    pub source_bytes: u64,
    pub repair_bytes: u64,
    /// FEC blocks closed: sources / blocks and repairs / blocks give the
    /// code really used (blocks close early at their time budget, and
    /// adaptive FEC changes m).
    pub fec_blocks: u64,
    /// Datagrams dropped before the network: past their deadline, or the
    /// send queue overflowed (live mode).
    pub dropped_expired: u64,
    pub dropped_overflow: u64,
    pub pauses: u64,
    pub resumes: u64,
    /// Repair bytes over source bytes sent.
    pub fec_overhead: f64,
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
