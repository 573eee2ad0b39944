//! Listening to a stream by name.
//!
//! [`Subscriber::start`] fetches the stream's signed catalog and checks it
//! against the pinned publisher fingerprints, checks its latency against
//! the stream's floor, obtains the key (a passphrase, or the publisher
//! wraps it to this listener's identity), and only then creates the sink:
//! a refused listener writes nothing. Media samples are opened and fed to
//! the core's [`Ingress`] (which starts at the first whole FEC group when
//! joining mid-stream) with their arrival time, on zenoh's receive thread;
//! the playout, concealment and sinks are the point-to-point ones. A
//! network thread forwards reports (sealed with this listener's own key)
//! and the end of stream, and ends a session whose publisher went silent.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ::zenoh::Wait;
use ::zenoh::qos::{CongestionControl, Priority, Reliability};
use crossbeam_channel as cb;
use isochron_codecs::Method;

use super::config::{self, ZenohOptions};
use super::discovery::{CatalogProblem, fetch_catalog};
use super::error::{FanoutError, RefusedReason};
use super::publisher::wrap_context;
use super::{keys, open_session};
use crate::config::ReceiverConfig;
use crate::ingress::Ingress;
use crate::net::clock::Clock;
use crate::net::playout_pool::{PlayoutInput, SessionEnded, Shared, ToPlayout};
use crate::net::playout_start::{self, PlayoutLink, concealers};
use crate::net::sink::{SessionEnd, Sink};
use crate::net::tls::{Fingerprint, Identity, verify_signature};
use crate::playout::Playout;
use crate::receiver::{fec_wait, fill_ingress_stats};
use crate::seal::{
    KeyRequestKey, OpenError, Opener, Sealer, SessionSecret, key_check, passphrase_master,
    same_bytes, unwrap_secret,
};
use crate::stats::ReceiverStats;
use crate::time::Time;
use crate::wire::control::{Control, EndOfStream};
use crate::wire::fanout::{
    self, KeyAnswer, KeyRequest, PublisherControl, SealedMessage, Signed, StreamCatalog, context,
    validate_stream_name,
};
use crate::wire::packet::HEADER_LEN;

/// How to listen.
#[derive(Clone)]
pub struct SubscriberOptions {
    /// The stream's name.
    pub stream: String,
    /// Where the zenoh routers are.
    pub zenoh: ZenohOptions,
    /// Publishers trusted (their fingerprints); the catalog must be signed
    /// by one of them.
    pub pin: Vec<Fingerprint>,
    /// The stream's passphrase, if it has one (otherwise the key is asked
    /// for, wrapped to this listener's identity).
    pub passphrase: Option<String>,
    /// Latency, water marks and limits.
    pub config: ReceiverConfig,
    /// Concealment for audio substreams.
    pub conceal_audio: Method,
    /// Concealment for sensor substreams.
    pub conceal_sensor: Method,
    /// How long to wait for the stream to appear.
    pub wait: Duration,
    /// A publisher silent this long (after media started) is gone: the
    /// stream ends truncated.
    pub idle_timeout: Duration,
    /// Ignore this publisher run (one that already ended): wait for the
    /// stream's next run instead.
    pub skip_instance: Option<[u8; 16]>,
}

impl SubscriberOptions {
    /// Defaults: default [`ReceiverConfig`], waveform audio and linear
    /// sensor concealment, 10 s to find the stream, 10 s idle timeout.
    pub fn new(stream: impl Into<String>, zenoh: ZenohOptions, pin: Vec<Fingerprint>) -> Self {
        Self {
            stream: stream.into(),
            zenoh,
            pin,
            passphrase: None,
            config: ReceiverConfig::default(),
            conceal_audio: Method::Waveform,
            conceal_sensor: Method::Linear,
            wait: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
            skip_instance: None,
        }
    }
}

/// The stream as this listener found it.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    /// The verified catalog.
    pub catalog: StreamCatalog,
    /// The publisher's fingerprint (one of the pins).
    pub publisher: Fingerprint,
    /// This listener's random id (its liveliness token and report key).
    pub listener: [u8; 16],
}

