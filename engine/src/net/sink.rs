//! Where a receiving session's media goes.
//!
//! A [`Sink`] is called on a playout worker at each frame's
//! instant, so it must not block. [`FileSink`] writes WAV and CSV files
//! through a writer thread; [`PullSink`] hands frames to an application
//! that prefers to pull them, and drops (counted) rather than wait for it.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel as cb;
use crossbeam_queue::ArrayQueue;
use isochron_codecs::csv::CsvWriter;
use isochron_codecs::wav::WavWriter;
use isochron_codecs::{CsvLayout, Origin, SampleMask, StreamFormat};

use crate::catalog::{MediaKind, SubstreamDesc};
use crate::playout::PlayedFrame;
use crate::stats::ReceiverStats;
use crate::time::Time;
use crate::wire::control::SessionDesc;

pub use super::output_budget::OutputBudget;
use super::output_budget::free_space;

/// How a session ended.
#[derive(Debug, Clone, Default)]
pub struct SessionEnd {
    /// The stream stopped before its end-of-stream (the sender vanished or
    /// the receiver shut down): what was missing was concealed up to then.
    pub truncated: bool,
    /// Why it ended, for people.
    pub reason: String,
    /// The final statistics.
    pub stats: ReceiverStats,
    /// Files written, if the sink wrote any: (path, samples).
    pub files: Vec<(PathBuf, u64)>,
    /// Output that could not be written in full (a full disk, an output
    /// limit): the stream did not arrive whole, and the sender is told.
    pub errors: Vec<String>,
    /// Output remarks that lost nothing (the disk was slow and playout
    /// waited for it).
    pub warnings: Vec<String>,
    /// Frames the sink could not hand on and dropped (a [`PullSink`] whose
    /// application fell behind by its whole channel).
    pub sink_dropped: u64,
    /// Samples of media per substream, in catalog order: the sender's
    /// totals, or for a truncated stream up to the newest frame that held
    /// received samples. Live playout may have played concealed frames
    /// beyond it while it waited for more (a sender that vanished, an end
    /// that came after a gap): they are not media, and sinks cut them
    /// ([`FileSink`] does; a [`PullSink`] application reads this).
    pub media_samples: Vec<u64>,
}

/// Receives one session's frames at their playout instants.
pub trait Sink: Send {
    /// One frame, concealed in place; `frame.mask` says which samples really
    /// arrived. Called on a playout worker shared with other sessions:
    /// return quickly, never block.
    fn frame(&mut self, frame: PlayedFrame<'_>);

    /// The session is over (complete or truncated): finish outputs. Called
    /// exactly once, after the last frame.
    fn end(&mut self, end: &mut SessionEnd);

    /// Why this sink can take no more (disk full, an output limit), once
    /// that is so: the session then ends at once, truncated, and the sender
    /// is told. Checked after frames are handed over; must be cheap.
    fn failed(&self) -> Option<String> {
        None
    }
}

/// What a [`FileSink`] may write: per session, and in total across the
/// sessions sharing an [`OutputBudget`]. The defaults protect a receiver
/// nobody watches: 4 GiB and 12 hours of output per session, 64 GiB and
/// 10 000 files in all, and writing stops (new sessions are refused) while
/// the output directory's file system has less than 1 GiB free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimits {
    /// Bytes of files one session may write (`None`: no limit).
    pub max_bytes: Option<u64>,
    /// Media one session may write, per substream (`None`: no limit).
    pub max_duration: Option<std::time::Duration>,
    /// Stop writing when the output directory's file system has less free
    /// space than this, in bytes (0: write until it is full).
    pub min_free: u64,
    /// Bytes all sessions sharing a budget may write together (`None`: no
    /// limit).
    pub max_total_bytes: Option<u64>,
    /// Files all sessions sharing a budget may create together (`None`: no
    /// limit).
    pub max_files: Option<u64>,
}

impl Default for OutputLimits {
    fn default() -> Self {
        Self {
            max_bytes: Some(4 << 30),
            max_duration: Some(std::time::Duration::from_secs(12 * 3600)),
            min_free: 1 << 30,
            max_total_bytes: Some(64 << 30),
            max_files: Some(10_000),
        }
    }
}

