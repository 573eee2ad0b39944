//! The receiving side over QUIC: the receiver is the QUIC server and takes
//! several sending sessions at once, each independent.
//!
//! The network thread (a current-thread tokio runtime) accepts connections,
//! answers hellos, runs each session's ingress (validation and FEC) and its
//! control stream. Each accepted session is attached to the process's
//! playout pool (see [`crate::net::playout_pool`]), fed through a bounded
//! channel.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel as cb;
use crossbeam_queue::ArrayQueue;
use isochron_codecs::{Concealer, Method};
use quinn::{Connection, Endpoint, EndpointConfig, Incoming, TokioRuntime};
use tokio::sync::{Notify, watch};

use super::control_stream::{self, ControlReader, connection_end};
use super::transport;
use crate::catalog::MediaKind;
use crate::config::ReceiverConfig;
use crate::handshake;
use crate::ingress::Ingress;
use crate::limits::{Attempts, Limits, Usage, UsageError};
use crate::net::clock::Clock;
use crate::net::error::TransportError;
use crate::net::playout_pool::{
    self, PAYLOAD_CAP, PacketMsg, PlayoutParts, Pool, Shared, ToPlayout,
};
use crate::net::sink::{SessionEnd, Sink};
use crate::net::socket;
use crate::net::tls::{self, Admission, Fingerprint, Gate, Identity};
use crate::playout::Playout;
use crate::receiver::{fill_ingress_stats, new_ingress};
use crate::stats::ReceiverStats;
use crate::time::Time;
use crate::wire::control::{Accept, Control, Reject, RejectReason, Report, SessionDesc};

/// How the receiver listens and plays.
#[derive(Debug, Clone)]
pub struct ReceiverOptions {
    /// Address to listen on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Which senders are admitted, by the fingerprint of the client
    /// certificate they present. Others are refused before their hello is
    /// read, with a reject naming the command that would admit them.
    pub admission: Admission,
    /// Latency, water marks and limits applied to every session.
    pub config: ReceiverConfig,
    /// A connection silent this long is dead, and a session that receives
    /// no media for this long is closed: its session ends truncated.
    pub idle_timeout: Duration,
    /// Concealment for audio substreams.
    pub conceal_audio: Method,
    /// Concealment for sensor substreams.
    pub conceal_sensor: Method,
    /// What a peer may make the receiver spend.
    pub limits: Limits,
}

impl ReceiverOptions {
    /// Defaults for listening on `listen` and admitting the senders
    /// `admission` lists: default [`ReceiverConfig`] and [`Limits`], 5 s
    /// idle timeout, waveform audio and linear sensor concealment.
    pub fn new(listen: SocketAddr, admission: Admission) -> Self {
        Self {
            listen,
            admission,
            config: ReceiverConfig::default(),
            idle_timeout: Duration::from_secs(5),
            conceal_audio: Method::Waveform,
            conceal_sensor: Method::Linear,
            limits: Limits::default(),
        }
    }
}

/// An accepted session.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// Unique on this receiver (counts from 1); also the accept's
    /// `session_id`.
    pub id: u64,
    /// The sender's address.
    pub peer: SocketAddr,
    /// The sender's identity: the fingerprint of its client certificate.
    pub sender: Fingerprint,
    /// The session the sender proposed.
    pub session: SessionDesc,
    /// The terms the receiver accepted it on.
    pub accept: Accept,
}

/// What happens on a receiver, in order.
#[derive(Debug, Clone)]
pub enum ReceiverEvent {
    /// A session was accepted and its playout started.
    Started(SessionInfo),
    /// A session ended (complete or truncated); its sink has finished.
    Ended {
        /// The session.
        info: SessionInfo,
        /// How it ended, with final statistics and files written.
        end: Box<SessionEnd>,
    },
    /// A connection or hello that was refused, and why.
    Refused {
        /// The peer's address.
        peer: SocketAddr,
        /// Why, for people.
        reason: String,
    },
}

/// Builds the sink for an accepted session, or refuses it with a reason.
pub type MakeSink = dyn FnMut(&SessionInfo) -> Result<Box<dyn Sink>, String> + Send;

struct Live {
    info: SessionInfo,
    shared: Arc<Shared>,
}