/// Ask for the catalog until it answers or `wait` passes, saying now and
/// then what is awaited: no publisher on air under that name yet, or one
/// on air whose catalog does not answer (a router between that lost its
/// declarations), or only a run that already ended. Every attempt is a
/// fresh query through the routers, so a stream that comes on air, or a
/// route that heals, is found on the next one.
fn find_catalog(
    session: &::zenoh::Session,
    stream: &str,
    wait: Duration,
    skip: Option<[u8; 16]>,
) -> Result<(StreamCatalog, Fingerprint), FanoutError> {
    let started = Instant::now();
    let until = started + wait;
    let mut note_every = Duration::from_secs(5);
    let mut next_note = started + note_every;
    let mut asked = 0u32;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        asked += 1;
        let ended_run = match fetch_catalog(
            session,
            stream,
            left.clamp(Duration::from_millis(100), Duration::from_secs(1)),
        ) {
            Ok(c) if Some(c.0.instance) != skip => return Ok(c),
            Ok(_) => true,
            Err(CatalogProblem::Invalid(e)) => {
                return Err(FanoutError::refused(RefusedReason::Catalog, e));
            }
            Err(CatalogProblem::NoAnswer) => false,
        };
        let now = Instant::now();
        if now >= until || now >= next_note {
            let on_air = publisher_on_air(session, stream);
            let state = waiting_for(ended_run, on_air, asked);
            if now >= until {
                return Err(FanoutError::NotFound {
                    stream: stream.to_owned(),
                    waited: wait,
                    state,
                });
            }
            tracing::warn!(
                "still waiting for stream '{stream}' after {:.0?}: {state}",
                now - started
            );
            note_every = (note_every * 2).min(Duration::from_secs(300));
            next_note = now + note_every;
        }
        std::thread::sleep(Duration::from_millis(if ended_run { 200 } else { 100 }));
    }
}

/// The publisher's liveliness token for `stream` is seen from here.
fn publisher_on_air(session: &::zenoh::Session, stream: &str) -> bool {
    let Ok(replies) = session
        .liveliness()
        .get(keys::live(stream))
        .timeout(Duration::from_secs(1))
        .wait()
    else {
        return false;
    };
    let mut seen = false;
    while let Ok(r) = replies.recv() {
        seen |= r.result().is_ok();
    }
    seen
}

/// What a listener is still waiting for, in words.
fn waiting_for(ended_run: bool, on_air: bool, asked: u32) -> String {
    match (ended_run, on_air) {
        (true, _) => {
            "only the publisher run that already ended answers; waiting for its next run".to_owned()
        }
        (false, true) => format!(
            "its publisher is on air (its liveliness token is seen) but its catalog answered none of {asked} queries (a router between may have lost its declarations)"
        ),
        (false, false) => format!(
            "no publisher is on air under that name ({asked} catalog queries, no liveliness token seen)"
        ),
    }
}

/// Get the session secret: from the passphrase, or wrapped by the publisher.
fn obtain_secret(
    session: &::zenoh::Session,
    opts: &SubscriberOptions,
    identity: &Identity,
    catalog: &StreamCatalog,
    listener: [u8; 16],
) -> Result<SessionSecret, FanoutError> {
    let stream = &catalog.stream;
    let secret = match (&opts.passphrase, catalog.key.passphrase_iterations) {
        (Some(p), Some(n)) => {
            let s = SessionSecret::from_master(&passphrase_master(p, stream, n), &catalog.instance);
            if !same_bytes(&key_check(&s), &catalog.key.check) {
                return Err(FanoutError::refused(
                    RefusedReason::Passphrase,
                    format!("wrong passphrase for '{stream}'"),
                ));
            }
            return Ok(s);
        }
        (Some(_), None) => {
            return Err(FanoutError::refused(
                RefusedReason::Passphrase,
                format!("'{stream}' is not protected by a passphrase; subscribe without one"),
            ));
        }
        _ if !(catalog.key.wrapped || catalog.key.open) => {
            return Err(FanoutError::refused(
                RefusedReason::Passphrase,
                format!("'{stream}' needs its passphrase (--passphrase-file)"),
            ));
        }
        _ => request_key(session, identity, catalog, listener, opts.wait)?,
    };
    if !same_bytes(&key_check(&secret), &catalog.key.check) {
        return Err(FanoutError::refused(
            RefusedReason::NotAuthorised,
            "the key received does not match the signed catalog".to_string(),
        ));
    }
    Ok(secret)
}

