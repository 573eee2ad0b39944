//! Writing wire bytes to a WAV file that is valid at every moment.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::header::{self, FileLayout};
use super::reader::lossless_encoding;
use super::relocate::Relocate;
use crate::encoding;
use crate::error::{Error, Result};
use crate::format::{Encoding, Origin, StreamFormat};

type Sink = hound::WavWriter<Relocate<BufWriter<File>>>;

/// Channel samples converted per pass through the scratch buffer.
const CHUNK: usize = 4096;

/// Writes a substream's wire bytes to a WAV file, incrementally.
///
/// The file is valid from the moment it is created: the header starts out
/// describing an empty data chunk, and the sizes are brought up to date at
/// least once per second of audio (and on [`flush`](Self::flush)), after the
/// samples they count are written. A crash or a kill mid-stream therefore
/// leaves a readable file holding everything up to the last update; a
/// normal end ([`finish`](Self::finish)) or a drop (session error, Ctrl-C
/// unwinding, a forgotten `finish`) makes it complete.
///
/// The file layout follows the stream's [`Origin`]: a WAV origin whose
/// layout matches the wire encoding is reproduced exactly (bits, float,
/// plain or WAVE_FORMAT_EXTENSIBLE with the same channel mask); a lossy or
/// converted stream is written in the nearest lossless WAV layout (G.711 as
/// 16-bit PCM, F64 and scaled integers as 32-bit float), keeping the channel
/// mask.
pub struct WavWriter {
    sink: Option<Sink>,
    path: PathBuf,
    format: StreamFormat,
    layout: FileLayout,
    file_encoding: Encoding,
    scratch: Vec<u8>,
    values: Vec<i32>,
    written: u64,
    unflushed: u64,
    flush_every: u64,
    max_samples: u64,
    header_len: u64,
}

impl std::fmt::Debug for WavWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavWriter")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("layout", &self.layout)
            .field("written", &self.written)
            .finish()
    }
}

/// The file layout for a stream (see [`WavWriter`]).
fn file_layout(path: &Path, format: &StreamFormat, origin: &Origin) -> Result<FileLayout> {
    let rate = format.rate;
    if rate.den() != 1 {
        return Err(Error::Unwritable {
            path: path.into(),
            what: format!(
                "WAV needs a whole number of hertz, the stream runs at {}/{} Hz",
                rate.num(),
                rate.den()
            ),
        });
    }
    let (bits, float) = match format.encoding {
        Encoding::U8 => (8, false),
        Encoding::L16 | Encoding::MuLaw | Encoding::ALaw => (16, false),
        Encoding::L24 => (24, false),
        Encoding::L32 => (32, false),
        Encoding::F32 | Encoding::F64 | Encoding::Scaled16 { .. } | Encoding::Scaled32 { .. } => {
            (32, true)
        }
    };
    let (bits, float, channel_mask) = match origin {
        Origin::Wav(l) if lossless_encoding(l.bits, l.float) == Some(format.encoding) => {
            (l.bits, l.float, l.channel_mask)
        }
        Origin::Wav(l) => (bits, float, l.channel_mask),
        // Microsoft asks for WAVE_FORMAT_EXTENSIBLE beyond stereo or 16-bit PCM.
        _ if format.channels > 2 || (bits > 16 && !float) => (
            bits,
            float,
            Some(header::default_channel_mask(format.channels)),
        ),
        _ => (bits, float, None),
    };
    if (format.channels as u32) * (bits as u32 / 8) > u16::MAX as u32 {
        return Err(Error::Unwritable {
            path: path.into(),
            what: format!(
                "{} channels of {bits} bits exceed a WAV block",
                format.channels
            ),
        });
    }
    Ok(FileLayout {
        channels: format.channels,
        rate: rate.num(),
        bits,
        float,
        channel_mask,
    })
}

impl WavWriter {
    /// Creates (or truncates) `path` for a stream of `format` that came from
    /// `origin`.
    pub fn create(path: impl AsRef<Path>, format: StreamFormat, origin: &Origin) -> Result<Self> {
        let path = path.as_ref();
        let layout = file_layout(path, &format, origin)?;
        let header = header::build(&layout);
        let file = File::create(path).map_err(|e| Error::io(path, e))?;
        // hound's header is 68 bytes when it picks WAVE_FORMAT_EXTENSIBLE.
        let hound_len = if layout.channels > 2 || layout.bits > 16 {
            68
        } else {
            44
        };
        let relocate = Relocate::new(BufWriter::new(file), &header, hound_len)
            .map_err(|e| Error::io(path, e))?;
        let spec = hound::WavSpec {
            channels: layout.channels,
            sample_rate: layout.rate,
            bits_per_sample: layout.bits,
            sample_format: if layout.float {
                hound::SampleFormat::Float
            } else {
                hound::SampleFormat::Int
            },
        };
        let mut sink = hound::WavWriter::new(relocate, spec).map_err(|e| hound_error(path, e))?;
        // Make the empty file's header durable before the first sample.
        sink.flush().map_err(|e| hound_error(path, e))?;
        let block = layout.block_align() as u64;
        let file_encoding = lossless_encoding(layout.bits, layout.float).unwrap_or(Encoding::F32);
        Ok(Self {
            sink: Some(sink),
            path: path.into(),
            format,
            layout,
            file_encoding,
            scratch: vec![0; CHUNK * file_encoding.bytes()],
            values: vec![0; CHUNK],
            written: 0,
            unflushed: 0,
            flush_every: layout.rate.max(1) as u64,
            // The RIFF size field (u32) counts everything after its first 8
            // bytes, and a pad byte may follow odd-sized data.
            max_samples: (u32::MAX as u64 - header.len() as u64 - 1) / block,
            header_len: header.len() as u64,
        })
    }

