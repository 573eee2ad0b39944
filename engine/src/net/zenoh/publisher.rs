//! Publishing a stream by name: one [`SenderCore`], any number of
//! listeners, the copies made by zenoh routers.
//!
//! [`Publisher::start`] opens a zenoh session, announces the stream (a
//! liveliness token, the signed catalog and the key service as
//! queryables), optionally waits for its first listeners, then runs the
//! sender core on its own network thread. Every datagram the core hands out
//! is sealed ([`Sealer`]) and becomes one put: best effort, express,
//! dealt over priorities from real-time down ([`MEDIA_LANES`]), dropped
//! rather than queued under congestion. Reports
//! from listeners (sealed, each with its own key) feed adaptive FEC through
//! [`Audience`]; the end of stream goes out sealed and reliably, repeated
//! while the publisher lingers.

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ::zenoh::Wait;
use ::zenoh::qos::{CongestionControl, Priority, Reliability};
use ::zenoh::sample::SampleKind;
use bytes::Bytes;
use crossbeam_channel as cb;
use tokio::sync::Notify;

use super::config::{self, ZenohOptions};
use super::error::FanoutError;
use super::{budget, keys, open_session};
use crate::catalog::SubstreamDesc;
use crate::config::{ReceiverConfig, SenderConfig};
use crate::fec::{Audience, AudiencePolicy};
use crate::net::clock::Clock;
use crate::net::source::{ChannelSource, Feed, MediaClock, channel_source, spawn_reader};
use crate::net::tls::{Fingerprint, Identity, verify_signature};
use crate::receiver::REPORT_INTERVAL;
use crate::seal::derive::PASSPHRASE_ITERATIONS;
use crate::seal::{
    Opener, Sealer, SessionKeys, SessionSecret, key_check, passphrase_master, wrap_secret,
};
use crate::sender::SenderCore;
use crate::stats::SenderStats;
use crate::time::Time;
use crate::wire::control::{Accept, EndOfStream, Mode, Report};
use crate::wire::fanout::{
    self, KeyAnswer, KeyOffer, KeyRequest, PublisherControl, SealedMessage, Signed, StreamCatalog,
    context, validate_stream_name,
};
use crate::wire::packet::HEADER_LEN;

/// How to publish a stream.
#[derive(Clone)]
pub struct PublisherOptions {
    /// The stream's name (`studio/a/mix`).
    pub stream: String,
    /// Where the zenoh routers are.
    pub zenoh: ZenohOptions,
    /// FEC, interleaving and queue settings (mode is always live).
    pub config: SenderConfig,
    /// The listener latency the FEC window is planned for (a listener needs
    /// at least the catalog's latency floor, which this sets).
    pub latency: Duration,
    /// Listeners (fingerprints) given the key besides the publisher's own
    /// identity.
    pub allow: Vec<Fingerprint>,
    /// Give the key to every listener that asks. Anyone who can reach a
    /// router can then read the stream.
    pub dangerously_open: bool,
    /// Protect the stream with a passphrase (listeners who know it need no
    /// authorisation).
    pub passphrase: Option<String>,
    /// Do not start before this many listeners have announced themselves.
    pub wait_listeners: usize,
    /// Start anyway after waiting this long for them.
    pub wait_timeout: Duration,
    /// After the end of stream, keep answering and repeating the end this
    /// long (listeners are still playing their buffers out).
    pub linger: Duration,
    /// How listeners' reports drive adaptive FEC.
    pub audience: AudiencePolicy,
    /// Key requests answered per second at most (each costs a key
    /// agreement and a signature); the rest go unanswered and their
    /// listeners ask again.
    pub key_answers_per_sec: u32,
    /// Sample chunks buffered per substream before producers block.
    pub chunk_depth: usize,
    /// Priorities media is dealt over, 1..=7 ([`MEDIA_LANES`]): 7 rides
    /// out reordering jitter of up to seven packet times; 1 keeps every
    /// datagram at real-time priority (links that never reorder).
    pub lanes: usize,
}

