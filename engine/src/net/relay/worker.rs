//! The relay's event loop, on one current-thread runtime.
//!
//! Tasks: one reads the listen socket (client -> upstream), one per client
//! reads that client's upstream socket (upstream -> client), one delivers
//! due packets, one forgets idle clients. They share [`Core`] behind a mutex
//! that is only contended by [`RelayHandle::stats`](super::RelayHandle::stats)
//! and never held across an await.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use socket2::SockRef;
use tokio::net::UdpSocket;
use tokio::sync::{Notify, oneshot};
use tokio::task::AbortHandle;
use tracing::debug;

use super::queue::{DelayQueue, Full};
use super::timer::Timer;
use super::{Lateness, RelayConfig, RelayLimits, RelayStats, socket};
use crate::sim::impair::Impairer;
use crate::time::Time;

/// Datagrams handled per wake-up before a task yields, so a flood in one
/// direction cannot hold back deliveries in the other.
const BATCH: usize = 64;
/// Largest UDP payload, rounded up: no datagram is ever truncated.
const MAX_DATAGRAM: usize = 65_536;

/// What the relay thread hands back once it is bound.
pub(super) struct Ready {
    pub(super) local_addr: SocketAddr,
    pub(super) started: Instant,
    pub(super) core: Arc<Mutex<Core>>,
}

/// The relay's timeline: [`Time`] in microseconds since its start, which is
/// also the origin of scheduled outages.
#[derive(Clone, Copy)]
struct Clock {
    origin: Instant,
}

impl Clock {
    fn now(&self) -> Time {
        Time::from_micros(u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX))
    }

    fn instant(&self, t: Time) -> Instant {
        let d = Duration::from_micros(t.as_micros());
        // Absurd delays saturate to "in a few decades" instead of panicking.
        self.origin
            .checked_add(d)
            .unwrap_or_else(|| self.origin + Duration::from_secs(1 << 30))
    }
}

/// Everything the tasks share.
struct Ctx {
    listen: UdpSocket,
    upstream: SocketAddr,
    clock: Clock,
    core: Arc<Mutex<Core>>,
    /// Tells the delivery task a packet now comes due earlier than it thought.
    wake: Notify,
}

impl Ctx {
    fn core(&self) -> MutexGuard<'_, Core> {
        lock(&self.core)
    }
}

/// Lock the core even if a panic poisoned it: its counters stay meaningful.
pub(super) fn lock(core: &Mutex<Core>) -> MutexGuard<'_, Core> {
    core.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One direction: its own impairment and its own in-flight queue.
struct Direction<D> {
    impairer: Impairer,
    queue: DelayQueue<D>,
}

impl<D: Clone> Direction<D> {
    /// Decide the packet's fate and queue each copy; returns whether the
    /// delivery timer must be brought forward.
    fn admit(&mut self, now: Time, data: Bytes, dest: D, queue_drops: &mut u64) -> bool {
        let fate = self.impairer.decide(now, data.len());
        let mut earliest = false;
        for at in fate.at.into_iter().flatten() {
            match self.queue.push(at, data.clone(), dest.clone()) {
                Ok(e) => earliest |= e,
                Err(Full) => *queue_drops += 1,
            }
        }
        earliest
    }
}

struct Client {
    socket: Arc<UdpSocket>,
    last_seen: Time,
    reader: AbortHandle,
}

impl Drop for Client {
    /// Forgetting a client stops its reader; packets still in flight towards
    /// the upstream keep the socket alive until they are sent.
    fn drop(&mut self) {
        self.reader.abort();
    }
}

#[derive(Default)]
struct Counters {
    clients_seen: u64,
    clients_evicted: u64,
    refused: u64,
    queue_drops: u64,
    unreachable: u64,
    send_errors: u64,
    recv_errors: u64,
}

