//! The playout pool: a few playout threads (one per core) serve every
//! receiving session of the process, whichever driver accepted it.
//!
//! A session is [`attach`]ed with its [`PlayoutParts`] (playout core, sink,
//! concealers, clock, the way back to the network side); the driver gets a
//! [`PlayoutInput`] to send it packets, end of stream and stop, and a
//! [`SessionEnded`] that resolves with how it ended.
//!
//! Each worker keeps its sessions in a deadline heap. A playing session is
//! served once a tick, at its next frame's absolute deadline: it takes the
//! packets that came meanwhile (stamped with their arrival on the network
//! side), plays what is due, sends credits and reports, publishes stats
//! (`try_lock` into a reused struct). Before playback starts, and for end of
//! stream and stop, the network side nudges the worker (a lock-free queue and
//! an unpark) so nothing waits for a timer. In steady state a worker does not
//! allocate, lock or block; sinks are called at playout instants and must not
//! block either. When playout is over the session hands its sink back
//! ([`Finished`]) instead of ending it: the sink's `end` may finish files (a
//! disk flush must not delay another session's tick), and the driver adds
//! its network counters first, so the sink and the driver report one
//! snapshot. A sink that panics ends its own session, truncated, and no
//! other.

mod heap;
mod session;
mod worker;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering, fence};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crossbeam_channel as cb;
use crossbeam_queue::ArrayQueue;
use isochron_codecs::Concealer;
use tokio::sync::{Notify, oneshot};

pub use heap::DeadlineHeap;

use super::clock::Clock;
use super::sink::{SessionEnd, Sink};
use crate::ingress::Via;
use crate::playout::Playout;
use crate::stats::ReceiverStats;
use crate::time::Time;
use crate::wire::control::{Control, EndOfStream};
use crate::wire::packet::SourceMeta;
use worker::{Worker, WorkerShared};

/// Largest payload a packet carries.
pub const PAYLOAD_CAP: usize = crate::wire::packet::MAX_DATAGRAM;

/// Messages a session's input holds before packets are dropped (counted by
/// the driver), for drivers without a limit of their own.
pub const INPUT_DEPTH: usize = 4096;

/// A source packet in a pooled buffer.
pub struct PacketMsg {
    /// When the datagram arrived (or FEC rebuilt it), core clock.
    pub arrival: Time,
    /// Its shard header.
    pub meta: SourceMeta,
    /// Arrived directly, rebuilt by FEC, or sent again.
    pub via: Via,
    /// Payload bytes used in `buf`.
    pub len: usize,
    /// A [`PAYLOAD_CAP`]-byte buffer from the [`Pool`]; returned there after
    /// use.
    pub buf: Box<[u8]>,
}

/// From the network side to the playout.
pub enum ToPlayout {
    /// A source packet to place.
    Packet(PacketMsg),
    /// The sender's end of stream: totals for the final account.
    End(EndOfStream),
    /// The connection is gone: finish now, the stream is truncated.
    Stop(String),
    /// The transport's round-trip estimate (file-mode flow control).
    Rtt(std::time::Duration),
}

/// Buffers shared by the two sides: taken by the network, returned here.
pub type Pool = Arc<ArrayQueue<Box<[u8]>>>;

/// What the playout publishes for readers of stats.
pub struct Shared {
    /// The latest statistics: playout part from the playout worker, ingress
    /// part from the network side.
    pub stats: Mutex<ReceiverStats>,
    /// The playout's clock mapping ([`Playout::anchor`]), `i64::MIN` until
    /// it is set: the network side's NACK planner times requests by it.
    pub anchor: AtomicI64,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            stats: Mutex::default(),
            anchor: AtomicI64::new(i64::MIN),
        }
    }
}

impl Shared {
    /// The playout's clock mapping, once set.
    pub fn anchor(&self) -> Option<i64> {
        Some(self.anchor.load(Ordering::Relaxed)).filter(|&a| a != i64::MIN)
    }
}

