//! A playout worker: one thread, its sessions in a deadline heap.
//!
//! Each wake-up takes new sessions and nudges, then serves, in deadline
//! order, every session due, and sleeps (`park_timeout`, 1 ns timer slack)
//! until the earliest next deadline. Sessions are boxed in a slot table
//! that only grows when more attach than ever before, so steady state does
//! not allocate.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::Instant;

use crossbeam_channel as cb;
use crossbeam_queue::ArrayQueue;
use tokio::sync::oneshot;

use super::Finished;
use super::session::{Session, Step};
use super::{DeadlineHeap, IDLE, pack, unpack};

/// Nudges a worker holds before they fall back to the sessions' timers.
const NUDGES: usize = 16 * 1024;

/// What the other threads share with a worker.
pub(crate) struct WorkerShared {
    pub(super) nudges: ArrayQueue<u64>,
    attach: cb::Sender<(Box<Session>, oneshot::Sender<Finished>)>,
    thread: OnceLock<Thread>,
    /// Sessions attached (for balancing).
    pub(super) load: AtomicUsize,
    pub(super) wakeups: AtomicU64,
    pub(super) serves: AtomicU64,
}

impl WorkerShared {
    pub(super) fn set_thread(&self, t: Thread) {
        let _ = self.thread.set(t);
    }

    pub(super) fn unpark(&self) {
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
    }

    pub(super) fn attach(&self, s: Session, end: oneshot::Sender<Finished>) {
        // The worker holds the receiver for as long as the pool lives.
        let _ = self.attach.send((Box::new(s), end));
        self.unpark();
    }
}

struct Slot {
    generation: u32,
    session: Option<(Box<Session>, oneshot::Sender<Finished>)>,
}

/// The worker thread's own state.
pub(super) struct Worker {
    shared: Arc<WorkerShared>,
    attach: cb::Receiver<(Box<Session>, oneshot::Sender<Finished>)>,
    stop: Arc<AtomicBool>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    heap: DeadlineHeap,
    epoch: Instant,
}

impl Worker {
    pub(super) fn new(stop: Arc<AtomicBool>) -> (Self, Arc<WorkerShared>) {
        let (tx, rx) = cb::unbounded();
        let shared = Arc::new(WorkerShared {
            nudges: ArrayQueue::new(NUDGES),
            attach: tx,
            thread: OnceLock::new(),
            load: AtomicUsize::new(0),
            wakeups: AtomicU64::new(0),
            serves: AtomicU64::new(0),
        });
        let w = Self {
            shared: shared.clone(),
            attach: rx,
            stop,
            slots: Vec::with_capacity(256),
            free: Vec::with_capacity(256),
            heap: DeadlineHeap::with_capacity(256),
            epoch: Instant::now(),
        };
        (w, shared)
    }

    fn at(&self, i: Instant) -> u64 {
        i.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    pub(super) fn run(mut self) {
        // Before the first look at the queues: an attach from now on wakes us.
        self.shared.set_thread(std::thread::current());
        crate::net::priority::raise(crate::net::priority::Urgency::Playout);
        loop {
            self.shared.wakeups.fetch_add(1, Ordering::Relaxed);
            if self.stop.load(Ordering::SeqCst) {
                self.stop_all();
                return;
            }
            let now = self.at(Instant::now());
            while let Ok((s, end)) = self.attach.try_recv() {
                self.register(s, end, now);
            }
            while let Some(key) = self.shared.nudges.pop() {
                let (slot, generation) = unpack(key);
                if let Some(Slot {
                    generation: g,
                    session: Some((s, _)),
                }) = self.slots.get(slot as usize)
                    && *g == generation
                {
                    s.signal.nudged.store(false, Ordering::SeqCst);
                    self.heap.schedule_by(slot, now);
                }
            }
            fence(Ordering::SeqCst);
            let now = self.at(Instant::now());
            while let Some(slot) = self.heap.pop_due(now) {
                self.serve(slot);
            }
            let until = match self.heap.peek() {
                Some((at, _)) => self.epoch + std::time::Duration::from_nanos(at),
                None => Instant::now() + IDLE,
            };
            let left = until.saturating_duration_since(Instant::now());
            if !left.is_zero() {
                std::thread::park_timeout(left);
            }
        }
    }

    fn register(&mut self, s: Box<Session>, end: oneshot::Sender<Finished>, now: u64) {
        let slot = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    session: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let entry = &mut self.slots[slot as usize];
        entry.generation = entry.generation.wrapping_add(1);
        s.signal
            .key
            .store(pack(slot, entry.generation), Ordering::SeqCst);
        entry.session = Some((s, end));
        self.heap.schedule(slot, now);
    }

    fn serve(&mut self, slot: u32) {
        let Some((s, _)) = self.slots[slot as usize].session.as_mut() else {
            return;
        };
        self.shared.serves.fetch_add(1, Ordering::Relaxed);
        let step = match catch_unwind(AssertUnwindSafe(|| s.serve())) {
            Ok(step) => step,
            Err(p) => {
                let why = format!("the playout panicked: {}", panic_text(&p));
                tracing::error!(session = %s.name, "{why}");
                Step::Done(true, why)
            }
        };
        match step {
            Step::At(i) => {
                let at = self.at(i);
                self.heap.schedule(slot, at);
            }
            Step::Done(truncated, reason) => self.end(slot, truncated, reason),
        }
    }

    fn end(&mut self, slot: u32, truncated: bool, reason: String) {
        self.heap.remove(slot);
        let Some((s, reply)) = self.slots[slot as usize].session.take() else {
            return;
        };
        s.signal.key.store(super::UNREGISTERED, Ordering::SeqCst);
        self.free.push(slot);
        self.shared.load.fetch_sub(1, Ordering::Relaxed);
        // Not steady state: the final publish waits for the lock, and the
        // session's memory is freed here.
        match catch_unwind(AssertUnwindSafe(move || s.finish(truncated, reason))) {
            Ok(f) => {
                let _ = reply.send(f);
            }
            Err(p) => tracing::error!("a session's final statistics panicked: {}", panic_text(&p)),
        }
    }

    fn stop_all(&mut self) {
        while let Ok((s, end)) = self.attach.try_recv() {
            self.register(s, end, 0);
        }
        for slot in 0..self.slots.len() as u32 {
            self.end(slot, true, "the playout pool stopped".into());
        }
    }
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown cause".into())
}
