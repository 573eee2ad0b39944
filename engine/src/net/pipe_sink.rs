//! One substream to a byte stream (standard output, a pipe) at its playout
//! instants: raw little-endian PCM, or a WAV stream whose sizes say "until
//! the end", so `isochron recv --stdout | aplay` plays it.
//!
//! A writer thread does the writing; the playout hands it each frame
//! through a bounded queue of pooled buffers, so a reader that stalls never
//! stalls the playout. Frames it has no room for (the reader is more than
//! about two seconds behind) are dropped and counted; a reader that goes
//! away (broken pipe) ends the writing, reported at the session's end.

use std::io::Write;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel as cb;
use crossbeam_queue::ArrayQueue;
use isochron_codecs::encoding::transcode;
use isochron_codecs::wav::WavWriter;
use isochron_codecs::{Encoding, Origin, WavLayout};

use super::sink::{SessionEnd, Sink, output_origin};
use crate::catalog::{MediaKind, SubstreamDesc};
use crate::pipe::swap_endian;
use crate::playout::PlayedFrame;
use crate::wire::control::SessionDesc;

/// What the byte stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PipeOutput {
    /// A WAV header (sizes 0xFFFFFFFF), then the samples.
    #[default]
    Wav,
    /// Bare little-endian samples (s16le, s24le, s32le, f32le or u8).
    Raw,
}

