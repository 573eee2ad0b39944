//! Playout: the receiver's isochronous clock.
//!
//! Frame `n` of a substream is due at `media_ts(n) + anchor` on the local
//! clock. Live, the anchor is the minimum-delay offset plus the target
//! latency, slewed gently as the estimate moves; in file mode it is fixed
//! when the buffer first reaches the low-water mark. At each due instant the
//! scheduler emits exactly one frame per substream: the real one, partly or
//! wholly missing samples marked for concealment. File mode paces the
//! sender with credits ([`flow`]). Nothing is skipped or
//! doubled, so the output has exactly the samples that were sent.

pub mod clock;
pub mod drift;
pub mod flow;
pub mod latency;
pub mod spread;

use std::time::Duration;

use isochron_codecs::SampleMask;
use isochron_codecs::conceal::Lookahead;

use crate::config::ReceiverConfig;
use crate::ingress::Via;
use crate::jitter::{Arrival, FrameBuffer, SequenceTracker};
use crate::stats::{
    Distribution, FrameCounts, Jitter, PacketCounts, ReceiverStats, SubstreamStats,
};
use crate::time::{Time, micros};
use crate::wire::control::{EndOfStream, Mode, Recovery, Report, SessionDesc};
use crate::wire::packet::SourceMeta;
use clock::OffsetEstimator;
use flow::{FlowControl, FlowParams};
use latency::AdaptiveLatency;

/// Most source packets one substream can have (more is a peer's lie).
const MAX_PACKETS: u64 = 1 << 48;

/// One frame leaving the playout at its instant.
pub struct PlayedFrame<'a> {
    /// Position of the substream in the catalog.
    pub index: usize,
    /// Catalog id of the substream.
    pub substream: u16,
    /// Frame number in the substream (from 0, consecutive).
    pub frame: u64,
    /// When it was due on the local clock.
    pub deadline: Time,
    /// Wire-encoded samples; missing ones are zero, to be concealed in place.
    pub data: &'a mut [u8],
    /// Which samples arrived.
    pub mask: SampleMask<'a>,
    /// The next frame of the substream, when some of it has arrived.
    pub next: Option<Lookahead<'a>>,
}

struct Sub {
    id: u16,
    name: String,
    kind: crate::catalog::MediaKind,
    buf: FrameBuffer,
    seq: SequenceTracker,
    frames: FrameCounts,
    jitter: Jitter,
    delay: Distribution,
    /// Every frame carries samples, so its level is meaningful.
    dense: bool,
    dry: bool,
    total_packets: Option<u64>,
    closed: bool,
    /// The newest played frame that had samples present, and the counts
    /// right after it: where a truncated stream's media ends.
    last_real: Option<(u64, FrameCounts)>,
    /// First frame played (0 unless joined mid-stream).
    start_frame: u64,
    /// Packets of frames before `start_frame`, dropped.
    before_start: u64,
    /// A coded substream's decoder: units in, the frame's samples out.
    decoder: Option<crate::codec::FrameDecoder>,
}

/// Whether playout starts at media time zero or wherever a mid-stream
/// join lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Join {
    FromZero,
    /// Joining: the first packet decides the start.
    Pending,
    /// Joined at this media time (microseconds).
    At(u64),
}

/// Why a packet could not be placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The substream id is not in the catalog.
    UnknownSubstream,
}

/// The receiver's playout for one session: a [`FrameBuffer`] and a
/// [`SequenceTracker`] per substream, the playout clock, flow control and
/// the statistics.
pub struct Playout {
    live: bool,
    latency_us: i64,
    /// `--latency auto`: the target follows the delay distribution.
    adaptive: Option<AdaptiveLatency>,
    max_slew: f64,
    low_water: Duration,
    high_water: Duration,
    subs: Vec<Sub>,
    clock: OffsetEstimator,
    anchor: Option<i64>,
    last_slew: Time,
    started: bool,
    /// When playback started and the buffer level then.
    start: Option<(Time, u64)>,
    flow: Option<FlowControl>,
    tick_dev: Distribution,
    jitter: Jitter,
    delay: Distribution,
    /// Smallest arrival minus sender time seen (signed: the clocks may
    /// differ by anything).
    min_transit: Option<i64>,
    e2e: Distribution,
    playout_delay: Distribution,
    eos: bool,
    recovery: Recovery,
    join: Join,
    /// Longest stretch of media concealed without a real sample.
    max_concealed_us: Option<u64>,
    /// Media time up to which some substream played real samples.
    real_until_us: u64,
    gave_up: Option<String>,
}

