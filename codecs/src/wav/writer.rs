//! Writing wire bytes to a WAV file that is valid at every moment.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::fmt::default_channel_mask;
use super::header::Header;
use super::samples::swap_in_place;
use crate::encoding;
use crate::error::{Error, Result};
use crate::format::{Encoding, Origin, RiffKind, StreamFormat, WavCoding, WavLayout};

/// Channel samples converted per pass through the scratch buffer.
const CHUNK: usize = 4096;

enum Out {
    File(BufWriter<File>),
    Stream(Box<dyn Write + Send>),
}

impl Out {
    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Out::File(f) => f.write_all(b),
            Out::Stream(s) => s.write_all(b),
        }
    }
}

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
/// The file layout follows the stream's [`Origin`]: a WAV origin is
/// reproduced exactly (coding, container and valid bits, plain or
/// WAVE_FORMAT_EXTENSIBLE with the same channel mask, RIFF or RF64, the
/// `fact` chunk), converting the wire encoding back if it differs; other
/// streams are written in the layout that holds their encoding losslessly
/// (G.711 as G.711). Files that outgrow 4 GiB become RF64 unless the
/// expected length said they would not (see [`create_sized`](Self::create_sized)).
pub struct WavWriter {
    out: Option<Out>,
    path: PathBuf,
    format: StreamFormat,
    layout: WavLayout,
    header: Header,
    file_encoding: Encoding,
    scratch: Vec<u8>,
    written: u64,
    unflushed: u64,
    flush_every: u64,
    /// Bytes a RIFF size may count (u32::MAX; lower in tests).
    riff_limit: u64,
    failed: bool,
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
pub(crate) fn file_layout(
    path: &Path,
    format: &StreamFormat,
    origin: &Origin,
) -> Result<WavLayout> {
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
    let layout = match origin {
        Origin::Wav(l) if l.lossless_encoding().is_some() => l.clone(),
        _ => {
            let l = WavLayout::for_encoding(format.encoding);
            // Microsoft asks for WAVE_FORMAT_EXTENSIBLE beyond stereo or 16-bit PCM.
            if format.channels > 2 || (l.container_bits > 16 && l.coding == WavCoding::Pcm) {
                l.with_channel_mask(default_channel_mask(format.channels))
            } else {
                l
            }
        }
    };
    if format.channels as usize * layout.container_bytes() > u16::MAX as usize {
        return Err(Error::Unwritable {
            path: path.into(),
            what: format!(
                "{} channels of {} bits exceed a WAV block",
                format.channels, layout.container_bits
            ),
        });
    }
    Ok(layout)
}

impl WavWriter {
    /// Creates (or truncates) `path` for a stream of `format` that came from
    /// `origin`, of unknown length: room is reserved to become RF64.
    pub fn create(path: impl AsRef<Path>, format: StreamFormat, origin: &Origin) -> Result<Self> {
        Self::create_sized(path, format, origin, None)
    }

    /// Like [`create`](Self::create), for a stream expected to hold
    /// `samples` samples: a file that will fit RIFF's 4 GiB gets a plain
    /// header (no reserved chunk), so a plain file comes back byte for byte.
    pub fn create_sized(
        path: impl AsRef<Path>,
        format: StreamFormat,
        origin: &Origin,
        samples: Option<u64>,
    ) -> Result<Self> {
        let path = path.as_ref();
        let layout = file_layout(path, &format, origin)?;
        let block = format.channels as u64 * layout.container_bytes() as u64;
        // A little slack: a length hint can be off by a frame.
        let fits = samples.is_some_and(|n| {
            n.saturating_add(format.rate.num() as u64)
                .saturating_mul(block)
                .saturating_add(1024)
                < u32::MAX as u64
        });
        let header = Header::build(format.channels, format.rate.num(), &layout, !fits);
        let file = File::create(path).map_err(|e| Error::io(path, e))?;
        let mut w = Self::new(
            Out::File(BufWriter::new(file)),
            path,
            format,
            layout,
            header,
        );
        w.start()?;
        Ok(w)
    }

    /// Writes a WAV stream to `out` (a pipe: nothing is ever rewritten), with
    /// the 0xFFFFFFFF sizes streaming writers use for "until the end".
    /// `name` is for errors.
    pub fn to_stream<W: Write + Send + 'static>(
        out: W,
        name: impl Into<PathBuf>,
        format: StreamFormat,
        origin: &Origin,
    ) -> Result<Self> {
        let name = name.into();
        let layout = file_layout(&name, &format, origin)?;
        let mut header = Header::build(format.channels, format.rate.num(), &layout, false);
        header.stream_sizes();
        let mut w = Self::new(Out::Stream(Box::new(out)), &name, format, layout, header);
        w.start()?;
        Ok(w)
    }