/// The relay's state: both directions, the client table and the counters.
pub(super) struct Core {
    forward: Direction<Arc<UdpSocket>>,
    backward: Direction<SocketAddr>,
    clients: HashMap<SocketAddr, Client>,
    limits: RelayLimits,
    counters: Counters,
    /// Actual minus scheduled send time, in nanoseconds.
    lateness: Histogram<u64>,
    precise_timer: bool,
    /// One receive buffer for all sockets: the tasks take turns under the lock.
    scratch: Box<[u8]>,
    /// The statistics at the moment the relay stopped.
    stopped: Option<RelayStats>,
}

/// What the delivery task should wait for.
enum Next {
    /// Nothing in flight: wait for a packet.
    Idle,
    /// The earliest packet is due then.
    At(Time),
    /// Packets are still due but the batch is spent: yield, then go on.
    Busy,
}

impl Core {
    fn new(cfg: &RelayConfig, limits: RelayLimits) -> Self {
        let (fs, bs) = cfg.direction_seeds();
        Self {
            forward: Direction {
                impairer: Impairer::new(cfg.forward.clone(), fs, Time::ZERO),
                queue: DelayQueue::new(limits.max_in_flight_packets, limits.max_in_flight_bytes),
            },
            backward: Direction {
                impairer: Impairer::new(cfg.backward.clone(), bs, Time::ZERO),
                queue: DelayQueue::new(limits.max_in_flight_packets, limits.max_in_flight_bytes),
            },
            clients: HashMap::new(),
            limits,
            counters: Counters::default(),
            // 1 ns .. 1 h at 2 significant digits: about 30 KiB.
            lateness: Histogram::new_with_bounds(1, 3_600_000_000_000, 2)
                .expect("constant histogram bounds are valid"),
            precise_timer: false,
            scratch: vec![0; MAX_DATAGRAM].into_boxed_slice(),
            stopped: None,
        }
    }

    pub(super) fn stats(&self) -> RelayStats {
        if let Some(s) = self.stopped {
            return s;
        }
        let h = &self.lateness;
        let ns = Duration::from_nanos;
        RelayStats {
            forward: self.forward.impairer.stats(),
            backward: self.backward.impairer.stats(),
            clients: self.clients.len(),
            clients_seen: self.counters.clients_seen,
            clients_evicted: self.counters.clients_evicted,
            refused: self.counters.refused,
            queue_drops: self.counters.queue_drops,
            unreachable: self.counters.unreachable,
            send_errors: self.counters.send_errors,
            recv_errors: self.counters.recv_errors,
            in_flight: self.forward.queue.len() + self.backward.queue.len(),
            lateness: Lateness {
                samples: h.len(),
                p50: ns(h.value_at_quantile(0.5)),
                p99: ns(h.value_at_quantile(0.99)),
                max: ns(h.max()),
                precise_timer: self.precise_timer,
            },
        }
    }

    /// Drain the listen socket (up to a batch). Returns (wake the delivery
    /// task, more may be waiting).
    fn receive_forward(&mut self, ctx: &Arc<Ctx>) -> (bool, bool) {
        let mut wake = false;
        for _ in 0..BATCH {
            let (n, from) = match ctx.listen.try_recv_from(&mut self.scratch) {
                Ok(v) => v,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (wake, false),
                Err(e) => {
                    self.count_recv_error(&e);
                    debug!("relay: receive from clients: {e}");
                    continue;
                }
            };
            let now = ctx.clock.now();
            let data = Bytes::copy_from_slice(&self.scratch[..n]);
            let Some(socket) = self.client_socket(ctx, from, now) else {
                continue;
            };
            wake |= self
                .forward
                .admit(now, data, socket, &mut self.counters.queue_drops);
        }
        (wake, true)
    }

