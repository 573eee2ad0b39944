//! WAV files in and out: integer PCM 8/16/24/32-bit and 32-bit float, any
//! channel count and rate, plain or WAVE_FORMAT_EXTENSIBLE, extra chunks
//! before or after the data.
//!
//! A file read with its lossless encoding and written back comes out with
//! the same samples bit for bit, the same rate, bits and channel layout
//! (including the channel mask). hound decodes and encodes the samples; this
//! module walks the chunks itself so it can keep the channel mask, skip
//! padded chunks, and say exactly what is wrong with a bad file.

mod header;
mod pipe_header;
mod reader;
mod relocate;
mod riff;
mod writer;

pub use pipe_header::streaming_header;
pub use reader::{WavReader, lossless_encoding};
pub use writer::WavWriter;
