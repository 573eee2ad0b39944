//! The sending side over QUIC.
//!
//! [`Sender::connect`] runs the sender core on its own network thread (a
//! current-thread tokio runtime: no cross-thread wake-ups on the packet
//! path), performs the secure handshake and the hello, and returns once the
//! receiver has accepted. Media then comes from [`Sender::push`] (live
//! applications) or reader threads ([`Sender::feed_from`], files); the
//! network thread cuts it into frames at the pace the core decides.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel as cb;
use quinn::{Connection, Endpoint, EndpointConfig, TokioRuntime};
use tokio::sync::Notify;

use super::control_stream::{self, ControlReader};
use super::send_network::SendNetwork;
use super::transport;
use crate::catalog::SubstreamDesc;
use crate::config::SenderConfig;
use crate::net::clock::Clock;
use crate::net::error::TransportError;
use crate::net::socket;
use crate::net::source::{ChannelSource, Feed, MediaClock, channel_source, spawn_reader};
use crate::net::tls::{self, Identity, Trust};
use crate::sender::SenderCore;
use crate::stats::SenderStats;
use crate::wire::control::{Accept, Control, EndOfStream, Mode, Report, SessionDesc};

/// How to reach a receiver and what to send.
#[derive(Clone)]
pub struct SenderOptions {
    /// The receiver's address. An unspecified address (`0.0.0.0:4433`, as a
    /// receiver listening on every interface reports it) means this host.
    pub to: SocketAddr,
    /// Local address (default: any, port chosen by the system).
    pub bind: Option<SocketAddr>,
    /// How to trust the receiver (default for the tools: a pinned fingerprint).
    pub trust: Trust,
    /// Who we are: presented as the TLS client certificate, so the receiver
    /// can admit us (it lists this identity's fingerprint).
    pub identity: Identity,
    /// The receiver's shared secret, if it has one.
    pub token: Option<String>,
    /// A label for the session.
    pub name: String,
    /// Mode, FEC and queue settings for the sender core.
    pub config: SenderConfig,
    /// A connection silent this long is dead (both ends).
    pub idle_timeout: Duration,
    /// Give up connecting after this long.
    pub connect_timeout: Duration,
    /// Sample chunks buffered per substream before producers block.
    pub chunk_depth: usize,
    /// Run on these shared network threads instead of a thread of its own
    /// (many senders in one process).
    pub network: Option<SendNetwork>,
}

impl SenderOptions {
    /// Defaults for sending to `to`, trusting it per `trust`, as `identity`:
    /// default [`SenderConfig`], no token, 5 s idle and connect timeouts, 64
    /// chunks per substream.
    pub fn new(to: SocketAddr, trust: Trust, identity: Identity) -> Self {
        Self {
            to,
            bind: None,
            trust,
            identity,
            token: None,
            name: "isochron".into(),
            config: SenderConfig::default(),
            idle_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            chunk_depth: 64,
            network: None,
        }
    }
}

/// How a sending session ended.
#[derive(Debug, Clone)]
pub struct SenderReport {
    /// The sender's final counters.
    pub stats: SenderStats,
    /// The receiver's last report.
    pub receiver: Option<Report>,
    /// What was sent, as told to the receiver.
    pub end: EndOfStream,
    /// The receiver played the stream to its end and said goodbye.
    pub completed: bool,
}

#[derive(Default)]
struct Shared {
    stats: SenderStats,
    report: Option<Report>,
    started_at: crate::time::Time,
    /// Since when the receiver has held the sender paused.
    paused_since: Option<std::time::Instant>,
}

/// A connected sending session.
pub struct Sender {
    feeds: Vec<Feed>,
    strides: Vec<usize>,
    accept: Accept,
    session: SessionDesc,
    shared: Arc<Mutex<Shared>>,
    media: MediaClock,
    /// Samples pushed so far, per substream (live lateness is checked
    /// against them).
    pushed: Vec<AtomicU64>,
    /// Expired datagrams already reported by `push`.
    reported_expired: AtomicU64,
    /// Set by [`Sender::stop`]: the network thread ends the session now.
    stop: Arc<AtomicBool>,
    wake: Arc<Notify>,
    net: Option<Net>,
    readers: Vec<JoinHandle<io::Result<()>>>,
}

