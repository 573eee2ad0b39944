//! One session's playout as a worker serves it: drain what the network side
//! sent, play every frame due, send flow control and reports, publish stats,
//! and say when it wants serving next. Nothing here sleeps: the worker owns
//! time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel as cb;
use isochron_codecs::Concealer;

use super::{Finished, PlayoutParts, Pool, Shared, Signal, ToPlayout};
use crate::net::clock::Clock;
use crate::net::sink::{SessionEnd, Sink};
use crate::playout::Playout;
use crate::receiver::{FIRST_REPORT, REPORT_INTERVAL};
use crate::stats::ReceiverStats;
use crate::time::Time;
use crate::wire::control::Control;
use tokio::sync::Notify;

/// Stats are offered to readers this often: enough for a status line, and
/// each publish computes every distribution's quantiles (at 100 ms that was
/// a tenth of a playout worker's time at hundreds of sessions).
const PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// Messages taken in one serve: a flood cannot stall the worker.
const DRAIN_CAP: usize = 4096;

/// What a serve decided.
pub(super) enum Step {
    /// Serve again at this instant (or sooner, if nudged).
    At(Instant),
    /// The session is over: truncated or not, and why.
    Done(bool, String),
}

/// A session's state on its worker.
pub(super) struct Session {
    pub(super) name: String,
    playout: Playout,
    sink: Box<dyn Sink>,
    concealers: Vec<Option<Concealer>>,
    clock: Clock,
    rx: cb::Receiver<ToPlayout>,
    to_net: cb::Sender<Control>,
    wake_net: Arc<Notify>,
    pool: Pool,
    shared: Arc<Shared>,
    pub(super) signal: Arc<Signal>,
    stats: ReceiverStats,
    next_publish: Time,
    next_report: Time,
    /// Stopped without an end of stream: play out what has arrived, then
    /// end (truncated, and why).
    stopping: Option<(bool, String)>,
}

impl Session {
    pub(super) fn new(p: PlayoutParts, rx: cb::Receiver<ToPlayout>, signal: Arc<Signal>) -> Self {
        let now = p.clock.now();
        Self {
            name: p.name,
            playout: p.playout,
            sink: p.sink,
            concealers: p.concealers,
            clock: p.clock,
            rx,
            to_net: p.to_net,
            wake_net: p.wake_net,
            pool: p.pool,
            shared: p.shared,
            signal,
            stats: ReceiverStats::default(),
            next_publish: now + PUBLISH_EVERY,
            next_report: now + FIRST_REPORT,
            stopping: None,
        }
    }

    fn send(&self, c: Control) {
        if self.to_net.try_send(c).is_ok() {
            self.wake_net.notify_one();
        }
    }