/// Ask the publisher for the key, wrapped to this listener, until it
/// answers or `wait` passes. A publisher answers a bounded number of key
/// requests a second (each costs it a key agreement and a signature) and
/// lets the rest go unanswered, so an audience arriving at once (a hundred
/// listeners, or all of them again after a publisher restart) is served
/// over a few seconds: unanswered requests are retried after a randomised
/// pause. A refusal is final.
fn request_key(
    session: &::zenoh::Session,
    identity: &Identity,
    catalog: &StreamCatalog,
    listener: [u8; 16],
    wait: Duration,
) -> Result<SessionSecret, FanoutError> {
    let until = Instant::now() + wait.max(Duration::from_secs(1));
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match ask_key(session, identity, catalog, listener, left.min(KEY_ATTEMPT))? {
            KeyOutcome::Granted(s) => return Ok(s),
            KeyOutcome::Refused(reason) => {
                return Err(FanoutError::refused(RefusedReason::NotAuthorised, reason));
            }
            KeyOutcome::Unanswered if Instant::now() + KEY_RETRY_MAX < until => {
                let mut r = [0u8; 2];
                crate::seal::random_bytes(&mut r);
                let spread = KEY_RETRY_MAX - KEY_RETRY_MIN;
                let pause = KEY_RETRY_MIN + spread.mul_f64(u16::from_le_bytes(r) as f64 / 65535.0);
                std::thread::sleep(pause);
            }
            KeyOutcome::Unanswered => {
                return Err(FanoutError::refused(
                    RefusedReason::NotAuthorised,
                    format!(
                        "the publisher of '{}' did not answer the key request within {:?}",
                        catalog.stream, wait
                    ),
                ));
            }
        }
    }
}

/// How long one key request waits for its answer.
const KEY_ATTEMPT: Duration = Duration::from_secs(2);
/// The pause before asking again, drawn between these.
const KEY_RETRY_MIN: Duration = Duration::from_millis(200);
const KEY_RETRY_MAX: Duration = Duration::from_millis(1200);

enum KeyOutcome {
    Granted(SessionSecret),
    Refused(String),
    Unanswered,
}

/// One key request (a fresh ephemeral key each time).
fn ask_key(
    session: &::zenoh::Session,
    identity: &Identity,
    catalog: &StreamCatalog,
    listener: [u8; 16],
    timeout: Duration,
) -> Result<KeyOutcome, FanoutError> {
    let eph = KeyRequestKey::new();
    let req = KeyRequest {
        stream: catalog.stream.clone(),
        instance: catalog.instance,
        listener_cert: identity.certificate_der().to_vec(),
        ephemeral: eph.public(),
        listener,
    };
    let body = fanout::encode(&req);
    let (scheme, signature) = identity.sign(context::KEY_REQUEST, &body)?;
    let payload = fanout::encode(&Signed {
        body,
        scheme,
        signature,
    });
    let replies = session
        .get(keys::key(&catalog.stream))
        .payload(payload)
        .timeout(timeout.max(Duration::from_millis(100)))
        .wait()
        .map_err(|e| FanoutError::Zenoh(e.to_string()))?;
    let mut refusal = None;
    while let Ok(reply) = replies.recv() {
        let Ok(sample) = reply.result() else { continue };
        let Some(answer) = verify_answer(&sample.payload().to_bytes(), catalog) else {
            continue;
        };
        match answer {
            KeyAnswer::Grant {
                instance,
                listener_ephemeral,
                publisher_ephemeral,
                sealed,
            } if instance == catalog.instance && listener_ephemeral == eph.public() => {
                return unwrap_secret(
                    eph,
                    &publisher_ephemeral,
                    &sealed,
                    &wrap_context(&catalog.stream, &catalog.instance),
                )
                .map(KeyOutcome::Granted)
                .map_err(|e| FanoutError::refused(RefusedReason::NotAuthorised, e.to_string()));
            }
            KeyAnswer::Refused {
                listener_ephemeral,
                reason,
            } if listener_ephemeral == eph.public() => refusal = Some(reason),
            _ => {}
        }
    }
    Ok(refusal.map_or(KeyOutcome::Unanswered, KeyOutcome::Refused))
}