impl Sender {
    /// Connect, handshake and propose `catalog`; returns once the receiver
    /// accepted, or why not (unreachable, fingerprint mismatch, rejected
    /// token or latency...).
    pub fn connect(
        opts: SenderOptions,
        catalog: Vec<SubstreamDesc>,
    ) -> Result<Sender, TransportError> {
        crate::build_profile::warn_if_unoptimised();
        let wake = Arc::new(Notify::new());
        let strides: Vec<usize> = catalog.iter().map(|d| d.format.stride()).collect();
        let clock = Clock::new(opts.config.speed);
        let media = MediaClock::new(clock);
        let stop = Arc::new(AtomicBool::new(false));
        let (source, feeds) =
            channel_source(&strides, opts.chunk_depth, wake.clone(), media.clone());
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (ready_tx, ready_rx) = cb::bounded(1);
        let sh = shared.clone();
        let (st, wk) = (stop.clone(), wake.clone());
        let ctl = SessionControl {
            wake: wk,
            stop: st,
            shared: sh,
        };
        let net = match opts.network.clone() {
            None => Net::Thread(
                std::thread::Builder::new()
                    .name("isochron-send".into())
                    .spawn(move || {
                        crate::net::priority::raise(crate::net::priority::Urgency::Network);
                        let rt = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()?;
                        rt.block_on(run(opts, clock, None, catalog, source, ctl, ready_tx))
                    })?,
            ),
            Some(network) => {
                let (handle, endpoint) = network.pick();
                let (tx, rx) = cb::bounded(1);
                let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let flag = Done(done.clone());
                handle.spawn(async move {
                    let _flag = flag;
                    let r = run(opts, clock, Some(endpoint), catalog, source, ctl, ready_tx).await;
                    let _ = tx.send(r);
                });
                Net::Task { rx, done }
            }
        };
        match ready_rx.recv() {
            Ok(Ok((accept, session))) => Ok(Sender {
                pushed: strides.iter().map(|_| AtomicU64::new(0)).collect(),
                feeds,
                strides,
                accept,
                session,
                shared,
                media,
                reported_expired: AtomicU64::new(0),
                stop,
                wake,
                net: Some(net),
                readers: Vec::new(),
            }),
            Ok(Err(e)) => {
                let _ = net.join();
                Err(e)
            }
            Err(_) => Err(match net.join() {
                Err(e) => e,
                Ok(_) => TransportError::Protocol("the network thread ended unexpectedly".into()),
            }),
        }
    }

    /// What the receiver agreed to.
    pub fn accept(&self) -> &Accept {
        &self.accept
    }

    /// The session as proposed (with the FEC window agreed).
    pub fn session(&self) -> &SessionDesc {
        &self.session
    }

    /// Push wire-encoded samples (whole samples) for substream `index`.
    /// Blocks while that substream's buffer is full.
    ///
    /// Live, the session's first push starts its media clock (unless
    /// [`start_clock_at`](Self::start_clock_at) did): frame `n` is due
    /// `media_ts(n + 1)` after it, so pushes may come ahead of time (they
    /// are paced) but not later than the receiver's latency behind.
    /// A push whose samples are already past their deadline (media time
    /// plus the receiver's latency) returns [`TransportError::Late`]: the
    /// samples are still taken, to keep the timeline, but are not sent, and
    /// the receiver conceals them; datagrams that expired in the queue since
    /// the last push are reported the same way. Both are counted in
    /// [`SenderStats`] (`late_frames`, `dropped_expired`).
    pub fn push(&self, index: usize, samples: Bytes) -> Result<(), TransportError> {
        let feed = self
            .feeds
            .get(index)
            .ok_or(TransportError::NoSuchSubstream(index))?;
        if samples.len() % self.strides[index] != 0 {
            return Err(TransportError::Protocol(format!(
                "{} bytes is not a whole number of {}-byte samples",
                samples.len(),
                self.strides[index]
            )));
        }
        let n = (samples.len() / self.strides[index]) as u64;
        if !feed.push(samples) {
            return Err(TransportError::Ended);
        }
        let first = self.pushed[index].fetch_add(n, Ordering::Relaxed);
        let frames = self.late_frames_in(index, first, n);
        let expired = self.stats().dropped_expired;
        let expired =
            expired.saturating_sub(self.reported_expired.swap(expired, Ordering::Relaxed));
        if frames > 0 || expired > 0 {
            Err(TransportError::Late { frames, expired })
        } else {
            Ok(())
        }
    }

