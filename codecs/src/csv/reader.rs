//! Reading a sensor CSV as wire bytes.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use ::csv as csv_crate;

use super::number::StyleGuess;
use super::text::{decimals_of, merge_decimals};
use super::timestamp::{self, MAX_DECIMALS, Shape};
use super::timing::{fit_grid, grid_units};
use crate::encoding;
use crate::error::{Error, Result};
use crate::format::{
    CsvLayout, CsvText, Encoding, Origin, Rate, StreamFormat, TimeColumn, TimeStyle,
};

/// Header names (compared without case, units in brackets ignored) that
/// mark the time column: seconds or ISO 8601. A column whose first cell is
/// an ISO 8601 time is the time column too.
pub const TIME_COLUMN_NAMES: [&str; 10] = [
    "time",
    "t",
    "timestamp",
    "datetime",
    "date_time",
    "date time",
    "ts",
    "time_s",
    "elapsed",
    "utc",
];

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
    /// How far a time may stray from the nominal grid, as a fraction of the
    /// period (default 0.5: a row nearer another row's slot than its own is
    /// a gap or a jump, not jitter). Times within it are carried exactly.
    pub tolerance: f64,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            rate: None,
            encoding: Encoding::F64,
            tolerance: 0.5,
        }
    }
}

/// A sensor CSV opened for streaming: one sample per row, one channel per
/// value column (plus one for the time offsets of a jittery time column),
/// the rate from the time column or the caller.
///
/// The whole file is checked when it is opened (header, every cell, the
/// time column, the range of scaled values), so a bad file is refused
/// before a session starts rather than half-way through.
///
/// Time columns in seconds or ISO 8601 are read as exact integers of their
/// last printed digit. Rows play on a nominal grid (the mean rate made
/// exact); when a logger's timestamps jitter around it, each row's offset
/// from the grid travels as one more channel, so the receiver writes every
/// time back exactly as it was (zero error; the cost is one channel). The
/// rows' playout instants stay on the grid, at most `tolerance` periods
/// from their own times.
pub struct CsvReader {
    path: PathBuf,
    rows: csv_crate::Reader<File>,
    record: csv_crate::StringRecord,
    format: StreamFormat,
    layout: CsvLayout,
    value_index: Vec<usize>,
    /// The grid the time offsets are measured from, when they travel.
    jitter: Option<JitterGrid>,
    total: u64,
    read: u64,
}

#[derive(Debug, Clone)]
struct JitterGrid {
    col: usize,
    style: TimeStyle,
    decimals: u8,
    start: i64,
    rate: Rate,
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
    time_style: Option<TimeStyle>,
    /// Each row's time in nanoseconds from the style's epoch.
    times: Vec<i64>,
    /// File line of each data row, while there is a time column to blame.
    lines: Vec<u64>,
    time_decimals: u8,
    decimals: Vec<Option<Option<u8>>>,
    styles: Vec<StyleGuess>,
    nan: Option<String>,
    inf: Option<String>,
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
        let (delimiter, crlf) = sniff_delimiter(path)?;
        let survey = survey(path, delimiter, enc)?;