/// How far ahead frames are kept: what the latency or the high mark (in
/// file mode, as far as the marks may adapt) can hold, plus what flow
/// control may overshoot by, the FEC span and the frame hold.
fn horizon(cfg: &ReceiverConfig, session: &SessionDesc, fec_window: Duration) -> Duration {
    let hold = session
        .substreams
        .iter()
        .map(|d| d.unit_delay())
        .max()
        .unwrap_or_default();
    let marks_up_to = match session.mode {
        Mode::File { .. } => cfg.high_water.max(cfg.max_buffer),
        Mode::Live => cfg.high_water,
    };
    cfg.latency.max(marks_up_to) * 3 / 2 + fec_window * session.fec.depth.max(1) as u32 + hold
}

/// Frames a substream's buffer holds over `horizon`, and its sequence
/// window: the packets a frame can take at the smallest payloads, times the
/// frames in the horizon (the window that never finalises a packet still
/// in flight).
fn sizes(d: &crate::catalog::SubstreamDesc, horizon: Duration) -> (usize, usize) {
    let cap = (micros(horizon) / d.frame_us as u64 + 4) as usize;
    let per_frame = d.max_frame_bytes() / 512 + 2;
    (cap, 2 * cap * per_frame)
}

impl Playout {
    /// Bytes [`new`](Self::new) allocates for this session, computed before
    /// anything is: what the receiver's memory limits are checked against.
    pub fn memory_for(cfg: &ReceiverConfig, session: &SessionDesc, fec_window: Duration) -> u64 {
        let horizon = horizon(cfg, session, fec_window);
        let per_sub: u64 = session
            .substreams
            .iter()
            .map(|d| {
                let (cap, seq_window) = sizes(d, horizon);
                FrameBuffer::memory(d, cap)
                    + SequenceTracker::memory(seq_window)
                    + Distribution::memory()
                    + std::mem::size_of::<Sub>() as u64
            })
            .sum();
        per_sub + 2 * Distribution::memory()
    }