impl PublisherOptions {
    /// Defaults: default live [`SenderConfig`], planned for 80 ms listeners,
    /// only the publisher's own identity authorised, no waiting, 2 s linger.
    pub fn new(stream: impl Into<String>, zenoh: ZenohOptions) -> Self {
        Self {
            stream: stream.into(),
            zenoh,
            config: SenderConfig::default(),
            latency: Duration::from_millis(80),
            allow: Vec::new(),
            dangerously_open: false,
            passphrase: None,
            wait_listeners: 0,
            wait_timeout: Duration::from_secs(30),
            linger: Duration::from_secs(2),
            audience: AudiencePolicy::default(),
            key_answers_per_sec: KEY_ANSWERS_PER_SEC,
            chunk_depth: 64,
            lanes: MEDIA_LANES.len(),
        }
    }
}

/// Counters of a publisher.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct PublisherStats {
    /// The sender core's counters.
    pub sender: SenderStats,
    /// Listeners announced now (liveliness tokens).
    pub listeners: usize,
    /// Most listeners announced at once.
    pub listeners_max: usize,
    /// Key requests granted.
    pub keys_granted: u64,
    /// Key requests refused (not authorised, bad signature, wrong run).
    pub keys_refused: u64,
    /// Key requests ignored because they came faster than the limit.
    pub keys_rate_limited: u64,
    /// Valid listener reports received.
    pub reports: u64,
    /// Reports that failed to open, or came for another run.
    pub reports_invalid: u64,
    /// The loss adaptive FEC currently serves (the audience's quantile).
    pub audience_loss_ratio: Option<f64>,
    /// Puts zenoh refused (the session was closing).
    pub put_errors: u64,
}

/// How publishing ended.
#[derive(Debug, Clone)]
pub struct PublisherReport {
    /// The final counters.
    pub stats: PublisherStats,
    /// What was sent, as told to listeners.
    pub end: EndOfStream,
}

#[derive(Default)]
struct Shared {
    stats: PublisherStats,
    started_at: Time,
}

/// The priorities media datagrams take in turn (the first
/// [`PublisherOptions::lanes`] of them). Zenoh drops a best-effort message
/// that arrives after a later one of the same priority (each priority has
/// its own sequence numbers, checked at every hop), so jitter on a router
/// link that reorders packets would turn into loss. Dealt over `n`
/// priorities, consecutive datagrams of one priority are `n` packet times
/// apart (7 x 3.3 ms = 23 ms for 48 kHz stereo in 10 ms frames with FEC):
/// jitter within that reorders nothing zenoh drops, and the playout puts
/// packets back in order anyway. Media is the only best-effort traffic, so
/// it shares these sequence spaces with nothing; the reliable messages
/// (declarations, end of stream, reports) have their own.
pub const MEDIA_LANES: [Priority; 7] = [
    Priority::RealTime,
    Priority::InteractiveHigh,
    Priority::InteractiveLow,
    Priority::DataHigh,
    Priority::Data,
    Priority::DataLow,
    Priority::Background,
];

/// Key requests answered per second at most (each costs a signature check,
/// an X25519 agreement and a signature).
const KEY_ANSWERS_PER_SEC: u32 = 64;

/// What the key service needs.
struct KeyService {
    stream: String,
    instance: [u8; 16],
    identity: Identity,
    secret: SessionSecret,
    allow: HashSet<Fingerprint>,
    open: bool,
    budget: Mutex<(Instant, u32)>,
    per_sec: u32,
    shared: Arc<Mutex<Shared>>,
}

impl KeyService {
    fn allowed(&self) -> bool {
        let mut b = self.budget.lock().unwrap_or_else(|e| e.into_inner());
        if b.0.elapsed() >= Duration::from_secs(1) {
            *b = (Instant::now(), 0);
        }
        b.1 += 1;
        b.1 <= self.per_sec
    }

    fn count(&self, f: impl FnOnce(&mut PublisherStats)) {
        f(&mut self.shared.lock().unwrap_or_else(|e| e.into_inner()).stats);
    }

