//! isochron codecs: turn files and application buffers into substreams and
//! back, and decide what a listener hears when a packet is gone for good.
//!
//! Nothing here knows about the network. The engine treats media as
//! fixed-size samples described by a [`StreamFormat`]; this crate owns what
//! those bytes mean:
//! - [`encoding`]: wire encodings (PCM, float, G.711, scaled integers) to and
//!   from numbers;
//! - [`wav`] and [`csv`]: files in and out, bit-exact where the encoding is
//!   lossless;
//! - [`compressed`]: FLAC (and Vorbis, MP3, AAC) files in, decoded by
//!   symphonia;
//! - [`opus`]: Opus on the wire, codec layer (multistream, resampled to
//!   48 kHz and back, aligned, in-band FEC and PLC);
//! - [`conceal`]: what to play for samples that never arrived;
//! - [`frame`]: interleaved buffers with their format, for applications;
//! - [`signal`] and [`quality`]: deterministic test signals and SNR.

#![warn(missing_docs)]

pub mod compressed;
pub mod conceal;
pub mod csv;
pub mod encoding;
pub mod error;
pub mod format;
pub mod frame;
pub mod mask;
pub mod opus;
pub mod quality;
pub mod resample;
pub mod signal;
pub mod wav;

pub use conceal::{Concealer, Method};
pub use error::{Error, Result};
pub use format::{
    CsvLayout, CsvText, Encoding, FormatError, IsoTime, NumberStyle, Origin, Rate, RiffKind,
    StreamFormat, TimeColumn, TimeStyle, WavCoding, WavLayout,
};
pub use frame::Frame;
pub use mask::SampleMask;