    /// Size the buffers from the latency, high mark, FEC window x depth and
    /// frame hold, so memory is fixed from the start.
    pub fn new(cfg: &ReceiverConfig, session: &SessionDesc, fec_window: Duration) -> Self {
        let live = matches!(session.mode, Mode::Live);
        let horizon = horizon(cfg, session, fec_window);
        let subs = session
            .substreams
            .iter()
            .map(|d| {
                let (cap, seq_window) = sizes(d, horizon);
                let mut seq = SequenceTracker::new(seq_window);
                // Runs of loss longer than the latency are outages.
                seq.set_outage(micros(cfg.latency));
                Sub {
                    id: d.id,
                    name: d.name.clone(),
                    kind: d.kind,
                    buf: FrameBuffer::new(d, cap),
                    seq,
                    frames: FrameCounts::default(),
                    jitter: Jitter::default(),
                    delay: Distribution::default(),
                    dense: d.format.rate.samples_before(d.frame_us as u64) >= 1
                        && d.frame_samples(0) >= 1,
                    dry: false,
                    total_packets: None,
                    closed: false,
                    last_real: None,
                    start_frame: 0,
                    before_start: 0,
                    decoder: crate::codec::FrameDecoder::new(d),
                }
            })
            .collect();
        let flow = match session.mode {
            Mode::File { .. } => Some(FlowControl::new(
                FlowParams::for_session(cfg, session, fec_window),
                cfg.loop_delay,
            )),
            Mode::Live => None,
        };
        let step = session
            .substreams
            .iter()
            .map(|d| d.frame_duration())
            .max()
            .unwrap_or_default();
        let adaptive = cfg.adaptive.filter(|_| live).map(|b| {
            // A rebuilt packet comes when its block is complete; a tick of margin.
            let margin = fec_window * session.fec.depth.max(1) as u32 + step;
            let a = AdaptiveLatency::new(b, margin, 0.97);
            if session.recovery.retransmits() {
                a.with_retransmission()
            } else {
                a
            }
        });
        Self {
            live,
            latency_us: match &adaptive {
                Some(a) => micros(a.bounds().min) as i64,
                None => micros(cfg.latency) as i64,
            },
            adaptive,
            max_slew: cfg.max_slew,
            low_water: cfg.low_water,
            high_water: cfg.high_water,
            subs,
            clock: OffsetEstimator::new(micros(cfg.clock_window)),
            anchor: None,
            last_slew: Time::ZERO,
            started: false,
            start: None,
            flow,
            tick_dev: Distribution::default(),
            jitter: Jitter::default(),
            delay: Distribution::default(),
            min_transit: None,
            e2e: Distribution::default(),
            playout_delay: Distribution::default(),
            eos: false,
            recovery: session.recovery,
            max_concealed_us: None,
            real_until_us: 0,
            gave_up: None,
            join: Join::FromZero,
        }
    }

    /// This receiver joins a stream already running (fan-out). Its ingress
    /// drops the FEC groups that began before it
    /// ([`Ingress::join_mid_stream`](crate::ingress::Ingress::join_mid_stream)),
    /// so the first packet `p` that reaches the playout is the first of a
    /// whole group. The sender emits units in the order their media ends,
    /// so every unit that starts at or after `p`'s end left after `p`, in a
    /// whole group: playout starts there (each substream at its first unit
    /// boundary from then on), or at zero if `p` is the stream's first
    /// frame. Call before the first packet.
    pub fn join_mid_stream(&mut self) {
        if self.join == Join::FromZero {
            self.join = Join::Pending;
        }
    }

    /// Where playout starts, microseconds of media time, once known (0 for
    /// a receiver that was there from the start).
    pub fn start_media_us(&self) -> Option<u64> {
        match self.join {
            Join::FromZero => Some(0),
            Join::Pending => None,
            Join::At(t) => Some(t),
        }
    }

    fn begin_at(&mut self, at: u64) {
        self.join = Join::At(at);
        for sub in &mut self.subs {
            let d = sub.buf.desc();
            let hold = d.hold_frames();
            let f = at.div_ceil(d.frame_us as u64).div_ceil(hold) * hold;
            sub.start_frame = f;
            sub.buf.start_at(f);
            sub.seq.start_anywhere();
        }
    }

    /// Give the session up once `max` of media has been concealed without
    /// a single real sample arriving on any substream (a sender must not
    /// make the receiver write silence for ever, or at its speed factor).
    pub fn limit_concealment(&mut self, max: Duration) {
        self.max_concealed_us = Some(micros(max));
    }

    /// Why the playout gave the session up, if it did
    /// ([`limit_concealment`](Self::limit_concealment)).
    pub fn gave_up(&self) -> Option<&str> {
        self.gave_up.as_deref()
    }

    fn sub_index(&self, id: u16) -> Option<usize> {
        // Catalogs are small; ids are usually 0..n in order.
        match self.subs.get(id as usize) {
            Some(s) if s.id == id => Some(id as usize),
            _ => self.subs.iter().position(|s| s.id == id),
        }
    }