/// Everything a session's playout needs.
pub struct PlayoutParts {
    /// The session's name, for logs.
    pub name: String,
    /// The session's playout core.
    pub playout: Playout,
    /// Where played frames go.
    pub sink: Box<dyn Sink>,
    /// One per substream in catalog order; `None`: frames pass unconcealed
    /// (missing samples stay zero).
    pub concealers: Vec<Option<Concealer>>,
    /// The session's clock (speed factor applied).
    pub clock: Clock,
    /// Credits and reports for the network side to send; dropped if
    /// full (never blocks).
    pub to_net: cb::Sender<Control>,
    /// Notified after each message put on `to_net`.
    pub wake_net: Arc<Notify>,
    /// Where packet buffers go back.
    pub pool: Pool,
    /// Statistics for readers.
    pub shared: Arc<Shared>,
    /// Messages the network side may queue for the session (the
    /// receiver's `playout_queue` limit; [`INPUT_DEPTH`] without one).
    pub input_depth: usize,
}

/// Attach a session to the process's playout pool (see [`PlayoutPool::global`]).
pub fn attach(parts: PlayoutParts) -> std::io::Result<(PlayoutInput, SessionEnded)> {
    PlayoutPool::global()?.attach(parts)
}

/// How the network side reaches a session's worker (shared with it).
pub(crate) struct Signal {
    /// Packed (slot, generation) once the worker has registered the session.
    key: AtomicU64,
    /// A nudge is queued and not yet taken.
    nudged: AtomicBool,
    /// Playback has not started: packets should wake the worker.
    eager: AtomicBool,
    worker: Arc<WorkerShared>,
}

const UNREGISTERED: u64 = u64::MAX;

impl Signal {
    fn new(worker: Arc<WorkerShared>) -> Self {
        Self {
            key: AtomicU64::new(UNREGISTERED),
            nudged: AtomicBool::new(false),
            eager: AtomicBool::new(true),
            worker,
        }
    }

    pub(crate) fn set_eager(&self, eager: bool) {
        if self.eager.load(Ordering::Relaxed) != eager {
            self.eager.store(eager, Ordering::Relaxed);
        }
    }

    /// Make the worker serve the session soon. A session not registered yet
    /// is served as it registers, which happens after this message was
    /// queued (the fences order the two sides' accesses).
    fn nudge(&self) {
        fence(Ordering::SeqCst);
        let key = self.key.load(Ordering::SeqCst);
        if key == UNREGISTERED || self.nudged.swap(true, Ordering::SeqCst) {
            return;
        }
        if self.worker.nudges.push(key).is_err() {
            // Queue full (more sessions than it holds): the session's own
            // timer (at most the publish interval) serves it instead.
            self.nudged.store(false, Ordering::SeqCst);
            return;
        }
        self.worker.unpark();
    }
}

/// The network side's end of a session: packets, end of stream, stop.
/// Dropping it (every clone) stops the session (truncated: "the network
/// side went away").
#[derive(Clone)]
pub struct PlayoutInput {
    tx: cb::Sender<ToPlayout>,
    signal: Arc<Signal>,
}

impl PlayoutInput {
    /// Queue a message without blocking. Packets and round-trip updates are
    /// taken at the session's next tick (before playback starts, at once);
    /// end of stream and stop wake its worker. (An RTT update woke it too:
    /// ten extra serves and unparks a second per session, for a value only
    /// file-mode flow control reads, at its next tick.)
    pub fn try_send(&self, m: ToPlayout) -> Result<(), cb::TrySendError<ToPlayout>> {
        let urgent = !matches!(m, ToPlayout::Packet(_) | ToPlayout::Rtt(_));
        self.tx.try_send(m)?;
        if urgent || self.signal.eager.load(Ordering::Relaxed) {
            self.signal.nudge();
        }
        Ok(())
    }
}

impl Drop for PlayoutInput {
    fn drop(&mut self) {
        // The channel disconnects with the sender dropped below; the worker
        // sees it when it serves the session.
        let (tx, _) = cb::bounded(0);
        drop(std::mem::replace(&mut self.tx, tx));
        self.signal.nudge();
    }
}

/// A session whose playout is over, its sink not yet told: the driver
/// completes the statistics with its network counters, then calls
/// [`Finished::end`], so the sink and the driver's own report share one
/// snapshot.
pub struct Finished {
    /// How it ended; `stats` holds the playout's part and the network
    /// side's as last published.
    pub end: SessionEnd,
    /// The session's sink, still to be ended.
    pub sink: Box<dyn Sink>,
}

impl Finished {
    /// Put the final statistics in place and end the sink (which finalises
    /// files: this may block for a disk flush, so call it off the network
    /// thread). Returns what the sink saw.
    pub fn end(mut self, stats: ReceiverStats) -> SessionEnd {
        self.end.stats = ReceiverStats {
            truncated: self.end.truncated,
            ..stats
        };
        self.sink.end(&mut self.end);
        self.end
    }
}