/// An answer signed by the catalog's publisher, or nothing.
fn verify_answer(bytes: &[u8], catalog: &StreamCatalog) -> Option<KeyAnswer> {
    let signed: Signed = fanout::decode(bytes).ok()?;
    verify_signature(
        &catalog.publisher_cert,
        context::KEY_ANSWER,
        &signed.body,
        signed.scheme,
        &signed.signature,
    )
    .ok()?;
    fanout::decode(&signed.body).ok()
}

/// What the media callback owns.
struct MediaIn {
    opener: Opener,
    ingress: Ingress,
    link: PlayoutLink,
    clock: Clock,
    buf: Vec<u8>,
    unauthenticated: u64,
    last: Option<Instant>,
}

impl MediaIn {
    fn on_datagram(&mut self, bytes: &[u8]) {
        let now = self.clock.now();
        self.buf.clear();
        self.buf.extend_from_slice(bytes);
        let Self {
            opener,
            ingress,
            link,
            buf,
            ..
        } = self;
        match opener.open(buf, HEADER_LEN) {
            Ok(plain) => {
                ingress.on_datagram(now, plain, &mut |meta, payload, via| {
                    link.packet(now, meta, payload, via)
                });
                self.last = Some(Instant::now());
            }
            Err(OpenError::Short | OpenError::Auth | OpenError::Replay) => {
                self.unauthenticated += 1;
            }
        }
    }

    fn publish(&self) {
        let mut g = self
            .link
            .shared
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        fill_ingress_stats(&self.ingress, &mut g);
        g.invalid.unauthenticated = self.unauthenticated;
        g.playout_queue_drops = self.link.queue_drops;
    }
}

/// A listener playing a stream.
pub struct Subscriber {
    info: StreamInfo,
    shared: Arc<Shared>,
    stop: cb::Sender<()>,
    net: Option<JoinHandle<SessionEnd>>,
}

