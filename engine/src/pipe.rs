//! Live input from a byte stream (standard input, a pipe, a socket): raw
//! PCM in the sample formats sox and ffmpeg name, a WAV stream, or sensor
//! CSV rows, opened as a catalog entry plus a reader of wire-encoded
//! samples, like [`crate::files::open_input`] for files.
//!
//! A stream has no length: the substream ends when the stream does. Each
//! read hands on whatever whole samples have arrived, so with
//! [`crate::config::Pacing::Arrival`] frames leave as soon as they are in.

use std::io::{self, Read};
use std::str::FromStr;

use isochron_codecs::csv::CsvStream;
use isochron_codecs::{Encoding, Origin, Rate, StreamFormat, WavLayout};

use crate::catalog::{MediaKind, SubstreamDesc};
use crate::files::{
    FileInput, InputOptions, SampleReader, open_wav_stream, sensor_frames_per_packet,
};

/// One raw PCM sample layout, little-endian, as `sox -t raw -e ... -b ...`
/// and `ffmpeg -f s16le` write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawSample {
    /// Signed 16-bit.
    S16le,
    /// Signed 24-bit in 3 bytes.
    S24le,
    /// Signed 32-bit.
    S32le,
    /// IEEE float 32-bit.
    F32le,
    /// Unsigned 8-bit (offset binary).
    U8,
}

impl RawSample {
    /// Every layout, in the order `--help` lists them.
    pub const ALL: [RawSample; 5] = [
        RawSample::S16le,
        RawSample::S24le,
        RawSample::S32le,
        RawSample::F32le,
        RawSample::U8,
    ];

    /// The name sox and ffmpeg use.
    pub fn name(self) -> &'static str {
        match self {
            RawSample::S16le => "s16le",
            RawSample::S24le => "s24le",
            RawSample::S32le => "s32le",
            RawSample::F32le => "f32le",
            RawSample::U8 => "u8",
        }
    }

    /// The lossless wire encoding of these samples.
    pub fn encoding(self) -> Encoding {
        match self {
            RawSample::S16le => Encoding::L16,
            RawSample::S24le => Encoding::L24,
            RawSample::S32le => Encoding::L32,
            RawSample::F32le => Encoding::F32,
            RawSample::U8 => Encoding::U8,
        }
    }

    /// The raw layout of a wire encoding, if it has one.
    pub fn of(encoding: Encoding) -> Option<RawSample> {
        Self::ALL.into_iter().find(|r| r.encoding() == encoding)
    }

    /// The WAV layout that stores these samples as they are.
    pub fn wav_layout(self) -> WavLayout {
        WavLayout::for_encoding(self.encoding())
    }
}

impl FromStr for RawSample {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|r| r.name() == t)
            .ok_or_else(|| format!("'{s}': use one of s16le, s24le, s32le, f32le, u8"))
    }
}

/// Swap each channel sample between little-endian (raw PCM) and the
/// big-endian wire order, in place: the same swap both ways.
pub fn swap_endian(encoding: Encoding, bytes: &mut [u8]) {
    let w = encoding.bytes();
    if w > 1 {
        for s in bytes.chunks_exact_mut(w) {
            s.reverse();
        }
    }
}

/// What the stream carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PipeFormat {
    /// Raw PCM samples of this layout, rate and channel count.
    Raw {
        /// Sample layout.
        sample: RawSample,
        /// Samples per second.
        rate: Rate,
        /// Interleaved channels.
        channels: u16,
    },
    /// A WAV stream (sizes 0 or 0xFFFFFFFF mean "until the end").
    Wav,
    /// Sensor CSV rows; the rate from the first two rows' time column
    /// unless given.
    Csv {
        /// Rows per second, for streams without a time column.
        rate: Option<Rate>,
    },
    /// A WAV stream if it starts with a RIFF header, CSV rows otherwise.
    Auto,
}

