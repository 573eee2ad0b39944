//! Sensor CSV in and out, as loggers write it: a header row, an optional
//! time column (named `time`, `timestamp`... or holding ISO 8601 times;
//! seconds or ISO 8601), any number of numeric value columns.
//!
//! The rate comes from the time column or from the caller. Timestamps that
//! jitter around the nominal grid (up to half a period either way) are
//! carried exactly: each row's offset from the grid travels as one more
//! channel, so times come back character for character (no resampling, no
//! error); a gap, a jump or drift beyond that is refused with the line that
//! breaks it. Values travel as f64 by default (lossless), or as f32 or
//! scaled integers. Written back, a file has the same header, the same
//! values in each column's number style (fixed decimals, printf exponents,
//! shortest or Python repr text), NaN and infinity spelled as they were,
//! empty cells empty, and the same line ends.

mod number;
mod reader;
mod stream;
mod text;
mod timestamp;
mod timing;
mod writer;

pub use reader::{CsvOptions, CsvReader, TIME_COLUMN_NAMES};
pub use stream::CsvStream;
pub use writer::CsvWriter;