    /// Live: frames holding samples `first..first + n` of substream `index`
    /// whose deadline has passed (the core drops them before the network).
    fn late_frames_in(&self, index: usize, first: u64, n: u64) -> u64 {
        let (true, Some(start), Some(d)) = (
            self.session.mode.is_live(),
            self.media.started(),
            self.session.substreams.get(index),
        ) else {
            return 0;
        };
        if n == 0 {
            return 0;
        }
        let frame_of = |i: u64| d.format.rate.sample_time_us(i) / d.frame_us as u64;
        let (from, to) = (frame_of(first), frame_of(first + n - 1));
        // Frame k's packets are due at start + latency + k F + hold.
        let budget = self.accept.latency_us as u64 + d.unit_delay().as_micros() as u64;
        let elapsed = self.media.clock().now().saturating_since(start).as_micros() as u64;
        match elapsed.checked_sub(budget) {
            // Frames 0..=k are past due, where k F < elapsed - budget.
            Some(past) if past > 0 => {
                let past_due = (past - 1) / d.frame_us as u64; // last frame past due
                past_due.min(to).saturating_sub(from) + u64::from(past_due >= from)
            }
            _ => 0,
        }
    }

    /// Live: media time zero is now, unless the clock has started (the
    /// first push starts it otherwise). Returns media time zero on the
    /// session clock (see [`started_at`](Self::started_at)).
    pub fn start_clock(&self) -> crate::time::Time {
        self.media.start_now()
    }

    /// Live: media time zero is `at` (say, when the first sample was
    /// captured), unless the clock has started. Returns media time zero.
    pub fn start_clock_at(&self, at: std::time::Instant) -> crate::time::Time {
        self.media.start_at(self.media.clock().time_of(at))
    }

    /// Substream `index` has no more samples.
    pub fn end(&self, index: usize) -> Result<(), TransportError> {
        self.feeds
            .get(index)
            .ok_or(TransportError::NoSuchSubstream(index))?
            .end();
        Ok(())
    }

    /// Feed substream `index` from a reader on its own thread: `read` fills
    /// a buffer with whole samples and returns how many bytes (0 at the end).
    pub fn feed_from<R>(&mut self, index: usize, read: R) -> Result<(), TransportError>
    where
        R: FnMut(&mut [u8]) -> io::Result<usize> + Send + 'static,
    {
        let feed = self
            .feeds
            .get(index)
            .ok_or(TransportError::NoSuchSubstream(index))?
            .clone();
        let h = spawn_reader(feed, index, &self.session.substreams[index], read)?;
        self.readers.push(h);
        Ok(())
    }

    /// The session has ended (completed, refused or lost): `wait` returns
    /// at once.
    pub fn is_finished(&self) -> bool {
        self.net.as_ref().is_none_or(|n| match n {
            Net::Thread(h) => h.is_finished(),
            Net::Task { done, .. } => done.load(std::sync::atomic::Ordering::SeqCst),
        })
    }

    /// Counters so far.
    pub fn stats(&self) -> SenderStats {
        self.shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stats
            .clone()
    }