    /// A source packet that arrived at `arrival` (directly, rebuilt then by
    /// FEC, or sent again).
    pub fn on_packet(
        &mut self,
        arrival: Time,
        meta: &SourceMeta,
        payload: &[u8],
        via: Via,
    ) -> Result<(), Refused> {
        let i = self
            .sub_index(meta.substream)
            .ok_or(Refused::UnknownSubstream)?;
        // A media time off the frame grid or past our limit is refused
        // before it can decide where a late joiner starts.
        let Some(f0) = self.subs[i].buf.desc().frame_of(meta.media_ts) else {
            self.subs[i].seq.counts_mut().invalid += 1;
            return Ok(());
        };
        if self.join == Join::Pending {
            let d = self.subs[i].buf.desc();
            let end = meta.media_ts + meta.frames as u64 * d.frame_us as u64;
            self.begin_at(if meta.media_ts == 0 { 0 } else { end });
        }
        let sub = &mut self.subs[i];
        if f0 < sub.start_frame {
            sub.before_start += 1;
            return Ok(());
        }
        let late = self.started && f0 < sub.buf.next_frame();
        if sub.seq.on_packet(meta.seq, meta.media_ts, via, late) == Arrival::Duplicate {
            return Ok(());
        }
        // Only first transmissions say how the path delays packets.
        if via == Via::Direct {
            // The sender's timestamp is any 64-bit value a peer chose.
            let transit = (arrival.as_micros() as i128 - meta.sender_ts as i128)
                .clamp(-(1i128 << 62), 1i128 << 62) as i64;
            sub.jitter.update(transit);
            self.jitter.update(transit);
            sub.delay.record(transit.max(0) as u64);
            self.delay.record(transit.max(0) as u64);
            self.min_transit = Some(self.min_transit.map_or(transit, |m| m.min(transit)));
            if let Some(f) = &mut self.flow {
                f.on_transit(arrival, transit);
                if let Some(a) = self.anchor.filter(|_| self.started && !self.eos) {
                    let due = a + sub.buf.desc().frame_ts(f0) as i64;
                    f.on_slack(due - arrival.as_micros() as i64);
                }
            }
            if self.live {
                self.clock.observe(arrival, meta.media_ts);
                if let (Some(a), Some(est)) = (&mut self.adaptive, self.clock.estimate(arrival)) {
                    let above = (arrival.as_micros() as i64)
                        .saturating_sub(meta.media_ts as i64)
                        .saturating_sub(est);
                    a.observe(arrival, above.max(0) as u64);
                }
            }
        }
        match sub.buf.insert(meta, payload) {
            Ok(placed) => sub.frames.overruns += placed.overrun_frames as u64,
            Err(_) => sub.seq.counts_mut().invalid += 1,
        }
        if self.live && self.anchor.is_none() {
            self.update_anchor(arrival);
        }
        Ok(())
    }

    /// The sender's final account: playout ends after the last sample.
    pub fn on_end_of_stream(&mut self, eos: &EndOfStream) {
        if self.eos {
            return;
        }
        self.eos = true;
        for t in &eos.totals {
            if let Some(i) = self.sub_index(t.id) {
                let sub = &mut self.subs[i];
                // A total no stream can have is ignored: that substream
                // ends as if the end of stream had not said (at the media
                // that arrives, or the receiver's limits).
                if !sub.buf.desc().fits_media(t.samples) || t.packets > MAX_PACKETS {
                    continue;
                }
                sub.buf.set_total_samples(t.samples);
                sub.total_packets = Some(t.packets);
                uncount_beyond(sub, t.samples);
            }
        }
        self.close_finished();
    }

    /// The stream stops here without its end (the sender vanished, the
    /// receiver is shutting down): what has arrived is still played, at its
    /// instants, and the stream ends after the newest frame holding data.
    /// Playback starts now if it had not. Nothing is concealed beyond it.
    pub fn end_at_received(&mut self, now: Time) {
        for sub in &mut self.subs {
            // A total the end of stream gave stands; one it could not give
            // (a total no stream can have, ignored) ends here too.
            if self.eos && sub.buf.total_samples().is_some() {
                continue;
            }
            let d = sub.buf.desc();
            let end = d.frame_start(sub.buf.received_end().max(sub.buf.next_frame()));
            let end = sub.buf.total_samples().map_or(end, |t| t.min(end));
            sub.buf.set_total_samples(end);
        }
        if !self.started && self.anchor.is_none() && !self.live {
            self.anchor = Some(now.as_micros() as i64);
        }
        self.close_finished();
    }