    /// The signed answer to a request's bytes (or nothing for garbage).
    fn answer(&self, payload: &[u8]) -> Option<Vec<u8>> {
        if !self.allowed() {
            self.count(|s| s.keys_rate_limited += 1);
            return None;
        }
        let signed: Signed = fanout::decode(payload).ok()?;
        let req: KeyRequest = fanout::decode(&signed.body).ok()?;
        let refuse = |reason: String| KeyAnswer::Refused {
            listener_ephemeral: req.ephemeral,
            reason,
        };
        let fp = Fingerprint::of(&req.listener_cert);
        let answer = if verify_signature(
            &req.listener_cert,
            context::KEY_REQUEST,
            &signed.body,
            signed.scheme,
            &signed.signature,
        )
        .is_err()
        {
            refuse("the request's signature does not verify".into())
        } else if req.stream != self.stream || req.instance != self.instance {
            refuse(
                "the request is for another stream or publisher run; fetch the catalog again"
                    .into(),
            )
        } else if !(self.open || self.allow.contains(&fp)) {
            refuse(format!(
                "listener {fp} is not authorised for '{}': on the publisher, add --allow {fp}",
                self.stream
            ))
        } else {
            match wrap_secret(
                &self.secret,
                &req.ephemeral,
                &wrap_context(&self.stream, &self.instance),
            ) {
                Ok((publisher_ephemeral, sealed)) => KeyAnswer::Grant {
                    instance: self.instance,
                    listener_ephemeral: req.ephemeral,
                    publisher_ephemeral,
                    sealed,
                },
                Err(e) => refuse(e.to_string()),
            }
        };
        match &answer {
            KeyAnswer::Grant { .. } => self.count(|s| s.keys_granted += 1),
            KeyAnswer::Refused { reason, .. } => {
                tracing::info!(listener = %fp, %reason, "key request refused");
                self.count(|s| s.keys_refused += 1);
            }
        }
        let body = fanout::encode(&answer);
        let (scheme, signature) = self.identity.sign(context::KEY_ANSWER, &body).ok()?;
        Some(fanout::encode(&Signed {
            body,
            scheme,
            signature,
        }))
    }
}

/// What a wrapped key is bound to.
pub(crate) fn wrap_context(stream: &str, instance: &[u8; 16]) -> Vec<u8> {
    let mut v = b"isochron key wrap context v1\0".to_vec();
    v.extend_from_slice(instance);
    v.extend_from_slice(stream.as_bytes());
    v
}

/// Listener reports: open each with its listener's key, keep the freshest.
struct ReportIn {
    instance: [u8; 16],
    keys: SessionKeys,
    openers: Mutex<HashMap<[u8; 16], Opener>>,
    max: usize,
    tx: cb::Sender<([u8; 16], Report)>,
    shared: Arc<Mutex<Shared>>,
}

impl ReportIn {
    fn on_sample(&self, key: &str, payload: &[u8]) {
        let ok = self.open(key, payload);
        let mut sh = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        match ok {
            Some((id, r)) => {
                sh.stats.reports += 1;
                let _ = self.tx.try_send((id, r));
            }
            None => sh.stats.reports_invalid += 1,
        }
    }

    fn open(&self, key: &str, payload: &[u8]) -> Option<([u8; 16], Report)> {
        let m: SealedMessage = fanout::decode(payload).ok()?;
        if m.instance != self.instance || keys::id_of(key) != Some(m.sender) {
            return None;
        }
        let mut openers = self.openers.lock().unwrap_or_else(|e| e.into_inner());
        if !openers.contains_key(&m.sender) && openers.len() >= self.max {
            return None;
        }
        let opener = openers
            .entry(m.sender)
            .or_insert_with(|| Opener::new(&self.keys.report(&m.sender)));
        let mut sealed = m.sealed;
        let plain = opener.open(&mut sealed, 0).ok()?;
        let r: Report = fanout::decode(plain).ok()?;
        Some((m.sender, r))
    }
}

/// A stream on air.
pub struct Publisher {
    feeds: Vec<Feed>,
    strides: Vec<usize>,
    catalog: StreamCatalog,
    shared: Arc<Mutex<Shared>>,
    net: Option<JoinHandle<Result<PublisherReport, FanoutError>>>,
    readers: Vec<JoinHandle<io::Result<()>>>,
}