    /// Media time zero on the sender's clock (`CLOCK_MONOTONIC` at speed 1,
    /// shared by every process on the host): live frame `n` is complete at
    /// `started_at + media_ts(n + 1)`, where end-to-end delay starts. File
    /// mode: the accept. Live: the first push or
    /// [`start_clock`](Self::start_clock); [`Time::ZERO`](crate::time::Time::ZERO)
    /// before.
    pub fn started_at(&self) -> crate::time::Time {
        if self.session.mode.is_live() {
            return self.media.started().unwrap_or_default();
        }
        self.shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .started_at
    }

    /// How long the receiver has held the sender paused (file mode flow
    /// control), if it is paused now. A pause that outlasts
    /// [`SenderConfig::max_pause`] ends the session.
    pub fn paused_for(&self) -> Option<Duration> {
        self.shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .paused_since
            .map(|t| t.elapsed())
    }

    /// The receiver's latest report.
    pub fn last_report(&self) -> Option<Report> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner()).report
    }

    /// End every substream not ended yet and wait until the receiver has
    /// played the stream out (or the connection is lost).
    pub fn finish(self) -> Result<SenderReport, TransportError> {
        for f in &self.feeds {
            f.end();
        }
        self.wait()
    }

    /// End the session now, wherever the media is (an interrupted program):
    /// the connection closes at once with reason "stopped", so the receiver
    /// plays out what it has and ends the stream truncated there instead of
    /// waiting for an idle timeout. The report says `completed: false`.
    pub fn stop(self) -> Result<SenderReport, TransportError> {
        self.stop.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        self.wait()
    }

    /// Wait for the session to end without ending the substreams (they end
    /// when their readers reach the end, or on [`Sender::end`]).
    pub fn wait(mut self) -> Result<SenderReport, TransportError> {
        let net = self.net.take().expect("joined once");
        let result = net.join();
        for r in self.readers.drain(..) {
            match r.join() {
                Ok(Err(e)) if result.is_ok() => return Err(TransportError::Io(e)),
                _ => {}
            }
        }
        result
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        // Dropping a sender ends its substreams; the network thread finishes
        // the session in the background.
        for f in &self.feeds {
            f.end();
        }
    }
}

type Ready = cb::Sender<Result<(Accept, SessionDesc), TransportError>>;

/// Where a sender's session loop runs.
enum Net {
    /// Its own network thread.
    Thread(JoinHandle<Result<SenderReport, TransportError>>),
    /// A task on a [`SendNetwork`] thread; `done` once it has returned.
    Task {
        rx: cb::Receiver<Result<SenderReport, TransportError>>,
        done: Arc<std::sync::atomic::AtomicBool>,
    },
}

impl Net {
    fn join(self) -> Result<SenderReport, TransportError> {
        let lost = || TransportError::Protocol("network thread panicked".into());
        match self {
            Net::Thread(h) => h.join().unwrap_or_else(|_| Err(lost())),
            Net::Task { rx, .. } => rx.recv().unwrap_or_else(|_| Err(lost())),
        }
    }
}