/// Resolves with the session once its playout is over.
pub struct SessionEnded {
    rx: oneshot::Receiver<Finished>,
}

impl SessionEnded {
    /// The session if its playout is over, without waiting: `None` while it
    /// plays, `Some(None)` if the pool lost it.
    pub fn try_finished(&mut self) -> Option<Option<Finished>> {
        match self.rx.try_recv() {
            Ok(f) => Some(Some(f)),
            Err(oneshot::error::TryRecvError::Empty) => None,
            Err(oneshot::error::TryRecvError::Closed) => Some(None),
        }
    }

    /// Wait without a runtime (do not call from async code: await instead).
    pub fn wait(self) -> Option<Finished> {
        self.rx.blocking_recv().ok()
    }
}

impl std::future::Future for SessionEnded {
    /// `None` if the pool lost the session (it cannot in normal operation).
    type Output = Option<Finished>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.rx).poll(cx).map(Result::ok)
    }
}

/// Counters of a pool, for benchmarks: how often workers woke and how many
/// session serves those wake-ups did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Worker threads.
    pub workers: usize,
    /// Sessions attached now.
    pub sessions: usize,
    /// Worker wake-ups so far.
    pub wakeups: u64,
    /// Session serves so far.
    pub serves: u64,
}

/// A fixed set of playout workers.
pub struct PlayoutPool {
    workers: Vec<Arc<WorkerShared>>,
    stop: Arc<AtomicBool>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl PlayoutPool {
    /// The process's pool: one worker per core, started on first use, shared
    /// by every receiver and subscriber.
    pub fn global() -> std::io::Result<&'static PlayoutPool> {
        static POOL: OnceLock<PlayoutPool> = OnceLock::new();
        if let Some(p) = POOL.get() {
            return Ok(p);
        }
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        let pool = PlayoutPool::new(n)?;
        // A racing first use may have won: its pool is used, ours stops.
        Ok(POOL.get_or_init(|| pool))
    }

    /// A pool of `workers` playout threads (at least one).
    pub fn new(workers: usize) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let mut shared = Vec::new();
        for i in 0..workers.max(1) {
            let (w, ws) = Worker::new(stop.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("isochron-playout-{i}"))
                    .spawn(move || w.run())?,
            );
            shared.push(ws);
        }
        Ok(Self {
            workers: shared,
            stop,
            threads: Mutex::new(threads),
        })
    }

    /// Attach a session to the least loaded worker.
    pub fn attach(&self, parts: PlayoutParts) -> std::io::Result<(PlayoutInput, SessionEnded)> {
        if self.stop.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("the playout pool has stopped"));
        }
        let w = self
            .workers
            .iter()
            .min_by_key(|w| w.load.load(Ordering::Relaxed))
            .ok_or_else(|| std::io::Error::other("a playout pool without workers"))?;
        let (tx, rx) = cb::bounded(parts.input_depth.max(1));
        let (end_tx, end_rx) = oneshot::channel();
        let signal = Arc::new(Signal::new(w.clone()));
        w.load.fetch_add(1, Ordering::Relaxed);
        w.attach(session::Session::new(parts, rx, signal.clone()), end_tx);
        Ok((PlayoutInput { tx, signal }, SessionEnded { rx: end_rx }))
    }

    /// Counters summed over the workers.
    pub fn stats(&self) -> PoolStats {
        let mut s = PoolStats {
            workers: self.workers.len(),
            ..Default::default()
        };
        for w in &self.workers {
            s.sessions += w.load.load(Ordering::Relaxed);
            s.wakeups += w.wakeups.load(Ordering::Relaxed);
            s.serves += w.serves.load(Ordering::Relaxed);
        }
        s
    }
}

impl Drop for PlayoutPool {
    /// Sessions still attached end truncated ("the playout pool stopped")
    /// and are handed to their drivers; then the threads exit.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for w in &self.workers {
            w.unpark();
        }
        let threads = std::mem::take(self.threads.get_mut().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

/// How long the worker may sleep when nothing at all is scheduled.
const IDLE: Duration = Duration::from_secs(1);

/// Sessions in the worker's table are looked up with this.
fn pack(slot: u32, generation: u32) -> u64 {
    (slot as u64) << 32 | generation as u64
}

fn unpack(key: u64) -> (u32, u32) {
    ((key >> 32) as u32, key as u32)
}

#[cfg(test)]
mod tests;
