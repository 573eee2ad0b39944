//! Reading a WAV file or stream as wire bytes.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::input::Input;
use super::riff::{self, Scan};
use super::samples::swap_in_place;
use crate::encoding;
use crate::error::{Error, Result};
use crate::format::{Encoding, Origin, Rate, StreamFormat, WavLayout};

/// A WAV file or stream opened for streaming: its format, where it came
/// from, and its samples as big-endian wire bytes, read in whatever chunks
/// the caller likes.
///
/// The header is checked up front (not a WAV, truncated, unsupported
/// encoding, inconsistent header all fail here, never half-way through a
/// session). A file's length is known; a stream ([`WavReader::from_reader`],
/// e.g. a pipe) may declare sizes of 0 or 0xFFFFFFFF and then runs until
/// its end.
pub struct WavReader {
    path: PathBuf,
    input: Input,
    scan: Scan,
    format: StreamFormat,
    /// The lossless wire encoding of the file's samples.
    native: Encoding,
    /// Whether the input is a file (read fully) or a stream (return what
    /// has come).
    file: bool,
    read: u64,
    /// Little-endian bytes from the input, a partial sample carried over.
    raw: Vec<u8>,
    carry: usize,
    ended: bool,
    ended_early: bool,
    partial_tail: u64,
}

impl std::fmt::Debug for WavReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavReader")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("layout", &self.scan.fmt.layout)
            .field("length", &self.length())
            .field("read", &self.read)
            .finish()
    }
}

impl WavReader {
    /// Opens `path` with the lossless wire encoding of its samples: the
    /// whole container (8-bit: U8, 16: L16, 24: L24, 32-bit integer: L32,
    /// float: F32/F64, A-law and mu-law as they are).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path.as_ref(), None)
    }

    /// Opens `path` and converts its samples to `encoding` on the wire, e.g.
    /// [`Encoding::MuLaw`] for a lossy 2:1 telephone-quality stream.
    /// Narrowing rounds to nearest and saturates.
    pub fn open_as(path: impl AsRef<Path>, encoding: Encoding) -> Result<Self> {
        Self::open_with(path.as_ref(), Some(encoding))
    }

    /// Reads a WAV stream (a pipe, a socket: anything read front to back,
    /// of unknown length), naming it `name` in errors. Streaming writers
    /// that cannot go back to fix the sizes write 0 or 0xFFFFFFFF: the
    /// samples then run until the stream ends. `encoding`: as in
    /// [`open_as`](Self::open_as); `None` for the lossless one.
    pub fn from_reader<R: Read + Send + 'static>(
        reader: R,
        name: impl Into<PathBuf>,
        encoding: Option<Encoding>,
    ) -> Result<Self> {
        let name = name.into();
        let mut input = Input::stream(Box::new(reader));
        let scan = riff::scan(&name, &mut input, None)?;
        Self::new(name, input, scan, encoding, false)
    }

    fn open_with(path: &Path, encoding: Option<Encoding>) -> Result<Self> {
        let io = |e| Error::io(path, e);
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut input = Input::file(file);
        let scan = riff::scan(path, &mut input, Some(len))?;
        Self::new(path.into(), input, scan, encoding, true)
    }

    fn new(
        path: PathBuf,
        input: Input,
        scan: Scan,
        encoding: Option<Encoding>,
        file: bool,
    ) -> Result<Self> {
        let layout = &scan.fmt.layout;
        let native = layout
            .lossless_encoding()
            .ok_or_else(|| Error::UnsupportedWav {
                // fmt::parse refuses these already; kept as an error, not a panic.
                path: path.clone(),
                what: format!("{}-bit containers", layout.container_bits),
            })?;
        let format = StreamFormat::new(
            encoding.unwrap_or(native),
            scan.fmt.channels,
            Rate::hz(scan.fmt.rate)?,
        )?;
        Ok(Self {
            partial_tail: scan.partial_tail,
            path,
            input,
            scan,
            format,
            native,
            file,
            read: 0,
            raw: Vec::new(),
            carry: 0,
            ended: false,
            ended_early: false,
        })
    }

    /// Encoding, channels and rate of the wire bytes this reader produces.
    pub fn format(&self) -> StreamFormat {
        self.format
    }

    /// The file's own sample layout, for writing it back the same way.
    pub fn layout(&self) -> &WavLayout {
        &self.scan.fmt.layout
    }

    /// [`Origin::Wav`] with this file's layout, for the session catalog.
    pub fn origin(&self) -> Origin {
        Origin::Wav(self.scan.fmt.layout.clone())
    }

    /// Samples (all channels at one instant) in the file, when known: always
    /// for files, for streams only when the header gave a real size.
    pub fn length(&self) -> Option<u64> {
        self.scan.data_len.map(|d| d / self.scan.fmt.block_align())
    }

    /// Samples in the file; for a stream of unknown length, the samples read
    /// so far (the total once [`read`](Self::read) has returned 0).
    pub fn total_samples(&self) -> u64 {
        match self.length() {
            Some(n) if !self.ended_early => n,
            _ => self.read,
        }
    }

    /// Samples not read yet, when the length is known.
    pub fn remaining(&self) -> Option<u64> {
        self.length().map(|n| n.saturating_sub(self.read))
    }

    /// Samples read so far.
    pub fn samples_read(&self) -> u64 {
        self.read
    }

    /// A stream ended before the size its header declared (the writer was
    /// stopped); everything that came was read.
    pub fn ended_early(&self) -> bool {
        self.ended_early
    }

    /// Bytes of an incomplete last sample that were dropped (a writer
    /// stopped mid-sample).
    pub fn partial_tail(&self) -> u64 {
        self.partial_tail
    }

    /// The file or stream being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads as many whole samples as fit in `out` (and remain), as wire
    /// bytes; returns how many samples were read, 0 at the end. A file is
    /// read until `out` is full; a stream returns what has come as soon as
    /// it holds a whole sample. Allocates only when asked for more samples
    /// than ever before.
    pub fn read(&mut self, out: &mut [u8]) -> Result<usize> {
        let stride = self.format.stride();
        let block = self.scan.fmt.block_align() as usize;
        let mut want = out.len() / stride;
        if let Some(left) = self.remaining() {
            want = want.min(left as usize);
        }
        if want == 0 || self.ended {
            return Ok(0);
        }
        let need = want * block;
        if self.raw.len() < need.max(block) {
            self.raw.resize(need.max(block), 0);
        }
        let mut have = self.carry;
        while have < need {
            let n = match self.input.read(&mut self.raw[have..need]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io(&self.path, e)),
            };
            if n == 0 {
                self.ended = true;
                break;
            }
            have += n;
            if !self.file && have >= block {
                break;
            }
        }
        let n = have / block;
        let tail = have % block;
        if self.ended {
            if self.remaining().is_some_and(|r| r > n as u64) {
                if self.file {
                    return Err(Error::io(
                        &self.path,
                        io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the file ended before its data chunk did (was it truncated while open?)",
                        ),
                    ));
                }
                self.ended_early = true;
            }
            self.partial_tail += tail as u64;
        }
        let bytes = &mut self.raw[..n * block];
        let width = self.native.bytes();
        swap_in_place(width, bytes);
        if self.format.encoding == self.native {
            out[..bytes.len()].copy_from_slice(bytes);
        } else {
            encoding::transcode(self.native, bytes, self.format.encoding, out);
        }
        // Keep the incomplete sample for the next read.
        self.raw.copy_within(n * block..have, 0);
        self.carry = if self.ended { 0 } else { tail };
        self.read += n as u64;
        Ok(n)
    }
}
