//! Ingress: the receiver's network side. Validates datagrams, feeds the FEC
//! decoder, and hands every source packet (arrived or rebuilt) onwards.
//! Garbage is counted by reason and dropped; nothing here can panic on input.

use std::time::Duration;

use crate::fec::FecDecoder;
use crate::stats::{FecCounts, InvalidCounts};
use crate::time::Time;
use crate::wire::control::SessionDesc;
use crate::wire::packet::{self, Kind, MAX_DATAGRAM, SourceMeta};

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
    /// Datagrams refused, by reason.
    pub invalid: InvalidCounts,
    /// Arrival of the first datagram.
    pub first: Option<Time>,
    /// Arrival of the latest datagram.
    pub last: Option<Time>,
}

/// The receiver's network side for one session: validation against the
/// catalog, then the [`FecDecoder`] (when the session has FEC).
pub struct Ingress {
    ids: Vec<u16>,
    decoder: Option<FecDecoder>,
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
            stats: IngressStats::default(),
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

    /// One datagram. `deliver(meta, payload, recovered)` receives each source
    /// packet: the datagram itself, and any packets its arrival let FEC
    /// rebuild.
    pub fn on_datagram(
        &mut self,
        now: Time,
        bytes: &[u8],
        deliver: &mut dyn FnMut(&SourceMeta, &[u8], bool),
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
        let known = |m: &SourceMeta| self.ids.binary_search(&m.substream).is_ok();
        let mut unknown = 0;
        match p.kind {
            Kind::Source => {
                if !known(&p.meta) {
                    st.invalid.unknown_substream += 1;
                    return;
                }
                st.source_bytes += bytes.len() as u64;
                deliver(&p.meta, p.payload, false);
                if let Some(d) = &mut self.decoder {
                    let mut rebuilt = rebuilt_sink(&self.ids, deliver, &mut unknown);
                    d.on_source(now, p.pos, p.shard, &mut rebuilt);
                }
            }
            Kind::Repair => {
                let Some(d) = &mut self.decoder else {
                    st.invalid.malformed += 1;
                    return;
                };
                st.repair_bytes += bytes.len() as u64;
                let mut rebuilt = rebuilt_sink(&self.ids, deliver, &mut unknown);
                d.on_repair(now, p.pos, p.meta.frames as usize, p.payload, &mut rebuilt);
            }
        }
        self.stats.invalid.unknown_substream += unknown;
    }
}

/// Forward rebuilt packets of known substreams; count the others.
fn rebuilt_sink<'a>(
    ids: &'a [u16],
    deliver: &'a mut dyn FnMut(&SourceMeta, &[u8], bool),
    unknown: &'a mut u64,
) -> impl FnMut(&SourceMeta, &[u8]) + 'a {
    move |m, payload| {
        if ids.binary_search(&m.substream).is_ok() {
            deliver(m, payload, true);
        } else {
            *unknown += 1;
        }
    }
}