impl OutputLimits {
    /// No limit at all (the file system's own end still is one).
    pub const UNLIMITED: OutputLimits = OutputLimits {
        max_bytes: None,
        max_duration: None,
        min_free: 0,
        max_total_bytes: None,
        max_files: None,
    };
}

/// A file name from a catalog hint that cannot leave the output directory:
/// the last path component, characters outside `[A-Za-z0-9._-]` replaced,
/// no leading dots, at most 100 bytes, with the right extension.
pub fn safe_file_name(hint: &str, fallback: &str, ext: &str) -> String {
    let last = hint.rsplit(['/', '\\']).next().unwrap_or("");
    let mut name: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed = name.trim_start_matches('.').to_owned();
    name = trimmed;
    name.truncate(100);
    if name.is_empty() || name.chars().all(|c| c == '_') {
        name = fallback.to_owned();
    }
    let want = format!(".{ext}");
    if !name.to_ascii_lowercase().ends_with(&want) {
        name.push_str(&want);
    }
    name
}

/// Claim a fresh path for `name` in `dir`: `name`, else `stem-1.ext`, ...
/// The file is created empty (create-new), so two sessions never share one.
/// The next suffix to try is remembered per name (a bounded table), so
/// the 1000th session with one name costs one probe, not a thousand.
pub fn claim_path(dir: &Path, name: &str) -> std::io::Result<PathBuf> {
    static NEXT: OnceLock<Mutex<HashMap<PathBuf, u32>>> = OnceLock::new();
    const REMEMBERED: usize = 4096;
    let next = NEXT.get_or_init(Default::default);
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) => (s.to_owned(), format!(".{e}")),
        None => (name.to_owned(), String::new()),
    };
    let key = dir.join(name);
    let mut table = next.lock().unwrap_or_else(|e| e.into_inner());
    let mut i = table.get(&key).copied().unwrap_or(0);
    loop {
        let candidate = if i == 0 {
            key.clone()
        } else {
            dir.join(format!("{stem}-{i}{ext}"))
        };
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(_) => {
                if table.len() >= REMEMBERED && !table.contains_key(&key) {
                    // Forgetting a name only costs probes, never a clash:
                    // create-new still refuses an existing file.
                    table.clear();
                }
                table.insert(key, i.saturating_add(1));
                return Ok(candidate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && i < u32::MAX => i += 1,
            Err(e) => return Err(e),
        }
    }
}

/// The file layout a substream is written with: its origin, or for raw
/// application media a WAV (audio, in the layout that holds its encoding)
/// or CSV (sensor) of its format.
pub fn output_origin(d: &SubstreamDesc) -> Origin {
    match &d.origin {
        Origin::Raw => match d.kind {
            // The WAV writer picks the layout that holds the encoding.
            MediaKind::Audio => Origin::Raw,
            MediaKind::Sensor => Origin::Csv(CsvLayout::new(
                (0..d.format.channels).map(|c| format!("v{c}")).collect(),
            )),
        },
        o => o.clone(),
    }
}

enum Writer {
    Wav(Box<WavWriter>),
    Csv(Box<CsvWriter>),
}

impl Writer {
    fn write(&mut self, data: &[u8], mask: SampleMask<'_>) -> isochron_codecs::Result<()> {
        match self {
            Writer::Wav(w) => w.write(data),
            Writer::Csv(w) => w.write_frame(data, mask),
        }
    }

    fn finish(self) -> isochron_codecs::Result<u64> {
        match self {
            Writer::Wav(w) => w.finish(),
            Writer::Csv(w) => w.finish(),
        }
    }
}

/// What the writer thread returns: files written (path, samples), errors.
type Written = (Vec<(PathBuf, u64)>, Vec<String>);

/// A frame on its way to the writer thread (buffers are pooled).
struct Pending {
    index: usize,
    data: Vec<u8>,
    mask: Vec<u64>,
    samples: usize,
    /// The substream's first frame: the index of its first sample (not 0
    /// when the stream was joined mid-way).
    first_sample: Option<u64>,
}

/// To the writer thread: frames, then where each substream's media ends.
enum ToWriter {
    Frame(Pending),
    End(Vec<u64>),
}

