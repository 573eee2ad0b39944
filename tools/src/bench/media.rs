//! What the benchmark sends: seeded music (48 kHz stereo, 16-bit) and an
//! optional 200 Hz 3-axis sensor, generated once before the clock starts,
//! and the feeder threads that push it into senders as a live application
//! would, paced by real time.

use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel as cb;

use anyhow::Result;
use bytes::Bytes;
use isochron_codecs::signal::{Music, Sensor};
use isochron_codecs::{Encoding, Origin, Rate, StreamFormat};
use isochron_engine::catalog::{MediaKind, SubstreamDesc};
use isochron_engine::net::clock::monotonic;
use isochron_engine::net::{Sender, TransportError};
use isochron_engine::stats::SenderStats;

/// Generated media and the catalog that describes it.
#[derive(Clone)]
pub struct Media {
    /// Wire bytes per substream, in catalog order (audio first).
    pub data: Vec<Bytes>,
    pub catalog: Vec<SubstreamDesc>,
}

pub const AUDIO_RATE: u32 = 48_000;
pub const SENSOR_RATE: u32 = 200;

fn desc(
    id: u16,
    name: &str,
    kind: MediaKind,
    format: StreamFormat,
    frame: Duration,
    samples: u64,
) -> SubstreamDesc {
    SubstreamDesc {
        id,
        name: name.into(),
        kind,
        format,
        frame_us: frame.as_micros() as u32,
        sample_interleave: 1,
        frames_per_packet: 1,
        origin: Origin::Raw,
        length: Some(samples),
        codec: None,
    }
}

impl Media {
    /// `duration` of music (and sensor values, if `sensor`), from `seed`.
    pub fn generate(seed: u64, duration: Duration, frame: Duration, sensor: bool) -> Result<Media> {
        let rate = Rate::hz(AUDIO_RATE)?;
        let format = StreamFormat::new(Encoding::L16, Music::CHANNELS, rate)?;
        let samples = rate.samples_before(duration.as_micros() as u64);
        let mut audio = vec![0u8; samples as usize * format.stride()];
        Music::new(seed, rate).fill_wire(Encoding::L16, &mut audio);
        let mut data = vec![Bytes::from(audio)];
        let mut catalog = vec![desc(
            0,
            "music.wav",
            MediaKind::Audio,
            format,
            frame,
            samples,
        )];
        if sensor {
            let rate = Rate::hz(SENSOR_RATE)?;
            let format = StreamFormat::new(Encoding::F64, Sensor::CHANNELS, rate)?;
            let samples = rate.samples_before(duration.as_micros() as u64);
            let mut v = vec![0u8; samples as usize * format.stride()];
            Sensor::new(seed, rate).fill_wire(Encoding::F64, &mut v);
            data.push(Bytes::from(v));
            catalog.push(desc(
                1,
                "imu.csv",
                MediaKind::Sensor,
                format,
                frame,
                samples,
            ));
        }
        Ok(Media { data, catalog })
    }
}

/// One sender a feeder keeps supplied.
pub struct Feeding {
    pub sender: Sender,
    /// Media time zero of the session (`Sender::started_at`, microseconds of
    /// `CLOCK_MONOTONIC`).
    pub started_at: u64,
    /// Samples pushed so far, per substream.
    pos: Vec<u64>,
    /// The sender's counters every [`STATS_EVERY`] (for the code it
    /// really used over time).
    pub stats: Vec<SenderStats>,
    next_stats: u64,
}

/// How often a feeder notes each sender's counters.
pub const STATS_EVERY: Duration = Duration::from_millis(100);

impl Feeding {
    pub fn new(sender: Sender) -> Self {
        let started_at = sender.started_at().as_micros();
        let n = sender.session().substreams.len();
        Self {
            sender,
            started_at,
            pos: vec![0; n],
            stats: Vec::with_capacity(1024),
            next_stats: started_at,
        }
    }
}

/// Chunks applications push: 20 ms of samples.
const CHUNK: Duration = Duration::from_millis(20);