    /// Samples of substream `index`'s media: its end-of-stream total, or
    /// for a stream that ended without one, up to the end of the newest
    /// frame played with samples present. Frames played beyond it were
    /// concealment of nothing (the media had ended); sinks cut them.
    pub fn media_samples(&self, index: usize) -> u64 {
        let Some(sub) = self.subs.get(index) else {
            return 0;
        };
        let d = sub.buf.desc();
        let real = sub.last_real.map_or(0, |(f, _)| d.frame_start(f + 1));
        match (self.eos, sub.buf.total_samples()) {
            (true, Some(total)) => total,
            (_, total) => total.map_or(real, |t| t.min(real)),
        }
    }

    /// A stream that ended without its end of stream: forget the frames
    /// played after the newest one with samples present (concealment of
    /// media that did not exist), so the counts match
    /// [`media_samples`](Self::media_samples).
    pub fn uncount_tail(&mut self) {
        if self.eos {
            return;
        }
        for sub in &mut self.subs {
            let kept = sub.last_real.map_or_else(FrameCounts::default, |(_, c)| c);
            sub.frames = FrameCounts {
                underruns: sub.frames.underruns,
                overruns: sub.frames.overruns,
                ..kept
            };
        }
    }

    /// The end-of-stream message arrived.
    pub fn end_known(&self) -> bool {
        self.eos
    }

    fn close_finished(&mut self) {
        for sub in &mut self.subs {
            if !sub.closed && sub.buf.finished() {
                if let Some(total) = sub.total_packets {
                    sub.seq.finish(total);
                    sub.closed = true;
                } else if sub.buf.desc().length.is_some() {
                    // Length known from the catalog; the packet total comes
                    // with end of stream. Finalise what the playout passed.
                    sub.seq.finalize(u64::MAX);
                }
            }
        }
    }

    /// Every substream has played its last frame.
    pub fn is_finished(&self) -> bool {
        self.subs.iter().all(|s| s.buf.finished())
    }

    /// The clock mapping: frame media time `ts` is due at local `ts +
    /// anchor` microseconds; `None` until it is set (live: the first
    /// packet; file: playback start).
    pub fn anchor(&self) -> Option<i64> {
        self.anchor
    }

    /// Playback has started (live: the first packet set the anchor; file:
    /// the low-water mark was reached).
    pub fn started(&self) -> bool {
        self.started
    }

    /// Target latency above the fastest path in force, microseconds.
    pub fn latency_target_us(&self) -> u64 {
        self.latency_us.max(0) as u64
    }

    /// When playback started, and the buffer level (microseconds) then.
    pub fn start_info(&self) -> Option<(Time, u64)> {
        self.start
    }

    fn update_anchor(&mut self, now: Time) {
        let Some(est) = self.clock.estimate(now) else {
            return;
        };
        if let Some(ad) = &mut self.adaptive {
            let (mut lost, mut expected) = (0, 0);
            for s in &self.subs {
                let c = s.seq.counts();
                lost += c.lost.saturating_sub(c.late + c.outage_lost);
                expected += c.expected;
            }
            ad.observe_counts(now, lost, expected);
            self.latency_us = ad.target_us(now) as i64;
        }
        let target = est + self.latency_us;
        match self.anchor {
            None => {
                self.anchor = Some(target);
                self.last_slew = now;
            }
            // Adaptive: a rise applies at once, between frames (the next
            // frame is due later; no sample changes); a fall is slewed.
            Some(a) if self.adaptive.is_some() && target > a => {
                self.anchor = Some(target);
                self.last_slew = now;
            }
            Some(a) => {
                let step = (now.diff_micros(self.last_slew).max(0) as f64 * self.max_slew) as i64;
                if step > 0 {
                    self.anchor = Some(a + (target - a).clamp(-step, step));
                    self.last_slew = now;
                }
            }
        }
    }

