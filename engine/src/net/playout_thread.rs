//! The playout thread: one OS thread per receiving session.
//!
//! It owns the jitter buffer, the clock mapping, concealment and the sink.
//! The network side talks to it only through a bounded crossbeam channel
//! (packets in pooled buffers, end of stream, stop); it answers through a
//! bounded channel plus a wake-up (PAUSE/RESUME, reports). Once playing it
//! sleeps until the next frame's absolute deadline (never drifting from
//! accumulated sleeps) and takes the packets that arrived meanwhile, which
//! carry their arrival times; before playback it wakes on packets. In steady state it
//! does not allocate, lock (stats are offered with `try_lock`) or block.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel as cb;
use crossbeam_queue::ArrayQueue;
use isochron_codecs::Concealer;
use tokio::sync::Notify;

use super::clock::Clock;
use super::sink::{SessionEnd, Sink};
use crate::playout::Playout;
use crate::receiver::REPORT_INTERVAL;
use crate::stats::ReceiverStats;
use crate::time::Time;
use crate::wire::control::{Control, EndOfStream};
use crate::wire::packet::SourceMeta;

/// Largest payload a packet carries.
pub const PAYLOAD_CAP: usize = crate::wire::packet::MAX_DATAGRAM;

/// Stats are offered to readers this often.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// A source packet in a pooled buffer.
pub struct PacketMsg {
    /// When the datagram arrived (or FEC rebuilt it), core clock.
    pub arrival: Time,
    /// Its shard header.
    pub meta: SourceMeta,
    /// Rebuilt by FEC rather than received.
    pub recovered: bool,
    /// Payload bytes used in `buf`.
    pub len: usize,
    /// A [`PAYLOAD_CAP`]-byte buffer from the [`Pool`]; returned there after
    /// use.
    pub buf: Box<[u8]>,
}

/// From the network side to the playout thread.
pub enum ToPlayout {
    /// A source packet to place.
    Packet(PacketMsg),
    /// The sender's end of stream: totals for the final account.
    End(EndOfStream),
    /// The connection is gone: finish now, the stream is truncated.
    Stop(String),
    /// The transport's round-trip estimate (file-mode flow control).
    Rtt(Duration),
}

/// Buffers shared by the two sides: taken by the network, returned here.
pub type Pool = Arc<ArrayQueue<Box<[u8]>>>;

/// What the playout thread publishes for readers of stats.
#[derive(Default)]
pub struct Shared {
    /// The latest statistics: playout part from the playout thread, ingress
    /// part from the network side.
    pub stats: Mutex<ReceiverStats>,
}