/// Marks a task finished however it ends (panics included).
struct Done(Arc<std::sync::atomic::AtomicBool>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// What the application side shares with the network thread.
struct SessionControl {
    /// Notified on every push and on stop.
    wake: Arc<Notify>,
    /// End the session now.
    stop: Arc<AtomicBool>,
    shared: Arc<Mutex<Shared>>,
}

async fn run(
    opts: SenderOptions,
    clock: Clock,
    shared_endpoint: Option<Endpoint>,
    catalog: Vec<SubstreamDesc>,
    source: ChannelSource,
    ctl: SessionControl,
    ready: Ready,
) -> Result<SenderReport, TransportError> {
    let shared = &ctl.shared;
    let setup = async {
        let core = SenderCore::new(&opts.name, catalog, &opts.config)?;
        let (endpoint, conn) = connect(&opts, shared_endpoint).await?;
        let (mut send, recv) = conn
            .open_bi()
            .await
            .map_err(|e| TransportError::ConnectionLost(e.to_string()))?;
        control_stream::send(&mut send, &core.hello(opts.token.clone())).await?;
        let mut reader = ControlReader::new(recv);
        let answer = reader
            .next(opts.connect_timeout.max(Duration::from_secs(5)))
            .await;
        match answer? {
            Some(Control::Accept(a)) => Ok((core, endpoint, conn, send, reader, a)),
            Some(Control::Reject(r)) => {
                conn.close(0u32.into(), b"rejected");
                Err(TransportError::Rejected {
                    reason: r.reason,
                    // The receiver's words, printable.
                    message: crate::text::bounded(&r.message, 1000),
                })
            }
            Some(other) => Err(TransportError::Protocol(format!(
                "expected accept or reject, got {}",
                other.kind()
            ))),
            None => Err(TransportError::Protocol(
                "the receiver closed the control stream without answering".into(),
            )),
        }
    };
    let (mut core, endpoint, conn, send, reader, accept) = match setup.await {
        Ok(v) => v,
        Err(e) => {
            // The caller of `connect` gets the error itself.
            let _ = ready.send(Err(e));
            return Err(TransportError::Ended);
        }
    };
    // Retransmission and adaptive FEC plan with the handshake's round trip
    // until the stream measures more.
    core.set_rtt(conn.rtt());
    core.on_accept(clock.now(), &accept)?;
    shared.lock().unwrap_or_else(|e| e.into_inner()).started_at = core.started_at();
    let _ = ready.send(Ok((accept, core.session().clone())));
    let result = stream(&mut core, &clock, &conn, send, reader, source, &ctl).await;
    let stopped = ctl.stop.load(Ordering::SeqCst);
    conn.close(0u32.into(), if stopped { b"stopped" } else { b"bye" });
    // Let the close reach the peer (a shared endpoint keeps running anyway).
    if let Some(endpoint) = endpoint {
        let _ = tokio::time::timeout(Duration::from_millis(500), endpoint.wait_idle()).await;
    }
    result
}

/// The address to dial for `to`: an unspecified address (`0.0.0.0`, `::`),
/// which is what a receiver listening on every interface reports, means
/// this host, as it does for `connect(2)`.
pub fn dial_addr(to: SocketAddr) -> SocketAddr {
    match to.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, to.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, to.port()).into(),
        _ => to,
    }
}

/// Connect on the shared endpoint if there is one (the endpoint is then not
/// returned: it is not this session's to wait for), else on a new one.
async fn connect(
    opts: &SenderOptions,
    shared: Option<Endpoint>,
) -> Result<(Option<Endpoint>, Connection), TransportError> {
    let to = dial_addr(opts.to);
    let transport = Arc::new(transport::config(opts.idle_timeout));
    let (client, seen) = tls::client_config(&opts.trust, &opts.identity, transport)?;
    let unreachable = || TransportError::Unreachable {
        addr: opts.to,
        timeout: opts.connect_timeout,
    };
    let handshake = |e: quinn::ConnectionError| match e {
        quinn::ConnectionError::TimedOut => unreachable(),
        e => TransportError::Handshake {
            addr: opts.to,
            detail: tls::describe_handshake_error(&e, Some(&seen)),
        },
    };
    if let Some(endpoint) = shared {
        let connecting = endpoint
            .connect_with(client, to, tls::server_name(&opts.trust))
            .map_err(|e| TransportError::Protocol(e.to_string()))?;
        return match tokio::time::timeout(opts.connect_timeout, connecting).await {
            Err(_) => Err(unreachable()),
            Ok(Err(e)) => Err(handshake(e)),
            Ok(Ok(c)) => Ok((None, c)),
        };
    }
    let bind = opts.bind.unwrap_or_else(|| {
        if to.is_ipv6() {
            "[::]:0".parse().expect("literal")
        } else {
            "0.0.0.0:0".parse().expect("literal")
        }
    });
    let sock = socket::bind(bind).map_err(|source| TransportError::Bind { addr: bind, source })?;
    let mut endpoint = Endpoint::new(
        EndpointConfig::default(),
        None,
        sock,
        Arc::new(TokioRuntime),
    )?;
    endpoint.set_default_client_config(client);
    let connecting = endpoint
        .connect(to, tls::server_name(&opts.trust))
        .map_err(|e| TransportError::Protocol(e.to_string()))?;
    match tokio::time::timeout(opts.connect_timeout, connecting).await {
        Err(_) => Err(unreachable()),
        Ok(Err(e)) => Err(handshake(e)),
        Ok(Ok(c)) => Ok((Some(endpoint), c)),
    }
}