impl Publisher {
    /// Announce `substreams` as stream `opts.stream`, signed by `identity`,
    /// and start streaming (live) once `opts.wait_listeners` listeners are
    /// there. Not from inside a tokio current-thread runtime (zenoh's
    /// blocking calls refuse it).
    pub fn start(
        mut opts: PublisherOptions,
        identity: &Identity,
        substreams: Vec<SubstreamDesc>,
    ) -> Result<Publisher, FanoutError> {
        validate_stream_name(&opts.stream).map_err(FanoutError::Name)?;
        let stream = opts.stream.clone();
        // Plan the FEC window for listeners at `latency`, as a receiver
        // would, and packets for the fan-out path's budget.
        opts.config.mode = Mode::Live;
        // Listeners cannot ask the publisher for packets again (one stream
        // for all, through routers): FEC alone, sized for their reports.
        opts.config.recovery = crate::wire::control::Recovery::Fec;
        // No per-listener reports to pick a depth from either: fixed.
        opts.config.fec.auto_depth = false;
        opts.config.max_datagram = budget::max_datagram(&stream);
        let probe = SenderCore::new(&stream, substreams.clone(), &opts.config)?;
        let rcfg = ReceiverConfig {
            latency: opts.latency,
            ..ReceiverConfig::default()
        };
        let window = rcfg.check_session(probe.session())?;
        opts.config.fec.window_us = crate::time::micros(window).min(u32::MAX as u64) as u32;
        let mut core = SenderCore::new(&stream, substreams, &opts.config)?;
        core.set_fec_safety(crate::fec::adapt::AUDIENCE_SAFETY);
        let session = core.session().clone();
        let hold = session
            .substreams
            .iter()
            .map(|d| d.unit_delay())
            .max()
            .unwrap_or_default();
        let floor = window * session.fec.depth.max(1) as u32 + hold;

        let mut instance = [0u8; 16];
        crate::seal::random_bytes(&mut instance);
        let secret = match &opts.passphrase {
            Some(p) => SessionSecret::from_master(
                &passphrase_master(p, &stream, PASSPHRASE_ITERATIONS),
                &instance,
            ),
            None => SessionSecret::random(),
        };
        let keys = secret.keys();
        let catalog = StreamCatalog {
            stream: stream.clone(),
            publisher_cert: identity.certificate_der().to_vec(),
            instance,
            session,
            latency_floor_us: crate::time::micros(floor).min(u32::MAX as u64) as u32,
            max_datagram: (opts.config.max_datagram + crate::seal::ENVELOPE_OVERHEAD) as u16,
            key: KeyOffer {
                check: key_check(&secret),
                passphrase_iterations: opts.passphrase.as_ref().map(|_| PASSPHRASE_ITERATIONS),
                wrapped: true,
                open: opts.dangerously_open,
            },
        };
        let body = fanout::encode(&catalog);
        let (scheme, signature) = identity.sign(context::CATALOG, &body)?;
        let catalog_bytes = Arc::new(fanout::encode(&Signed {
            body,
            scheme,
            signature,
        }));

        let zs = open_session(config::client(&opts.zenoh)?, &opts.zenoh)?;
        let shared = Arc::new(Mutex::new(Shared::default()));
        let zerr = |e: ::zenoh::Error| FanoutError::Zenoh(e.to_string());

        // Announce: catalog, key service, liveliness; then listen.
        let cat = catalog_bytes.clone();
        let ck = keys::catalog(&stream);
        let catalog_q = zs
            .declare_queryable(&ck)
            .callback(move |q| {
                let _ = q.reply(q.key_expr().clone(), cat.as_slice()).wait();
            })
            .wait()
            .map_err(zerr)?;
        let mut allow: HashSet<Fingerprint> = opts.allow.iter().copied().collect();
        allow.insert(identity.fingerprint());
        if opts.dangerously_open {
            tracing::warn!(
                stream = %stream,
                "the stream key goes to ANY listener that asks: anyone who reaches a router can read this stream"
            );
        }
        let service = Arc::new(KeyService {
            stream: stream.clone(),
            instance,
            identity: identity.clone(),
            secret,
            allow,
            open: opts.dangerously_open,
            budget: Mutex::new((Instant::now(), 0)),
            per_sec: opts.key_answers_per_sec,
            shared: shared.clone(),
        });
        let key_q = zs
            .declare_queryable(keys::key(&stream))
            .callback(move |q| {
                let payload = q.payload().map(|p| p.to_bytes().into_owned());
                if let Some(answer) = payload.and_then(|p| service.answer(&p)) {
                    let _ = q.reply(q.key_expr().clone(), answer).wait();
                }
            })
            .wait()
            .map_err(zerr)?;
        let (report_tx, report_rx) = cb::bounded(4096);
        let reports_in = ReportIn {
            instance,
            keys: keys.clone(),
            openers: Mutex::new(HashMap::new()),
            max: opts.audience.max_listeners,
            tx: report_tx,
            shared: shared.clone(),
        };
        let reports_sub = zs
            .declare_subscriber(keys::reports(&stream))
            .callback(move |s| {
                reports_in.on_sample(s.key_expr().as_str(), &s.payload().to_bytes());
            })
            .wait()
            .map_err(zerr)?;
        let audience_set: Arc<Mutex<HashSet<String>>> = Arc::default();
        let set = audience_set.clone();
        let sh = shared.clone();
        let listeners_sub = zs
            .liveliness()
            .declare_subscriber(keys::listeners(&stream))
            .history(true)
            .callback(move |s| {
                let mut set = set.lock().unwrap_or_else(|e| e.into_inner());
                match s.kind() {
                    SampleKind::Put if set.len() < 1 << 16 => {
                        set.insert(s.key_expr().as_str().to_owned());
                    }
                    SampleKind::Delete => {
                        set.remove(s.key_expr().as_str());
                    }
                    _ => {}
                }
                let mut sh = sh.lock().unwrap_or_else(|e| e.into_inner());
                sh.stats.listeners = set.len();
                sh.stats.listeners_max = sh.stats.listeners_max.max(set.len());
            })
            .wait()
            .map_err(zerr)?;
        let media = MEDIA_LANES[..opts.lanes.clamp(1, MEDIA_LANES.len())]
            .iter()
            .map(|&p| {
                zs.declare_publisher(keys::media(&stream))
                    .congestion_control(CongestionControl::Drop)
                    .priority(p)
                    .express(true)
                    .reliability(Reliability::BestEffort)
                    .wait()
                    .map_err(zerr)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let eos_pub = zs
            .declare_publisher(keys::eos(&stream))
            .congestion_control(CongestionControl::Block)
            .priority(Priority::Data)
            .reliability(Reliability::Reliable)
            .wait()
            .map_err(zerr)?;
        let token = zs
            .liveliness()
            .declare_token(keys::live(&stream))
            .wait()
            .map_err(zerr)?;

        if opts.wait_listeners > 0 {
            let until = Instant::now() + opts.wait_timeout;
            loop {
                let n = shared
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .stats
                    .listeners;
                if n >= opts.wait_listeners {
                    // Let their subscriptions settle along the routers.
                    std::thread::sleep(Duration::from_millis(200));
                    break;
                }
                if Instant::now() >= until {
                    tracing::warn!(
                        have = n,
                        want = opts.wait_listeners,
                        "starting without all the listeners waited for"
                    );
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }

        let clock = Clock::new(1.0);
        let accept = Accept {
            session_id: 0,
            latency_us: crate::time::micros(opts.latency).min(u32::MAX as u64) as u32,
            low_water_us: 0,
            high_water_us: 0,
            fec_window_us: catalog.session.fec.window_us,
            max_depth: catalog.session.fec.depth.max(1),
        };
        core.on_accept(clock.now(), &accept)?;

        let wake = Arc::new(Notify::new());
        let strides: Vec<usize> = catalog
            .session
            .substreams
            .iter()
            .map(|d| d.format.stride())
            .collect();
        // Media time zero is the first sample pushed (or read from a file).
        let media_clock = MediaClock::new(clock);
        let (source, feeds) = channel_source(&strides, opts.chunk_depth, wake.clone(), media_clock);
        let net_parts = NetParts {
            core,
            clock,
            source,
            wake,
            shared: shared.clone(),
            media,
            eos_pub,
            sealer: Sealer::new(&keys.media),
            control: Sealer::new(&keys.control),
            instance,
            reports: report_rx,
            audience: Audience::new(opts.audience),
            linger: opts.linger,
        };
        let held = Held {
            _catalog: catalog_q,
            _key: key_q,
            _reports: reports_sub,
            _listeners: listeners_sub,
            _token: token,
        };
        let net = std::thread::Builder::new()
            .name("isochron-publish".into())
            .spawn(move || {
                // It paces every datagram: as urgent as a sender's.
                crate::net::priority::raise(crate::net::priority::Urgency::Network);
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                let result = rt.block_on(run(net_parts));
                drop(rt);
                // Undeclare and close outside any runtime (zenoh blocks).
                drop(held);
                let _ = zs.close().wait();
                result
            })?;
        Ok(Publisher {
            feeds,
            strides,
            catalog,
            shared,
            net: Some(net),
            readers: Vec::new(),
        })
    }

    /// The catalog as announced (signed) to listeners.
    pub fn catalog(&self) -> &StreamCatalog {
        &self.catalog
    }

    /// Push wire-encoded samples (whole samples) for substream `index`.
    /// Blocks while that substream's buffer is full.
    pub fn push(&self, index: usize, samples: Bytes) -> Result<(), FanoutError> {
        let feed = self
            .feeds
            .get(index)
            .ok_or(FanoutError::NoSuchSubstream(index))?;
        if samples.len() % self.strides[index] != 0 {
            return Err(FanoutError::Sink(format!(
                "{} bytes is not a whole number of {}-byte samples",
                samples.len(),
                self.strides[index]
            )));
        }
        if feed.push(samples) {
            Ok(())
        } else {
            Err(FanoutError::Ended)
        }
    }

    /// Substream `index` has no more samples.
    pub fn end(&self, index: usize) -> Result<(), FanoutError> {
        self.feeds
            .get(index)
            .ok_or(FanoutError::NoSuchSubstream(index))?
            .end();
        Ok(())
    }

    /// Feed substream `index` from a reader on its own thread (see
    /// [`spawn_reader`]).
    pub fn feed_from<R>(&mut self, index: usize, read: R) -> Result<(), FanoutError>
    where
        R: FnMut(&mut [u8]) -> io::Result<usize> + Send + 'static,
    {
        let feed = self
            .feeds
            .get(index)
            .ok_or(FanoutError::NoSuchSubstream(index))?
            .clone();
        let h = spawn_reader(feed, index, &self.catalog.session.substreams[index], read)?;
        self.readers.push(h);
        Ok(())
    }

    /// Counters so far.
    pub fn stats(&self) -> PublisherStats {
        self.shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stats
            .clone()
    }

    /// Media time zero on the publisher's clock (`CLOCK_MONOTONIC`): the
    /// first sample pushed ([`Time::ZERO`] until then).
    pub fn started_at(&self) -> Time {
        self.shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .started_at
    }

    /// The stream has ended and the publisher stopped lingering.
    pub fn is_finished(&self) -> bool {
        self.net.as_ref().is_none_or(|h| h.is_finished())
    }

    /// End every substream not ended yet and wait for the end.
    pub fn finish(self) -> Result<PublisherReport, FanoutError> {
        for f in &self.feeds {
            f.end();
        }
        self.wait()
    }

    /// Wait for the stream to end (readers reach their end, or
    /// [`Publisher::end`]) and the linger to pass.
    pub fn wait(mut self) -> Result<PublisherReport, FanoutError> {
        let net = self.net.take().expect("joined once");
        let result = net
            .join()
            .unwrap_or_else(|_| Err(FanoutError::Zenoh("the publisher thread panicked".into())));
        for r in self.readers.drain(..) {
            match r.join() {
                Ok(Err(e)) if result.is_ok() => return Err(FanoutError::Io(e)),
                _ => {}
            }
        }
        result
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        for f in &self.feeds {
            f.end();
        }
    }
}

/// Declarations that live as long as the stream.
struct Held {
    _catalog: ::zenoh::query::Queryable<()>,
    _key: ::zenoh::query::Queryable<()>,
    _reports: ::zenoh::pubsub::Subscriber<()>,
    _listeners: ::zenoh::pubsub::Subscriber<()>,
    _token: ::zenoh::liveliness::LivelinessToken,
}

struct NetParts {
    core: SenderCore,
    clock: Clock,
    source: ChannelSource,
    wake: Arc<Notify>,
    shared: Arc<Mutex<Shared>>,
    media: Vec<::zenoh::pubsub::Publisher<'static>>,
    eos_pub: ::zenoh::pubsub::Publisher<'static>,
    sealer: Sealer,
    control: Sealer,
    instance: [u8; 16],
    reports: cb::Receiver<([u8; 16], Report)>,
    audience: Audience,
    linger: Duration,
}

/// The stream loop: produce, seal and put, adapt to the audience, then
/// repeat the end of stream while lingering.
async fn run(mut p: NetParts) -> Result<PublisherReport, FanoutError> {
    let mut put_errors = 0u64;
    let mut lane = 0;
    let mut sealed = Vec::with_capacity(2048);
    let mut next_adapt = p.clock.now() + REPORT_INTERVAL;
    let mut eos: Option<(EndOfStream, Vec<u8>)> = None;
    let mut next_eos = Time::ZERO;
    let mut give_up: Option<Time> = None;
    loop {
        let now = p.clock.now();
        p.core.poll(now, &mut p.source)?;
        p.core.expire(now);
        while let Some(d) = p.core.poll_transmit() {
            p.sealer.seal(d, HEADER_LEN, &mut sealed);
            if p.media[lane].put(sealed.as_slice()).wait().is_err() {
                put_errors += 1;
            }
            lane = (lane + 1) % p.media.len();
        }
        while let Ok((id, r)) = p.reports.try_recv() {
            p.audience.on_report(now, id, r);
        }
        if now >= next_adapt {
            next_adapt = now + REPORT_INTERVAL;
            if let Some(sample) = p.audience.loss(now) {
                // The pattern (bursts, outages), not only the rate: a
                // router link's reordering drops come in runs.
                p.core.observe_sample(now, sample);
            }
        }
        if eos.is_none() && p.core.is_finished() {
            let e = p.core.end_of_stream();
            let mut msg = Vec::new();
            p.control.seal(
                &fanout::encode(&PublisherControl::EndOfStream(e.clone())),
                0,
                &mut msg,
            );
            let bytes = fanout::encode(&SealedMessage {
                instance: p.instance,
                sender: [0; 16],
                sealed: msg,
            });
            eos = Some((e, bytes));
            give_up = Some(now + p.linger);
        }
        if let Some((_, bytes)) = &eos
            && now >= next_eos
        {
            // Repeated: a listener whose router restarted still gets it.
            if p.eos_pub.put(bytes.as_slice()).wait().is_err() {
                put_errors += 1;
            }
            next_eos = now + Duration::from_millis(500);
        }
        {
            let mut s = p.shared.lock().unwrap_or_else(|e| e.into_inner());
            s.stats.sender = p.core.stats();
            s.stats.put_errors = put_errors;
            s.stats.audience_loss_ratio = p.core.loss_estimate();
            s.started_at = p.core.started_at();
        }
        if give_up.is_some_and(|g| now >= g) {
            break;
        }
        let candidates = [
            p.core.next_timeout(),
            Some(next_adapt),
            eos.as_ref().map(|_| next_eos),
            give_up,
        ];
        let wake_at = candidates
            .into_iter()
            .flatten()
            .min()
            .map(|t| tokio::time::Instant::from_std(p.clock.instant_of(t)));
        let sleep = async {
            match wake_at {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => {}
            _ = p.wake.notified() => {}
        }
    }
    let stats = p
        .shared
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .stats
        .clone();
    Ok(PublisherReport {
        stats,
        end: eos
            .map(|(e, _)| e)
            .unwrap_or_else(|| p.core.end_of_stream()),
    })
}
