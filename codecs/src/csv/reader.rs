//! Reading a sensor CSV as wire bytes.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use ::csv as csv_crate;

use super::text::{decimals_of, merge_decimals};
use super::timing::regular_rate;
use crate::encoding;
use crate::error::{Error, Result};
use crate::format::{CsvLayout, Encoding, Origin, Rate, StreamFormat, TimeColumn};

/// Header names (compared without case) that mark the time column, in seconds.
pub const TIME_COLUMN_NAMES: [&str; 3] = ["time", "t", "timestamp"];

/// How to read a sensor CSV.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvOptions {
    /// The sample rate, for files without a time column (or to insist on
    /// one: a time column that disagrees is refused).
    pub rate: Option<Rate>,
    /// Wire encoding of the values: [`Encoding::F64`] (lossless, the
    /// default), [`Encoding::F32`], or [`Encoding::Scaled16`] /
    /// [`Encoding::Scaled32`] with a number of decimals.
    pub encoding: Encoding,
    /// How far a time may stray from the regular grid, as a fraction of the
    /// period (default 0.1).
    pub tolerance: f64,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            rate: None,
            encoding: Encoding::F64,
            tolerance: 0.1,
        }
    }
}

/// A sensor CSV opened for streaming: one sample per row, one channel per
/// value column, the rate from the time column or the caller.
///
/// The whole file is checked when it is opened (header, every cell, the
/// regularity of the time column, the range of scaled values), so a bad
/// file is refused before a session starts rather than half-way through.
pub struct CsvReader {
    path: PathBuf,
    rows: csv_crate::Reader<File>,
    record: csv_crate::StringRecord,
    format: StreamFormat,
    layout: CsvLayout,
    value_index: Vec<usize>,
    total: u64,
    read: u64,
}

impl std::fmt::Debug for CsvReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvReader")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("layout", &self.layout)
            .field("total", &self.total)
            .field("read", &self.read)
            .finish()
    }
}

/// What the first pass learned.
struct Survey {
    headers: Vec<String>,
    time: Option<usize>,
    times: Vec<f64>,
    /// File line of each data row, while there is a time column to blame.
    lines: Vec<u64>,
    time_decimals: Option<Option<u8>>,
    decimals: Vec<Option<Option<u8>>>,
    rows: u64,
}

