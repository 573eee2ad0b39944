//! A sound card's input as a substream.
//!
//! The card's callback converts each period to 16-bit wire samples and
//! hands it to the reader [`open_capture`] returns, through a bounded
//! channel; media time is the count of samples the card delivered (with
//! [`crate::config::Pacing::Arrival`] they leave as they come). A consumer
//! that stops taking them (file mode, paused) holds the callback back: on a
//! real card ALSA then reports an overrun; a card without a clock (ALSA's
//! `null` or `file` PCMs) is simply paced by its consumer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cpal::traits::{DeviceTrait, StreamTrait};
use crossbeam_channel as cb;
use isochron_codecs::{Encoding, Origin, Rate, StreamFormat, WavLayout};

use super::{DeviceError, find, name_of};
use crate::catalog::{MediaKind, SubstreamDesc};
use crate::files::{FileInput, InputOptions};

/// What to capture.
#[derive(Debug, Clone, Default)]
pub struct CaptureOptions {
    /// Device name (`None`: the default input).
    pub name: Option<String>,
    /// Sample rate (default: the device's).
    pub rate: Option<u32>,
    /// Channels (default: the device's).
    pub channels: Option<u16>,
    /// Stop after this much media (default: until the device stops).
    pub duration: Option<Duration>,
}

/// Open a capture device as substream `id`; the stream starts at once and
/// stops when the returned reader is dropped or `duration` is reached.
pub fn open_capture(
    id: u16,
    capture: &CaptureOptions,
    opts: &InputOptions,
) -> Result<FileInput, DeviceError> {
    let device = find(capture.name.as_deref(), false)?;
    let name = name_of(&device);
    let open_err = |detail: String| DeviceError::Open {
        dir: "capture",
        name: name.clone(),
        detail,
    };
    let default = device.default_input_config().ok();
    let channels = capture
        .channels
        .or(default.as_ref().map(|c| c.channels()))
        .unwrap_or(2);
    let rate = capture
        .rate
        .or(default.as_ref().map(|c| c.sample_rate().0))
        .unwrap_or(48_000);
    let format = Rate::hz(rate)
        .and_then(|r| StreamFormat::new(Encoding::L16, channels, r))
        .map_err(|e| DeviceError::Unsupported(e.to_string()))?;
    let limit = capture
        .duration
        .map(|d| format.rate.samples_before(d.as_micros() as u64) * channels as u64);
    let config = cpal::StreamConfig {
        channels,
        sample_rate: cpal::SampleRate(rate),
        buffer_size: cpal::BufferSize::Default,
    };
    // About a second of periods may wait for the network thread.
    let (tx, rx) = cb::bounded::<Bytes>(256);
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let (ready_tx, ready_rx) = cb::bounded(1);
    let st = stop.clone();
    let er = errors.clone();
    let thread_name = name.clone();
    std::thread::Builder::new()
        .name("isochron-capture".into())
        .spawn(move || {
            let mut taken = 0u64;
            let done = st.clone();
            let stream = device.build_input_stream::<i16, _, _>(
                &config,
                move |data: &[i16], _| {
                    if done.load(Ordering::Relaxed) {
                        return;
                    }
                    let n = match limit {
                        Some(l) => (l.saturating_sub(taken) as usize).min(data.len()),
                        None => data.len(),
                    };
                    taken += n as u64;
                    let mut b = Vec::with_capacity(n * 2);
                    for v in &data[..n] {
                        b.extend_from_slice(&v.to_be_bytes());
                    }
                    if n > 0 && tx.send(Bytes::from(b)).is_err() {
                        done.store(true, Ordering::Relaxed);
                    }
                    if limit.is_some_and(|l| taken >= l) {
                        // Closing the channel ends the substream.
                        done.store(true, Ordering::Relaxed);
                    }
                },
                move |_e| {
                    er.fetch_add(1, Ordering::Relaxed);
                },
                None,
            );
            let stream = match stream.and_then(|s| {
                s.play()
                    .map(|_| s)
                    .map_err(|e| cpal::BuildStreamError::BackendSpecific {
                        err: cpal::BackendSpecificError {
                            description: e.to_string(),
                        },
                    })
            }) {
                Ok(s) => s,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            while !st.load(Ordering::Relaxed) {
                std::thread::park_timeout(Duration::from_millis(20));
            }
            // Dropping the stream drops the callback and its sender.
            drop(stream);
            let _ = thread_name;
        })
        .map_err(|e| open_err(e.to_string()))?;
    match ready_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(open_err(e)),
        Err(_) => return Err(open_err("the capture thread ended".into())),
    }
    let desc = SubstreamDesc {
        id,
        name: format!("{}.wav", sanitize(&name)),
        kind: MediaKind::Audio,
        format,
        frame_us: opts.frame_us,
        sample_interleave: opts.sample_interleave.max(1),
        frames_per_packet: 1,
        origin: Origin::Wav(WavLayout::pcm(16)),
        length: None,
        codec: None,
    };
    let mut pending: Option<(Bytes, usize)> = None;
    let guard = StopOnDrop(stop);
    let reader = Box::new(move |buf: &mut [u8]| {
        let _keep = &guard;
        let (chunk, at) = match pending.take() {
            Some(p) => p,
            None => match rx.recv() {
                Ok(b) => (b, 0),
                Err(_) => return Ok(0),
            },
        };
        let n = (chunk.len() - at).min(buf.len() / 2 * 2);
        buf[..n].copy_from_slice(&chunk[at..at + n]);
        if at + n < chunk.len() {
            pending = Some((chunk, at + n));
        }
        Ok(n)
    });
    Ok(FileInput { desc, reader })
}

/// Stops the capture when the reader goes.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}
