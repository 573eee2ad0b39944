//! Ingress: the receiver's network side. Validates datagrams, feeds the FEC
//! decoder, and hands every source packet (arrived or rebuilt) onwards.
//! Garbage is counted by reason and dropped; nothing here can panic on input.

use std::time::Duration;

use crate::arq::NackPlanner;
use crate::fec::FecDecoder;
use crate::stats::{FecCounts, InvalidCounts, NackCounts};
use crate::time::Time;
use crate::wire::control::SessionDesc;
use crate::wire::packet::{self, BlockPos, Kind, MAX_DATAGRAM, SourceMeta};

/// A rebuilt packet's block is not told apart (it came out of FEC).
const REBUILT: BlockPos = BlockPos {
    block: 0,
    index: 0,
    k: 0,
    m: 0,
};

/// How a source packet reached the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Its own datagram, first time.
    Direct,
    /// Rebuilt by FEC from the rest of its block.
    Rebuilt,
    /// Sent again by the sender on a NACK.
    Retransmitted,
}

/// Ingress counters.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct IngressStats {
    /// Datagrams offered, valid or not.
    pub datagrams: u64,
    /// Bytes of all datagrams offered.
    pub bytes: u64,
    /// Bytes of valid source datagrams of known substreams (whole datagrams).
    pub source_bytes: u64,
    /// Bytes of valid repair datagrams (whole datagrams).
    pub repair_bytes: u64,
    /// Valid retransmitted source datagrams of known substreams.
    pub retransmits: u64,
    /// Their bytes (whole datagrams).
    pub retransmit_bytes: u64,
    /// Datagrams refused, by reason.
    pub invalid: InvalidCounts,
    /// Arrival of the first datagram.
    pub first: Option<Time>,
    /// Arrival of the latest datagram.
    pub last: Option<Time>,
    /// Joined mid-stream: datagrams of FEC groups that began before the
    /// join, dropped.
    pub before_start: u64,
}

/// Mid-stream join: the FEC groups that began before the first datagram
/// seen cannot be made whole, so they are dropped until the first group
/// that began after it (block numbers count `depth` a group).
#[derive(Debug, Clone, Copy)]
struct JoinGate {
    depth: u32,
    /// The first block of the first whole group, once decided.
    from: Option<u32>,
}

impl JoinGate {
    fn admit(&mut self, kind: Kind, pos: BlockPos, media_ts: u64) -> bool {
        let d = self.depth.max(1);
        let from = *self.from.get_or_insert_with(|| {
            let group = pos.block - pos.block % d;
            if kind == Kind::Source && media_ts == 0 {
                // The stream's first frame: nothing was missed.
                group
            } else {
                group.wrapping_add(d)
            }
        });
        pos.block.wrapping_sub(from) as i32 >= 0
    }
}

/// The receiver's network side for one session: validation against the
/// catalog, then the [`FecDecoder`] (when the session has FEC), and the
/// [`NackPlanner`] (when it retransmits), which sees every packet that
/// arrives or is rebuilt.
pub struct Ingress {
    ids: Vec<u16>,
    decoder: Option<FecDecoder>,
    planner: Option<NackPlanner>,
    join: Option<JoinGate>,
    /// Deepest interleaving granted: repairs of deeper groups are refused.
    max_depth: u8,
    stats: IngressStats,
}

impl Ingress {
    /// `max_blocks`: FEC blocks open at once; `max_wait`: how long a FEC
    /// block may wait for its shards.
    pub fn new(session: &SessionDesc, max_blocks: usize, max_wait: Duration) -> Self {
        let mut ids: Vec<u16> = session.substreams.iter().map(|s| s.id).collect();
        ids.sort_unstable();
        Self {
            ids,
            decoder: session.fec.enabled().then(|| {
                let f = session.fec;
                FecDecoder::new(max_blocks, max_wait)
                    .limit_code(f.k as usize, f.max_repair() as usize)
            }),
            planner: None,
            join: None,
            max_depth: session.fec.depth.max(1),
            stats: IngressStats::default(),
        }
    }