impl Subscriber {
    /// Find `opts.stream`, verify and key it, then play it into the sink
    /// `make_sink` builds (called once the stream is verified: a refused
    /// listener creates nothing). Not from inside a tokio current-thread
    /// runtime.
    pub fn start<F>(
        opts: SubscriberOptions,
        identity: &Identity,
        make_sink: F,
    ) -> Result<Subscriber, FanoutError>
    where
        F: FnOnce(&StreamInfo) -> Result<Box<dyn Sink>, String>,
    {
        validate_stream_name(&opts.stream).map_err(FanoutError::Name)?;
        opts.config
            .validate()
            .map_err(|e| FanoutError::Sink(e.to_string()))?;
        let zs = open_session(config::listener(&opts.zenoh)?, &opts.zenoh)?;
        let zerr = |e: ::zenoh::Error| FanoutError::Zenoh(e.to_string());
        let (catalog, publisher) = find_catalog(&zs, &opts.stream, opts.wait, opts.skip_instance)?;
        if !opts.pin.contains(&publisher) {
            return Err(FanoutError::pin(publisher, &opts.pin));
        }
        let floor = Duration::from_micros(catalog.latency_floor_us as u64);
        if opts.config.latency < floor {
            return Err(FanoutError::refused(
                RefusedReason::Latency,
                format!(
                    "latency {} ms is below what '{}' needs ({} ms: its FEC window x interleave depth + frame hold); raise --latency to at least {} ms",
                    opts.config.latency.as_secs_f64() * 1e3,
                    catalog.stream,
                    floor.as_secs_f64() * 1e3,
                    floor.as_secs_f64() * 1e3
                ),
            ));
        }
        let mut listener = [0u8; 16];
        crate::seal::random_bytes(&mut listener);
        let secret = obtain_secret(&zs, &opts, identity, &catalog, listener)?;
        let keys = secret.keys();
        let info = StreamInfo {
            catalog: catalog.clone(),
            publisher,
            listener,
        };
        let sink = make_sink(&info).map_err(FanoutError::Sink)?;

        let session = &catalog.session;
        let cfg = &opts.config;
        let window = Duration::from_micros(session.fec.window_us as u64);
        let mut ingress = Ingress::new(session, cfg.max_fec_blocks, fec_wait(cfg, session, window));
        ingress.join_mid_stream(session);
        let mut playout = Playout::new(cfg, session, window);
        playout.join_mid_stream();
        let clock = Clock::new(1.0);
        let (link, handle) = playout_start::start(
            format!("isochron-playout-{}", keys::hex(&listener[..4])),
            playout,
            sink,
            concealers(opts.conceal_audio, opts.conceal_sensor, session),
            clock,
        )?;
        let shared = link.shared.clone();
        let from_playout = link.from_playout.clone();
        let to_playout = link.tx.clone();
        let media_in = Arc::new(Mutex::new(MediaIn {
            opener: Opener::new(&keys.media),
            ingress,
            link,
            clock,
            buf: Vec::with_capacity(2048),
            unauthenticated: 0,
            last: None,
        }));
        let m = media_in.clone();
        let media_sub = zs
            .declare_subscriber(keys::media(&catalog.stream))
            .callback(move |s| {
                let bytes = s.payload().to_bytes();
                m.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .on_datagram(&bytes);
            })
            .wait()
            .map_err(zerr)?;
        let (eos_tx, eos_rx) = cb::bounded::<EndOfStream>(4);
        let instance = catalog.instance;
        let control = Mutex::new(Opener::new(&keys.control));
        let eos_sub = zs
            .declare_subscriber(keys::eos(&catalog.stream))
            .callback(move |s| {
                let Ok(m) = fanout::decode::<SealedMessage>(&s.payload().to_bytes()) else {
                    return;
                };
                if m.instance != instance {
                    return;
                }
                let mut sealed = m.sealed;
                let mut opener = control.lock().unwrap_or_else(|e| e.into_inner());
                if let Ok(plain) = opener.open(&mut sealed, 0)
                    && let Ok(PublisherControl::EndOfStream(e)) = fanout::decode(plain)
                {
                    let _ = eos_tx.try_send(e);
                }
            })
            .wait()
            .map_err(zerr)?;
        let report_pub = zs
            .declare_publisher(keys::report(&catalog.stream, &listener))
            .congestion_control(CongestionControl::Block)
            .priority(Priority::DataLow)
            .reliability(Reliability::Reliable)
            .wait()
            .map_err(zerr)?;
        // Announced last: a publisher waiting for its audience starts once
        // this listener's subscription is in place.
        let token = zs
            .liveliness()
            .declare_token(keys::listen(&catalog.stream, &listener))
            .wait()
            .map_err(zerr)?;
        let (stop_tx, stop_rx) = cb::bounded(1);
        let net = NetLoop {
            media_in,
            to_playout,
            from_playout,
            eos_rx,
            stop_rx,
            report_pub,
            report: Sealer::new(&keys.report(&listener)),
            instance,
            listener,
            idle_timeout: opts.idle_timeout,
            handle,
        };
        let held = (media_sub, eos_sub, token);
        let thread = std::thread::Builder::new()
            .name("isochron-subscribe".into())
            .spawn(move || {
                // It shares the media state's lock with zenoh's (raised)
                // receive threads: at their urgency, or it would make them
                // wait while it is preempted.
                crate::net::priority::raise(crate::net::priority::Urgency::Network);
                let end = net.run();
                drop(held);
                let _ = zs.close().wait();
                end
            })?;
        Ok(Subscriber {
            info,
            shared,
            stop: stop_tx,
            net: Some(thread),
        })
    }

    /// The stream as found (catalog, publisher, this listener's id).
    pub fn info(&self) -> &StreamInfo {
        &self.info
    }

