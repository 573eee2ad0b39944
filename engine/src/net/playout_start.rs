//! Starting a session's playout, and the network side's end of it: the one
//! place a driver hands a session to the playout (today a thread per
//! session, [`playout_thread`]).

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel as cb;
use crossbeam_queue::ArrayQueue;
use isochron_codecs::{Concealer, Method};
use tokio::sync::Notify;

use super::clock::Clock;
use super::playout_thread::{
    self, Finished, PAYLOAD_CAP, PacketMsg, PlayoutParts, Pool, Shared, ToPlayout,
};
use super::sink::Sink;
use crate::catalog::MediaKind;
use crate::playout::Playout;
use crate::time::Time;
use crate::wire::control::{Control, SessionDesc};
use crate::wire::packet::SourceMeta;

/// Packets that may wait between the network and the playout.
const DEPTH: usize = 4096;

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
    pub tx: cb::Sender<ToPlayout>,
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
    pub fn packet(&mut self, arrival: Time, meta: &SourceMeta, payload: &[u8], recovered: bool) {
        let mut buf = self
            .pool
            .pop()
            .unwrap_or_else(|| vec![0u8; PAYLOAD_CAP].into_boxed_slice());
        let len = payload.len().min(PAYLOAD_CAP);
        buf[..len].copy_from_slice(&payload[..len]);
        let msg = ToPlayout::Packet(PacketMsg {
            arrival,
            meta: *meta,
            recovered,
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
/// session's clock. Returns the network side's link and the thread, which
/// returns the finished session (its sink still to be ended with the final
/// statistics, [`Finished::end`]).
pub fn start(
    name: String,
    playout: Playout,
    sink: Box<dyn Sink>,
    concealers: Vec<Option<Concealer>>,
    clock: Clock,
) -> std::io::Result<(PlayoutLink, JoinHandle<Finished>)> {
    let (tx, rx) = cb::bounded::<ToPlayout>(DEPTH);
    let (ctl_tx, ctl_rx) = cb::bounded::<Control>(64);
    let wake = Arc::new(Notify::new());
    let pool: Pool = Arc::new(ArrayQueue::new(DEPTH + 64));
    let shared = Arc::new(Shared::default());
    let handle = playout_thread::spawn(PlayoutParts {
        name,
        playout,
        sink,
        concealers,
        clock,
        rx,
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
        handle,
    ))
}
