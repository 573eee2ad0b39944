//! Compressed audio files in: FLAC (and Ogg Vorbis, MP3, AAC in MP4, which
//! the same crate gives for free) decoded with symphonia into wire samples.
//!
//! FLAC is lossless, so its samples go on the wire as the integers the file
//! holds (L16 up to 16 bits, L24 up to 24, else L32; fewer bits sit in the
//! top of the container, as a WAV would hold them) and the decoder checks
//! the file's MD5 of the samples at the end. Lossy codecs decode to 32-bit
//! float, their decoder's own output, gapless (encoder delay and padding
//! trimmed). The receiver writes a WAV: the sink's WAV writer is the one
//! that keeps a crash-safe, incrementally sized file, and nothing is lost
//! against the FLAC's decoded samples.
//!
//! Symphonia 0.5 has no Opus decoder: an Ogg Opus file is refused with
//! that reason.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use symphonia::core::audio::{AudioBufferRef, SampleBuffer};
use symphonia::core::codecs::{CODEC_TYPE_FLAC, CODEC_TYPE_NULL, CODEC_TYPE_OPUS, Decoder};
use symphonia::core::codecs::{CodecType, DecoderOptions};
use symphonia::core::conv::ConvertibleSample;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;
use symphonia::core::sample::Sample;

use crate::encoding;
use crate::error::{Error, Result};
use crate::format::{Encoding, Rate, StreamFormat};

/// File extensions read by this module rather than as WAV.
pub const EXTENSIONS: &[&str] = &["flac", "ogg", "oga", "opus", "mp3", "m4a", "mp4", "aac"];

/// Whether `path` names a compressed audio file (by extension).
pub fn is_compressed(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// A compressed audio file decoded into wire-encoded samples, packet by
/// packet (memory: one decoded packet).
pub struct CompressedReader {
    path: PathBuf,
    demux: Box<dyn FormatReader>,
    decoder: Box<dyn Decoder>,
    track: u32,
    lossless: bool,
    /// What the decoder's samples are on the wire before any transcoding.
    native: Encoding,
    format: StreamFormat,
    length: Option<u64>,
    ints: Option<SampleBuffer<i32>>,
    floats: Option<SampleBuffer<f32>>,
    /// Decoded samples in the native encoding not yet handed out.
    pending: Vec<u8>,
    at: usize,
    read: u64,
    ended: bool,
}

impl std::fmt::Debug for CompressedReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompressedReader")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("length", &self.length)
            .field("read", &self.read)
            .finish_non_exhaustive()
    }
}