/// Frames with no sample present wait before they are written, up to this
/// many seconds of them: if the stream ends during them they were
/// concealment of media that never existed (a sender that vanished) and
/// are cut; a frame with samples behind them shows they were a gap.
const HOLD_SECONDS: usize = 15;
/// ... and at most this many bytes of them in all (a wide catalog holds
/// fewer seconds).
const HOLD_BYTES: usize = 8 << 20;
/// Bytes of frames queued for the disk at most.
const QUEUE_BYTES: usize = 4 << 20;

/// How long the writer lets frames queue between writes (at most).
const WRITER_PAUSE: Duration = Duration::from_millis(50);

/// The writer thread's watch over the output limits and the disk.
struct Guard {
    limits: OutputLimits,
    budget: Arc<OutputBudget>,
    /// Bytes of this session's files counted into the budget so far.
    counted: u64,
    dir: PathBuf,
    paths: Vec<PathBuf>,
    periods: Vec<isochron_codecs::Rate>,
    failure: Arc<OnceLock<String>>,
    /// Samples written (all substreams) when the files were last measured.
    checked_at: u64,
}

impl Guard {
    /// Measure sizes and free space now and then (every ~64 KiB of
    /// samples); `Some(why)` once a limit is reached.
    fn check(&mut self, outs: &[Output]) -> Option<String> {
        if let Some(f) = self.failure.get() {
            return Some(f.clone());
        }
        if let Some(max) = self.limits.max_duration {
            for (out, rate) in outs.iter().zip(&self.periods) {
                if rate.sample_time_us(out.written) >= crate::time::micros(max) {
                    return self.fail(format!(
                        "output limit: {} s of media written (max duration)",
                        max.as_secs_f64()
                    ));
                }
            }
        }
        let total: u64 = outs.iter().map(|o| o.written).sum();
        if total < self.checked_at + 16_384 {
            return None;
        }
        self.checked_at = total;
        if self.limits.max_bytes.is_some() || self.limits.max_total_bytes.is_some() {
            let bytes: u64 = self
                .paths
                .iter()
                .filter_map(|p| fs::metadata(p).ok())
                .map(|m| m.len())
                .sum();
            if let Some(max) = self.limits.max_bytes
                && bytes >= max
            {
                return self.fail(format!(
                    "output limit: {bytes} bytes written (max bytes {max})"
                ));
            }
            let more = bytes.saturating_sub(self.counted);
            self.counted = self.counted.max(bytes);
            if let Err(why) = self.budget.wrote(more) {
                return self.fail(why);
            }
        }
        if self.limits.min_free > 0
            && let Some(free) = free_space(&self.dir)
            && free < self.limits.min_free
        {
            return self.fail(format!(
                "{} has {free} bytes free, under the floor of {} (min free): writing stopped",
                self.dir.display(),
                self.limits.min_free
            ));
        }
        None
    }

    fn fail(&self, why: String) -> Option<String> {
        let _ = self.failure.set(why);
        self.failure.get().cloned()
    }
}

/// Writes each substream to a file in a directory, on a writer thread:
/// WAV for audio, CSV for sensors, in the layout the sender's files had.
/// Files are valid while being written and finalised at the end, whether
/// the session completed or not. About two seconds of frames may queue for
/// the disk; beyond that the playout waits rather than lose media (the one
/// place a sink blocks), and the session's end reports how often.
pub struct FileSink {
    tx: Option<cb::Sender<ToWriter>>,
    pool: Arc<ArrayQueue<Pending>>,
    thread: Option<JoinHandle<Written>>,
    paths: Vec<PathBuf>,
    /// Per substream: its first frame has been written.
    started: Vec<bool>,
    /// Per substream, to place its first frame in the stream.
    starts: Vec<SubstreamDesc>,
    /// Set by the writer thread when it can write no more.
    failure: Arc<OnceLock<String>>,
    /// Frames the writer could not keep up with, written late.
    pub stalls: u64,
}

impl FileSink {
    /// Create one output file per substream in `dir` (created if needed),
    /// named after the catalog's hints but always inside `dir`, within the
    /// default [`OutputLimits`].
    pub fn create(dir: &Path, session: &SessionDesc) -> std::io::Result<FileSink> {
        Self::create_limited(dir, session, OutputLimits::default())
    }