/// A listening receiver.
pub struct Receiver {
    addr: SocketAddr,
    fingerprint: Fingerprint,
    events: cb::Receiver<ReceiverEvent>,
    live: Arc<Mutex<HashMap<u64, Live>>>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    /// Listen on `opts.listen` with `identity`; `make_sink` is called for each
    /// accepted session (on the network thread: return quickly). A sink it
    /// cannot make (`Err(why)`) refuses the session as an output refusal
    /// ([`RejectReason::Output`]: the sender exits with the output code).
    pub fn start<F>(
        opts: ReceiverOptions,
        identity: &Identity,
        make_sink: F,
    ) -> Result<Receiver, TransportError>
    where
        F: FnMut(&SessionInfo) -> Result<Box<dyn Sink>, String> + Send + 'static,
    {
        crate::build_profile::warn_if_unoptimised();
        opts.config
            .validate()
            .map_err(|e| TransportError::Protocol(e.to_string()))?;
        let transport = Arc::new(transport::config(opts.idle_timeout));
        let server = tls::server_config(identity, transport)?;
        let sock = socket::bind(opts.listen).map_err(|source| TransportError::Bind {
            addr: opts.listen,
            source,
        })?;
        let addr = sock.local_addr()?;
        let (events_tx, events) = cb::unbounded();
        let live = Arc::new(Mutex::new(HashMap::new()));
        let (stop, stop_rx) = watch::channel(false);
        let (ready_tx, ready_rx) = cb::bounded(1);
        let make: Arc<Mutex<Box<MakeSink>>> = Arc::new(Mutex::new(Box::new(make_sink)));
        let l = live.clone();
        let thread = std::thread::Builder::new()
            .name("isochron-recv".into())
            .spawn(move || {
                crate::net::priority::raise(crate::net::priority::Urgency::Network);
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let endpoint = match Endpoint::new(
                        EndpointConfig::default(),
                        Some(server),
                        sock,
                        Arc::new(TokioRuntime),
                    ) {
                        Ok(e) => e,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    accept_loop(endpoint, opts, make, events_tx, l, stop_rx).await;
                });
            })?;
        ready_rx
            .recv()
            .map_err(|_| TransportError::Protocol("the receiver thread did not start".into()))??;
        Ok(Receiver {
            addr,
            fingerprint: identity.fingerprint(),
            events,
            live,
            stop,
            thread: Some(thread),
        })
    }

    /// The address bound (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The identity's fingerprint, for senders to pin.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// Sessions starting and ending, refusals.
    pub fn events(&self) -> &cb::Receiver<ReceiverEvent> {
        &self.events
    }

    /// The sessions running now, with their statistics.
    pub fn sessions(&self) -> Vec<(SessionInfo, ReceiverStats)> {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = live
            .values()
            .map(|l| {
                let s = l
                    .shared
                    .stats
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                (l.info.clone(), s)
            })
            .collect();
        v.sort_by_key(|(i, _)| i.id);
        v
    }

    /// Stop listening; sessions in progress end (truncated) with their
    /// outputs finalised. Returns once everything is closed; their `Ended`
    /// events are still in [`Receiver::events`].
    pub fn shutdown(&mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

async fn accept_loop(
    endpoint: Endpoint,
    opts: ReceiverOptions,
    make: Arc<Mutex<Box<MakeSink>>>,
    events: cb::Sender<ReceiverEvent>,
    live: Arc<Mutex<HashMap<u64, Live>>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tasks = tokio::task::JoinSet::new();
    let mut next_id = 1u64;
    let gate = Arc::new(Gate::new(opts.admission.clone()));
    let attempts = Arc::new(Mutex::new(Attempts::new(opts.limits.token_attempts)));
    let usage = Arc::new(Mutex::new(Usage::new(opts.limits.clone())));
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            inc = endpoint.accept() => {
                let Some(inc) = inc else { break };
                // Half-open connections have their own limits (in all and
                // per source), so they never lock honest senders out of
                // sessions.
                let peer = inc.remote_address();
                let handshake = lock(&usage).begin_handshake(peer.ip());
                if let Err(why) = handshake {
                    let _ = events.send(ReceiverEvent::Refused {
                        peer,
                        reason: why.to_string(),
                    });
                    inc.refuse();
                    continue;
                }
                let handshake = Spending::handshake(usage.clone(), peer.ip());
                let ctx = SessionCtx {
                    id: next_id,
                    gate: gate.clone(),
                    attempts: attempts.clone(),
                    opts: opts.clone(),
                    make: make.clone(),
                    events: events.clone(),
                    live: live.clone(),
                    stop: stop.clone(),
                };
                next_id += 1;
                tasks.spawn(serve(inc, ctx, handshake));
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    // Sessions see the stop too; wait for them to finalise.
    while tasks.join_next().await.is_some() {}
    endpoint.close(0u32.into(), b"shutdown");
    let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
}

/// What a connection holds of the receiver's [`Usage`], given back when
/// dropped (whichever way the task ends).
struct Spending {
    usage: Arc<Mutex<Usage>>,
    ip: std::net::IpAddr,
    handshake: bool,
    bytes: Option<u64>,
}

impl Spending {
    fn handshake(usage: Arc<Mutex<Usage>>, ip: std::net::IpAddr) -> Self {
        Self {
            usage,
            ip,
            handshake: true,
            bytes: None,
        }
    }

    fn end_handshake(&mut self) {
        if std::mem::take(&mut self.handshake) {
            lock(&self.usage).end_handshake(self.ip);
        }
    }

    /// The handshake is over; a session of `bytes` buffers starts, if the
    /// receiver's limits allow.
    fn admit(&mut self, bytes: u64) -> Result<(), UsageError> {
        self.end_handshake();
        lock(&self.usage).admit(self.ip, bytes)?;
        self.bytes = Some(bytes);
        Ok(())
    }
}

impl Drop for Spending {
    fn drop(&mut self) {
        self.end_handshake();
        if let Some(b) = self.bytes.take() {
            lock(&self.usage).release(self.ip, b);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct SessionCtx {
    id: u64,
    gate: Arc<Gate>,
    /// Wrong tokens by source address (shared by every session).
    attempts: Arc<Mutex<Attempts>>,
    opts: ReceiverOptions,
    make: Arc<Mutex<Box<MakeSink>>>,
    events: cb::Sender<ReceiverEvent>,
    live: Arc<Mutex<HashMap<u64, Live>>>,
    stop: watch::Receiver<bool>,
}

async fn serve(inc: Incoming, ctx: SessionCtx, mut spending: Spending) {
    let peer = inc.remote_address();
    let refused = |reason: String| {
        let _ = ctx.events.send(ReceiverEvent::Refused { peer, reason });
    };
    // Everything up to the hello has one deadline.
    let limit = ctx.opts.limits.handshake_timeout;
    let (conn, send, reader, hello, sender) =
        match tokio::time::timeout(limit, greet(inc, &ctx)).await {
            Ok(Ok(Some(greeted))) => greeted,
            Ok(Ok(None)) => return,
            Ok(Err(why)) => return refused(why),
            Err(_) => {
                return refused(format!(
                    "no hello within {} s of connecting (handshake_timeout)",
                    limit.as_secs_f64()
                ));
            }
        };
    let mut cfg = ctx.opts.config.clone();
    // File-mode marks allow for the round trip: the one measured now, then
    // the transport's estimate as it moves (sent to the playout below).
    cfg.loop_delay = cfg.loop_delay.max(conn.rtt());
    let accept = match answer_throttled(&cfg, &hello, ctx.id, peer, &ctx.attempts) {
        Ok(a) => a,
        Err(r) => {
            spending.end_handshake();
            return reject(conn, send, r, refused).await;
        }
    };
    // From here on the session is the one accepted: sized for the deepest
    // interleaving granted.
    let mut hello = hello;
    hello.session = hello.session.accepted(&accept);
    let window = Duration::from_micros(accept.fec_window_us as u64);
    let admitted = ctx
        .opts
        .limits
        .check_session(&cfg, &hello.session, window)
        .and_then(|bytes| {
            spending.admit(bytes).map_err(|e| Reject {
                reason: RejectReason::Limit,
                message: e.to_string(),
            })
        });
    if let Err(r) = admitted {
        spending.end_handshake();
        return reject(conn, send, r, refused).await;
    }
    let info = SessionInfo {
        id: ctx.id,
        peer,
        sender,
        session: hello.session.clone(),
        accept,
    };
    let sink = {
        let mut make = ctx.make.lock().unwrap_or_else(|e| e.into_inner());
        (*make)(&info)
    };
    let sink = match sink {
        Ok(s) => s,
        // The sink is the session's output: one that cannot be made (no
        // room, an output limit, the output taken) refuses it as output.
        Err(why) => {
            let r = Reject {
                reason: RejectReason::Output,
                message: why,
            };
            return reject(conn, send, r, refused).await;
        }
    };
    run_session(conn, send, reader, info, cfg, sink, ctx).await;
    drop(spending);
}

type Greeted = (
    Connection,
    quinn::SendStream,
    ControlReader,
    crate::wire::control::Hello,
    Fingerprint,
);

/// The handshake: TLS, the sender's identity admitted, its control stream
/// and hello. `Ok(None)`: refused, and already said so.
async fn greet(inc: Incoming, ctx: &SessionCtx) -> Result<Option<Greeted>, String> {
    let peer = inc.remote_address();
    let refused = |reason: String| {
        let _ = ctx.events.send(ReceiverEvent::Refused { peer, reason });
    };
    let conn = match inc.await {
        Ok(c) => c,
        Err(e) => return Err(tls::describe_handshake_error(&e, None)),
    };
    let Some(sender) = tls::peer_fingerprint(&conn) else {
        conn.close(1u32.into(), b"no client certificate");
        return Err("the sender presented no certificate".into());
    };
    let (send, recv) = match conn.accept_bi().await {
        Ok(s) => s,
        Err(e) => return Err(format!("no control stream: {e}")),
    };
    if let Err(why) = ctx.gate.check(&sender) {
        // Refused before its hello is even read; `recv` stays open until
        // then, so the sender's hello is not cut off and it reads the reason.
        let r = Reject {
            reason: RejectReason::Unauthorized,
            message: why,
        };
        reject(conn, send, r, refused).await;
        drop(recv);
        return Ok(None);
    }
    let mut reader = ControlReader::new(recv);
    // The caller's deadline bounds the wait.
    let hello = match reader.next(Duration::from_secs(3600)).await {
        Ok(Some(Control::Hello(h))) => h,
        Ok(other) => {
            conn.close(1u32.into(), b"expected hello");
            let what = other.map_or("nothing", |m| m.kind());
            return Err(format!("expected a hello, got {what}"));
        }
        Err(e) => {
            conn.close(1u32.into(), b"bad hello");
            return Err(format!("bad hello: {e}"));
        }
    };
    Ok(Some((conn, send, reader, hello, sender)))
}

/// [`handshake::answer`], with wrong tokens rate-limited per source
/// address: a locked-out source is refused without its token being looked at.
fn answer_throttled(
    cfg: &ReceiverConfig,
    hello: &crate::wire::control::Hello,
    id: u64,
    peer: SocketAddr,
    attempts: &Mutex<Attempts>,
) -> Result<Accept, Reject> {
    if cfg.token.is_none() {
        return handshake::answer(cfg, hello, id);
    }
    let now = Clock::new(1.0).now();
    let mut attempts = attempts.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(wait) = attempts.check(peer.ip(), now) {
        return Err(Reject {
            reason: RejectReason::Token,
            message: format!(
                "too many wrong tokens from {}: try again in {} s",
                peer.ip(),
                wait.as_secs().max(1)
            ),
        });
    }
    let answer = handshake::answer(cfg, hello, id);
    match &answer {
        Err(r) if r.reason == RejectReason::Token => attempts.failed(peer.ip(), now),
        Ok(_) => attempts.succeeded(peer.ip()),
        Err(_) => {}
    }
    answer
}

async fn reject(
    conn: Connection,
    mut send: quinn::SendStream,
    r: Reject,
    refused: impl FnOnce(String),
) {
    let _ = control_stream::send(&mut send, &Control::Reject(r.clone())).await;
    let _ = send.finish();
    // Let the sender read the reason and close; then close anyway.
    let _ = tokio::time::timeout(Duration::from_secs(2), conn.closed()).await;
    conn.close(2u32.into(), b"rejected");
    refused(format!("rejected ({:?}): {}", r.reason, r.message));
}

fn concealers(opts: &ReceiverOptions, session: &SessionDesc) -> Vec<Option<Concealer>> {
    session
        .substreams
        .iter()
        .map(|d| {
            let method = match d.kind {
                MediaKind::Audio => opts.conceal_audio,
                MediaKind::Sensor => opts.conceal_sensor,
            };
            Concealer::for_frame_duration(method, d.format, d.frame_us as u64).ok()
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
async fn run_session(
    conn: Connection,
    mut send: quinn::SendStream,
    mut reader: ControlReader,
    info: SessionInfo,
    cfg: ReceiverConfig,
    sink: Box<dyn Sink>,
    ctx: SessionCtx,
) {
    let SessionCtx {
        opts,
        events,
        live,
        mut stop,
        ..
    } = ctx;
    let session = &info.session;
    let window = Duration::from_micros(info.accept.fec_window_us as u64);
    let clock = Clock::new(session.speed);
    let mut ingress = new_ingress(&cfg, session, window);
    let depth = opts.limits.playout_queue.max(16);
    let (ctl_tx, ctl_rx) = cb::bounded::<Control>(64);
    let wake = Arc::new(Notify::new());
    let pool: Pool = Arc::new(ArrayQueue::new(depth + 64));
    let shared = Arc::new(Shared::default());
    let parts = PlayoutParts {
        name: format!("session {} ({})", info.id, info.session.name),
        playout: {
            let mut p = Playout::new(&cfg, session, window);
            p.limit_concealment(opts.limits.max_concealed);
            p
        },
        input_depth: depth,
        sink,
        concealers: concealers(&opts, session),
        clock,
        to_net: ctl_tx,
        wake_net: wake.clone(),
        pool: pool.clone(),
        shared: shared.clone(),
    };
    let (tx, mut done) = match playout_pool::attach(parts) {
        Ok(h) => h,
        Err(e) => {
            let _ = events.send(ReceiverEvent::Refused {
                peer: info.peer,
                reason: format!("cannot start the playout: {e}"),
            });
            return;
        }
    };
    let _ = control_stream::send(&mut send, &Control::Accept(info.accept)).await;
    live.lock().unwrap_or_else(|e| e.into_inner()).insert(
        info.id,
        Live {
            info: info.clone(),
            shared: shared.clone(),
        },
    );
    let _ = events.send(ReceiverEvent::Started(info.clone()));
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut queue_drops = 0u64;
    let mut stopped = false;
    // End of stream and stop must reach the playout, but this thread
    // serves every session and never waits on one: they queue here and are
    // offered after each event (the tick guarantees retries).
    let mut urgent: std::collections::VecDeque<ToPlayout> = Default::default();
    // Made once, not at every turn of the loop (each `notified()` or
    // `changed()` dropped unfired takes a lock to leave its waiter list,
    // several times a datagram on the thread every session shares).
    let mut wanted = std::pin::pin!(wake.notified());
    let mut stopping = std::pin::pin!(stop.changed());
    // Messages that came in the same read as the hello are not left
    // waiting for the next read.
    if let Err(why) = take_control(&mut reader, &mut urgent, &mut ingress, clock.now()) {
        stopped = true;
        urgent.push_back(ToPlayout::Stop(why));
    }
    // A session that sends no media for the idle timeout is closed, even
    // though QUIC keep-alives keep its connection up.
    // (File mode pauses a sender while the buffer drains: never for longer
    // than the buffer holds.)
    let mut last_media = tokio::time::Instant::now();
    let mut media_bytes = 0u64;
    let held = cfg.latency.max(cfg.high_water).max(cfg.max_buffer);
    let media_idle = opts.idle_timeout.max(clock.real(held) * 2);
    // The other waits are kept across turns too: the next datagram, the
    // next control-stream read (the future owns the reader and hands it
    // back) and the NACK timer (re-armed only when the planner's next
    // instant moves). Made afresh at every turn, each wake-up paid for
    // creating, registering and dropping them: a timer-wheel entry, a
    // waiter-list entry and a lock of quinn's connection state each.
    let mut datagram = std::pin::pin!(conn.read_datagram());
    let mut control_open = !reader.finished;
    let mut control = std::pin::pin!(reader.fill_owned());
    // A reader no longer read is kept (not dropped) until the session ends.
    let mut kept_reader: Option<ControlReader> = None;
    let mut nack_timer = std::pin::pin!(tokio::time::sleep_until(tokio::time::Instant::now()));
    let mut nack_armed: Option<tokio::time::Instant> = None;
    let end = loop {
        while let Some(m) = urgent.pop_front() {
            match tx.try_send(m) {
                Ok(()) => {}
                Err(cb::TrySendError::Full(m)) => {
                    urgent.push_front(m);
                    break;
                }
                Err(cb::TrySendError::Disconnected(_)) => break,
            }
        }
        let nack_at = ingress
            .planner()
            .and_then(|p| p.next_timeout())
            .map(|t| tokio::time::Instant::from_std(clock.instant_of(t)));
        if nack_at != nack_armed {
            if let Some(t) = nack_at {
                nack_timer.as_mut().reset(t);
            }
            nack_armed = nack_at;
        }
        tokio::select! {
            _ = &mut nack_timer, if nack_armed.is_some() && !stopped => {
                nack_armed = None;
                send_nacks(&mut ingress, &conn, &shared, clock.now());
            }
            dg = &mut datagram, if !stopped => {
                datagram.set(conn.read_datagram());
                match dg {
                    Ok(bytes) => {
                        let now = clock.now();
                        let mut one = |ingress: &mut Ingress, bytes: &[u8]| ingress.on_datagram(now, bytes, &mut |meta, payload, via| {
                            let mut buf = pool.pop().unwrap_or_else(|| vec![0u8; PAYLOAD_CAP].into_boxed_slice());
                            let len = payload.len().min(PAYLOAD_CAP);
                            buf[..len].copy_from_slice(&payload[..len]);
                            let msg = ToPlayout::Packet(PacketMsg { arrival: now, meta: *meta, via, len, buf });
                            if let Err(cb::TrySendError::Full(ToPlayout::Packet(m))) = tx.try_send(msg) {
                                queue_drops += 1;
                                let _ = pool.push(m.buf);
                            }
                        });
                        one(&mut ingress, &bytes);
                        // Take what else has arrived now, without a trip through
                        // the select for each (an error waits for the next turn,
                        // which sees it again).
                        for _ in 0..DRAIN {
                            match ready_now(datagram.as_mut()) {
                                Some(r) => {
                                    datagram.set(conn.read_datagram());
                                    match r {
                                        Ok(bytes) => one(&mut ingress, &bytes),
                                        Err(_) => break,
                                    }
                                }
                                None => break,
                            }
                        }
                        // Only datagrams that parse as media count: garbage does
                        // not hold a session open.
                        let st = ingress.stats();
                        if st.source_bytes + st.repair_bytes != media_bytes {
                            media_bytes = st.source_bytes + st.repair_bytes;
                            last_media = tokio::time::Instant::now();
                        }
                        send_nacks(&mut ingress, &conn, &shared, now);
                    }
                    Err(e) => {
                        stopped = true;
                        urgent.push_back(ToPlayout::Stop(connection_end(&e)));
                    }
                }
            },
            (mut reader, more) = &mut control, if control_open && !stopped => {
                match more {
                    Ok(_) => {
                        if let Err(why) = take_control(&mut reader, &mut urgent, &mut ingress, clock.now()) {
                            stopped = true;
                            urgent.push_back(ToPlayout::Stop(why));
                        }
                    }
                    Err(e) => {
                        stopped = true;
                        urgent.push_back(ToPlayout::Stop(e.to_string()));
                    }
                }
                if reader.finished || stopped {
                    control_open = false;
                    kept_reader = Some(reader);
                } else {
                    control.set(reader.fill_owned());
                }
            }
            _ = &mut wanted => {
                wanted.set(wake.notified());
                while let Ok(m) = ctl_rx.try_recv() {
                    let _ = control_stream::send(&mut send, &m).await;
                }
            }
            _ = &mut stopping, if !stopped => {
                stopped = true;
                urgent.push_back(ToPlayout::Stop("the receiver is shutting down".into()));
            }
            _ = tick.tick() => {
                ingress.poll(clock.now());
                publish_ingress(&ingress, &shared, queue_drops);
                if !stopped && last_media.elapsed() >= media_idle {
                    stopped = true;
                    urgent.push_back(ToPlayout::Stop(format!(
                        "no media for {} s (idle timeout)",
                        media_idle.as_secs_f64()
                    )));
                }
                if !stopped {
                    let _ = tx.try_send(ToPlayout::Rtt(conn.rtt()));
                }
            }
            r = &mut done => break r,
        }
    };
    // One snapshot for the sink and the event: the playout's final part
    // with the network side's final counters.
    publish_ingress(&ingress, &shared, queue_drops);
    let final_stats = shared
        .stats
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let end = match end {
        Some(finished) => tokio::task::spawn_blocking(move || finished.end(final_stats))
            .await
            .ok(),
        None => None,
    };
    let end = end.unwrap_or_else(|| SessionEnd {
        truncated: true,
        reason: "the playout failed".into(),
        ..Default::default()
    });
    // Output that could not be written in full (a full disk, an output
    // limit) is an error the sender hears about, not a bye.
    let last = if !end.errors.is_empty() {
        Some(Control::Reject(Reject {
            reason: RejectReason::Output,
            message: crate::text::bounded(&end.errors.join("; "), 1000),
        }))
    } else if !end.truncated {
        // The final account first, so the sender reports what the receiver
        // does (its periodic reports lag by up to a second).
        let _ = control_stream::send(&mut send, &Control::Report(final_report(&end.stats))).await;
        Some(Control::Bye)
    } else {
        None
    };
    if let Some(last) = last {
        let _ = control_stream::send(&mut send, &last).await;
        let _ = send.finish();
        // The bye must get through before we close: a bye lost in a loss
        // burst is sent again at QUIC's backed-off probe times, so wait as
        // long as the idle timeout for the sender's stack to acknowledge it
        // (2 s in all had left senders on bursty links without it, and they
        // timed out). Then the sender closes on it; close ourselves if it
        // does not.
        let wait = opts.idle_timeout.max(Duration::from_secs(2));
        let _ = tokio::time::timeout(wait, send.stopped()).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), conn.closed()).await;
    }
    conn.close(0u32.into(), b"done");
    drop(kept_reader);
    live.lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&info.id);
    let _ = events.send(ReceiverEvent::Ended {
        info,
        end: Box::new(end),
    });
}

/// Send the NACKs due (sessions that retransmit), timed by the measured
/// round trip and the playout's clock mapping.
fn send_nacks(ingress: &mut Ingress, conn: &Connection, shared: &Shared, now: Time) {
    let Some(p) = ingress.planner() else { return };
    p.set_rtt(conn.rtt());
    p.set_anchor(shared.anchor());
    while let Some(d) = p.poll(now) {
        if conn
            .send_datagram(bytes::Bytes::copy_from_slice(d))
            .is_err()
        {
            break;
        }
    }
}

/// Datagrams taken in one go after a wake-up.
const DRAIN: usize = 64;

/// Poll a future once: its output if it is ready now. (A pending future
/// keeps a waker that does nothing until its next poll by the loop, which
/// comes before the loop waits.)
fn ready_now<F: std::future::Future>(f: std::pin::Pin<&mut F>) -> Option<F::Output> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

/// The session's final statistics as a report to the sender.
fn final_report(s: &ReceiverStats) -> Report {
    let p = &s.packets;
    Report {
        received: p.received,
        lost: p.lost,
        recovered: p.recovered,
        unrecovered: p.unrecovered,
        late: p.late,
        concealed_frames: s.substreams.iter().map(|d| d.frames.concealed).sum(),
        jitter_us: s.jitter_us.min(u32::MAX as u64) as u32,
        buffer_us: s.buffer_us.min(u32::MAX as u64) as u32,
        loss_runs: p.loss_runs,
        outage_lost: p.outage_lost,
        outage_runs: p.outage_runs,
        retransmit_useful: p.retransmitted,
        expected: p.expected,
        // The final account plans nothing: not told.
        latency_us: 0,
    }
}

/// Hand on the control messages already decoded: end of stream to the
/// playout (and the NACK planner); anything else a sender may send is ignored. A bad message ends
/// the session (the reason is returned).
fn take_control(
    reader: &mut ControlReader,
    urgent: &mut std::collections::VecDeque<ToPlayout>,
    ingress: &mut Ingress,
    now: Time,
) -> Result<(), String> {
    loop {
        match reader.pending() {
            Ok(Some(Control::EndOfStream(e))) => {
                // The NACK planner learns of the packets lost at the very end.
                if let Some(p) = ingress.planner() {
                    p.on_end_of_stream(now, &e);
                }
                urgent.push_back(ToPlayout::End(e));
            }
            Ok(Some(_)) => {}
            Ok(None) => return Ok(()),
            Err(e) => return Err(format!("bad control message: {e}")),
        }
    }
}

fn publish_ingress(ingress: &Ingress, shared: &Shared, queue_drops: u64) {
    let mut g = shared.stats.lock().unwrap_or_else(|e| e.into_inner());
    fill_ingress_stats(ingress, &mut g);
    g.playout_queue_drops = queue_drops;
}