        let decimals = survey.time_decimals;
        let units: Vec<i64> = survey
            .times
            .iter()
            .map(|&ns| ns / 10i64.pow((MAX_DECIMALS - decimals) as u32))
            .collect();
        let mut jitter = false;
        let mut origin = units.first().copied().unwrap_or(0);
        let rate = match (survey.time, options.rate) {
            (Some(col), given) if units.len() >= 2 => {
                let grid = fit_grid(&units, given, decimals, options.tolerance).map_err(|irr| {
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
                })?;
                jitter = grid.jitter;
                origin = grid.origin;
                grid.rate
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
        let channels = u16::try_from(value_index.len() + usize::from(jitter)).map_err(|_| {
            Error::Unwritable {
                path: path.into(),
                what: format!(
                    "{} value columns, more than a stream carries",
                    value_index.len()
                ),
            }
        })?;
        let format = StreamFormat::new(enc, channels, rate)?;
        let start_units = origin;
        if jitter {
            check_offsets(path, &survey, &units, origin, rate, enc)?;
        }
        let style = survey.time_style.clone().unwrap_or_default();
        let time = survey.time.map(|i| TimeColumn {
            name: survey.headers[i].clone(),
            index: i,
            start: start_units as f64 / 10f64.powi(decimals as i32),
            decimals: if units.is_empty() {
                super::text::time_decimals(rate.num(), rate.den())
            } else {
                decimals
            },
            style: style.clone(),
            jitter,
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
            text: CsvText {
                styles: value_index
                    .iter()
                    .map(|&i| {
                        survey.styles[i]
                            .finish()
                            .unwrap_or(match survey.decimals[i].flatten() {
                                Some(d) => crate::format::NumberStyle::Fixed {
                                    decimals: d,
                                    plus: false,
                                },
                                None => crate::format::NumberStyle::Shortest { point: false },
                            })
                    })
                    .collect(),
                nan: survey.nan.clone(),
                inf: survey.inf.clone(),
                crlf,
            },
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
            jitter: jitter.then(|| JitterGrid {
                col: survey.time.unwrap_or(0),
                style,
                decimals,
                start: start_units,
                rate,
            }),
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
            let mut slots = row.chunks_exact_mut(w);
            for (j, (&col, slot)) in self.value_index.iter().zip(slots.by_ref()).enumerate() {
                let cell = self.record.get(col).unwrap_or("");
                let v = parse_cell(cell).ok_or_else(|| Error::CsvCell {
                    path: self.path.clone(),
                    line: self.record.position().map_or(0, |p| p.line()),
                    row: self.read + 1,
                    column: self.layout.columns.get(j).cloned().unwrap_or_default(),
                    cell: cell.into(),
                    expected: "a number (the file changed while open)".into(),
                })?;
                match v {
                    Cell::Missing => encoding::write_f64(enc, f64::NAN, slot),
                    Cell::NaN => {
                        if !encoding::write_nan(enc, slot) {
                            encoding::write_f64(enc, f64::NAN, slot);
                        }
                    }
                    Cell::Number(v) => encoding::write_f64(enc, v, slot),
                }
            }
            if let (Some(g), Some(slot)) = (&self.jitter, slots.next()) {
                let cell = self.record.get(g.col).unwrap_or("");
                let t = timestamp::to_units(cell, &g.style, g.decimals).ok_or_else(|| {
                    Error::CsvCell {
                        path: self.path.clone(),
                        line: self.record.position().map_or(0, |p| p.line()),
                        row: self.read + 1,
                        column: self
                            .layout
                            .time
                            .as_ref()
                            .map(|t| t.name.clone())
                            .unwrap_or_default(),
                        cell: cell.into(),
                        expected: "a time (the file changed while open)".into(),
                    }
                })?;
                let off = t - g.start - grid_units(self.read, g.rate, g.decimals);
                encoding::write_f64(enc, off as f64, slot);
            }
            self.read += 1;
        }
        Ok(n)
    }
}

/// Every row's time offset must come back exactly through the wire
/// encoding (f64 always does; compact encodings may not).
fn check_offsets(
    path: &Path,
    s: &Survey,
    units: &[i64],
    origin: i64,
    rate: Rate,
    enc: Encoding,
) -> Result<()> {
    let mut b = [0u8; 8];
    let w = enc.bytes();
    for (i, &t) in units.iter().enumerate() {
        let off = (t - origin - grid_units(i as u64, rate, s.time_decimals)) as f64;
        encoding::write_f64(enc, off, &mut b[..w]);
        if encoding::read_f64(enc, &b[..w]) != off {
            return Err(Error::IrregularTime {
                path: path.into(),
                line: s.lines.get(i).copied().unwrap_or(0),
                column: s.time.map(|c| s.headers[c].clone()).unwrap_or_default(),
                detail: format!(
                    "the timestamps jitter, and this row's offset from the grid ({off} units of \
                     the last digit) does not fit the {enc:?} encoding; use F64 (the default)"
                ),
            });
        }
    }
    Ok(())
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

/// What a value cell holds.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Cell {
    /// Empty: no value.
    Missing,
    /// The text said NaN.
    NaN,
    Number(f64),
}

/// A value cell: a number (infinities included), NaN, or empty.
fn parse_cell(cell: &str) -> Option<Cell> {
    let cell = cell.trim();
    if cell.is_empty() {
        return Some(Cell::Missing);
    }
    let v = cell.parse::<f64>().ok()?;
    Some(if v.is_nan() {
        Cell::NaN
    } else {
        Cell::Number(v)
    })
}

/// Whether a header names the time column: one of [`TIME_COLUMN_NAMES`],
/// ignoring case and a unit in brackets (`time (s)`, `Timestamp [UTC]`).
fn is_time_name(h: &str) -> bool {
    let h = h.trim();
    let base = h.split(['(', '[']).next().unwrap_or(h).trim();
    TIME_COLUMN_NAMES
        .iter()
        .any(|n| base.eq_ignore_ascii_case(n))
}

/// The field separator, from the header line: the most frequent of `,`,
/// `;` and tab outside quotes (`,` when none appears); and whether lines
/// end with CR LF.
fn sniff_delimiter(path: &Path) -> Result<(u8, bool)> {
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
    Ok(([b',', b';', b'\t'][best], first.ends_with(b"\r\n")))
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
    let time = headers.iter().position(|h| is_time_name(h));
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
        styles: vec![StyleGuess::default(); headers.len()],
        headers,
        time,
        time_style: None,
        times: Vec::new(),
        lines: Vec::new(),
        time_decimals: 0,
        nan: None,
        inf: None,
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
        if s.rows == 0 && s.time.is_none() {
            // No time by name: a column of ISO 8601 times is one.
            s.time = record
                .iter()
                .position(|c| matches!(timestamp::shape(c), Some(Shape::Iso { .. })));
            if s.headers.len() == usize::from(s.time.is_some()) {
                return Err(Error::Empty {
                    path: path.into(),
                    what: "the header names no value columns besides the time".into(),
                });
            }
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
                let shape = timestamp::shape(cell).ok_or_else(|| {
                    bad("a time in seconds or ISO 8601 (2024-05-01T12:00:00.125Z)".into())
                })?;
                let style = s
                    .time_style
                    .get_or_insert_with(|| timestamp::style_of(&shape, cell))
                    .clone();
                let d = match &shape {
                    Shape::Seconds(d) => d.unwrap_or(MAX_DECIMALS).min(MAX_DECIMALS),
                    Shape::Iso { decimals, .. } => *decimals,
                };
                let ns = timestamp::to_units(cell, &style, MAX_DECIMALS).ok_or_else(|| {
                    bad(match &style {
                        TimeStyle::Seconds => "a time in seconds, like the rows before".into(),
                        TimeStyle::Iso(iso) => format!(
                            "an ISO 8601 time written like the first row's \
                             (separator '{}', zone '{}')",
                            iso.separator as char, iso.suffix
                        ),
                    })
                })?;
                s.time_decimals = s.time_decimals.max(d);
                s.times.push(ns);
                s.lines.push(line);
                continue;
            }
            let v = parse_cell(cell)
                .ok_or_else(|| bad("a number (or an empty cell for a missing value)".into()))?;
            let trimmed = cell.trim();
            match v {
                Cell::Missing => continue,
                Cell::NaN => {
                    s.nan.get_or_insert_with(|| trimmed.to_owned());
                    continue;
                }
                Cell::Number(v) if v.is_infinite() => {
                    s.inf
                        .get_or_insert_with(|| trimmed.trim_start_matches(['+', '-']).to_owned());
                    continue;
                }
                Cell::Number(v) => {
                    if let Some((max, d)) = limit {
                        let scaled = (v * 10f64.powi(d as i32)).round();
                        if scaled.abs() > max {
                            return Err(bad(format!(
                                "a value within +-{} ({enc:?})",
                                max / 10f64.powi(d as i32)
                            )));
                        }
                    }
                    s.decimals[i] = merge_decimals(s.decimals[i], decimals_of(cell));
                    s.styles[i].see(trimmed, v);
                }
            }
        }
    }
    if s.rows == 0 {
        return Err(Error::Empty {
            path: path.into(),
            what: "a header but no data rows".into(),
        });
    }
    for w in [&mut s.nan, &mut s.inf] {
        if w.as_ref().is_some_and(|w| w.len() > CsvText::MAX_WORD) {
            *w = None;
        }
    }
    Ok(s)
}