    fn deadline(&self, sub: &Sub) -> Option<Time> {
        let a = self.anchor?;
        let ts = sub.buf.desc().frame_ts(sub.buf.next_frame()) as i64;
        Some(Time::from_micros((ts + a).max(0) as u64))
    }

    /// Buffered media ahead of the playout, microseconds: the lowest over
    /// substreams that carry samples every frame and still expect data. A
    /// substream that packs several frames a packet (or interleaves a group)
    /// receives them in chunks, so its level counts the chunk it is known to
    /// be waiting for. Only sparse substreams left: the highest of them;
    /// none expecting data: `u64::MAX`.
    pub fn level_us(&self) -> u64 {
        let expecting = |s: &&Sub| !s.buf.all_received();
        let level = |s: &Sub| {
            let d = s.buf.desc();
            s.buf.level_us() + (d.hold_frames() - 1) * d.frame_us as u64
        };
        let mut dense = self
            .subs
            .iter()
            .filter(|s| s.dense)
            .filter(expecting)
            .peekable();
        if dense.peek().is_some() {
            dense.map(level).min().unwrap_or(0)
        } else {
            // Only sparse substreams left (or none still expecting data).
            self.subs
                .iter()
                .filter(expecting)
                .map(level)
                .max()
                .unwrap_or(u64::MAX)
        }
    }

    /// File mode: start once the low-water mark's worth is here without a
    /// gap (reordering at start-up must not make frame 0 due before it
    /// arrived), or once the buffer is at the high mark anyway (something
    /// is lost for good), or everything has arrived.
    fn ready_to_start(&self) -> bool {
        let level = self.level_us();
        let (low, high) = match &self.flow {
            Some(f) => f.start_levels(),
            None => (micros(self.low_water), micros(self.high_water)),
        };
        if level == u64::MAX || level >= high {
            return true;
        }
        let contiguous = self
            .subs
            .iter()
            .filter(|s| s.dense && !s.buf.all_received())
            .map(|s| {
                let d = s.buf.desc();
                s.buf.contiguous_us() + (d.hold_frames() - 1) * d.frame_us as u64
            })
            .min()
            .unwrap_or(level);
        contiguous >= low
    }

    /// When `poll` next has something to do.
    pub fn next_deadline(&self) -> Option<Time> {
        if !self.started {
            return None;
        }
        self.subs
            .iter()
            .filter(|s| !s.buf.finished())
            .filter_map(|s| self.deadline(s))
            .min()
    }

    /// Emit every frame due by `now`, in deadline order across substreams.
    pub fn poll(&mut self, now: Time, sink: &mut dyn FnMut(PlayedFrame<'_>)) {
        if self.live {
            self.update_anchor(now);
        } else if !self.started && self.ready_to_start() {
            self.anchor = Some(now.as_micros() as i64);
        }
        if !self.started && self.anchor.is_some() {
            self.started = true;
            self.start = Some((now, self.level_us()));
        }
        if self.started {
            loop {
                let next = (0..self.subs.len())
                    .filter(|&i| !self.subs[i].buf.finished())
                    .filter_map(|i| self.deadline(&self.subs[i]).map(|d| (d, i)))
                    .min();
                let Some((deadline, i)) = next else { break };
                if deadline > now {
                    break;
                }
                self.tick_dev
                    .record(now.diff_micros(deadline).max(0) as u64);
                self.play_one(i, now, deadline, sink);
            }
            self.close_finished();
        }
        let expecting = self.level_us() != u64::MAX;
        if let Some(flow) = &mut self.flow {
            // After the end of stream the sender has nothing left to send:
            // the buffer drains and credits have nothing to pace.
            let position = self
                .anchor
                .filter(|_| self.started && expecting && !self.eos)
                .map(|a| (now.as_micros() as i64 - a).max(0) as u64);
            flow.update(now, position);
        }
    }

    /// The transport's round-trip estimate (file-mode flow control allows
    /// for it, at least the configured loop delay; an adaptive latency
    /// takes it in while a retransmitting session loses packets).
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.set_flow_rtt(rtt);
        if let Some(a) = &mut self.adaptive {
            a.set_rtt(rtt);
        }
    }