    /// [`create`](Self::create) within `limits`: once one is reached (or
    /// the disk is full), writing stops, the files are finalised with what
    /// they hold, and [`Sink::failed`] says why.
    pub fn create_limited(
        dir: &Path,
        session: &SessionDesc,
        limits: OutputLimits,
    ) -> std::io::Result<FileSink> {
        Self::create_within(dir, session, &Arc::new(OutputBudget::new(limits)))
    }

    /// [`create_limited`](Self::create_limited) sharing `budget` (and its
    /// limits) with every other session made with it: refused, with the
    /// limit named, when the budget's files or bytes are spent or the disk
    /// is under its free-space floor.
    pub fn create_within(
        dir: &Path,
        session: &SessionDesc,
        budget: &Arc<OutputBudget>,
    ) -> std::io::Result<FileSink> {
        fs::create_dir_all(dir)?;
        budget
            .admit(dir, session.substreams.len())
            .map_err(std::io::Error::other)?;
        let limits = *budget.limits();
        let mut writers = Vec::new();
        let mut paths = Vec::new();
        let mut max_frame = 0;
        for d in &session.substreams {
            let origin = output_origin(d);
            let ext = if matches!(origin, Origin::Csv(_)) {
                "csv"
            } else {
                "wav"
            };
            let name = safe_file_name(&d.name, &format!("substream{}", d.id), ext);
            let path = claim_path(dir, &name)?;
            let w = open_writer(&path, d.format, &origin, d.length)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            max_frame = max_frame.max(d.max_frame_bytes());
            writers.push(w);
            paths.push(path);
        }
        // About two seconds of frames may wait for the disk, within a
        // memory budget whatever the catalog.
        let frames_per_sec: usize = session
            .substreams
            .iter()
            .map(|d| (1_000_000 / d.frame_us as usize).max(1))
            .sum();
        let depth = (2 * frames_per_sec)
            .min(QUEUE_BYTES / max_frame.max(1))
            .clamp(16, 8192);
        let pool = Arc::new(ArrayQueue::new(depth + 2));
        let max_samples = session
            .substreams
            .iter()
            .map(|d| d.max_frame_samples())
            .max()
            .unwrap_or(1);
        for _ in 0..depth {
            let _ = pool.push(Pending {
                index: 0,
                data: Vec::with_capacity(max_frame),
                mask: vec![0; max_samples.div_ceil(64).max(1)],
                samples: 0,
                first_sample: None,
            });
        }
        let (tx, rx) = cb::bounded::<ToWriter>(depth);
        let back = pool.clone();
        let n = session.substreams.len().max(1);
        let hold: Vec<usize> = session
            .substreams
            .iter()
            .map(|d| {
                let seconds = HOLD_SECONDS * (1_000_000 / d.frame_us.max(1) as usize).max(1);
                let budget = HOLD_BYTES / n / d.max_frame_bytes().max(1);
                seconds.min(budget).max(1)
            })
            .collect();
        let failure = Arc::new(OnceLock::new());
        let guard = Guard {
            limits,
            budget: budget.clone(),
            counted: 0,
            dir: dir.to_path_buf(),
            paths: paths.clone(),
            periods: session.substreams.iter().map(|d| d.format.rate).collect(),
            failure: failure.clone(),
            checked_at: 0,
        };
        // The writer takes what queued every `pause`, a quarter of the
        // queue at most, instead of waking for every frame.
        let shortest = session
            .substreams
            .iter()
            .map(|d| d.frame_us as u64)
            .min()
            .unwrap_or(1);
        let pause = WRITER_PAUSE.min(Duration::from_micros(shortest * (depth / 4) as u64));
        let thread = std::thread::Builder::new()
            .name("isochron-writer".into())
            .spawn(move || write_loop(writers, rx, back, hold, guard, pause))?;
        Ok(FileSink {
            tx: Some(tx),
            pool,
            thread: Some(thread),
            paths,
            started: vec![false; session.substreams.len()],
            starts: session.substreams.clone(),
            failure,
            stalls: 0,
        })
    }

    /// The files being written, in catalog order.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }
}

