//! Playing one audio substream on a sound card.
//!
//! The playout thread hands frames over at their instants ([`Sink::frame`]):
//! they are decoded to f32 and queued (a lock-free queue; a full queue drops
//! the frame and counts an overrun). The card's callback pulls through a
//! [`DriftPull`]: a PI loop on the queue's level sets the resampler's speed,
//! so the card's clock, however far off, neither drains nor floods it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use cpal::traits::{DeviceTrait, StreamTrait};
use crossbeam_queue::ArrayQueue;
use isochron_codecs::encoding::decode;

use super::{DeviceError, find, name_of};
use crate::net::clock::monotonic;
use crate::net::sink::{SessionEnd, Sink};
use crate::playout::PlayedFrame;
use crate::playout::drift::{DriftConfig, DriftPull, DriftStats, LastPush, SampleQueue};
use crate::time::Time;
use crate::wire::control::SessionDesc;

/// The queue, the producer's last push and the loop's figures, shared by
/// the playout thread and the card's callback.
struct Shared {
    queue: ArrayQueue<f32>,
    /// Last push: micros << 16 | frames (frames < 65536).
    last_push: AtomicU64,
    overruns: AtomicU64,
    underruns: AtomicU64,
    speed_ppm: AtomicU64,
    level_us: AtomicU64,
    errors: AtomicU64,
    stop: AtomicBool,
}

struct Queue<'a>(&'a ArrayQueue<f32>);

impl SampleQueue for Queue<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn pop_exact(&mut self, out: &mut [f32]) -> bool {
        // Single consumer: what `len` saw stays there.
        if self.0.len() < out.len() {
            return false;
        }
        for o in out.iter_mut() {
            *o = self.0.pop().unwrap_or(0.0);
        }
        true
    }
}

/// Plays substream `index` of a session on a sound card.
pub struct DeviceSink {
    index: usize,
    encoding: isochron_codecs::Encoding,
    shared: Arc<Shared>,
    scratch: Vec<f32>,
    thread: Option<JoinHandle<Result<(), DeviceError>>>,
    name: String,
    target_us: u64,
}

impl DeviceSink {
    /// Open the card `name` (`None`: the default) for substream `index` at
    /// its rate and channel count, holding `target` of media queued for it.
    pub fn open(
        name: Option<&str>,
        session: &SessionDesc,
        index: usize,
        target: Duration,
    ) -> Result<DeviceSink, DeviceError> {
        let d = &session.substreams[index];
        if d.format.rate.den() != 1 {
            return Err(DeviceError::Unsupported(format!(
                "a sound card plays whole hertz, not {} Hz",
                d.format.rate.as_f64()
            )));
        }
        let device = find(name, true)?;
        let dev_name = name_of(&device);
        let channels = d.format.channels as usize;
        let rate = d.format.rate.num();
        let target_us = target.as_micros().max(1) as u64;
        let pull = DriftPull::new(DriftConfig::new(rate as f64, channels, target_us))
            .map_err(|e| DeviceError::Unsupported(e.to_string()))?;
        let cap = pull.queue_capacity(d.max_frame_samples());
        let shared = Arc::new(Shared {
            queue: ArrayQueue::new(cap.max(1)),
            last_push: AtomicU64::new(0),
            overruns: AtomicU64::new(0),
            underruns: AtomicU64::new(0),
            speed_ppm: AtomicU64::new(1_000_000),
            level_us: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let config = cpal::StreamConfig {
            channels: channels as u16,
            sample_rate: cpal::SampleRate(rate),
            buffer_size: cpal::BufferSize::Default,
        };
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
        let sh = shared.clone();
        let n = dev_name.clone();
        let thread = std::thread::Builder::new()
            .name("isochron-play".into())
            .spawn(move || run_stream(device, n, config, pull, sh, ready_tx))
            .map_err(|e| DeviceError::Unsupported(e.to_string()))?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                return Err(match thread.join() {
                    Ok(Err(e)) => e,
                    _ => DeviceError::Unsupported("the playback thread ended".into()),
                });
            }
        }
        Ok(DeviceSink {
            index,
            encoding: d.format.encoding,
            shared,
            scratch: vec![0.0; d.max_frame_samples() * channels],
            thread: Some(thread),
            name: dev_name,
            target_us,
        })
    }