    fn new(out: Out, path: &Path, format: StreamFormat, layout: WavLayout, header: Header) -> Self {
        let file_encoding = layout.lossless_encoding().unwrap_or(Encoding::F32);
        Self {
            out: Some(out),
            path: path.into(),
            format,
            header,
            file_encoding,
            scratch: vec![0; CHUNK * file_encoding.bytes()],
            written: 0,
            unflushed: 0,
            flush_every: format.rate.num().max(1) as u64,
            riff_limit: u32::MAX as u64,
            failed: false,
            layout,
        }
    }

    /// Writes the header (and makes the empty file durable).
    fn start(&mut self) -> Result<()> {
        let bytes = self.header.bytes.clone();
        self.io(|out| out.write_all(&bytes))?;
        self.flush()
    }

    #[doc(hidden)]
    /// Lowers the 4 GiB RIFF limit, so tests can watch the RF64 switch
    /// without writing gigabytes.
    pub fn set_riff_limit_for_tests(&mut self, bytes: u64) {
        self.riff_limit = bytes.min(u32::MAX as u64);
    }

    /// Encoding, channels and rate of the wire bytes this writer takes.
    pub fn format(&self) -> StreamFormat {
        self.format
    }

    /// The layout being written.
    pub fn layout(&self) -> &WavLayout {
        &self.layout
    }

    /// RIFF, or RF64 once the file outgrew 4 GiB.
    pub fn riff_kind(&self) -> RiffKind {
        self.header.kind()
    }

    /// Samples written so far.
    pub fn samples_written(&self) -> u64 {
        self.written
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn block(&self) -> u64 {
        self.format.channels as u64 * self.layout.container_bytes() as u64
    }

    fn io(&mut self, f: impl FnOnce(&mut Out) -> std::io::Result<()>) -> Result<()> {
        let Some(out) = self.out.as_mut().filter(|_| !self.failed) else {
            return Err(Error::Unwritable {
                path: self.path.clone(),
                what: "the writer has already failed".into(),
            });
        };
        f(out).map_err(|e| {
            self.failed = true;
            Error::io(&self.path, e)
        })
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
        let room =
            (self.header.max_data(self.riff_limit) / self.block()).saturating_sub(self.written);
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
        let wire_enc = self.format.encoding;
        let (ww, fw) = (wire_enc.bytes(), self.file_encoding.bytes());
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut result = Ok(());
        for chunk in wire.chunks(CHUNK * ww) {
            let n = encoding::transcode(wire_enc, chunk, self.file_encoding, &mut scratch);
            let bytes = &mut scratch[..n * fw];
            swap_in_place(fw, bytes);
            result = self.io(|out| out.write_all(bytes));
            if result.is_err() {
                break;
            }
        }
        self.scratch = scratch;
        result?;
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
        self.update_sizes(0)?;
        self.unflushed = 0;
        Ok(())
    }

    /// Writes the sizes (data followed by `pad` bytes) into the header,
    /// after the samples they count.
    fn update_sizes(&mut self, pad: u64) -> Result<()> {
        let data = self.written * self.block();
        let patches = self
            .header
            .sizes_within(data, self.written, pad, self.riff_limit);
        self.io(|out| match out {
            Out::Stream(s) => s.flush(),
            Out::File(f) => {
                f.flush()?;
                let file = f.get_mut();
                for (at, bytes) in &patches {
                    file.seek(SeekFrom::Start(*at as u64))?;
                    file.write_all(bytes)?;
                }
                file.seek(SeekFrom::End(0))?;
                Ok(())
            }
        })
    }

    /// Completes the file; returns the samples written.
    pub fn finish(mut self) -> Result<u64> {
        self.complete()?;
        Ok(self.written)
    }

    /// Final sizes, then the pad byte RIFF wants after odd-sized data (8-bit
    /// mono or 3-channel with an odd sample count), counted in the RIFF size.
    fn complete(&mut self) -> Result<()> {
        if self.out.is_none() {
            return Ok(());
        }
        let stream = matches!(self.out, Some(Out::Stream(_)));
        let pad = if stream {
            // A stream reader takes everything to the end as samples.
            0
        } else {
            (self.written * self.block()) % 2
        };
        if pad == 1 {
            self.io(|out| out.write_all(&[0]))?;
        }
        let r = self.update_sizes(pad);
        self.out = None;
        r
    }
}

impl Drop for WavWriter {
    fn drop(&mut self) {
        // Nobody to report to here: the file is as complete as it can be.
        let _ = self.complete();
    }
}