fn open_writer(
    path: &Path,
    format: StreamFormat,
    origin: &Origin,
    length: Option<u64>,
) -> isochron_codecs::Result<Writer> {
    Ok(match origin {
        Origin::Csv(_) => Writer::Csv(Box::new(CsvWriter::create(path, format, origin)?)),
        _ => Writer::Wav(Box::new(WavWriter::create_sized(
            path, format, origin, length,
        )?)),
    })
}

/// One output file and the frames it holds back.
struct Output {
    writer: Writer,
    /// Frames without a sample present, not yet written.
    held: std::collections::VecDeque<Pending>,
    /// At most this many held.
    hold: usize,
    /// Samples of the stream written so far (counted from 0 even when the
    /// file starts mid-way, to compare with where the media ends).
    written: u64,
    failed: bool,
}

impl Output {
    /// Write `p`, or just its first `keep` samples.
    fn write(&mut self, p: &Pending, keep: usize, errors: &mut Vec<String>) {
        if self.failed || keep == 0 {
            return;
        }
        let keep = keep.min(p.samples);
        let stride = p.data.len() / p.samples.max(1);
        let mask = SampleMask::new(&p.mask, keep);
        match self.writer.write(&p.data[..keep * stride], mask) {
            Ok(()) => self.written += keep as u64,
            Err(e) => {
                errors.push(e.to_string());
                self.failed = true;
            }
        }
    }
}

fn write_loop(
    writers: Vec<Writer>,
    rx: cb::Receiver<ToWriter>,
    pool: Arc<ArrayQueue<Pending>>,
    hold: Vec<usize>,
    mut guard: Guard,
    pause: Duration,
) -> Written {
    let mut errors = Vec::new();
    let mut outs: Vec<Output> = writers
        .into_iter()
        .zip(hold)
        .map(|(writer, hold)| Output {
            writer,
            held: Default::default(),
            hold,
            written: 0,
            failed: false,
        })
        .collect();
    let mut media_end: Option<Vec<u64>> = None;
    // A limit was reached or a write failed: the rest is not written.
    let mut stopped = false;
    loop {
        let msg = match rx.try_recv() {
            Ok(m) => m,
            Err(cb::TryRecvError::Empty) => {
                // Batching, not synchronisation: files need no frame-time
                // latency, and a wake-up per frame was most of the writer's
                // cost. The queue holds four pauses at least.
                std::thread::sleep(pause);
                match rx.recv() {
                    Ok(m) => m,
                    Err(_) => break,
                }
            }
            Err(cb::TryRecvError::Disconnected) => break,
        };
        let p = match msg {
            ToWriter::Frame(p) => p,
            ToWriter::End(end) => {
                media_end = Some(end);
                break;
            }
        };
        if stopped || p.index >= outs.len() {
            let _ = pool.push(p);
            continue;
        }
        if let Some(why) = guard.check(&outs) {
            errors.push(why);
            stopped = true;
            let _ = pool.push(p);
            continue;
        }
        let out = &mut outs[p.index];
        if let Some(n) = p.first_sample {
            // Joined mid-way: the file starts at sample n of the stream.
            if let Writer::Csv(w) = &mut out.writer {
                w.start_at_row(n);
            }
            out.written = n;
        }
        if SampleMask::new(&p.mask, p.samples).count_present() == 0 {
            // Nothing arrived: a gap, or past the end of the media.
            out.held.push_back(p);
            if out.held.len() > out.hold
                && let Some(old) = out.held.pop_front()
            {
                out.write(&old, old.samples, &mut errors);
                let _ = pool.push(old);
            }
            continue;
        }
        // Media after them: the held frames were a gap inside the stream.
        while let Some(old) = out.held.pop_front() {
            out.write(&old, old.samples, &mut errors);
            let _ = pool.push(old);
        }
        out.write(&p, p.samples, &mut errors);
        let _ = pool.push(p);
        if out.failed {
            // The disk said no (full, or worse): stop, and say why.
            let why = errors.last().cloned().unwrap_or_default();
            let _ = guard.failure.set(format!("cannot write the output: {why}"));
            stopped = true;
        }
    }
    // Held frames up to where the media ends are a gap; the rest is cut.
    for (i, out) in outs.iter_mut().enumerate().filter(|_| !stopped) {
        let end = media_end
            .as_ref()
            .and_then(|e| e.get(i).copied())
            .unwrap_or(out.written);
        while let Some(old) = out.held.pop_front() {
            let keep = end.saturating_sub(out.written) as usize;
            out.write(&old, keep, &mut errors);
        }
    }
    let mut files = Vec::new();
    for out in outs {
        let w = out.writer;
        let path = match &w {
            Writer::Wav(w) => w.path().to_path_buf(),
            Writer::Csv(w) => w.path().to_path_buf(),
        };
        match w.finish() {
            Ok(n) => files.push((path, n)),
            Err(e) => errors.push(e.to_string()),
        }
    }
    (files, errors)
}