    /// The card being played.
    pub fn device_name(&self) -> &str {
        &self.name
    }

    /// What the drift loop has done so far.
    pub fn stats(&self) -> DriftStats {
        let s = &self.shared;
        DriftStats {
            underruns: s.underruns.load(Ordering::Relaxed),
            overruns: s.overruns.load(Ordering::Relaxed),
            speed: s.speed_ppm.load(Ordering::Relaxed) as f64 * 1e-6,
            level_us: s.level_us.load(Ordering::Relaxed) as f64,
            target_us: self.target_us as f64,
            frames_out: 0,
        }
    }
}

fn run_stream(
    device: cpal::Device,
    name: String,
    config: cpal::StreamConfig,
    mut pull: DriftPull,
    shared: Arc<Shared>,
    ready: crossbeam_channel::Sender<Result<(), DeviceError>>,
) -> Result<(), DeviceError> {
    let open_err = |detail: String| DeviceError::Open {
        dir: "playback",
        name: name.clone(),
        detail,
    };
    let cb = shared.clone();
    let err = shared.clone();
    let stream = device.build_output_stream::<f32, _, _>(
        &config,
        move |data: &mut [f32], _| {
            let packed = cb.last_push.load(Ordering::Acquire);
            let push = LastPush {
                at: Time::from_micros(packed >> 16),
                frames: (packed & 0xffff) as u32,
            };
            pull.pull(monotonic(), &mut Queue(&cb.queue), push, data);
            let s = pull.stats();
            cb.underruns.store(s.underruns, Ordering::Relaxed);
            cb.speed_ppm
                .store((s.speed * 1e6).round() as u64, Ordering::Relaxed);
            cb.level_us
                .store(s.level_us.max(0.0) as u64, Ordering::Relaxed);
        },
        move |_e| {
            err.errors.fetch_add(1, Ordering::Relaxed);
        },
        None,
    );
    let stream = match stream {
        Ok(s) => s,
        Err(e) => {
            let e = open_err(e.to_string());
            let _ = ready.send(Err(open_err(e.to_string())));
            return Err(e);
        }
    };
    if let Err(e) = stream.play() {
        let _ = ready.send(Err(open_err(e.to_string())));
        return Err(open_err(e.to_string()));
    }
    let _ = ready.send(Ok(()));
    while !shared.stop.load(Ordering::Acquire) {
        std::thread::park_timeout(Duration::from_millis(50));
    }
    drop(stream);
    Ok(())
}

impl Sink for DeviceSink {
    fn frame(&mut self, f: PlayedFrame<'_>) {
        if f.index != self.index {
            return;
        }
        let values = decode::<f32>(self.encoding, f.data, &mut self.scratch);
        let channels = (values / f.mask.len().max(1)).max(1);
        let s = &self.shared;
        if s.queue.capacity() - s.queue.len() < values {
            s.overruns.fetch_add(1, Ordering::Relaxed);
        } else {
            for &v in &self.scratch[..values] {
                let _ = s.queue.push(v);
            }
        }
        let frames = (values / channels).min(0xffff) as u64;
        s.last_push
            .store(monotonic().as_micros() << 16 | frames, Ordering::Release);
    }

    fn end(&mut self, end: &mut SessionEnd) {
        // Let the card play what is queued (at most the queue's worth).
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while !self.shared.queue.is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.shared.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            match t.join() {
                Ok(Err(e)) => end.errors.push(e.to_string()),
                Ok(Ok(())) => {}
                Err(_) => end.errors.push("the playback thread panicked".into()),
            }
        }
        // Not output errors (the stream was played): what the card's side
        // did, for whoever reads the logs.
        let s = self.stats();
        let errors = self.shared.errors.load(Ordering::Relaxed);
        tracing::info!(
            device = %self.name,
            underruns = s.underruns,
            overruns = s.overruns,
            stream_errors = errors,
            speed = s.speed,
            "sound card played out"
        );
    }
}

impl Drop for DeviceSink {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}