    /// Encoding, channels and rate of the wire bytes this writer takes.
    pub fn format(&self) -> StreamFormat {
        self.format
    }

    /// Samples written so far.
    pub fn samples_written(&self) -> u64 {
        self.written
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends whole samples given as wire bytes.
    pub fn write(&mut self, wire: &[u8]) -> Result<()> {
        let stride = self.format.stride();
        if wire.len() % stride != 0 {
            return Err(Error::Ragged {
                len: wire.len(),
                stride,
            });
        }
        let samples = (wire.len() / stride) as u64;
        let room = self.max_samples - self.written;
        let fits = samples.min(room) as usize;
        self.write_samples(&wire[..fits * stride])?;
        if fits as u64 != samples {
            return Err(Error::Unwritable {
                path: self.path.clone(),
                what: format!(
                    "a WAV file ends at 4 GiB: {} samples were written, the rest is dropped",
                    self.written
                ),
            });
        }
        Ok(())
    }

    fn write_samples(&mut self, wire: &[u8]) -> Result<()> {
        let Some(sink) = self.sink.as_mut() else {
            return Err(Error::Unwritable {
                path: self.path.clone(),
                what: "the writer has already failed".into(),
            });
        };
        let wire_enc = self.format.encoding;
        let (ww, fw) = (wire_enc.bytes(), self.file_encoding.bytes());
        let path = &self.path;
        for chunk in wire.chunks(CHUNK * ww) {
            let n = encoding::transcode(wire_enc, chunk, self.file_encoding, &mut self.scratch);
            let bytes = &self.scratch[..n * fw];
            if self.layout.float {
                for b in bytes.chunks_exact(4) {
                    let v = f32::from_bits(u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                    sink.write_sample(v).map_err(|e| hound_error(path, e))?;
                }
            } else {
                let n = encoding::decode_native(self.file_encoding, bytes, &mut self.values);
                for &v in &self.values[..n] {
                    sink.write_sample(v).map_err(|e| hound_error(path, e))?;
                }
            }
        }
        let samples = (wire.len() / self.format.stride()) as u64;
        self.written += samples;
        self.unflushed += samples;
        if self.unflushed >= self.flush_every {
            self.flush()?;
        }
        Ok(())
    }

    /// Brings the header sizes up to date and pushes everything to the file.
    pub fn flush(&mut self) -> Result<()> {
        if let Some(sink) = self.sink.as_mut() {
            sink.flush().map_err(|e| hound_error(&self.path, e))?;
        }
        self.unflushed = 0;
        Ok(())
    }

    /// Completes the file; returns the samples written.
    pub fn finish(mut self) -> Result<u64> {
        self.complete()?;
        Ok(self.written)
    }

    /// Final sizes, then the pad byte RIFF wants after odd-sized data (8-bit
    /// mono or 3-channel with an odd sample count), counted in the RIFF size.
    fn complete(&mut self) -> Result<()> {
        let Some(sink) = self.sink.take() else {
            return Ok(());
        };
        sink.finalize().map_err(|e| hound_error(&self.path, e))?;
        let data = self.written * self.layout.block_align() as u64;
        if data % 2 == 1 {
            let io = |e| Error::io(&self.path, e);
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .open(&self.path)
                .map_err(io)?;
            file.seek(SeekFrom::Start(self.header_len + data))
                .map_err(io)?;
            file.write_all(&[0]).map_err(io)?;
            let riff = (self.header_len - 8 + data + 1) as u32;
            file.seek(SeekFrom::Start(4)).map_err(io)?;
            file.write_all(&riff.to_le_bytes()).map_err(io)?;
        }
        Ok(())
    }
}

impl Drop for WavWriter {
    fn drop(&mut self) {
        // Nobody to report to here: the file is as complete as it can be.
        let _ = self.complete();
    }
}

fn hound_error(path: &Path, e: hound::Error) -> Error {
    match e {
        hound::Error::IoError(source) => Error::io(path, source),
        other => Error::Unwritable {
            path: path.into(),
            what: other.to_string(),
        },
    }
}
