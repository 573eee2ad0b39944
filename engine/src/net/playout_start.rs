//! Starting a session's playout, and the network side's end of it: the one
//! place the fan-out driver hands a session to the shared playout pool
//! ([`playout_pool`]).

use std::sync::Arc;

use crossbeam_channel as cb;
use crossbeam_queue::ArrayQueue;
use isochron_codecs::{Concealer, Method};
use tokio::sync::Notify;

use super::clock::Clock;
use super::playout_pool::{
    self, INPUT_DEPTH, PAYLOAD_CAP, PacketMsg, PlayoutInput, PlayoutParts, Pool, SessionEnded,
    Shared, ToPlayout,
};
use super::sink::Sink;
use crate::catalog::MediaKind;
use crate::ingress::Via;
use crate::playout::Playout;
use crate::time::Time;
use crate::wire::control::{Control, SessionDesc};
use crate::wire::packet::SourceMeta;

/// One concealer per substream, by kind.
pub fn concealers(audio: Method, sensor: Method, session: &SessionDesc) -> Vec<Option<Concealer>> {
    session
        .substreams
        .iter()
        .map(|d| {
            let method = match d.kind {
                MediaKind::Audio => audio,
                MediaKind::Sensor => sensor,
            };
            Concealer::for_frame_duration(method, d.format, d.frame_us as u64).ok()
        })
        .collect()
}

/// The network side's handle on a session's playout.
pub struct PlayoutLink {
    /// Packets, end of stream, stop.
    pub tx: PlayoutInput,
    /// Packet buffers, recycled.
    pub pool: Pool,
    /// PAUSE, RESUME and reports the playout wants sent.
    pub from_playout: cb::Receiver<Control>,
    /// Notified when `from_playout` has something.
    pub wake: Arc<Notify>,
    /// Statistics both sides fill.
    pub shared: Arc<Shared>,
    /// Packets dropped because the playout fell behind.
    pub queue_drops: u64,
}

impl PlayoutLink {
    /// Hand one source packet to the playout, never blocking (a full queue
    /// drops it, counted).
    pub fn packet(&mut self, arrival: Time, meta: &SourceMeta, payload: &[u8], via: Via) {
        let mut buf = self
            .pool
            .pop()
            .unwrap_or_else(|| vec![0u8; PAYLOAD_CAP].into_boxed_slice());
        let len = payload.len().min(PAYLOAD_CAP);
        buf[..len].copy_from_slice(&payload[..len]);
        let msg = ToPlayout::Packet(PacketMsg {
            arrival,
            meta: *meta,
            via,
            len,
            buf,
        });
        if let Err(cb::TrySendError::Full(ToPlayout::Packet(m))) = self.tx.try_send(msg) {
            self.queue_drops += 1;
            let _ = self.pool.push(m.buf);
        }
    }
}

/// Start playing a session: `playout` core, `sink`, concealers, on the
/// session's clock, on the process's playout pool. Returns the network
/// side's link and what resolves with the finished session (its sink still
/// to be ended with the final statistics, [`playout_pool::Finished::end`]).
pub fn start(
    name: String,
    playout: Playout,
    sink: Box<dyn Sink>,
    concealers: Vec<Option<Concealer>>,
    clock: Clock,
) -> std::io::Result<(PlayoutLink, SessionEnded)> {
    let (ctl_tx, ctl_rx) = cb::bounded::<Control>(64);
    let wake = Arc::new(Notify::new());
    let pool: Pool = Arc::new(ArrayQueue::new(INPUT_DEPTH + 64));
    let shared = Arc::new(Shared::default());
    let (tx, ended) = playout_pool::attach(PlayoutParts {
        name,
        playout,
        sink,
        concealers,
        clock,
        input_depth: INPUT_DEPTH,
        to_net: ctl_tx,
        wake_net: wake.clone(),
        pool: pool.clone(),
        shared: shared.clone(),
    })?;
    Ok((
        PlayoutLink {
            tx,
            pool,
            from_playout: ctl_rx,
            wake,
            shared,
            queue_drops: 0,
        },
        ended,
    ))
}