/// Why a stream cannot become a substream.
#[derive(Debug, thiserror::Error)]
pub enum PipeError {
    /// The stream's content is wrong (bad header, bad row...).
    #[error(transparent)]
    Codec(#[from] isochron_codecs::Error),
    /// Reading the stream failed.
    #[error("{name}: {source}")]
    Io {
        /// The stream's label.
        name: String,
        /// What failed.
        source: io::Error,
    },
    /// The format given cannot be streamed (channels, rate).
    #[error("{name}: {what}")]
    Format {
        /// The stream's label.
        name: String,
        /// What is wrong.
        what: String,
    },
}

/// Open a byte stream as substream `id`, named `name` (the receiver's file
/// name hint, e.g. `stdin.wav`), ready for [`crate::net::Sender::feed_from`].
pub fn open_pipe<R: Read + Send + 'static>(
    input: R,
    name: &str,
    id: u16,
    format: PipeFormat,
    opts: &InputOptions,
) -> Result<FileInput, PipeError> {
    open_boxed(Box::new(input), name, id, format, opts)
}

type Input = Box<dyn Read + Send>;

fn open_boxed(
    input: Input,
    name: &str,
    id: u16,
    format: PipeFormat,
    opts: &InputOptions,
) -> Result<FileInput, PipeError> {
    let bad = |what: String| PipeError::Format {
        name: name.to_owned(),
        what,
    };
    match format {
        PipeFormat::Raw {
            sample,
            rate,
            channels,
        } => {
            let format = StreamFormat::new(sample.encoding(), channels, rate)
                .map_err(|e| bad(e.to_string()))?;
            let desc = audio_desc(id, name, format, Origin::Wav(sample.wav_layout()), opts);
            Ok(FileInput {
                desc,
                reader: raw_reader(input, format),
            })
        }
        PipeFormat::Csv { rate } => {
            let mut r = CsvStream::new(input, name, rate, opts.sensor_encoding)?;
            let format = r.format();
            let mut desc = SubstreamDesc {
                id,
                name: name.to_owned(),
                kind: MediaKind::Sensor,
                format,
                frame_us: opts.frame_us,
                sample_interleave: 1,
                frames_per_packet: 1,
                origin: r.origin(),
                length: None,
                codec: None,
            };
            desc.frames_per_packet = sensor_frames_per_packet(&desc, opts);
            let stride = format.stride();
            let reader: SampleReader = Box::new(move |buf| {
                r.read(buf)
                    .map(|n| n * stride)
                    .map_err(|e| io::Error::other(e.to_string()))
            });
            Ok(FileInput { desc, reader })
        }
        PipeFormat::Wav => Ok(open_wav_stream(input, name, id, opts)?),
        PipeFormat::Auto => {
            let mut input = input;
            let mut head = [0u8; 4];
            let got = read_full(&mut input, &mut head).map_err(|source| PipeError::Io {
                name: name.to_owned(),
                source,
            })?;
            let head = head[..got].to_vec();
            let wav = matches!(&head[..], b"RIFF" | b"RIFX" | b"RF64");
            let input = Box::new(io::Cursor::new(head).chain(input));
            let format = if wav {
                PipeFormat::Wav
            } else {
                PipeFormat::Csv { rate: None }
            };
            open_boxed(input, name, id, format, opts)
        }
    }
}

fn audio_desc(
    id: u16,
    name: &str,
    format: StreamFormat,
    origin: Origin,
    opts: &InputOptions,
) -> SubstreamDesc {
    SubstreamDesc {
        id,
        name: name.to_owned(),
        kind: MediaKind::Audio,
        format,
        frame_us: opts.frame_us,
        sample_interleave: opts.sample_interleave.max(1),
        frames_per_packet: 1,
        origin,
        length: None,
        codec: None,
    }
}