    /// Statistics so far.
    pub fn stats(&self) -> ReceiverStats {
        self.shared
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The stream has ended (played out, or truncated).
    pub fn is_finished(&self) -> bool {
        self.net.as_ref().is_none_or(|h| h.is_finished())
    }

    /// Stop listening now: the output is finalised, truncated.
    pub fn stop(&self) {
        let _ = self.stop.try_send(());
    }

    /// Wait until the stream has played out (or was cut short) and return
    /// how it ended.
    pub fn wait(mut self) -> SessionEnd {
        let h = self.net.take().expect("joined once");
        h.join().unwrap_or_else(|_| SessionEnd {
            truncated: true,
            reason: "the subscriber thread panicked".into(),
            ..Default::default()
        })
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        if let Some(h) = self.net.take() {
            let _ = self.stop.try_send(());
            let _ = h.join();
        }
    }
}

/// The listener's network thread.
struct NetLoop {
    media_in: Arc<Mutex<MediaIn>>,
    to_playout: PlayoutInput,
    from_playout: cb::Receiver<Control>,
    eos_rx: cb::Receiver<EndOfStream>,
    stop_rx: cb::Receiver<()>,
    report_pub: ::zenoh::pubsub::Publisher<'static>,
    report: Sealer,
    instance: [u8; 16],
    listener: [u8; 16],
    idle_timeout: Duration,
    handle: SessionEnded,
}

impl NetLoop {
    fn run(mut self) -> SessionEnd {
        let mut urgent: std::collections::VecDeque<ToPlayout> = Default::default();
        let mut stopping = false;
        let mut eos = false;
        let started = Instant::now();
        let mut sealed = Vec::new();
        let finished = loop {
            if let Some(f) = self.handle.try_finished() {
                break f;
            }
            while let Some(m) = urgent.pop_front() {
                match self.to_playout.try_send(m) {
                    Ok(()) => {}
                    Err(cb::TrySendError::Full(m)) => {
                        urgent.push_front(m);
                        break;
                    }
                    Err(cb::TrySendError::Disconnected(_)) => break,
                }
            }
            cb::select! {
                recv(self.from_playout) -> m => {
                    if let Ok(Control::Report(r)) = m {
                        self.report.seal(&fanout::encode(&r), 0, &mut sealed);
                        let msg = fanout::encode(&SealedMessage {
                            instance: self.instance,
                            sender: self.listener,
                            sealed: std::mem::take(&mut sealed),
                        });
                        let _ = self.report_pub.put(msg).wait();
                    }
                }
                recv(self.eos_rx) -> e => {
                    if let Ok(e) = e && !eos {
                        eos = true;
                        urgent.push_back(ToPlayout::End(e));
                    }
                }
                recv(self.stop_rx) -> _ => {
                    if !stopping {
                        stopping = true;
                        urgent.push_back(ToPlayout::Stop("stopped by the listener".into()));
                    }
                }
                default(Duration::from_millis(100)) => {}
            }
            let m = self.media_in.lock().unwrap_or_else(|e| e.into_inner());
            let mut m = m;
            let now: Time = m.clock.now();
            m.ingress.poll(now);
            m.publish();
            let silent = match m.last {
                Some(t) => t.elapsed() >= self.idle_timeout,
                None => started.elapsed() >= self.idle_timeout.max(Duration::from_secs(30)),
            };
            drop(m);
            if silent && !stopping && !eos {
                stopping = true;
                urgent.push_back(ToPlayout::Stop(format!(
                    "the publisher went silent for {:?}",
                    self.idle_timeout
                )));
            }
        };
        // One snapshot for the sink and the caller: the playout's final
        // part with the network side's final counters.
        let m = self.media_in.lock().unwrap_or_else(|e| e.into_inner());
        m.publish();
        let stats = m
            .link
            .shared
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        drop(m);
        match finished {
            Some(f) => f.end(stats),
            None => SessionEnd {
                truncated: true,
                reason: "the playout pool lost the session".into(),
                ..Default::default()
            },
        }
    }
}