impl CsvReader {
    /// Opens `path` with the default options: lossless f64 values, the rate
    /// from the time column.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, &CsvOptions::default())
    }

    /// Opens `path` with `options`.
    pub fn open_with(path: impl AsRef<Path>, options: &CsvOptions) -> Result<Self> {
        let path = path.as_ref();
        let enc = options.encoding;
        if !matches!(
            enc,
            Encoding::F64 | Encoding::F32 | Encoding::Scaled16 { .. } | Encoding::Scaled32 { .. }
        ) {
            return Err(Error::Encoding {
                what: "a sensor CSV (use F64, F32, Scaled16 or Scaled32)",
                encoding: enc,
            });
        }
        let delimiter = sniff_delimiter(path)?;
        let survey = survey(path, delimiter, enc)?;

        let rate = match (survey.time, options.rate) {
            (Some(col), given) if survey.times.len() >= 2 => {
                let decimals = survey.time_decimals.flatten().unwrap_or(9);
                regular_rate(&survey.times, given, decimals, options.tolerance).map_err(|irr| {
                    Error::IrregularTime {
                        path: path.into(),
                        line: survey.lines.get(irr.row).copied().unwrap_or(0),
                        column: survey.headers[col].clone(),
                        detail: match given {
                            Some(r) => {
                                format!("{} (the given rate is {} Hz)", irr.detail, r.as_f64())
                            }
                            None => irr.detail,
                        },
                    }
                })?
            }
            (_, Some(r)) => r,
            (time, None) => {
                return Err(Error::NoRate {
                    path: path.into(),
                    why: if time.is_some() {
                        " usable with a single data row".into()
                    } else {
                        String::new()
                    },
                });
            }
        };

        let value_index: Vec<usize> = (0..survey.headers.len())
            .filter(|&i| Some(i) != survey.time)
            .collect();
        let channels = u16::try_from(value_index.len()).map_err(|_| Error::Unwritable {
            path: path.into(),
            what: format!(
                "{} value columns, more than a stream carries",
                value_index.len()
            ),
        })?;
        let format = StreamFormat::new(enc, channels, rate)?;
        let time = survey.time.map(|i| {
            let decimals = match survey.time_decimals.flatten() {
                Some(d) => d,
                None => super::text::time_decimals(rate.num(), rate.den()),
            };
            TimeColumn {
                name: survey.headers[i].clone(),
                index: i,
                start: survey.times[0],
                decimals,
            }
        });
        let layout = CsvLayout {
            columns: value_index
                .iter()
                .map(|&i| survey.headers[i].clone())
                .collect(),
            time,
            decimals: value_index
                .iter()
                .map(|&i| survey.decimals[i].flatten())
                .collect(),
            delimiter,
        };
        let mut rows = builder(delimiter)
            .from_path(path)
            .map_err(|e| csv_error(path, e))?;
        let mut record = csv_crate::StringRecord::new();
        // Skip the header row.
        rows.read_record(&mut record)
            .map_err(|e| csv_error(path, e))?;
        Ok(Self {
            path: path.into(),
            rows,
            record,
            format,
            layout,
            value_index,
            total: survey.rows,
            read: 0,
        })
    }

    /// Encoding, channels (value columns) and rate of the wire bytes.
    pub fn format(&self) -> StreamFormat {
        self.format
    }

    /// Column names, time column and number style, to write the file back.
    pub fn layout(&self) -> &CsvLayout {
        &self.layout
    }

    /// [`Origin::Csv`] with this file's layout, for the session catalog.
    pub fn origin(&self) -> Origin {
        Origin::Csv(self.layout.clone())
    }

    /// Data rows (samples) in the file.
    pub fn total_samples(&self) -> u64 {
        self.total
    }

    /// Rows not read yet.
    pub fn remaining(&self) -> u64 {
        self.total - self.read
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads as many rows as fit in `out` (and remain) as wire bytes; an
    /// empty cell travels as a missing value (NaN, or the reserved minimum
    /// of a scaled encoding). Returns the rows read, 0 at the end.
    pub fn read(&mut self, out: &mut [u8]) -> Result<usize> {
        let stride = self.format.stride();
        let enc = self.format.encoding;
        let w = enc.bytes();
        let n = ((out.len() / stride) as u64).min(self.remaining()) as usize;
        let columns = self.value_index.len() + usize::from(self.layout.time.is_some());
        for row in out[..n * stride].chunks_exact_mut(stride) {
            let mut more = true;
            while more {
                more = self
                    .rows
                    .read_record(&mut self.record)
                    .map_err(|e| csv_error(&self.path, e))?;
                if !is_blank(&self.record, columns) {
                    break;
                }
            }
            if !more {
                return Err(Error::Empty {
                    path: self.path.clone(),
                    what: format!(
                        "the file lost rows while open: it ended after {} of {} rows",
                        self.read, self.total
                    ),
                });
            }
            for (j, (slot, &col)) in row.chunks_exact_mut(w).zip(&self.value_index).enumerate() {
                let cell = self.record.get(col).unwrap_or("");
                let v = parse_cell(cell).ok_or_else(|| Error::CsvCell {
                    path: self.path.clone(),
                    line: self.record.position().map_or(0, |p| p.line()),
                    row: self.read + 1,
                    column: self.layout.columns.get(j).cloned().unwrap_or_default(),
                    cell: cell.into(),
                    expected: "a number (the file changed while open)".into(),
                })?;
                encoding::write_f64(enc, v, slot);
            }
            self.read += 1;
        }
        Ok(n)
    }
}

fn builder(delimiter: u8) -> csv_crate::ReaderBuilder {
    let mut b = csv_crate::ReaderBuilder::new();
    b.delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        // Header names are kept exactly (spaces included) to be written back.
        .trim(csv_crate::Trim::None);
    b
}

fn csv_error(path: &Path, e: csv_crate::Error) -> Error {
    Error::Csv {
        path: path.into(),
        line: e.position().map_or(0, |p| p.line()),
        source: e,
    }
}

/// A line with nothing on it (the parser yields one empty field), skipped
/// unless the file has a single column, where it is a missing value.
fn is_blank(record: &csv_crate::StringRecord, columns: usize) -> bool {
    columns > 1 && record.len() == 1 && record[0].trim().is_empty()
}