    /// Drain one client's upstream socket (up to a batch).
    fn receive_backward(
        &mut self,
        ctx: &Ctx,
        client: SocketAddr,
        socket: &UdpSocket,
    ) -> (bool, bool) {
        let mut wake = false;
        for _ in 0..BATCH {
            let n = match socket.try_recv(&mut self.scratch) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (wake, false),
                Err(e) => {
                    self.count_recv_error(&e);
                    debug!("relay: receive from upstream for {client}: {e}");
                    continue;
                }
            };
            let now = ctx.clock.now();
            if let Some(c) = self.clients.get_mut(&client) {
                c.last_seen = now;
            }
            let data = Bytes::copy_from_slice(&self.scratch[..n]);
            wake |= self
                .backward
                .admit(now, data, client, &mut self.counters.queue_drops);
        }
        (wake, true)
    }

    /// The upstream socket for `from`, opened (and its reader started) on
    /// first sight unless the table is full.
    fn client_socket(
        &mut self,
        ctx: &Arc<Ctx>,
        from: SocketAddr,
        now: Time,
    ) -> Option<Arc<UdpSocket>> {
        if let Some(c) = self.clients.get_mut(&from) {
            c.last_seen = now;
            return Some(c.socket.clone());
        }
        if self.clients.len() >= self.limits.max_clients {
            self.sweep(now);
        }
        if self.clients.len() >= self.limits.max_clients {
            self.counters.refused += 1;
            debug!("relay: client table full, dropping a datagram from {from}");
            return None;
        }
        let socket = match socket::upstream(ctx.upstream) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                self.counters.refused += 1;
                debug!("{e}; dropping a datagram from {from}");
                return None;
            }
        };
        let reader = tokio::spawn(backward_loop(ctx.clone(), from, socket.clone()));
        self.counters.clients_seen += 1;
        self.clients.insert(
            from,
            Client {
                socket: socket.clone(),
                last_seen: now,
                reader: reader.abort_handle(),
            },
        );
        Some(socket)
    }

    /// Forget clients idle (no datagram either way) for the idle timeout.
    fn sweep(&mut self, now: Time) {
        let idle = self.limits.idle_timeout;
        let before = self.clients.len();
        self.clients
            .retain(|_, c| now.saturating_since(c.last_seen) < idle);
        self.counters.clients_evicted += (before - self.clients.len()) as u64;
    }

    /// Send every due packet (up to a batch), earliest first across both
    /// directions, and say what to wait for next.
    fn deliver_due(&mut self, ctx: &Ctx) -> Next {
        for _ in 0..BATCH {
            let heads = [self.forward.queue.next_at(), self.backward.queue.next_at()];
            let Some(at) = heads.iter().flatten().min().copied() else {
                return Next::Idle;
            };
            let now = ctx.clock.now();
            if at > now {
                return Next::At(at);
            }
            // Straight to the kernel: tokio's `try_send` refuses until it has
            // seen a writable event, which a fresh socket has not had yet.
            let sent = if heads[0] == Some(at) {
                let Some((_, data, socket)) = self.forward.queue.pop_due(now) else {
                    continue;
                };
                let sock = SockRef::from(socket.as_ref());
                self.retry_stale(|| sock.send(&data))
            } else {
                let Some((_, data, client)) = self.backward.queue.pop_due(now) else {
                    continue;
                };
                let sock = SockRef::from(&ctx.listen);
                self.retry_stale(|| sock.send_to(&data, &client.into()))
            };
            let late = Instant::now().saturating_duration_since(ctx.clock.instant(at));
            self.lateness
                .saturating_record(u64::try_from(late.as_nanos()).unwrap_or(u64::MAX));
            if let Err(e) = sent {
                // A full socket buffer, no route, ...: count it, carry on.
                self.counters.send_errors += 1;
                debug!("relay: send: {e}");
            }
        }
        Next::Busy
    }

    /// Send, and if the kernel reports an ICMP error left by an earlier
    /// datagram (it does so on the next send, without sending), count it and
    /// send again: a stale error must not cost this datagram.
    fn retry_stale(&mut self, send: impl Fn() -> io::Result<usize>) -> io::Result<usize> {
        match send() {
            Err(e) if is_unreachable(&e) => {
                self.counters.unreachable += 1;
                send()
            }
            sent => sent,
        }
    }

    fn count_recv_error(&mut self, e: &io::Error) {
        if is_unreachable(e) {
            self.counters.unreachable += 1;
        } else {
            self.counters.recv_errors += 1;
        }
    }

    /// Keep the final statistics, then drop sockets and packets while the
    /// runtime still exists.
    fn shutdown(&mut self) {
        self.stopped = Some(self.stats());
        self.clients.clear();
        self.forward.queue.clear();
        self.backward.queue.clear();
    }
}

