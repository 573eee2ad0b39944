//! WAV files and streams in and out: integer PCM in 8, 16, 24 and 32-bit
//! containers (valid bits below the container included, e.g. 24-bit samples
//! in 32-bit containers), 32 and 64-bit float, A-law and mu-law (format tags
//! 6 and 7), any channel count and rate, plain or WAVE_FORMAT_EXTENSIBLE,
//! RIFF, RF64 and BW64, extra chunks before or after the data, the `fact`
//! chunk, and streams whose writer could not fill in the sizes (0 or
//! 0xFFFFFFFF: "until the end").
//!
//! A file read with its lossless encoding (the whole container on the wire)
//! and written back comes out with the same samples bit for bit and the
//! same format: coding, rate, container and valid bits, channel layout
//! (including the mask), RIFF or RF64, the fact chunk. Samples are a byte
//! reversal away from the wire, so this module reads and writes them itself
//! (hound reads neither pipes of unknown length, RF64, G.711 nor valid bits
//! below the container, and cannot write the header back as it was); it
//! also walks the chunks itself to say exactly what is wrong with a bad file.

mod fmt;
mod header;
mod input;
mod reader;
mod riff;
mod samples;
mod writer;

pub use reader::WavReader;
pub use writer::WavWriter;