/// A value cell: a number, or empty for a missing value (NaN).
fn parse_cell(cell: &str) -> Option<f64> {
    let cell = cell.trim();
    if cell.is_empty() {
        return Some(f64::NAN);
    }
    cell.parse::<f64>().ok()
}

/// The field separator, from the header line: the most frequent of `,`,
/// `;` and tab outside quotes (`,` when none appears).
fn sniff_delimiter(path: &Path) -> Result<u8> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut first = Vec::new();
    BufReader::new(file)
        .read_until(b'\n', &mut first)
        .map_err(|e| Error::io(path, e))?;
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for &c in &first {
        match c {
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let best = (0..3).max_by_key(|&i| (counts[i], 3 - i)).unwrap_or(0);
    Ok([b',', b';', b'\t'][best])
}

/// First pass: header, every cell, times, decimals, row count.
fn survey(path: &Path, delimiter: u8, enc: Encoding) -> Result<Survey> {
    let mut rows = builder(delimiter)
        .from_path(path)
        .map_err(|e| csv_error(path, e))?;
    let mut record = csv_crate::StringRecord::new();
    let has_header = rows
        .read_record(&mut record)
        .map_err(|e| csv_error(path, e))?;
    if !has_header || record.iter().all(|f| f.trim().is_empty()) {
        return Err(Error::Empty {
            path: path.into(),
            what: "no header row (a sensor CSV names its columns on the first line)".into(),
        });
    }
    let header_line = record.position().map_or(1, |p| p.line());
    if record.iter().all(|f| f.trim().parse::<f64>().is_ok()) {
        return Err(Error::MissingHeader {
            path: path.into(),
            line: header_line,
            first: record.iter().collect::<Vec<_>>().join(","),
        });
    }
    let headers: Vec<String> = record.iter().map(str::to_owned).collect();
    let time = headers.iter().position(|h| {
        TIME_COLUMN_NAMES
            .iter()
            .any(|n| h.trim().eq_ignore_ascii_case(n))
    });
    if headers.len() == usize::from(time.is_some()) {
        return Err(Error::Empty {
            path: path.into(),
            what: "the header names no value columns besides the time".into(),
        });
    }
    let limit = match enc {
        Encoding::Scaled16 { decimals } => Some((i16::MAX as f64, decimals)),
        Encoding::Scaled32 { decimals } => Some((i32::MAX as f64, decimals)),
        _ => None,
    };
    let mut s = Survey {
        decimals: vec![None; headers.len()],
        headers,
        time,
        times: Vec::new(),
        lines: Vec::new(),
        time_decimals: None,
        rows: 0,
    };
    while rows
        .read_record(&mut record)
        .map_err(|e| csv_error(path, e))?
    {
        let line = record.position().map_or(0, |p| p.line());
        if is_blank(&record, s.headers.len()) {
            continue;
        }
        if record.len() != s.headers.len() {
            return Err(Error::CsvShape {
                path: path.into(),
                line,
                expected: s.headers.len(),
                found: record.len(),
            });
        }
        s.rows += 1;
        for (i, cell) in record.iter().enumerate() {
            let bad = |expected: String| Error::CsvCell {
                path: path.into(),
                line,
                row: s.rows,
                column: s.headers[i].clone(),
                cell: cell.into(),
                expected,
            };
            if Some(i) == s.time {
                let t = cell
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|t| t.is_finite())
                    .ok_or_else(|| bad("a time in seconds".into()))?;
                s.times.push(t);
                s.lines.push(line);
                s.time_decimals = merge_decimals(s.time_decimals, decimals_of(cell));
                continue;
            }
            let v = parse_cell(cell)
                .ok_or_else(|| bad("a number (or an empty cell for a missing value)".into()))?;
            if let Some((max, d)) = limit {
                let scaled = (v * 10f64.powi(d as i32)).round();
                if scaled.abs() > max {
                    return Err(bad(format!(
                        "a value within +-{} ({enc:?})",
                        max / 10f64.powi(d as i32)
                    )));
                }
            }
            if !cell.trim().is_empty() {
                s.decimals[i] = merge_decimals(s.decimals[i], decimals_of(cell));
            }
        }
    }
    if s.rows == 0 {
        return Err(Error::Empty {
            path: path.into(),
            what: "a header but no data rows".into(),
        });
    }
    Ok(s)
}