/// An ICMP error reported on a socket (Linux reports them on connected UDP
/// sockets only).
fn is_unreachable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
    )
}

async fn forward_loop(ctx: Arc<Ctx>) {
    loop {
        if let Err(e) = ctx.listen.readable().await {
            debug!("relay: listen socket: {e}");
        }
        let (wake, more) = ctx.core().receive_forward(&ctx);
        if wake {
            ctx.wake.notify_one();
        }
        if more {
            tokio::task::yield_now().await;
        }
    }
}

async fn backward_loop(ctx: Arc<Ctx>, client: SocketAddr, socket: Arc<UdpSocket>) {
    loop {
        if let Err(e) = socket.readable().await {
            debug!("relay: upstream socket for {client}: {e}");
        }
        let (wake, more) = ctx.core().receive_backward(&ctx, client, &socket);
        if wake {
            ctx.wake.notify_one();
        }
        if more {
            tokio::task::yield_now().await;
        }
    }
}

async fn deliver_loop(ctx: Arc<Ctx>) {
    let timer = Timer::new();
    ctx.core().precise_timer = timer.precise();
    loop {
        let next = ctx.core().deliver_due(&ctx);
        match next {
            Next::Idle => ctx.wake.notified().await,
            Next::Busy => tokio::task::yield_now().await,
            Next::At(at) => {
                tokio::select! {
                    () = timer.sleep_until(ctx.clock.instant(at)) => {}
                    () = ctx.wake.notified() => {}
                }
            }
        }
    }
}

async fn sweep_loop(ctx: Arc<Ctx>, period: Duration) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = ctx.clock.now();
        ctx.core().sweep(now);
    }
}

/// The relay thread: bind, report readiness (or the error), run until told
/// to stop or the handle is gone.
pub(super) fn run(
    cfg: RelayConfig,
    limits: RelayLimits,
    ready: SyncSender<io::Result<Ready>>,
    stop: oneshot::Receiver<()>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let e = io::Error::new(e.kind(), format!("relay: cannot start its runtime: {e}"));
            let _ = ready.send(Err(e));
            return;
        }
    };
    rt.block_on(async move {
        let bound = socket::listen(cfg.listen).and_then(|s| {
            let addr = s.local_addr()?;
            Ok((s, addr))
        });
        let (listen, local_addr) = match bound {
            Ok(v) => v,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let clock = Clock {
            origin: Instant::now(),
        };
        let core = Arc::new(Mutex::new(Core::new(&cfg, limits)));
        let ctx = Arc::new(Ctx {
            listen,
            upstream: cfg.upstream,
            clock,
            core: core.clone(),
            wake: Notify::new(),
        });
        let sweep_every =
            (limits.idle_timeout / 4).clamp(Duration::from_millis(1), Duration::from_secs(1));
        tokio::spawn(forward_loop(ctx.clone()));
        tokio::spawn(deliver_loop(ctx.clone()));
        tokio::spawn(sweep_loop(ctx.clone(), sweep_every));
        let started = clock.origin;
        if ready
            .send(Ok(Ready {
                local_addr,
                started,
                core,
            }))
            .is_err()
        {
            return;
        }
        // A dropped handle stops the relay too.
        let _ = stop.await;
        ctx.core().shutdown();
    });
    // Dropping the runtime cancels the tasks.
}