impl CompressedReader {
    /// Opens `path` and reads its stream header; the wire encoding is the
    /// decoder's own (lossless integers for FLAC, F32 for lossy codecs).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_inner(path.as_ref(), None)
    }

    /// Like [`open`](Self::open), with the samples transcoded to `encoding`
    /// on the wire (e.g. mu-law).
    pub fn open_as(path: impl AsRef<Path>, encoding: Encoding) -> Result<Self> {
        Self::open_inner(path.as_ref(), Some(encoding))
    }

    fn open_inner(path: &Path, wire: Option<Encoding>) -> Result<Self> {
        let bad = |what: String| Error::Decode {
            path: path.to_owned(),
            what,
        };
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let stream = MediaSourceStream::new(Box::new(file), Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let opts = FormatOptions {
            enable_gapless: true,
            ..Default::default()
        };
        let probed = symphonia::default::get_probe()
            .format(&hint, stream, &opts, &MetadataOptions::default())
            .map_err(|e| bad(sym_what(e)))?;
        let demux = probed.format;
        let track = demux
            .tracks()
            .iter()
            .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
            .ok_or_else(|| bad("no audio track".into()))?;
        let params = track.codec_params.clone();
        let track_id = track.id;
        if params.codec == CODEC_TYPE_OPUS {
            return Err(bad(
                "Ogg Opus cannot be decoded (symphonia 0.5 has no Opus decoder); \
                 convert it to FLAC or WAV first"
                    .into(),
            ));
        }
        let decoder = symphonia::default::get_codecs()
            .make(&params, &DecoderOptions { verify: true })
            .map_err(|e| bad(format!("{} ({})", sym_what(e), codec_name(params.codec))))?;
        let rate = params
            .sample_rate
            .ok_or_else(|| bad("the stream does not say its sample rate".into()))?;
        let channels = params
            .channels
            .map(|c| c.count())
            .ok_or_else(|| bad("the stream does not say its channel count".into()))?;
        let channels = u16::try_from(channels)
            .ok()
            .filter(|&c| c > 0)
            .ok_or_else(|| bad(format!("{channels} channels")))?;
        let lossless = params.codec == CODEC_TYPE_FLAC;
        let native = if lossless {
            match params.bits_per_sample {
                Some(1..=16) => Encoding::L16,
                Some(17..=24) => Encoding::L24,
                Some(25..=32) => Encoding::L32,
                other => return Err(bad(format!("FLAC with {other:?} bits per sample"))),
            }
        } else {
            Encoding::F32
        };
        let encoding = wire.unwrap_or(native);
        let rate = Rate::hz(rate).map_err(|e| bad(e.to_string()))?;
        let format = StreamFormat::new(encoding, channels, rate)?;
        // A FLAC's STREAMINFO gives the exact count (0: unknown); lossy
        // counts are estimates, so those streams say their length at the end.
        let length = params.n_frames.filter(|&n| lossless && n > 0);
        Ok(Self {
            path: path.to_owned(),
            demux,
            decoder,
            track: track_id,
            lossless,
            native,
            format,
            length,
            ints: None,
            floats: None,
            pending: Vec::new(),
            at: 0,
            read: 0,
            ended: false,
        })
    }

    /// The stream format on the wire.
    pub fn format(&self) -> StreamFormat {
        self.format
    }

    /// Samples (per channel) in the file when the header says (FLAC).
    pub fn length(&self) -> Option<u64> {
        self.length
    }

    /// Samples handed out so far.
    pub fn samples_read(&self) -> u64 {
        self.read
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file is lossless (FLAC): its samples are the file's.
    pub fn is_lossless(&self) -> bool {
        self.lossless
    }

    /// Reads as many whole samples as fit in `out`, wire-encoded; returns
    /// how many, 0 at the end. A FLAC that decodes to other samples than
    /// its MD5 says, or ends before its declared length, is an error.
    pub fn read(&mut self, out: &mut [u8]) -> Result<usize> {
        let stride = self.format.stride();
        let native_stride = self.native.bytes() * self.format.channels as usize;
        let want = out.len() / stride;
        let mut n = 0;
        while n < want {
            if self.at == self.pending.len() && !self.decode_next()? {
                break;
            }
            let take = ((self.pending.len() - self.at) / native_stride).min(want - n);
            let src = &self.pending[self.at..self.at + take * native_stride];
            let dst = &mut out[n * stride..(n + take) * stride];
            encoding::transcode(self.native, src, self.format.encoding, dst);
            self.at += take * native_stride;
            self.read += take as u64;
            n += take;
        }
        Ok(n)
    }

    /// Decodes the next packet of our track into `pending`; false at the end.
    fn decode_next(&mut self) -> Result<bool> {
        self.pending.clear();
        self.at = 0;
        while !self.ended {
            let packet = match self.demux.next_packet() {
                Ok(p) => p,
                Err(SymError::IoError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.finish()?;
                    break;
                }
                Err(e) => return Err(self.error(sym_what(e))),
            };
            if packet.track_id() != self.track {
                continue;
            }
            let decoded = match self.decoder.decode(&packet) {
                Ok(d) => d,
                // A lossy stream's damaged frame is skipped, as players do;
                // a lossless one must not lose samples silently.
                Err(SymError::DecodeError(_)) if !self.lossless => continue,
                Err(e) => return Err(self.error(sym_what(e))),
            };
            if decoded.frames() == 0 {
                continue;
            }
            let spec = *decoded.spec();
            if spec.channels.count() != self.format.channels as usize {
                return Err(self.error(format!(
                    "the channel count changes from {} to {} within the stream",
                    self.format.channels,
                    spec.channels.count()
                )));
            }
            if self.lossless {
                // Symphonia scales FLAC samples to the top of an i32: the
                // container's top bytes are the file's samples.
                let keep = self.native.bytes();
                for s in interleave(&mut self.ints, decoded) {
                    self.pending.extend_from_slice(&s.to_be_bytes()[..keep]);
                }
            } else {
                for s in interleave(&mut self.floats, decoded) {
                    self.pending.extend_from_slice(&s.to_be_bytes());
                }
            }
            self.clip_to_length();
            return Ok(!self.pending.is_empty());
        }
        Ok(false)
    }

    /// Drops decoded samples past the declared length (a FLAC's last frame
    /// is exact, so this only guards against a lying header).
    fn clip_to_length(&mut self) {
        let Some(len) = self.length else { return };
        let native_stride = self.native.bytes() * self.format.channels as usize;
        let queued = self.read + ((self.pending.len() - self.at) / native_stride) as u64;
        if queued > len {
            let keep = len.saturating_sub(self.read) as usize * native_stride;
            self.pending.truncate(self.at + keep);
        }
    }

    /// The end of the file: the declared length and the MD5 must hold.
    fn finish(&mut self) -> Result<()> {
        self.ended = true;
        let done = self.decoder.finalize();
        if self.lossless && done.verify_ok == Some(false) {
            return Err(self.error(
                "the decoded samples do not match the MD5 in the FLAC header (corrupt file)".into(),
            ));
        }
        if let Some(len) = self.length
            && self.read < len
        {
            return Err(self.error(format!(
                "the file ends after {} of its {len} samples (truncated?)",
                self.read
            )));
        }
        Ok(())
    }

    fn error(&self, what: String) -> Error {
        Error::Decode {
            path: self.path.clone(),
            what,
        }
    }
}

/// Interleaves one decoded packet into `slot`, grown when a packet is
/// larger than any before.
fn interleave<'a, S: Sample + ConvertibleSample>(
    slot: &'a mut Option<SampleBuffer<S>>,
    decoded: AudioBufferRef<'_>,
) -> &'a [S] {
    let spec = *decoded.spec();
    let frames = decoded.capacity() as u64;
    let need = frames as usize * spec.channels.count();
    if slot.as_ref().is_none_or(|b| b.capacity() < need) {
        *slot = Some(SampleBuffer::new(frames, spec));
    }
    let buf = slot.as_mut().expect("just filled");
    buf.copy_interleaved_ref(decoded);
    buf.samples()
}

/// A symphonia error in words.
fn sym_what(e: SymError) -> String {
    match e {
        SymError::Unsupported(what) => format!("unsupported: {what}"),
        e => e.to_string(),
    }
}

/// A codec's short name for errors.
fn codec_name(codec: CodecType) -> String {
    symphonia::default::get_codecs()
        .get_codec(codec)
        .map(|d| d.short_name.to_owned())
        .unwrap_or_else(|| format!("codec {codec}"))
}