/// The session loop: produce, send as the transport has room, follow the
/// receiver's flow control, then end of stream and goodbye.
#[allow(clippy::too_many_arguments)]
async fn stream(
    core: &mut SenderCore,
    clock: &Clock,
    conn: &Connection,
    mut send: quinn::SendStream,
    mut reader: ControlReader,
    mut source: ChannelSource,
    ctl: &SessionControl,
) -> Result<SenderReport, TransportError> {
    let (wake, shared) = (&ctl.wake, &ctl.shared);
    let live = matches!(core.session().mode, Mode::Live);
    let mut planned = conn.max_datagram_size().unwrap_or(1162);
    core.set_max_datagram(clock.now(), planned)?;
    let mut eos: Option<EndOfStream> = None;
    let mut bye = false;
    let mut too_large = 0u64;

    let mut report = None;
    let mut feedback_open = true;
    // After end of stream the receiver still plays its buffer out.
    let linger = clock.real(Duration::from_secs(30));
    let mut give_up = None;
    let max_pause = core.max_pause();
    let mut paused_since: Option<tokio::time::Instant> = None;
    // Messages that came in the same read as the accept (a PAUSE sent with
    // it) are applied now, not at the next read.
    take_control(core, clock, &mut reader, &mut report, &mut bye)?;
    // The waits are made once and kept across turns (the next set in place
    // when one fires; the timer re-armed only when its instant moves): made
    // afresh at every turn, each wake-up (one a frame and more) paid for a
    // timer-wheel entry, waiter-list entries and locks of quinn's
    // connection state, created and dropped unfired.
    let mut wanted = std::pin::pin!(wake.notified());
    let mut feedback = std::pin::pin!(conn.read_datagram());
    let mut closed = std::pin::pin!(conn.closed());
    let mut control_open = !reader.finished;
    let mut control = std::pin::pin!(reader.fill_owned());
    // A reader no longer read is kept (not dropped) until the stream ends.
    let mut kept_reader: Option<ControlReader> = None;
    let mut timer = std::pin::pin!(tokio::time::sleep_until(tokio::time::Instant::now()));
    let mut armed: Option<tokio::time::Instant> = None;
    loop {
        if ctl.stop.load(Ordering::SeqCst) {
            break;
        }
        match (core.is_paused(), paused_since) {
            (true, None) => paused_since = Some(tokio::time::Instant::now()),
            (false, Some(_)) => paused_since = None,
            (true, Some(t)) if t.elapsed() >= max_pause => {
                return Err(TransportError::Paused {
                    seconds: t.elapsed().as_secs_f64(),
                });
            }
            _ => {}
        }
        let now = clock.now();
        core.set_rtt(conn.rtt());
        core.poll(now, &mut source)?;
        if live {
            core.expire(now);
        }
        if let Some(size) = conn.max_datagram_size()
            && size < planned
        {
            planned = size;
            core.set_max_datagram(now, size)?;
        }
        let mut blocked = false;
        while let Some(len) = core.next_len() {
            if conn.datagram_send_buffer_space() < len {
                blocked = true;
                break;
            }
            let d = core.poll_transmit().expect("next_len said one is queued");
            match conn.send_datagram(Bytes::copy_from_slice(d)) {
                Ok(()) => {}
                // Planned before the path shrank: lost, counted, FEC's job.
                Err(quinn::SendDatagramError::TooLarge) => too_large += 1,
                Err(e) => return Err(TransportError::ConnectionLost(e.to_string())),
            }
        }
        {
            let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
            core.fill_stats(&mut s.stats);
            s.stats.dropped_overflow += too_large;
            s.report = report;
            s.paused_since = paused_since.map(|t| t.into_std());
        }
        if eos.is_none() && core.is_finished() {
            let e = core.end_of_stream();
            control_stream::send(&mut send, &Control::EndOfStream(e.clone())).await?;
            eos = Some(e);
            give_up = Some(tokio::time::Instant::now() + linger);
        }
        if bye {
            break;
        }
        let mut wake_at = core
            .next_timeout()
            .map(|t| tokio::time::Instant::from_std(clock.instant_of(t)));
        if blocked {
            let soon = tokio::time::Instant::now() + Duration::from_millis(1);
            wake_at = Some(wake_at.map_or(soon, |w| w.min(soon)));
        }
        if let Some(p) = paused_since {
            let g = p + max_pause;
            wake_at = Some(wake_at.map_or(g, |w| w.min(g)));
        }
        if let Some(g) = give_up {
            wake_at = Some(wake_at.map_or(g, |w| w.min(g)));
            if tokio::time::Instant::now() >= g {
                break;
            }
        }
        if wake_at != armed {
            if let Some(t) = wake_at {
                timer.as_mut().reset(t);
            }
            armed = wake_at;
        }
        tokio::select! {
            _ = &mut timer, if armed.is_some() => armed = None,
            _ = &mut wanted => wanted.set(wake.notified()),
            // NACKs: answered at the top of the loop, retransmissions first.
            dg = &mut feedback, if feedback_open => {
                feedback.set(conn.read_datagram());
                match dg {
                    Ok(bytes) => core.on_feedback(clock.now(), &bytes),
                    Err(_) => feedback_open = false,
                }
            }
            (mut r, more) = &mut control, if control_open => {
                let taken = more.and_then(|_| {
                    take_control(core, clock, &mut r, &mut report, &mut bye)
                });
                match taken {
                    // After end of stream, a connection that ends without a
                    // bye (the receiver vanished, or its bye was lost) ends
                    // the session as `closed` does: not completed, with the
                    // account of what was sent, rather than an error that
                    // loses it (whichever of the two fires first).
                    Err(TransportError::ConnectionLost(_)) if eos.is_some() => break,
                    other => other?,
                }
                if r.finished {
                    control_open = false;
                    kept_reader = Some(r);
                } else {
                    control.set(r.fill_owned());
                }
            }
            e = &mut closed => {
                if eos.is_some() {
                    break;
                }
                return Err(TransportError::ConnectionLost(e.to_string()));
            }
        }
    }
    drop(kept_reader);
    let mut stats = core.stats();
    stats.dropped_overflow += too_large;
    shared.lock().unwrap_or_else(|e| e.into_inner()).stats = stats.clone();
    Ok(SenderReport {
        stats,
        receiver: report,
        end: eos.unwrap_or_else(|| core.end_of_stream()),
        completed: bye,
    })
}

/// Apply the receiver's messages decoded so far: flow control, reports,
/// bye; a reject (the receiver could not write the stream, or a limit) ends
/// the session with its reason, made printable.
fn take_control(
    core: &mut SenderCore,
    clock: &Clock,
    reader: &mut ControlReader,
    report: &mut Option<Report>,
    bye: &mut bool,
) -> Result<(), TransportError> {
    while let Some(m) = reader.pending()? {
        match m {
            Control::Pause | Control::Resume | Control::Credit(_) => {
                core.on_control(clock.now(), &m)
            }
            Control::Report(r) => {
                core.on_control(clock.now(), &m);
                *report = Some(r);
            }
            Control::Bye => *bye = true,
            Control::Reject(r) => {
                return Err(TransportError::Rejected {
                    reason: r.reason,
                    message: crate::text::bounded(&r.message, 1000),
                });
            }
            other => {
                return Err(TransportError::Protocol(format!(
                    "unexpected {} from the receiver",
                    other.kind()
                )));
            }
        }
    }
    Ok(())
}