impl Sink for FileSink {
    fn frame(&mut self, f: PlayedFrame<'_>) {
        let Some(tx) = &self.tx else { return };
        let mut p = self.pool.pop().unwrap_or_else(|| Pending {
            index: 0,
            data: Vec::new(),
            mask: Vec::new(),
            samples: 0,
            first_sample: None,
        });
        p.first_sample =
            (!self.started[f.index]).then(|| self.starts[f.index].frame_start(f.frame));
        self.started[f.index] = true;
        p.index = f.index;
        p.data.clear();
        p.data.extend_from_slice(f.data);
        p.samples = f.mask.len();
        p.mask.clear();
        p.mask.extend_from_slice(f.mask.words());
        if let Err(cb::TrySendError::Full(p)) = tx.try_send(ToWriter::Frame(p)) {
            // The disk is behind by seconds: wait rather than lose media.
            self.stalls += 1;
            let _ = tx.send(p);
        }
    }

    fn failed(&self) -> Option<String> {
        self.failure()
    }

    fn end(&mut self, end: &mut SessionEnd) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(ToWriter::End(end.media_samples.clone()));
        }
        if self.stalls > 0 {
            end.warnings.push(format!(
                "the disk fell more than two seconds behind {} times; playout waited for it",
                self.stalls
            ));
        }
        if let Some(t) = self.thread.take() {
            match t.join() {
                Ok((files, errors)) => {
                    end.files = files;
                    end.errors.extend(errors);
                }
                Err(_) => end.errors.push("the file writer thread panicked".into()),
            }
        }
    }
}

impl FileSink {
    fn failure(&self) -> Option<String> {
        self.failure.get().cloned()
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        // Finalise files even if `end` was never called.
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A frame handed to a pulling application.
#[derive(Debug, Clone)]
pub struct ReceivedFrame {
    /// Position of the substream in the catalog.
    pub index: usize,
    /// Catalog id of the substream.
    pub substream: u16,
    /// Frame number in the substream (from 0, consecutive).
    pub frame: u64,
    /// When it was due on the receiver's clock.
    pub deadline: Time,
    /// Wire-encoded samples, concealed where missing.
    pub data: Bytes,
    /// Samples that were concealed.
    pub concealed: usize,
}

/// What a [`PullSink`] delivers.
#[derive(Debug, Clone)]
pub enum Pulled {
    /// A played frame.
    Frame(ReceivedFrame),
    /// The session is over; nothing follows. Its
    /// [`sink_dropped`](SessionEnd::sink_dropped) says how many frames the
    /// application did not take in time.
    End(Box<SessionEnd>),
}

/// Hands frames to a bounded channel the application reads at its pace
/// (through the [`PullReceiver`] of [`pull_channel`]).
///
/// It never blocks the playout: when the application is behind by the
/// whole channel, further frames are dropped and counted (readable from
/// [`PullReceiver::dropped`] at any time, and in the session's
/// [`SessionEnd::sink_dropped`]). One slot is kept for the end of the
/// session, so [`Pulled::End`] always arrives and the session always ends,
/// however far behind the application is. Each frame is one buffer
/// allocation.
pub struct PullSink {
    tx: cb::Sender<Pulled>,
    capacity: usize,
    dropped: Arc<AtomicU64>,
}

/// The application's end of a [`PullSink`]: frames in playout order, then
/// one [`Pulled::End`].
pub struct PullReceiver {
    rx: cb::Receiver<Pulled>,
    dropped: Arc<AtomicU64>,
}

/// A pull sink holding up to `capacity` frames (at least 1) for the
/// application, and the receiving end the application reads.
pub fn pull_channel(capacity: usize) -> (PullSink, PullReceiver) {
    let capacity = capacity.max(1);
    // One more slot than frames may take: the end always fits.
    let (tx, rx) = cb::bounded(capacity + 1);
    let dropped = Arc::new(AtomicU64::new(0));
    (
        PullSink {
            tx,
            capacity,
            dropped: dropped.clone(),
        },
        PullReceiver { rx, dropped },
    )
}

impl PullSink {
    /// Frames dropped so far because the application did not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl PullReceiver {
    /// Wait for the next frame or the end; `Err` once the end was taken (or
    /// the session went away without one).
    pub fn recv(&self) -> Result<Pulled, cb::RecvError> {
        self.rx.recv()
    }

    /// [`recv`](Self::recv), waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Pulled, cb::RecvTimeoutError> {
        self.rx.recv_timeout(timeout)
    }

    /// The next frame or the end, if one is waiting.
    pub fn try_recv(&self) -> Result<Pulled, cb::TryRecvError> {
        self.rx.try_recv()
    }

    /// Frames and the end, blocking for each; stops after the end.
    pub fn iter(&self) -> impl Iterator<Item = Pulled> + '_ {
        let mut ended = false;
        std::iter::from_fn(move || {
            if ended {
                return None;
            }
            let p = self.rx.recv().ok()?;
            ended = matches!(p, Pulled::End(_));
            Some(p)
        })
    }

