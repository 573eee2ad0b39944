//! Files as substreams: a WAV, a compressed audio file (FLAC, ...) or a
//! sensor CSV opened as a catalog entry plus a reader of wire-encoded
//! samples, ready for [`crate::net::Sender::feed_from`].

use std::io::{self, Read};
use std::path::Path;

use isochron_codecs::compressed::{CompressedReader, is_compressed};
use isochron_codecs::csv::{CsvOptions, CsvReader};
use isochron_codecs::wav::WavReader;
use isochron_codecs::{Encoding, Origin, Rate};

use crate::catalog::{MediaKind, SubstreamDesc};
use crate::wire::packet;

/// How files become substreams.
#[derive(Debug, Clone)]
pub struct InputOptions {
    /// Frame duration in microseconds.
    pub frame_us: u32,
    /// Sample-interleave group for audio (1: off).
    pub sample_interleave: u8,
    /// A wire encoding for audio other than the lossless one (e.g. mu-law).
    pub audio_encoding: Option<Encoding>,
    /// Wire encoding for sensor values (F64: lossless).
    pub sensor_encoding: Encoding,
    /// Rate of a CSV without a time column.
    pub sensor_rate: Option<Rate>,
    /// Longest a sensor packet may hold its frames back (aggregation).
    pub sensor_hold_us: u32,
}

impl Default for InputOptions {
    fn default() -> Self {
        Self {
            frame_us: 10_000,
            sample_interleave: 1,
            audio_encoding: None,
            sensor_encoding: Encoding::F64,
            sensor_rate: None,
            sensor_hold_us: 20_000,
        }
    }
}

/// Reads wire-encoded samples: fills a buffer with whole samples, returns
/// bytes (0 at the end).
pub type SampleReader = Box<dyn FnMut(&mut [u8]) -> io::Result<usize> + Send>;

/// An opened file.
pub struct FileInput {
    /// Its catalog entry (length known; sensors aggregate small frames).
    pub desc: SubstreamDesc,
    /// Reads its samples, wire-encoded, from the start.
    pub reader: SampleReader,
}

/// Whether `path` is a CSV (by extension; everything else is tried as WAV).
fn is_csv(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

/// Open `path` as substream `id`: a `.csv` as a sensor substream (small
/// frames aggregated to fit a 1162-byte datagram within `sensor_hold_us`),
/// a compressed audio file (`.flac`, `.ogg`, `.mp3`, `.m4a`...) decoded to
/// PCM audio, anything else as WAV audio. The name hint is the file name
/// (a compressed file's with `.wav`: the receiver writes its samples as WAV).
pub fn open_input(
    path: &Path,
    id: u16,
    opts: &InputOptions,
) -> Result<FileInput, isochron_codecs::Error> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("substream{id}"));
    if is_csv(path) {
        let mut r = CsvReader::open_with(
            path,
            &CsvOptions {
                rate: opts.sensor_rate,
                encoding: opts.sensor_encoding,
                ..Default::default()
            },
        )?;
        let format = r.format();
        let mut desc = SubstreamDesc {
            id,
            name,
            kind: MediaKind::Sensor,
            format,
            frame_us: opts.frame_us,
            sample_interleave: 1,
            frames_per_packet: 1,
            origin: r.origin(),
            length: Some(r.total_samples()),
            codec: None,
        };
        desc.frames_per_packet = sensor_frames_per_packet(&desc, opts);
        let reader = sample_reader(format.stride(), move |buf| r.read(buf));
        Ok(FileInput { desc, reader })
    } else if is_compressed(path) {
        let mut r = match opts.audio_encoding {
            Some(enc) => CompressedReader::open_as(path, enc)?,
            None => CompressedReader::open(path)?,
        };
        let name = Path::new(&name)
            .with_extension("wav")
            .to_string_lossy()
            .into_owned();
        let desc = audio_desc(id, name, r.format(), Origin::Raw, r.length(), opts);
        let reader = sample_reader(r.format().stride(), move |buf| r.read(buf));
        Ok(FileInput { desc, reader })
    } else {
        let r = match opts.audio_encoding {
            Some(enc) => WavReader::open_as(path, enc)?,
            None => WavReader::open(path)?,
        };
        Ok(wav_input(r, name, id, opts))
    }
}

/// Small sensor frames share packets, within the hold budget: how many of
/// this substream's frames one packet carries.
pub fn sensor_frames_per_packet(desc: &SubstreamDesc, opts: &InputOptions) -> u8 {
    let frame = desc.max_frame_bytes().max(1);
    let fit = packet::max_payload(1162) / frame;
    let by_time = (opts.sensor_hold_us / opts.frame_us.max(1)) as usize;
    fit.min(by_time).clamp(1, 8) as u8
}

/// Open a WAV stream (standard input, a pipe) as audio substream `id`
/// named `name`. Its length is unknown unless the header gave a real size;
/// the receiver learns it from the end of stream.
pub fn open_wav_stream<R: Read + Send + 'static>(
    reader: R,
    name: &str,
    id: u16,
    opts: &InputOptions,
) -> Result<FileInput, isochron_codecs::Error> {
    let r = WavReader::from_reader(reader, name, opts.audio_encoding)?;
    Ok(wav_input(r, name.to_owned(), id, opts))
}

fn wav_input(mut r: WavReader, name: String, id: u16, opts: &InputOptions) -> FileInput {
    let format = r.format();
    let desc = audio_desc(id, name, format, r.origin(), r.length(), opts);
    let reader = sample_reader(format.stride(), move |buf| r.read(buf));
    FileInput { desc, reader }
}

/// The catalog entry of an audio substream.
fn audio_desc(
    id: u16,
    name: String,
    format: isochron_codecs::StreamFormat,
    origin: Origin,
    length: Option<u64>,
    opts: &InputOptions,
) -> SubstreamDesc {
    SubstreamDesc {
        id,
        name,
        kind: MediaKind::Audio,
        format,
        frame_us: opts.frame_us,
        sample_interleave: opts.sample_interleave.max(1),
        frames_per_packet: 1,
        origin,
        length,
        codec: None,
    }
}

/// A reader of bytes from a codecs reader that counts samples.
fn sample_reader<F>(stride: usize, mut read: F) -> SampleReader
where
    F: FnMut(&mut [u8]) -> isochron_codecs::Result<usize> + Send + 'static,
{
    Box::new(move |buf| {
        read(buf)
            .map(|n| n * stride)
            .map_err(|e| io::Error::other(e.to_string()))
    })
}