/// A feeder thread: senders join it as they connect, their media clocks
/// started (`Sender::start_clock`), so they must be fed at once.
pub struct Feeder {
    tx: Option<cb::Sender<Feeding>>,
    thread: Option<JoinHandle<Vec<Feeding>>>,
}

impl Feeder {
    /// Push `media` into every sender it is given as real time passes: a
    /// chunk goes in `lead` before its last sample's media time (so a feeder
    /// that wakes a little late never shows as engine delay: the sender's
    /// own pacer decides when each frame leaves), then each substream is
    /// ended. Chunks are slices of the shared buffers (no copy per session).
    pub fn spawn(name: String, media: Media, lead: Duration) -> std::io::Result<Feeder> {
        let (tx, rx) = cb::unbounded();
        let thread = std::thread::Builder::new().name(name).spawn(move || {
            // A live source keeps time like the sender it feeds.
            isochron_engine::net::priority::raise(isochron_engine::net::priority::Urgency::Network);
            feed(rx, media, lead)
        })?;
        Ok(Feeder {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    pub fn add(&self, item: Feeding) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(item);
        }
    }

    /// No more senders: wait until every one has been fed to its end, and
    /// give them back.
    pub fn finish(mut self) -> Vec<Feeding> {
        self.tx = None;
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

fn feed(rx: cb::Receiver<Feeding>, media: Media, lead: Duration) -> Vec<Feeding> {
    let stop = crate::interrupted();
    let descs = media.catalog.clone();
    let lead = lead.as_micros() as u64;
    let mut items: Vec<Feeding> = Vec::new();
    let mut ended: Vec<bool> = Vec::new();
    let mut open = true;
    loop {
        while let Ok(it) = rx.try_recv() {
            items.push(it);
            ended.push(false);
        }
        let now = monotonic().as_micros();
        let mut next_due = u64::MAX;
        let stopping = stop.load(std::sync::atomic::Ordering::Relaxed);
        for (it, done) in items.iter_mut().zip(ended.iter_mut()) {
            if now >= it.next_stats && !it.sender.is_finished() {
                it.stats.push(it.sender.stats());
                it.next_stats += STATS_EVERY.as_micros() as u64;
            }
            if *done {
                continue;
            }
            let mut all = true;
            for (i, d) in descs.iter().enumerate() {
                let rate = d.format.rate;
                let stride = d.format.stride();
                let total = d.length.unwrap_or(0);
                let per = rate.samples_before(CHUNK.as_micros() as u64).max(1);
                while it.pos[i] < total && !stopping {
                    let end = (it.pos[i] + per).min(total);
                    let due = (it.started_at + rate.sample_time_us(end)).saturating_sub(lead);
                    if due > now {
                        next_due = next_due.min(due);
                        break;
                    }
                    let bytes =
                        media.data[i].slice(it.pos[i] as usize * stride..end as usize * stride);
                    match it.sender.push(i, bytes) {
                        // Late media is counted in the sender's stats.
                        Ok(()) | Err(TransportError::Late { .. }) => {}
                        Err(_) => {
                            it.pos[i] = total; // the session is gone
                            break;
                        }
                    }
                    it.pos[i] = end;
                }
                if it.pos[i] < total && !stopping {
                    all = false;
                }
            }
            if all {
                for i in 0..descs.len() {
                    let _ = it.sender.end(i);
                }
                *done = true;
            }
        }
        if !open && ended.iter().all(|&d| d) {
            break;
        }
        let wait = next_due.saturating_sub(monotonic().as_micros());
        let wait = Duration::from_micros(wait.clamp(100, 20_000));
        if open {
            match rx.recv_timeout(wait) {
                Ok(it) => {
                    items.push(it);
                    ended.push(false);
                }
                Err(cb::RecvTimeoutError::Timeout) => {}
                Err(cb::RecvTimeoutError::Disconnected) => open = false,
            }
        } else {
            std::thread::sleep(wait);
        }
    }
    items
}