/// Everything the thread needs.
pub struct PlayoutParts {
    /// The thread's name.
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
    /// Packets, end of stream and stop from the network side.
    pub rx: cb::Receiver<ToPlayout>,
    /// PAUSE, RESUME and reports for the network side to send; dropped if
    /// full (never blocks).
    pub to_net: cb::Sender<Control>,
    /// Notified after each message put on `to_net`.
    pub wake_net: Arc<Notify>,
    /// Where packet buffers go back.
    pub pool: Pool,
    /// Statistics for readers.
    pub shared: Arc<Shared>,
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

/// Start the thread; it returns the finished session for the driver to end.
pub fn spawn(parts: PlayoutParts) -> std::io::Result<JoinHandle<Finished>> {
    std::thread::Builder::new()
        .name(parts.name.clone())
        .spawn(move || run(parts))
}

/// Ask the kernel to wake this thread on time (50 us of default timer slack
/// is a tenth of the tick budget).
fn precise_timers() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_TIMERSLACK takes a value and affects only this thread.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

fn run(p: PlayoutParts) -> Finished {
    let PlayoutParts {
        mut playout,
        mut sink,
        mut concealers,
        clock,
        rx,
        to_net,
        wake_net,
        pool,
        shared,
        ..
    } = p;
    precise_timers();
    let send = |c: Control| {
        if to_net.try_send(c).is_ok() {
            wake_net.notify_one();
        }
    };
    let mut stats = ReceiverStats::default();
    let mut next_publish = clock.now() + PUBLISH_EVERY;
    let mut next_report = clock.now() + REPORT_INTERVAL;
    // Stopped without an end of stream: play out what has arrived, then
    // end (truncated, and why).
    let mut stopping: Option<(bool, String)> = None;
    let (truncated, reason) = 'session: loop {
        let now = clock.now();
        let deadline = playout.next_deadline();
        let wake = [Some(next_publish), Some(next_report), deadline]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now);
        let mut first = None;
        if deadline.is_some() {
            // Playing: packets carry their arrival time and only matter at
            // the next tick, so sleep to it and take what has come then (one
            // wake-up a tick instead of one a packet).
            let until = clock.instant_of(wake);
            std::thread::sleep(until.saturating_duration_since(std::time::Instant::now()));
        } else {
            // Not playing yet: a packet may be what starts playback.
            first = match rx.recv_deadline(clock.instant_of(wake)) {
                Ok(m) => Some(m),
                Err(cb::RecvTimeoutError::Timeout) => None,
                Err(cb::RecvTimeoutError::Disconnected) => {
                    break 'session stopping
                        .take()
                        .unwrap_or((true, "the network side went away".to_owned()));
                }
            };
        }
        // Take what has queued up, but keep ticking under a flood.
        for _ in 0..4096 {
            let m = match first.take() {
                Some(m) => m,
                None => match rx.try_recv() {
                    Ok(m) => m,
                    Err(cb::TryRecvError::Empty) => break,
                    Err(cb::TryRecvError::Disconnected) => {
                        break 'session stopping
                            .take()
                            .unwrap_or((true, "the network side went away".to_owned()));
                    }
                },
            };
            match m {
                ToPlayout::Packet(pk) => {
                    let _ =
                        playout.on_packet(pk.arrival, &pk.meta, &pk.buf[..pk.len], pk.recovered);
                    let _ = pool.push(pk.buf);
                }
                ToPlayout::End(eos) => playout.on_end_of_stream(&eos),
                ToPlayout::Rtt(rtt) => playout.set_rtt(rtt),
                // Truncated unless every frame has played (an end-of-stream
                // alone does not make the output whole). What the buffer
                // holds still plays; nothing is concealed past it.
                ToPlayout::Stop(why) => {
                    if stopping.is_none() {
                        stopping = Some((!playout.is_finished(), why));
                        playout.end_at_received(clock.now());
                    }
                }
            }
        }
        let now = clock.now();
        playout.poll(now, &mut |f| {
            if let Some(c) = concealers.get_mut(f.index).and_then(Option::as_mut) {
                // Complete frames pass untouched but feed its history.
                let _ = c.conceal_with(f.data, f.mask, f.next);
            }
            sink.frame(f);
        });
        while let Some(c) = playout.poll_flow() {
            send(c);
        }
        if now >= next_report {
            send(Control::Report(playout.report()));
            next_report = now + REPORT_INTERVAL;
        }
        if now >= next_publish {
            publish(&playout, &concealers, &mut stats, &shared, false);
            next_publish = now + PUBLISH_EVERY;
        }
        if let Some(why) = sink.failed() {
            // Nothing more can be written: end now, and the sender is told.
            break 'session (true, why);
        }
        if let Some(why) = playout.gave_up() {
            break 'session (true, why.to_owned());
        }
        if playout.is_finished() {
            break 'session stopping.take().unwrap_or((false, "completed".to_owned()));
        }
    };
    if truncated {
        playout.uncount_tail();
    }
    publish(&playout, &concealers, &mut stats, &shared, true);
    let media_samples = (0..stats.substreams.len())
        .map(|i| playout.media_samples(i))
        .collect();
    let stats = shared
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
        sink,
    }
}

/// Refresh the working copy and offer it to readers without waiting.
fn publish(
    playout: &Playout,
    concealers: &[Option<Concealer>],
    stats: &mut ReceiverStats,
    shared: &Shared,
    wait: bool,
) {
    playout.fill_stats(stats);
    for (s, c) in stats.substreams.iter_mut().zip(concealers) {
        if let Some(c) = c {
            s.concealment_events = c.stats().events;
        }
    }
    let guard = if wait {
        Some(shared.stats.lock().unwrap_or_else(|e| e.into_inner()))
    } else {
        shared.stats.try_lock().ok()
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
        g.assign(stats);
        (
            g.datagrams,
            g.bytes,
            g.invalid,
            g.fec,
            g.bitrate_bps,
            g.fec_overhead_ratio,
        ) = keep;
    }
}