    /// One serve. Packets carry their arrival time and only matter at the
    /// next tick, so a playing session is served once a tick and takes what
    /// came meanwhile; before playback a packet may be what starts it, so
    /// the network side nudges the worker.
    pub(super) fn serve(&mut self) -> Step {
        let mut drained = 0;
        while drained < DRAIN_CAP {
            let m = match self.rx.try_recv() {
                Ok(m) => m,
                Err(cb::TryRecvError::Empty) => break,
                Err(cb::TryRecvError::Disconnected) => {
                    let (truncated, why) = self
                        .stopping
                        .take()
                        .unwrap_or((true, "the network side went away".to_owned()));
                    return Step::Done(truncated, why);
                }
            };
            drained += 1;
            match m {
                ToPlayout::Packet(pk) => {
                    let _ = self
                        .playout
                        .on_packet(pk.arrival, &pk.meta, &pk.buf[..pk.len], pk.via);
                    let _ = self.pool.push(pk.buf);
                }
                ToPlayout::End(eos) => self.playout.on_end_of_stream(&eos),
                ToPlayout::Rtt(rtt) => self.playout.set_rtt(rtt),
                // Truncated unless every frame has played (an end-of-stream
                // alone does not make the output whole). What the buffer
                // holds still plays; nothing is concealed past it.
                ToPlayout::Stop(why) => {
                    if self.stopping.is_none() {
                        self.stopping = Some((!self.playout.is_finished(), why));
                        self.playout.end_at_received(self.clock.now());
                    }
                }
            }
        }
        let now = self.clock.now();
        let (concealers, sink) = (&mut self.concealers, &mut self.sink);
        self.playout.poll(now, &mut |f| {
            if let Some(c) = concealers.get_mut(f.index).and_then(Option::as_mut) {
                // Complete frames pass untouched but feed its history.
                let _ = c.conceal_with(f.data, f.mask, f.next);
            }
            sink.frame(f);
        });
        if let Some(a) = self.playout.anchor() {
            self.shared
                .anchor
                .store(a, std::sync::atomic::Ordering::Relaxed);
        }
        while let Some(c) = self.playout.poll_flow() {
            self.send(c);
        }
        if now >= self.next_report {
            self.send(Control::Report(self.playout.report()));
            self.next_report = now + REPORT_INTERVAL;
        }
        if now >= self.next_publish {
            self.publish(false);
            self.next_publish = now + PUBLISH_EVERY;
        }
        if let Some(why) = self.sink.failed() {
            // Nothing more can be written: end now, and the sender is told.
            return Step::Done(true, why);
        }
        if let Some(why) = self.playout.gave_up() {
            return Step::Done(true, why.to_owned());
        }
        if self.playout.is_finished() {
            let (truncated, why) = self
                .stopping
                .take()
                .unwrap_or((false, "completed".to_owned()));
            return Step::Done(truncated, why);
        }
        if !self.playout.started()
            && let Some((_, why)) = self.stopping.take()
        {
            // Stopped before playback could start (a live stream with no
            // media it could place): nothing will ever play, so the session
            // ends now rather than idling on its worker for ever.
            return Step::Done(true, why);
        }
        self.signal.set_eager(!self.playout.started());
        if drained == DRAIN_CAP {
            // More is waiting: come back after the others.
            return Step::At(Instant::now());
        }
        let wake = [
            Some(self.next_publish),
            Some(self.next_report),
            self.playout.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(now);
        Step::At(self.clock.instant_of(wake))
    }

    /// Publish the final statistics and hand the sink back, not ended:
    /// the driver adds its network counters, then ends it off its network
    /// thread (sinks may block when they finish files).
    pub(super) fn finish(mut self, truncated: bool, reason: String) -> Finished {
        if truncated {
            self.playout.uncount_tail();
        }
        self.publish(true);
        let media_samples = (0..self.stats.substreams.len())
            .map(|i| self.playout.media_samples(i))
            .collect();
        let stats = self
            .shared
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Finished {
            end: SessionEnd {
                truncated,
                reason,
                stats,
                media_samples,
                ..Default::default()
            },
            sink: self.sink,
        }
    }

    /// Refresh the working copy and offer it to readers without waiting.
    fn publish(&mut self, wait: bool) {
        self.playout.fill_stats(&mut self.stats);
        for (s, c) in self.stats.substreams.iter_mut().zip(&self.concealers) {
            if let Some(c) = c {
                s.concealment_events = c.stats().events;
            }
        }
        let guard = if wait {
            Some(self.shared.stats.lock().unwrap_or_else(|e| e.into_inner()))
        } else {
            self.shared.stats.try_lock().ok()
        };
        if let Some(mut g) = guard {
            // Keep the network side's part (ingress counters) as it is.
            let keep = (
                g.datagrams,
                g.bytes,
                g.invalid,
                g.fec,
                g.bitrate_bps,
                g.fec_overhead_ratio,
            );
            let keep_arq = (
                g.nack,
                g.retransmits_received,
                g.retransmit_bytes,
                g.redundancy_ratio,
            );
            g.assign(&self.stats);
            (
                g.datagrams,
                g.bytes,
                g.invalid,
                g.fec,
                g.bitrate_bps,
                g.fec_overhead_ratio,
            ) = keep;
            (
                g.nack,
                g.retransmits_received,
                g.retransmit_bytes,
                g.redundancy_ratio,
            ) = keep_arq;
        }
    }
}