    /// Ask for missing packets again with this planner (sessions whose
    /// recovery retransmits).
    pub fn set_planner(&mut self, planner: NackPlanner) {
        self.planner = Some(planner);
    }

    /// The NACK planner, if the session retransmits: the driver passes it
    /// the round trip and the playout's clock mapping, and polls it for
    /// NACK datagrams.
    pub fn planner(&mut self) -> Option<&mut NackPlanner> {
        self.planner.as_mut()
    }

    /// The NACK planner's counters (all 0 without retransmission).
    pub fn nack_counts(&self) -> NackCounts {
        self.planner
            .as_ref()
            .map(|p| p.counts())
            .unwrap_or_default()
    }

    /// This receiver joins a stream already running (fan-out): drop the FEC
    /// groups that began before it, so every block it decodes is whole.
    /// Pair with [`Playout::join_mid_stream`](crate::playout::Playout::join_mid_stream).
    pub fn join_mid_stream(&mut self, session: &SessionDesc) {
        if session.fec.enabled() {
            self.join = Some(JoinGate {
                depth: session.fec.depth.max(1) as u32,
                from: None,
            });
        }
    }

    /// Bytes [`new`](Self::new) may come to hold for `session` with
    /// `max_blocks` FEC blocks open at once.
    pub fn memory_for(session: &SessionDesc, max_blocks: usize) -> u64 {
        let f = session.fec;
        let fec = if f.enabled() {
            FecDecoder::memory(max_blocks, f.k as usize + f.max_repair() as usize)
        } else {
            0
        };
        fec + (session.substreams.len() * std::mem::size_of::<u16>()) as u64
    }

    /// Counters so far.
    pub fn stats(&self) -> IngressStats {
        self.stats
    }

    /// The FEC decoder's counters (all 0 without FEC).
    pub fn fec_counts(&self) -> FecCounts {
        self.decoder.as_ref().map(|d| d.stats()).unwrap_or_default()
    }

    /// Give up FEC blocks whose wait ran out.
    pub fn poll(&mut self, now: Time) {
        if let Some(d) = &mut self.decoder {
            d.expire(now);
        }
    }

    /// One datagram. `deliver(meta, payload, via)` receives each source
    /// packet: the datagram itself, and any packets its arrival let FEC
    /// rebuild.
    pub fn on_datagram(
        &mut self,
        now: Time,
        bytes: &[u8],
        deliver: &mut dyn FnMut(&SourceMeta, &[u8], Via),
    ) {
        let st = &mut self.stats;
        st.datagrams += 1;
        st.bytes += bytes.len() as u64;
        st.first.get_or_insert(now);
        st.last = Some(now);
        if bytes.len() > MAX_DATAGRAM {
            st.invalid.oversized += 1;
            return;
        }
        let Ok(p) = packet::parse(bytes) else {
            st.invalid.malformed += 1;
            return;
        };
        if let Some(g) = &mut self.join
            && !g.admit(p.kind, p.pos, p.meta.media_ts)
        {
            st.before_start += 1;
            return;
        }
        let known = |m: &SourceMeta| self.ids.binary_search(&m.substream).is_ok();
        let mut unknown = 0;
        match p.kind {
            Kind::Source => {
                if !known(&p.meta) {
                    st.invalid.unknown_substream += 1;
                    return;
                }
                let via = if p.retransmit {
                    st.retransmits += 1;
                    st.retransmit_bytes += bytes.len() as u64;
                    Via::Retransmitted
                } else {
                    st.source_bytes += bytes.len() as u64;
                    Via::Direct
                };
                deliver(&p.meta, p.payload, via);
                if let Some(pl) = &mut self.planner {
                    pl.on_source(now, &p.meta, p.pos, via);
                }
                if let Some(d) = &mut self.decoder {
                    let mut rebuilt =
                        rebuilt_sink(now, &self.ids, &mut self.planner, deliver, &mut unknown);
                    d.on_source(now, p.pos, p.shard, &mut rebuilt);
                    drop(rebuilt);
                    // A block without repairs has no slot to look for (the
                    // lookup scans them all, at every source packet).
                    if p.pos.m > 0 {
                        tell_hopeless(now, d, &mut self.planner, p.pos.block);
                    }
                }
            }
            Kind::Repair => {
                let Some(d) = &mut self.decoder else {
                    st.invalid.malformed += 1;
                    return;
                };
                // The repair's group byte is its group's depth (0 from
                // senders before automatic depth): deeper than granted, its
                // group may span more than the latency or buffers cover.
                if p.meta.group > self.max_depth {
                    st.invalid.too_deep += 1;
                    return;
                }
                st.repair_bytes += bytes.len() as u64;
                if let Some(pl) = &mut self.planner {
                    pl.on_repair(now, p.meta.sender_ts);
                }
                let mut rebuilt =
                    rebuilt_sink(now, &self.ids, &mut self.planner, deliver, &mut unknown);
                d.on_repair(now, p.pos, p.meta.frames as usize, p.payload, &mut rebuilt);
                drop(rebuilt);
                tell_hopeless(now, d, &mut self.planner, p.pos.block);
            }
        }
        self.stats.invalid.unknown_substream += unknown;
    }
}