    /// File-mode flow control's round trip only (a simulation whose control
    /// path differs from the media path).
    pub fn set_flow_rtt(&mut self, rtt: Duration) {
        if let Some(f) = &mut self.flow {
            f.set_rtt(rtt);
        }
    }

    fn play_one(
        &mut self,
        i: usize,
        now: Time,
        deadline: Time,
        sink: &mut dyn FnMut(PlayedFrame<'_>),
    ) {
        let sub = &mut self.subs[i];
        let dry = !sub.buf.has_data_ahead();
        if let Some(sent) = sub.buf.next_sent_at() {
            // Sent (pushed, captured, read) to played, for frames with media.
            let e2e = now.as_micros() as i64 - sent as i64;
            self.e2e.record(e2e.max(0) as u64);
            if let Some(fastest) = self.min_transit {
                self.playout_delay.record((e2e - fastest).max(0) as u64);
            }
        }
        let (id, counts, decoder) = (sub.id, &mut sub.frames, &mut sub.decoder);
        let mut samples = 0;
        let mut real = None;
        sub.buf.pop(&mut |frame, data, mask, next| {
            samples = mask.len();
            let present = mask.count_present();
            if present > 0 {
                real = Some(frame);
            }
            counts.played += 1;
            counts.samples_played += samples as u64;
            if present < samples {
                counts.concealed += 1;
                counts.samples_concealed += (samples - present) as u64;
            }
            if let Some(dec) = decoder.as_mut() {
                // Counted as arrived or not above; what the sink gets is
                // the decoded frame, losses already concealed by the codec.
                let (data, mask) = dec.decode(frame, data, next.map(|n| n.bytes), samples);
                sink(PlayedFrame {
                    index: i,
                    substream: id,
                    frame,
                    deadline,
                    data,
                    mask,
                    next: None,
                });
                return;
            }
            sink(PlayedFrame {
                index: i,
                substream: id,
                frame,
                deadline,
                data,
                mask,
                next,
            });
        });
        let d = sub.buf.desc();
        let end_us = d.frame_ts(sub.buf.next_frame());
        if let Some(f) = real {
            sub.last_real = Some((f, sub.frames));
            self.real_until_us = self.real_until_us.max(end_us);
        } else if samples > 0
            && let Some(max) = self.max_concealed_us
            && end_us.saturating_sub(self.real_until_us) > max
            && self.gave_up.is_none()
        {
            self.gave_up = Some(format!(
                "{} s of media concealed without any arriving (max concealed)",
                max as f64 / 1e6
            ));
        }
        if dry && samples > 0 {
            if !sub.dry {
                sub.frames.underruns += 1;
            }
            sub.dry = true;
        } else if !dry {
            sub.dry = false;
        }
        let played_to = sub.buf.desc().frame_ts(sub.buf.next_frame());
        sub.seq.finalize(played_to);
    }

    /// A credit to send (file mode).
    pub fn poll_flow(&mut self) -> Option<crate::wire::control::Control> {
        self.flow.as_mut()?.poll()
    }

    /// The water marks in force (file mode).
    pub fn flow_marks(&self) -> Option<flow::Marks> {
        self.flow.as_ref().map(|f| f.marks())
    }

    /// Summary for the periodic report to the sender.
    pub fn report(&self) -> Report {
        let mut c = PacketCounts::default();
        let mut f = FrameCounts::default();
        for s in &self.subs {
            c.add(s.seq.counts());
            f.add(&s.frames);
        }
        Report {
            received: c.received,
            lost: c.lost,
            recovered: c.recovered,
            unrecovered: c.unrecovered,
            late: c.late,
            concealed_frames: f.concealed,
            jitter_us: self.jitter.micros() as u32,
            buffer_us: self.level_us().min(u32::MAX as u64) as u32,
            loss_runs: c.loss_runs,
            outage_lost: c.outage_lost,
            outage_runs: c.outage_runs,
            retransmit_useful: c.retransmitted,
            expected: c.expected,
            latency_us: match &self.adaptive {
                Some(a) => a.recovery_us(),
                None if self.live => self.latency_target_us(),
                None => 0,
            }
            .min(u32::MAX as u64) as u32,
        }
    }

    /// Fill the playout's part of the statistics, reusing `out`'s
    /// substream entries (no allocation once they exist).
    pub fn fill_stats(&self, out: &mut ReceiverStats) {
        out.packets = PacketCounts::default();
        out.substreams.truncate(self.subs.len());
        for (i, s) in self.subs.iter().enumerate() {
            out.packets.add(s.seq.counts());
            if out.substreams.len() <= i {
                out.substreams.push(SubstreamStats {
                    name: s.name.clone(),
                    encoding: s.buf.desc().wire_encoding().to_owned(),
                    ..Default::default()
                });
            }
            let d = &mut out.substreams[i];
            d.id = s.id;
            d.kind = s.kind;
            d.packets = *s.seq.counts();
            d.frames = s.frames;
            d.jitter_us = s.jitter.micros().round() as u64;
            d.network_delay = s.delay.summary();
            d.buffer_us = s.buf.level_us();
            d.start_sample = s.buf.desc().frame_start(s.start_frame);
            d.start_media_us = s.buf.desc().frame_ts(s.start_frame);
            d.skipped_before_start = s.before_start;
            if let Some(c) = s.decoder.as_ref().map(|d| d.counts()) {
                (d.codec_fec_frames, d.codec_plc_frames) = (c.fec, c.plc);
            }
        }
        out.start_media_us = match self.join {
            Join::At(t) => self
                .subs
                .iter()
                .map(|s| s.buf.desc().frame_ts(s.start_frame))
                .min()
                .unwrap_or(t),
            _ => 0,
        };
        out.network_delay = self.delay.summary();
        out.end_to_end_delay = self.e2e.summary();
        out.playout_delay = self.playout_delay.summary();
        out.jitter_us = self.jitter.micros().round() as u64;
        out.tick_deviation = self.tick_dev.summary();
        let level = self.level_us();
        out.buffer_us = if level == u64::MAX { 0 } else { level };
        out.low_water_us = micros(self.low_water);
        out.high_water_us = micros(self.high_water);
        out.latency_target_us = if self.live {
            self.latency_us.max(0) as u64
        } else {
            0
        };
        out.latency_holds_round_trip = self.adaptive.as_ref().is_some_and(|a| a.holds_round_trip());
        if let Some(f) = &self.flow {
            out.flow = f.stats();
        }
        out.residual_loss_ratio = if out.packets.expected == 0 {
            0.0
        } else {
            out.packets.unrecovered as f64 / out.packets.expected as f64
        };
        out.truncated = !self.eos;
        out.recovery = self.recovery;
    }
}

/// An end of stream that came after playout had passed its last sample
/// (the frames before it were lost, and live playout conceals while it
/// waits): the frames and samples played beyond `total` are not media.
fn uncount_beyond(sub: &mut Sub, total: u64) {
    let d = sub.buf.desc();
    let next = sub.buf.next_frame();
    let played_to = d.frame_start(next);
    if played_to <= total {
        return;
    }
    let excess_samples = played_to - total;
    let end_frame = sub.buf.end_frame().unwrap_or(next);
    let excess_frames = next.saturating_sub(end_frame);
    let concealed = (end_frame..next)
        .filter(|&n| d.frame_samples(n) > 0)
        .count() as u64;
    let f = &mut sub.frames;
    f.played = f.played.saturating_sub(excess_frames);
    f.concealed = f.concealed.saturating_sub(concealed);
    f.samples_played = f.samples_played.saturating_sub(excess_samples);
    f.samples_concealed = f.samples_concealed.saturating_sub(excess_samples);
}
