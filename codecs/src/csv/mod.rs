//! Sensor CSV in and out: a header row, an optional time column (`time`,
//! `t` or `timestamp`, in seconds), any number of numeric value columns.
//!
//! The rate comes from the time column, which must tick regularly within a
//! tolerance (an irregular file is refused with the line that breaks it), or
//! from the caller. Values travel as f64 by default (lossless), or as f32 or
//! scaled integers. Written back, a file has the same header, the same
//! values printed with the same decimals, and times rebuilt from the media
//! clock. An empty cell is a missing value both ways.

mod reader;
mod stream;
mod text;
mod timing;
mod writer;

pub use reader::{CsvOptions, CsvReader, TIME_COLUMN_NAMES};
pub use stream::CsvStream;
pub use writer::CsvWriter;
