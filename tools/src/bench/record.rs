//! The benchmark's sink: on the playout thread, at each audio frame's
//! playout instant, it notes the instant (for end-to-end delay) and checks
//! the frame against what was sent (for SNR). Everything it needs is
//! allocated before the session starts; per frame it only reads the clock,
//! appends to a preallocated vector and compares bytes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use isochron_engine::catalog::SubstreamDesc;
use isochron_engine::net::clock::monotonic;
use isochron_engine::net::{SessionEnd, Sink};
use isochron_engine::playout::PlayedFrame;

/// What one session's sink saw.
pub struct Recording {
    desc: SubstreamDesc,
    reference: Bytes,
    /// `(frame, playout instant in microseconds of CLOCK_MONOTONIC)`.
    pub plays: Vec<(u64, u64)>,
    /// `(frame, deadline)`: when the playout meant to play it.
    pub deadlines: Vec<u64>,
    /// Frames whose bytes differ from what was sent (concealed ones).
    pub differing: u64,
    /// Sum of squared differences, decoded to [-1, 1] (the SNR's noise).
    pub noise: f64,
    /// Samples compared with the reference.
    pub samples: u64,
    /// Frames beyond the reference (should stay zero).
    pub extra: u64,
    scratch: [Vec<f64>; 2],
}

impl Recording {
    /// A recording for the audio substream `desc`, whose sent wire bytes
    /// are `reference`, with room for every frame.
    pub fn new(desc: SubstreamDesc, reference: Bytes) -> Self {
        let frames = desc
            .length
            .map_or(0, |n| n.div_ceil(desc.frame_samples(0).max(1) as u64))
            as usize
            + 16;
        let values = desc.max_frame_samples() * desc.format.channels as usize;
        Self {
            desc,
            reference,
            plays: Vec::with_capacity(frames),
            deadlines: Vec::with_capacity(frames),
            differing: 0,
            noise: 0.0,
            samples: 0,
            extra: 0,
            scratch: [vec![0.0; values], vec![0.0; values]],
        }
    }

    pub fn frame_us(&self) -> u64 {
        self.desc.frame_us as u64
    }

    fn on_frame(&mut self, f: &PlayedFrame<'_>) {
        let now = monotonic().as_micros();
        if self.plays.len() < self.plays.capacity() {
            self.plays.push((f.frame, now));
            self.deadlines.push(f.deadline.as_micros());
        }
        let stride = self.desc.format.stride();
        let start = self.desc.frame_start(f.frame) as usize * stride;
        let Some(sent) = self.reference.get(start..start + f.data.len()) else {
            self.extra += 1;
            return;
        };
        self.samples += (f.data.len() / stride) as u64;
        if sent == &f.data[..] {
            return;
        }
        self.differing += 1;
        let enc = self.desc.format.encoding;
        let [a, b] = &mut self.scratch;
        let n = isochron_codecs::encoding::decode::<f64>(enc, f.data, a);
        isochron_codecs::encoding::decode::<f64>(enc, sent, b);
        self.noise += a[..n]
            .iter()
            .zip(&b[..n])
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f64>();
    }

    /// SNR in dB of what played against what was sent (the formula of
    /// `isochron_codecs::quality::snr_db`): infinite when bit-exact.
    pub fn snr_db(&self) -> f64 {
        let enc = self.desc.format.encoding;
        let stride = self.desc.format.stride();
        let len = (self.samples as usize * stride).min(self.reference.len());
        let mut vals = vec![0.0; len / enc.bytes()];
        isochron_codecs::encoding::decode::<f64>(enc, &self.reference[..len], &mut vals);
        let signal: f64 = vals.iter().map(|v| v * v).sum();
        if self.noise == 0.0 {
            f64::INFINITY
        } else {
            10.0 * (signal / self.noise).log10()
        }
    }
}

/// Recordings waiting for their session, and finished ones, by session name.
#[derive(Default)]
pub struct Recordings {
    waiting: Mutex<HashMap<String, Recording>>,
    done: Mutex<HashMap<String, Recording>>,
}

impl Recordings {
    /// Prepare the recording of the session that will be named `name`.
    pub fn expect(&self, name: &str, rec: Recording) {
        lock(&self.waiting).insert(name.to_owned(), rec);
    }

    /// The sink for an accepted session, if one was expected.
    pub fn sink(self: &Arc<Self>, name: &str) -> Option<BenchSink> {
        let rec = lock(&self.waiting).remove(name)?;
        Some(BenchSink {
            name: name.to_owned(),
            rec: Some(rec),
            back: self.clone(),
        })
    }

    /// The finished recording of session `name`.
    pub fn take(&self, name: &str) -> Option<Recording> {
        lock(&self.done).remove(name)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// See the module documentation.
pub struct BenchSink {
    name: String,
    rec: Option<Recording>,
    back: Arc<Recordings>,
}

impl Sink for BenchSink {
    fn frame(&mut self, f: PlayedFrame<'_>) {
        if f.index == 0
            && let Some(r) = &mut self.rec
        {
            r.on_frame(&f);
        }
    }

    fn end(&mut self, _end: &mut SessionEnd) {
        if let Some(r) = self.rec.take() {
            lock(&self.back.done).insert(std::mem::take(&mut self.name), r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use isochron_codecs::{Encoding, Origin, Rate, StreamFormat};
    use isochron_engine::catalog::MediaKind;

    #[test]
    fn streaming_snr_matches_the_codec_formula() {
        let rate = Rate::hz(48_000).unwrap();
        let format = StreamFormat::new(Encoding::L16, 2, rate).unwrap();
        let desc = SubstreamDesc {
            id: 0,
            name: "a".into(),
            kind: MediaKind::Audio,
            format,
            frame_us: 10_000,
            sample_interleave: 1,
            frames_per_packet: 1,
            origin: Origin::Raw,
            length: Some(4800),
            codec: None,
        };
        let sent = isochron_codecs::signal::music(3, rate, 4800);
        let mut wire = vec![0u8; 4800 * 4];
        isochron_codecs::encoding::encode::<f64>(Encoding::L16, &sent, &mut wire);
        let mut got = wire.clone();
        // Frame 3 comes out silent, frame 7 slightly off.
        got[3 * 1920..4 * 1920].fill(0);
        got[7 * 1920 + 100] ^= 0x40;
        let mut rec = Recording::new(desc, Bytes::from(wire.clone()));
        let mask_words = vec![u64::MAX; 8];
        for n in 0..10u64 {
            let data = &mut got[n as usize * 1920..(n as usize + 1) * 1920];
            rec.on_frame(&PlayedFrame {
                index: 0,
                substream: 0,
                frame: n,
                deadline: isochron_engine::time::Time::ZERO,
                data,
                mask: isochron_codecs::SampleMask::new(&mask_words, 480),
                next: None,
            });
        }
        assert_eq!(rec.differing, 2);
        assert_eq!(rec.samples, 4800);
        let mut a = vec![0.0; 9600];
        let mut b = vec![0.0; 9600];
        isochron_codecs::encoding::decode::<f64>(Encoding::L16, &got, &mut a);
        isochron_codecs::encoding::decode::<f64>(Encoding::L16, &wire, &mut b);
        let want = isochron_codecs::quality::snr_db(&a, &b);
        assert!(
            (rec.snr_db() - want).abs() < 1e-9,
            "{} vs {want}",
            rec.snr_db()
        );
        assert_eq!(rec.plays.len(), 10);
    }
}