/// Why a substream cannot go to the pipe.
#[derive(Debug, thiserror::Error)]
pub enum PipeSinkError {
    /// No substream of that name in the session.
    #[error("no substream named '{name}' in this stream (it has: {have})")]
    NoSuchSubstream {
        /// The name asked for.
        name: String,
        /// The names the catalog has.
        have: String,
    },
    /// Sensor substreams are not PCM.
    #[error(
        "substream '{0}' is a sensor track: only audio goes to a pipe (pick one with --substream, or write files with --out)"
    )]
    NotAudio(String),
    /// The header cannot describe this stream.
    #[error(transparent)]
    Codec(#[from] isochron_codecs::Error),
    /// The writer thread could not start.
    #[error("starting the output writer: {0}")]
    Io(#[from] std::io::Error),
}

/// The substream of `session` named `name`, or the first audio one.
pub fn pick_substream(session: &SessionDesc, name: Option<&str>) -> Result<usize, PipeSinkError> {
    let subs = &session.substreams;
    let i =
        match name {
            Some(n) => subs.iter().position(|d| d.name == n).ok_or_else(|| {
                PipeSinkError::NoSuchSubstream {
                    name: n.to_owned(),
                    have: subs
                        .iter()
                        .map(|d| d.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                }
            })?,
            None => subs
                .iter()
                .position(|d| d.kind == MediaKind::Audio)
                .unwrap_or(0),
        };
    match subs.get(i) {
        Some(d) if d.kind == MediaKind::Audio => Ok(i),
        Some(d) => Err(PipeSinkError::NotAudio(d.name.clone())),
        None => Err(PipeSinkError::NotAudio("(none)".into())),
    }
}

/// The encoding raw samples of `d` are written in: its origin's (the
/// sender's file), so bytes come out as they went in.
pub fn raw_encoding(d: &SubstreamDesc) -> Encoding {
    let layout = match output_origin(d) {
        Origin::Wav(l) => l,
        _ => WavLayout::for_encoding(d.format.encoding),
    };
    layout.lossless_encoding().unwrap_or(Encoding::L16)
}

struct Pending {
    data: Vec<u8>,
}

/// The writer thread's output: a WAV stream, or bare samples.
enum Out {
    Wav(WavWriter),
    Raw {
        out: Box<dyn Write + Send>,
        wire: Encoding,
        enc: Encoding,
        scratch: Vec<u8>,
    },
}

impl Out {
    fn write(&mut self, data: &[u8]) -> Result<(), String> {
        match self {
            Out::Wav(w) => w
                .write(data)
                .and_then(|_| w.flush())
                .map_err(|e| e.to_string()),
            Out::Raw {
                out,
                wire,
                enc,
                scratch,
            } => {
                let bytes = if wire == enc {
                    scratch.clear();
                    scratch.extend_from_slice(data);
                    &mut scratch[..]
                } else {
                    scratch.resize(data.len() / wire.bytes() * enc.bytes(), 0);
                    transcode(*wire, data, *enc, scratch);
                    &mut scratch[..]
                };
                swap_endian(*enc, bytes);
                // Each frame reaches the reader at its instant, not when a
                // buffer happens to fill.
                out.write_all(bytes)
                    .and_then(|_| out.flush())
                    .map_err(|e| e.to_string())
            }
        }
    }
}

/// Writes one substream of a session to a byte stream; the others are
/// played (and counted) but not written.
pub struct PipeSink {
    index: usize,
    tx: Option<cb::Sender<Pending>>,
    pool: Arc<ArrayQueue<Pending>>,
    thread: Option<JoinHandle<(u64, Option<String>)>>,
    /// Frames dropped because the reader fell behind by the whole queue.
    pub dropped: u64,
}

impl PipeSink {
    /// Start writing substream `index` of `session` to `out` as `kind`.
    pub fn new<W: Write + Send + 'static>(
        out: W,
        session: &SessionDesc,
        index: usize,
        kind: PipeOutput,
    ) -> Result<PipeSink, PipeSinkError> {
        let d = &session.substreams[index];
        let out = match kind {
            PipeOutput::Wav => Out::Wav(WavWriter::to_stream(
                out,
                "<stdout>",
                d.format,
                &output_origin(d),
            )?),
            PipeOutput::Raw => Out::Raw {
                out: Box::new(out),
                wire: d.format.encoding,
                enc: raw_encoding(d),
                scratch: Vec::with_capacity(d.max_frame_samples() * d.format.stride() * 2),
            },
        };
        let depth = (2_000_000 / d.frame_us.max(1) as usize).clamp(16, 4096);
        let cap = d.max_frame_bytes();
        let pool = Arc::new(ArrayQueue::new(depth + 2));
        for _ in 0..depth {
            let _ = pool.push(Pending {
                data: Vec::with_capacity(cap),
            });
        }
        let (tx, rx) = cb::bounded::<Pending>(depth);
        let back = pool.clone();
        let thread = std::thread::Builder::new()
            .name("isochron-pipe-out".into())
            .spawn(move || write_loop(out, rx, back))?;
        Ok(PipeSink {
            index,
            tx: Some(tx),
            pool,
            thread: Some(thread),
            dropped: 0,
        })
    }
}

fn write_loop(
    mut out: Out,
    rx: cb::Receiver<Pending>,
    pool: Arc<ArrayQueue<Pending>>,
) -> (u64, Option<String>) {
    let mut written = 0u64;
    let mut error = None;
    for p in rx {
        if error.is_none() {
            match out.write(&p.data) {
                Ok(()) => written += p.data.len() as u64,
                Err(e) => error = Some(e),
            }
        }
        let _ = pool.push(p);
    }
    if let Out::Wav(w) = out
        && error.is_none()
        && let Err(e) = w.finish()
    {
        error = Some(e.to_string());
    }
    (written, error)
}

impl Sink for PipeSink {
    fn frame(&mut self, f: PlayedFrame<'_>) {
        if f.index != self.index {
            return;
        }
        let Some(tx) = &self.tx else { return };
        let Some(mut p) = self.pool.pop() else {
            self.dropped += 1;
            return;
        };
        p.data.clear();
        p.data.extend_from_slice(f.data);
        if let Err(cb::TrySendError::Full(p)) = tx.try_send(p) {
            self.dropped += 1;
            let _ = self.pool.push(p);
        }
    }

    fn end(&mut self, end: &mut SessionEnd) {
        self.tx = None;
        if self.dropped > 0 {
            end.errors.push(format!(
                "the reader of the output fell more than two seconds behind: {} frames dropped",
                self.dropped
            ));
        }
        if let Some(t) = self.thread.take() {
            match t.join() {
                Ok((_, Some(e))) => end.errors.push(format!("writing the output: {e}")),
                Ok(_) => {}
                Err(_) => end.errors.push("the output writer thread panicked".into()),
            }
        }
    }
}

impl Drop for PipeSink {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::tests::stereo48k;
    use crate::time::Time;
    use crate::wire::control::{FecParams, Mode};
    use isochron_codecs::SampleMask;
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn frames_come_out_little_endian_after_a_streaming_header() {
        let session = SessionDesc {
            name: "t".into(),
            mode: Mode::Live,
            speed: 1.0,
            fec: FecParams::OFF,
            substreams: vec![stereo48k(0, 10_000)],
            recovery: Default::default(),
        };
        assert_eq!(pick_substream(&session, None).unwrap(), 0);
        assert!(
            pick_substream(&session, Some("nope"))
                .unwrap_err()
                .to_string()
                .contains("no substream named 'nope'")
        );
        for kind in [PipeOutput::Wav, PipeOutput::Raw] {
            let out = Shared::default();
            let mut sink = PipeSink::new(out.clone(), &session, 0, kind).unwrap();
            let mut data = vec![0x12, 0x34, 0x56, 0x78];
            let words = [u64::MAX];
            sink.frame(PlayedFrame {
                index: 0,
                substream: 0,
                frame: 0,
                deadline: Time::ZERO,
                data: &mut data,
                mask: SampleMask::new(&words, 1),
                next: None,
            });
            let mut end = SessionEnd::default();
            sink.end(&mut end);
            assert!(end.errors.is_empty(), "{:?}", end.errors);
            let got = out.0.lock().unwrap().clone();
            let body = match kind {
                PipeOutput::Wav => {
                    assert_eq!(&got[..4], b"RIFF");
                    &got[44..]
                }
                PipeOutput::Raw => &got[..],
            };
            assert_eq!(body, [0x34, 0x12, 0x78, 0x56]);
        }
    }
}