/// A block FEC cannot rebuild: its gaps need not wait for it.
fn tell_hopeless(now: Time, d: &mut FecDecoder, planner: &mut Option<NackPlanner>, block: u32) {
    if let Some(pl) = planner
        && d.take_hopeless(block)
    {
        pl.on_hopeless(now, block);
    }
}

/// Forward rebuilt packets of known substreams (and tell the planner);
/// count the others.
fn rebuilt_sink<'a>(
    now: Time,
    ids: &'a [u16],
    planner: &'a mut Option<NackPlanner>,
    deliver: &'a mut dyn FnMut(&SourceMeta, &[u8], Via),
    unknown: &'a mut u64,
) -> impl FnMut(&SourceMeta, &[u8]) + 'a {
    move |m, payload| {
        if ids.binary_search(&m.substream).is_ok() {
            deliver(m, payload, Via::Rebuilt);
            if let Some(pl) = planner {
                pl.on_source(now, m, REBUILT, Via::Rebuilt);
            }
        } else {
            *unknown += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::tests::stereo48k;
    use crate::wire::control::{FecParams, Mode, Recovery};
    use crate::wire::packet::REPAIR_SUBSTREAM;

    /// A repair says its group's depth; one deeper than the grant is a
    /// counted drop, never a panic, and the decoder never sees it.
    #[test]
    fn repairs_of_a_group_deeper_than_granted_are_refused() {
        let session = SessionDesc {
            name: "t".into(),
            mode: Mode::Live,
            speed: 1.0,
            fec: FecParams {
                k: 4,
                m: 2,
                depth: 2,
                window_us: 10_000,
                auto_depth: true,
            },
            substreams: vec![stereo48k(0, 10_000)],
            recovery: Recovery::Fec,
        };
        let mut ing = Ingress::new(&session, 32, Duration::from_secs(1));
        let repair = |depth: u8| {
            let meta = SourceMeta {
                substream: REPAIR_SUBSTREAM,
                frames: 2,
                group: depth,
                ..SourceMeta::default()
            };
            let pos = BlockPos {
                block: depth as u32,
                index: 4,
                k: 4,
                m: 2,
            };
            let mut buf = vec![0u8; 200];
            let n = packet::encode(&mut buf, Kind::Repair, pos, &meta, &[0u8; 40]);
            buf.truncate(n);
            buf
        };
        let t = Time::from_micros(1000);
        for d in [3, 64, 255] {
            ing.on_datagram(t, &repair(d), &mut |_, _, _| {});
        }
        assert_eq!(ing.stats().invalid.too_deep, 3);
        assert_eq!(ing.fec_counts().repair_received, 0);
        for d in [0, 1, 2] {
            ing.on_datagram(t, &repair(d), &mut |_, _, _| {});
        }
        assert_eq!(ing.stats().invalid.too_deep, 3);
        assert_eq!(ing.fec_counts().repair_received, 3);
    }
}