/// Fill `buf` unless the stream ends first; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut at = 0;
    while at < buf.len() {
        match r.read(&mut buf[at..]) {
            Ok(0) => break,
            Ok(n) => at += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(at)
}

/// Raw little-endian PCM to wire bytes: each call returns the whole
/// samples that have arrived (at least one, waiting for it), keeping a
/// partial sample for the next call. A stream that ends inside a sample
/// is an error, not a silently shortened stream.
fn raw_reader(mut input: Input, format: StreamFormat) -> SampleReader {
    let stride = format.stride();
    let enc = format.encoding;
    let mut carry = vec![0u8; stride];
    let mut held = 0usize;
    Box::new(move |buf: &mut [u8]| {
        let cap = buf.len() / stride * stride;
        if cap == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a read buffer smaller than one sample",
            ));
        }
        buf[..held].copy_from_slice(&carry[..held]);
        let mut have = held;
        loop {
            match input.read(&mut buf[have..cap]) {
                Ok(0) if have == 0 => return Ok(0),
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "the stream ended inside a sample ({have} of {stride} bytes): \
                             check the sample format and the channel count"
                        ),
                    ));
                }
                Ok(n) => {
                    have += n;
                    let whole = have / stride * stride;
                    if whole == 0 {
                        continue;
                    }
                    held = have - whole;
                    carry[..held].copy_from_slice(&buf[whole..have]);
                    swap_endian(enc, &mut buf[..whole]);
                    return Ok(whole);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out its bytes a few at a time, as a pipe may.
    struct Dribble(Vec<u8>, usize);
    impl Read for Dribble {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = out.len().min(self.1).min(self.0.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0.drain(..n);
            Ok(n)
        }
    }

    fn read_all(mut r: SampleReader) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 60];
        loop {
            let n = r(&mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn raw_pcm_becomes_big_endian_whole_samples_however_it_dribbles_in() {
        let le: Vec<u8> = (0..=255u8).cycle().take(6 * 40).collect();
        for sample in RawSample::ALL {
            for step in [1, 5, 7, 64] {
                let fmt = PipeFormat::Raw {
                    sample,
                    rate: Rate::hz(48_000).unwrap(),
                    channels: 2,
                };
                let stride = sample.encoding().bytes() * 2;
                let input = le[..le.len() / stride * stride].to_vec();
                let f = open_pipe(
                    Dribble(input.clone(), step),
                    "stdin",
                    0,
                    fmt,
                    &InputOptions::default(),
                )
                .unwrap();
                assert_eq!(f.desc.length, None);
                assert_eq!(f.desc.format.stride(), stride);
                let mut wire = read_all(f.reader).unwrap();
                swap_endian(sample.encoding(), &mut wire);
                assert_eq!(wire, input, "{sample:?} in steps of {step}");
            }
        }
    }

    #[test]
    fn a_stream_ending_inside_a_sample_is_an_error() {
        let fmt = PipeFormat::Raw {
            sample: RawSample::S24le,
            rate: Rate::hz(8_000).unwrap(),
            channels: 1,
        };
        let f = open_pipe(
            Dribble(vec![1, 2, 3, 4], 4),
            "stdin",
            0,
            fmt,
            &InputOptions::default(),
        )
        .unwrap();
        let e = read_all(f.reader).unwrap_err();
        assert!(e.to_string().contains("inside a sample"), "{e}");
        assert_eq!("F32LE".parse::<RawSample>(), Ok(RawSample::F32le));
        assert!("s16be".parse::<RawSample>().unwrap_err().contains("s16le"));
    }

    #[test]
    fn text_on_auto_is_read_as_csv_rows() {
        let csv = "t,v\n0.0,1\n0.1,2\n".as_bytes().to_vec();
        let f = open_pipe(
            Dribble(csv, 3),
            "stdin.csv",
            1,
            PipeFormat::Auto,
            &InputOptions::default(),
        )
        .unwrap();
        assert_eq!(f.desc.kind, MediaKind::Sensor);
        assert_eq!(f.desc.format.rate, Rate::hz(10).unwrap());
        assert_eq!(read_all(f.reader).unwrap().len(), 16);
    }
}
