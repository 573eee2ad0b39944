//! The one error type of the codecs crate.
//!
//! Every variant that comes from a file names the file and, where it makes
//! sense, the line, the column and what was expected, so a user can fix the
//! input without reading the code.

use std::path::PathBuf;

use crate::format::{Encoding, FormatError};

/// Everything that can go wrong turning files and buffers into substreams and back.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operating system refused to read or write a file.
    #[error("{path}: {source}")]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },

    /// The file is not a RIFF/WAVE file at all.
    #[error("{path} is not a WAV file: {reason}")]
    NotWav {
        /// The file.
        path: PathBuf,
        /// What was found instead of a RIFF/WAVE header.
        reason: String,
    },

    /// The file claims more audio than it holds.
    #[error(
        "{path} is truncated: its data chunk declares {declared} bytes but only {available} \
         bytes follow the chunk header"
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Bytes the data chunk header promises.
        declared: u64,
        /// Bytes actually present after the data chunk header.
        available: u64,
    },

    /// A well-formed WAV whose sample encoding this crate cannot carry.
    #[error("{path}: unsupported WAV encoding: {what}")]
    UnsupportedWav {
        /// The file.
        path: PathBuf,
        /// Which encoding, e.g. "12-bit PCM" or "ADPCM (format tag 0x0002)".
        what: String,
    },

    /// A compressed audio file (FLAC, MP3, ...) that cannot be decoded.
    #[error("{path}: cannot decode: {what}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// What went wrong, e.g. "malformed stream: ..." or "unsupported: ...".
        what: String,
    },

    /// Opus (libopus or the resamplers around it) refused.
    #[error("Opus: {what}")]
    Opus {
        /// What, e.g. "creating the encoder: bad argument (-1)".
        what: String,
    },

    /// A RIFF/WAVE file whose header is inconsistent.
    #[error("{path}: malformed WAV header: {what}")]
    MalformedWav {
        /// The file.
        path: PathBuf,
        /// What is wrong, e.g. "no fmt chunk before the data chunk".
        what: String,
    },

    /// The stream cannot be written in the requested container.
    #[error("{path}: cannot write this stream: {what}")]
    Unwritable {
        /// The file.
        path: PathBuf,
        /// Why, e.g. "WAV needs a whole number of hertz, got 30000/1001 Hz".
        what: String,
    },

    /// The file has no content to stream.
    #[error("{path} is empty: {what}")]
    Empty {
        /// The file.
        path: PathBuf,
        /// What is missing, e.g. "no header row" or "a header but no data rows".
        what: String,
    },

    /// The first CSV line holds data where column names belong.
    #[error(
        "{path} line {line}: missing header: the first line ({first}) holds numbers, but a \
         sensor CSV starts with a row naming its columns"
    )]
    MissingHeader {
        /// The file.
        path: PathBuf,
        /// The line that should be the header (1-based).
        line: u64,
        /// The offending line as read.
        first: String,
    },

    /// A CSV cell that should hold a number does not.
    #[error("{path} line {line} (data row {row}), column '{column}': {expected}, found '{cell}'")]
    CsvCell {
        /// The file.
        path: PathBuf,
        /// 1-based line number in the file.
        line: u64,
        /// 1-based data row (the header is not counted).
        row: u64,
        /// Name of the column from the header row.
        column: String,
        /// The cell as written in the file.
        cell: String,
        /// What the cell should have held.
        expected: String,
    },

    /// A CSV row with the wrong number of cells.
    #[error("{path} line {line}: expected {expected} cells as in the header, found {found}")]
    CsvShape {
        /// The file.
        path: PathBuf,
        /// 1-based line number in the file.
        line: u64,
        /// Cells in the header row.
        expected: usize,
        /// Cells in this row.
        found: usize,
    },

    /// The time column does not tick at one rate.
    #[error("{path} line {line}: irregular time column '{column}': {detail}")]
    IrregularTime {
        /// The file.
        path: PathBuf,
        /// 1-based line number of the first row that breaks the regular grid.
        line: u64,
        /// Name of the time column.
        column: String,
        /// What was expected and what was found.
        detail: String,
    },

    /// A sensor CSV without a way to know its rate.
    #[error(
        "{path}: no sample rate: the file has no time column (named 'time', 'timestamp', \
         'datetime'... in seconds, or holding ISO 8601 times){why}, and no rate was given; \
         give the rows' rate with --sensor-rate HZ (isochron send) or CsvOptions::rate"
    )]
    NoRate {
        /// The file.
        path: PathBuf,
        /// Extra context, e.g. " usable with a single data row".
        why: String,
    },

    /// CSV text the parser could not read (for example invalid UTF-8).
    #[error("{path} line {line}: {source}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line number, 0 when unknown.
        line: u64,
        /// What the CSV parser said.
        source: ::csv::Error,
    },

    /// A format descriptor was refused.
    #[error(transparent)]
    Format(#[from] FormatError),

    /// A buffer that is not a whole number of samples.
    #[error("a buffer of {len} bytes is not a whole number of {stride}-byte samples")]
    Ragged {
        /// Bytes in the buffer.
        len: usize,
        /// Bytes of one multichannel sample.
        stride: usize,
    },

    /// A buffer shorter or longer than the operation needs.
    #[error("buffer size mismatch: {what} needs {expected}, got {found}")]
    Size {
        /// Which buffer, e.g. "the sample mask".
        what: &'static str,
        /// What was needed.
        expected: usize,
        /// What was given.
        found: usize,
    },

    /// An encoding that the operation cannot use.
    #[error("{what} cannot use the {encoding:?} encoding")]
    Encoding {
        /// The operation, e.g. "a WAV file".
        what: &'static str,
        /// The refused encoding.
        encoding: Encoding,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
