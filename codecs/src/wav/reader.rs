//! Reading a WAV file as wire bytes.

use std::fs::File;
use std::io::{self, BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::riff::{self, Fmt};
use crate::encoding;
use crate::error::{Error, Result};
use crate::format::{Encoding, Origin, Rate, StreamFormat, WavLayout};

type Source = io::Chain<Cursor<Vec<u8>>, io::Take<BufReader<File>>>;

/// A WAV file opened for streaming: its format, where it came from, and its
/// samples as big-endian wire bytes, read in whatever chunks the caller likes.
///
/// The chunk list is checked up front (not a WAV, truncated, unsupported
/// encoding, inconsistent header all fail here, never half-way through a
/// session); hound then decodes the samples.
pub struct WavReader {
    path: PathBuf,
    inner: hound::WavReader<Source>,
    fmt: Fmt,
    format: StreamFormat,
    layout: WavLayout,
    total: u64,
    read: u64,
}

impl std::fmt::Debug for WavReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavReader")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("layout", &self.layout)
            .field("total", &self.total)
            .field("read", &self.read)
            .finish()
    }
}

/// The lossless wire encoding of a WAV sample layout.
pub fn lossless_encoding(bits: u16, float: bool) -> Option<Encoding> {
    match (bits, float) {
        (8, false) => Some(Encoding::U8),
        (16, false) => Some(Encoding::L16),
        (24, false) => Some(Encoding::L24),
        (32, false) => Some(Encoding::L32),
        (32, true) => Some(Encoding::F32),
        _ => None,
    }
}

impl WavReader {
    /// Opens `path` with the lossless wire encoding of its samples
    /// (8-bit: U8, 16: L16, 24: L24, 32-bit integer: L32, float: F32).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, None)
    }

    /// Opens `path` and converts its samples to `encoding` on the wire, e.g.
    /// [`Encoding::MuLaw`] for a lossy 2:1 telephone-quality stream.
    /// Narrowing rounds to nearest and saturates.
    pub fn open_as(path: impl AsRef<Path>, encoding: Encoding) -> Result<Self> {
        Self::open_with(path, Some(encoding))
    }

    fn open_with(path: impl AsRef<Path>, encoding: Option<Encoding>) -> Result<Self> {
        let path = path.as_ref();
        let io = |e| Error::io(path, e);
        let mut file = File::open(path).map_err(io)?;
        let file_len = file.metadata().map_err(io)?.len();
        let scan = riff::scan(path, &mut file, file_len)?;
        let fmt = scan.fmt;
        let native = lossless_encoding(fmt.bits, fmt.float).ok_or_else(|| {
            // riff::scan refuses these already; kept as an error, not a panic.
            Error::UnsupportedWav {
                path: path.into(),
                what: format!("{}-bit samples", fmt.bits),
            }
        })?;
        let format = StreamFormat::new(
            encoding.unwrap_or(native),
            fmt.channels,
            Rate::hz(fmt.rate)?,
        )?;

        // hound gets a canonical header in front of the data chunk, so odd
        // chunk sizes, extra chunks and unusual fmt sizes never reach it.
        file.seek(SeekFrom::Start(scan.data_offset)).map_err(io)?;
        let header = hound_header(&fmt, scan.data_len as u32);
        let source = Cursor::new(header).chain(BufReader::new(file).take(scan.data_len));
        let inner = hound::WavReader::new(source).map_err(|e| Error::MalformedWav {
            path: path.into(),
            what: e.to_string(),
        })?;
        let total = scan.data_len / (fmt.channels as u64 * fmt.bits as u64 / 8);
        Ok(Self {
            path: path.into(),
            inner,
            fmt,
            format,
            layout: WavLayout {
                bits: fmt.bits,
                float: fmt.float,
                channel_mask: fmt.channel_mask,
            },
            total,
            read: 0,
        })
    }

    /// Encoding, channels and rate of the wire bytes this reader produces.
    pub fn format(&self) -> StreamFormat {
        self.format
    }

    /// The file's own sample layout, for writing it back the same way.
    pub fn layout(&self) -> &WavLayout {
        &self.layout
    }

    /// [`Origin::Wav`] with this file's layout, for the session catalog.
    pub fn origin(&self) -> Origin {
        Origin::Wav(self.layout.clone())
    }

    /// Samples (all channels at one instant) in the file.
    pub fn total_samples(&self) -> u64 {
        self.total
    }

    /// Samples not read yet.
    pub fn remaining(&self) -> u64 {
        self.total - self.read
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads as many whole samples as fit in `out` (and remain), as wire
    /// bytes; returns how many samples were read, 0 at the end of the file.
    /// Does not allocate.
    pub fn read(&mut self, out: &mut [u8]) -> Result<usize> {
        let stride = self.format.stride();
        let n = ((out.len() / stride) as u64).min(self.remaining()) as usize;
        let wire = self.format.encoding;
        let w = wire.bytes();
        let native = lossless_encoding(self.fmt.bits, self.fmt.float).unwrap_or(wire);
        let values = n * self.format.channels as usize;
        let shift = 32 - self.fmt.bits as u32;
        let ended = || {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file ended before its data chunk did (was it truncated while open?)",
            )
        };
        let path = &self.path;
        let hound_err = |e: hound::Error| match e {
            hound::Error::IoError(source) => Error::io(path, source),
            other => Error::MalformedWav {
                path: path.clone(),
                what: other.to_string(),
            },
        };
        let slots = out[..values * w].chunks_exact_mut(w);
        if self.fmt.float {
            let mut samples = self.inner.samples::<f32>();
            for slot in slots {
                let v = samples
                    .next()
                    .ok_or_else(|| Error::io(path, ended()))?
                    .map_err(hound_err)?;
                if wire == Encoding::F32 {
                    slot.copy_from_slice(&v.to_bits().to_be_bytes());
                } else {
                    encoding::encode(wire, &[v], slot);
                }
            }
        } else {
            let mut samples = self.inner.samples::<i32>();
            for slot in slots {
                let v = samples
                    .next()
                    .ok_or_else(|| Error::io(path, ended()))?
                    .map_err(hound_err)?;
                if wire == native {
                    encoding::encode_native(wire, &[v], slot);
                } else {
                    encoding::encode(wire, &[v << shift], slot);
                }
            }
        }
        self.read += n as u64;
        Ok(n)
    }
}

/// A minimal RIFF/WAVE header (16-byte fmt, data chunk of `data_len`).
fn hound_header(fmt: &Fmt, data_len: u32) -> Vec<u8> {
    let align = fmt.channels as u32 * fmt.bits as u32 / 8;
    let tag: u16 = if fmt.float { 3 } else { 1 };
    let mut h = Vec::with_capacity(44);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&(36u32.saturating_add(data_len)).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&tag.to_le_bytes());
    h.extend_from_slice(&fmt.channels.to_le_bytes());
    h.extend_from_slice(&fmt.rate.to_le_bytes());
    h.extend_from_slice(&fmt.rate.saturating_mul(align).to_le_bytes());
    h.extend_from_slice(&(align as u16).to_le_bytes());
    h.extend_from_slice(&fmt.bits.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data_len.to_le_bytes());
    h
}