    /// Frames waiting to be taken.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    /// Nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// Frames the sink dropped so far because the application did not take
    /// them in time (the channel was full).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Sink for PullSink {
    fn frame(&mut self, f: PlayedFrame<'_>) {
        // The sink is the only sender: a length below capacity now leaves
        // room for this frame and still one for the end.
        if self.tx.len() >= self.capacity {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let frame = ReceivedFrame {
            index: f.index,
            substream: f.substream,
            frame: f.frame,
            deadline: f.deadline,
            data: Bytes::copy_from_slice(f.data),
            concealed: f.mask.len() - f.mask.count_present(),
        };
        if self.tx.try_send(Pulled::Frame(frame)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn end(&mut self, end: &mut SessionEnd) {
        end.sink_dropped += self.dropped();
        // Never blocks: a slot is reserved for this message.
        let _ = self.tx.try_send(Pulled::End(Box::new(end.clone())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_inside_the_directory() {
        assert_eq!(
            safe_file_name("../../etc/passwd", "s0", "wav"),
            "passwd.wav"
        );
        assert_eq!(
            safe_file_name("/abs/path/take 1.wav", "s0", "wav"),
            "take_1.wav"
        );
        assert_eq!(safe_file_name("..", "s3", "csv"), "s3.csv");
        assert_eq!(safe_file_name("C:\\x\\imu.CSV", "s0", "csv"), "imu.CSV");
        assert_eq!(safe_file_name("a\u{0}b\nc", "s0", "wav"), "a_b_c.wav");
        assert_eq!(safe_file_name("", "s7", "wav"), "s7.wav");
        let long = "x".repeat(500);
        assert!(safe_file_name(&long, "s0", "wav").len() <= 104);
    }

    /// The next suffix is remembered: after 200 sessions named alike, with
    /// their files gone, the next one probes once (it gets `-200`, not the
    /// free name a probe from the start would find).
    #[test]
    fn a_popular_name_costs_one_probe() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..200 {
            let p = claim_path(dir.path(), "same.wav").unwrap();
            let want = if i == 0 {
                "same.wav".to_owned()
            } else {
                format!("same-{i}.wav")
            };
            assert_eq!(p.file_name().unwrap().to_str().unwrap(), want);
            fs::remove_file(p).unwrap();
        }
        let p = claim_path(dir.path(), "same.wav").unwrap();
        assert_eq!(p.file_name().unwrap(), "same-200.wav");
    }

    #[test]
    fn claimed_paths_are_unique() {
        let dir = tempfile::tempdir().unwrap();
        let a = claim_path(dir.path(), "take.wav").unwrap();
        let b = claim_path(dir.path(), "take.wav").unwrap();
        assert_ne!(a, b);
        assert_eq!(b.file_name().unwrap(), "take-1.wav");
        assert!(a.starts_with(dir.path()) && b.starts_with(dir.path()));
    }
}
